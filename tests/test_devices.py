"""Device and precision choice, free memory, out-of-memory recognition and the auto tile size."""

from __future__ import annotations

import logging

import pytest
import torch

from enhancer import DeviceError, Model
from enhancer import devices
from enhancer.devices import describe, free_memory_bytes, is_out_of_memory, resolve_device, resolve_precision
from enhancer.tiling import auto_tile_size, bytes_per_pixel, context_for, tile_grid


def test_auto_device_is_logged_and_exists(caplog):
    with caplog.at_level(logging.INFO, logger="enhancer.devices"):
        device = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if devices.mps_available() else "cpu")
    assert device.type == expected
    assert f"device auto: " in caplog.text
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU is available"):
        resolve_device("cuda")


@pytest.mark.skipif(devices.mps_available(), reason="this machine has MPS")
def test_missing_mps_is_a_clear_error():
    with pytest.raises(DeviceError, match="MPS is not available"):
        resolve_device("mps")


def test_unknown_device_and_precision_are_clear_errors():
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="unknown precision"):
        resolve_precision("int4", "cpu", "mobilesr")


def test_auto_precision_on_cpu_follows_native_bf16(caplog, monkeypatch):
    for fast, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda fast=fast: fast)
        with caplog.at_level(logging.INFO, logger="enhancer.devices"):
            assert resolve_precision("auto", "cpu", "mobilesr") == expected
        assert f"precision auto for mobilesr on cpu: {expected}" in caplog.text


def test_cpu_bf16_detection_reads_the_real_flags():
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    has_flag = " avx512_bf16" in flags or " amx_bf16" in flags
    has_amx = "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper()
    assert devices.cpu_has_fast_bf16() == (has_flag or has_amx)


def test_fp16_is_never_used_for_swinir(caplog):
    with caplog.at_level(logging.WARNING, logger="enhancer.devices"):
        assert resolve_precision("fp16", "cpu", "swinir") in ("fp32", "bf16")
    assert "not safe for swinir" in caplog.text
    assert resolve_precision("fp32", "cpu", "swinir") == "fp32"
    assert resolve_precision("bf16", "cpu", "swinir") == "bf16"


def test_describe_names_device_and_precision():
    text = describe("cpu", "fp32")
    assert text == "CPU, fp32"
    assert describe("cpu", "auto").startswith("CPU, ")


def test_free_memory_is_plausible():
    free = free_memory_bytes("cpu")
    assert 64 << 20 < free < 1 << 50


def test_out_of_memory_errors_are_recognised():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def _model(arch: str, config: dict, scale: int = 4) -> Model:
    return Model(net=torch.nn.Identity(), arch=arch, task="sr", scale=scale, in_channels=3, out_channels=3,
                 config=config, name=arch)


def test_auto_tile_size_follows_free_memory_and_the_grid(monkeypatch):
    swinir = _model("swinir", {"embed_dim": 180, "num_heads": [6] * 6, "window_size": 8, "mlp_ratio": 2.0,
                               "upsampler": "pixelshuffle"})
    mobilesr = _model("mobilesr", {"n_feats": 40, "n_heads": 8, "ratios": [4, 2, 2, 2, 4], "upscaling_factor": 4})
    assert bytes_per_pixel(swinir) > bytes_per_pixel(mobilesr) > 0
    assert bytes_per_pixel(swinir, "bf16") < bytes_per_pixel(swinir, "fp32")
    sizes = []
    for free in (1 << 30, 4 << 30, 64 << 30):
        monkeypatch.setattr("enhancer.tiling.free_memory_bytes", lambda _device, free=free: free)
        tile = auto_tile_size(swinir, torch.device("cpu"), "fp32", (3000, 4000))
        assert tile % tile_grid(swinir) == 0 and tile >= 2 * tile_grid(swinir)
        # the network input (tile plus context) fits the budget the estimate allows
        side = tile + 2 * context_for(swinir)
        assert side * side * bytes_per_pixel(swinir) <= max(free * 0.4, (4 * 8) ** 2 * bytes_per_pixel(swinir))
        sizes.append(tile)
    assert sizes[0] < sizes[1] <= sizes[2]
    # a small photo that fits is done in one piece
    assert auto_tile_size(mobilesr, torch.device("cpu"), "fp32", (100, 120)) == 120


# ---------------------------------------------------------------- CPU threads under load


@pytest.mark.parametrize(
    "default,logical,busy,expected",
    [
        (2, 2, 0.0, 2),  # idle machine: torch's default
        (2, 2, 0.3, 2),  # a browser tab is not worth a thread
        (2, 2, 1.0, 1),  # one core training: one thread, not two that wait on each other
        (2, 2, 2.0, 1),  # everything busy: still one
        (8, 16, 4.0, 6),  # hyper-threads: the free share of the physical-core default
        (4, 4, 9.0, 1),
    ],
)
def test_threads_follow_the_cpus_others_leave_free(default, logical, busy, expected):
    assert devices.threads_for_load(default, logical, busy) == expected


def _spin(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="/proc/stat is read on Linux only")
def test_a_busy_process_is_seen_and_our_own_work_is_not():
    import multiprocessing
    import threading

    context = multiprocessing.get_context("spawn")
    spinner = context.Process(target=_spin, args=(4.0,))
    spinner.start()
    try:
        _spin(0.5)  # give the child time to start spinning
        assert devices.busy_cpus_of_others(0.5) >= 0.5  # the other process keeps one CPU busy
    finally:
        spinner.join()
    others = devices.busy_cpus_of_others(0.5)  # whatever else this machine is doing
    own = threading.Thread(target=_spin, args=(1.0,))  # this process keeps a CPU busy while we sample
    own.start()
    try:
        assert devices.busy_cpus_of_others(0.5) < others + 0.5
    finally:
        own.join()


def test_cpu_threads_honour_a_request_and_are_restored(monkeypatch):
    before = torch.get_num_threads()
    assert devices.cpu_threads(3) == 3
    assert 1 <= devices.cpu_threads() <= before
    with devices.cpu_threads_for(torch.device("cpu"), 1) as threads:
        assert threads == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setattr(devices, "busy_cpus_of_others", lambda: None)  # a system that does not report its load
    monkeypatch.setattr(devices, "_last_choice", None)
    assert devices.cpu_threads() == before
