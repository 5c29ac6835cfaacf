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


def _bf16_kernels_run() -> tuple[bool, str]:
    """Run oneDNN's bf16 convolution and GEMM and torch's bf16 window attention (SwinIR's shape: 64 tokens, head
    dim 30, an additive mask) for real; (ran, the error text when they did not)."""
    x, weight = torch.rand(1, 8, 6, 6).bfloat16(), torch.rand(8, 8, 3, 3).bfloat16()
    tokens, mask = torch.rand(4, 6, 64, 30).bfloat16(), torch.rand(4, 1, 64, 64).bfloat16()
    try:
        with torch.inference_mode():
            torch.ops.aten.mkldnn_convolution(x, weight, None, [1, 1], [1, 1], [1, 1], 1)
            torch.ops.mkldnn._linear_pointwise(
                torch.rand(4, 8).bfloat16(), torch.rand(3, 8).bfloat16(), None, "none", [], ""
            )
            torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens, attn_mask=mask)
    except RuntimeError as exc:
        return False, str(exc).splitlines()[0]
    return True, ""


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "") + " "
    except OSError:
        return ""


def test_cpu_capabilities_agree_with_what_actually_runs():
    caps = devices.cpu_capabilities()
    runs, error = _bf16_kernels_run()
    what = f"a bf16 convolution {'ran' if runs else 'raised ' + repr(error)}"
    assert caps.bf16_runs == runs, f"cpu_capabilities says {caps.summary()}, but {what}"
    if not runs:
        assert caps.bf16_why_not and not caps.bf16_fast, caps
    flags = _cpu_flags()
    if flags:
        native = " avx512_bf16 " in flags or " amx_bf16 " in flags or "AMX" in caps.isa
        assert caps.bf16_fast == (runs and native), f"{caps.summary()}; {what}; native bf16 flags: {native}"
    with torch.inference_mode():  # oneDNN's fused fp32 kernels, which the networks' fast paths call
        fused = torch.ops.mkldnn._convolution_pointwise(
            torch.rand(1, 4, 5, 5), torch.rand(4, 1, 3, 3), None, [1, 1], [1, 1], [1, 1], 4, "none", [], ""
        )
    assert caps.onednn_fused_ops and fused.shape == (1, 4, 5, 5), caps


def test_requested_bf16_runs_where_the_cpu_can_and_falls_back_with_a_note_elsewhere(caplog):
    caps = devices.cpu_capabilities()
    with caplog.at_level(logging.WARNING, logger="enhancer.devices"):
        chosen = resolve_precision("bf16", "cpu", "mobilesr")
    if caps.bf16_runs:
        assert chosen == "bf16" and not caplog.text, f"this CPU runs bf16 ({caps.summary()})"
    else:
        assert chosen == "fp32", f"this CPU has no bf16 kernels ({caps.bf16_why_not}): bf16 must fall back"
        assert "bf16 is not supported by this CPU; using fp32" in caplog.text


def test_bf16_fallback_on_a_cpu_without_bf16_kernels(monkeypatch):
    """The rule itself, on any machine: a CPU like the AVX2-only AMD EPYC (capabilities as that CPU reports them)."""
    avx2_only = devices.CpuCapabilities("AVX2", True, False, False, "the CPU has neither AVX512BW+VL+DQ nor AVX-NE-CONVERT")
    monkeypatch.setattr(devices, "cpu_capabilities", lambda: avx2_only)
    assert devices.choose_precision("auto", "cpu", "swinir") == devices.PrecisionChoice("fp32")
    assert devices.choose_precision("bf16", "cpu", "swinir") == devices.PrecisionChoice(
        "fp32", "bf16 is not supported by this CPU; using fp32"
    )
    assert devices.precision_availability("cpu") == {
        "auto": "", "fp32": "", "bf16": "bf16 is not supported by this CPU",
        "fp16": "fp16 is not supported for inference by this CPU",
    }
    assert describe("cpu", "bf16") == "CPU, fp32"
    assert devices.precision_note("cpu", "bf16") == "bf16 is not supported by this CPU; using fp32"


def test_fp16_is_never_used_for_swinir(caplog):
    with caplog.at_level(logging.WARNING, logger="enhancer.devices"):
        assert resolve_precision("fp16", "cpu", "swinir") in ("fp32", "bf16")
    assert "not safe for swinir" in caplog.text
    assert resolve_precision("fp32", "cpu", "swinir") == "fp32"
    expected = "bf16" if devices.cpu_capabilities().bf16_runs else "fp32"
    assert resolve_precision("bf16", "cpu", "swinir") == expected, devices.cpu_capabilities().summary()


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
