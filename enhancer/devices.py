"""Pick the device, the precision and the CPU threads a network runs with, and say how much memory is free.

`auto` means CUDA, then Apple MPS, then the CPU. Precision `auto` means bf16 where the hardware runs it fast (CUDA
with native bf16, a CPU with AVX512-BF16 or AMX) and fp32 everywhere else. A requested precision the device cannot
run falls back to one it can, with a one-line note (bf16 on a CPU without AVX512BW+VL+DQ or AVX-NE-CONVERT, where
oneDNN has no bf16 kernels). fp16 is never used for SwinIR: its attention overflows in half precision.
`cpu_capabilities()` is the one place that says what this CPU runs.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .errors import DeviceError
from .options import PRECISIONS

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# GPUs that torch does not drive here but a compiled backend does: DirectML (any GPU on Windows) through ONNX
# Runtime, an Intel GPU through OpenVINO.
ACCELERATORS = {"dml": "onnxruntime", "intel-gpu": "openvino"}


def accelerator_for(device: str | torch.device) -> str | None:
    """"dml" or "intel-gpu" when `device` names one of those, else None (torch drives the device)."""
    text = str(device).strip().lower()
    return text if text in ACCELERATORS else None


def _check_accelerator(name: str) -> None:
    try:
        if name == "dml":
            import onnxruntime

            found = "DmlExecutionProvider" in onnxruntime.get_available_providers()
            how = "DirectML needs Windows and the onnxruntime-directml package"
        else:
            from .backends.openvino_backend import core

            found = "GPU" in core().available_devices
            how = "OpenVINO finds no Intel GPU (or its driver) on this machine"
    except ImportError:
        found, how = False, f"the {ACCELERATORS[name]} package is not installed"
    if not found:
        raise DeviceError(f"device {name!r} was requested but is not available: {how}; use --device cpu or auto")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1" or "mps" into a torch.device that exists on this machine."""
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text in ACCELERATORS:
        _check_accelerator(text)
        return torch.device("cpu")  # weights and tiles stay in host memory; the backend drives the GPU
    if text == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
            log.info("device auto: using CUDA (%s)", torch.cuda.get_device_name(0))
        elif mps_available():
            device = torch.device("mps")
            log.info("device auto: using Apple MPS")
        else:
            device = torch.device("cpu")
            log.info("device auto: no GPU found, using the CPU")
        return device
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} was requested but no CUDA GPU is available "
                "(no NVIDIA GPU, or this torch build has no CUDA support); use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} was requested but only {torch.cuda.device_count()} CUDA GPU(s) exist"
            )
    elif device.type == "mps":
        if not mps_available():
            raise DeviceError("device 'mps' was requested but Apple MPS is not available on this machine")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device


def _cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags as Linux names them, or None where the system does not say (macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


# What oneDNN's bf16 convolution and GEMM kernels need before they run at all (torch's own check names the same
# sets): AVX512 with byte/word, vector-length and doubleword/quadword extensions, or AVX-NE-CONVERT.
_BF16_RUNS_FLAG_SETS = (frozenset({"avx512bw", "avx512vl", "avx512dq"}), frozenset({"avx_ne_convert"}))
# What makes bf16 faster than fp32: native bf16 dot products (AVX512-BF16) or AMX tiles.
_BF16_FAST_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class CpuCapabilities:
    """What this CPU runs, as the kernels see it. "Runs" and "runs fast" are kept apart: bf16 convolutions run on
    any AVX-512 CPU, but are faster than fp32 only with AVX512-BF16 or AMX."""

    isa: str  # torch's kernel level: "DEFAULT", "AVX2", "AVX512", ...
    onednn_fused_ops: bool  # oneDNN's fused fp32 GEMM/conv + post-op kernels run
    bf16_runs: bool  # bf16 inference runs: oneDNN's bf16 convolutions and GEMMs, and torch's bf16 attention
    bf16_fast: bool  # ... and bf16 arithmetic is native, so faster than fp32
    bf16_why_not: str = ""  # why bf16 does not run, for messages and test output

    def summary(self) -> str:
        bf16 = "fast" if self.bf16_fast else ("runs, not fast" if self.bf16_runs else "no")
        fused = "yes" if self.onednn_fused_ops else "no"
        return f"kernels {self.isa}, oneDNN fused ops {fused}, bf16 {bf16}"


def _runs(op) -> bool:
    try:
        with torch.inference_mode():
            op()
        return True
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def _onednn_fused_ops_run() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    ops = getattr(torch.ops, "mkldnn", None)
    x, w = torch.ones(1, 4, 3, 3), torch.ones(4, 1, 3, 3)
    return _runs(lambda: ops._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 4, "none", [], "")) and _runs(
        lambda: ops._linear_pointwise(torch.ones(2, 4), torch.ones(3, 4), None, "gelu", [], "none")
    )


def _bf16_runs(isa: str) -> tuple[bool, str]:
    """Whether bf16 inference runs here: the CPU must have the instructions, oneDNN (which an environment variable
    such as ONEDNN_MAX_CPU_ISA can limit) must agree, and torch's bf16 attention must run at its kernel level (on an
    AMX CPU it packs for AMX, which its kernels below AVX512 cannot do, e.g. under ATEN_CPU_CAPABILITY=avx2)."""
    flags = _cpu_flags()
    if flags is not None and platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        if not any(needed <= flags for needed in _BF16_RUNS_FLAG_SETS):
            return False, "the CPU has neither AVX512BW+VL+DQ nor AVX-NE-CONVERT"
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        supported = False
    if not supported:
        return False, "oneDNN has no bf16 kernels for this CPU"
    tokens = torch.ones(2, 2, 64, 8, dtype=torch.bfloat16)
    if not _runs(lambda: torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens)):
        return False, f"torch's bf16 attention does not run with its {isa} kernels"
    return True, ""


@functools.lru_cache(maxsize=1)
def cpu_capabilities() -> CpuCapabilities:
    """What this CPU can run; the one place that networks, backends and tests ask."""
    try:
        isa = str(torch.backends.cpu.get_cpu_capability()).upper()
    except (AttributeError, RuntimeError):
        isa = "UNKNOWN"
    bf16_runs, why_not = _bf16_runs(isa)
    flags = _cpu_flags() or frozenset()
    bf16_fast = bf16_runs and (bool(flags & _BF16_FAST_FLAGS) or "AMX" in isa)
    caps = CpuCapabilities(isa, _onednn_fused_ops_run(), bf16_runs, bf16_fast, why_not)
    log.info("CPU: %s", caps.summary())
    return caps


def cpu_has_fast_bf16() -> bool:
    """True when bf16 runs on this CPU and is faster than fp32 (AVX512-BF16 or AMX)."""
    return cpu_capabilities().bf16_fast


def cuda_has_bf16(device: torch.device) -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch has no including_emulation argument
        major, _minor = torch.cuda.get_device_capability(device)
        return major >= 8


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a network runs in, and a one-line note for the user when it is not the one asked for."""

    name: str  # "fp32", "bf16" or "fp16"
    note: str = ""


def choose_precision(
    precision: str = "auto", device: torch.device | str = "cpu", arch: str | None = None
) -> PrecisionChoice:
    """The precision `arch` runs in on `device` when `precision` is asked for. A precision the device cannot run
    (or that the network is not safe in) falls back to one it can, with a note; only an unknown name raises."""
    requested = str(precision or "auto").strip().lower()
    if requested not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    gpu_bf16 = device.type == "cuda" and cuda_has_bf16(device)
    if requested == "auto":
        fast_bf16 = gpu_bf16 or (device.type == "cpu" and cpu_has_fast_bf16())
        return PrecisionChoice("bf16" if fast_bf16 else "fp32")
    if requested == "bf16":
        if device.type == "cpu" and not cpu_capabilities().bf16_runs:
            return PrecisionChoice("fp32", "bf16 is not supported by this CPU; using fp32")
        if device.type == "cuda" and not gpu_bf16:
            return PrecisionChoice("fp32", "bf16 is not supported by this GPU; using fp32")
    if requested == "fp16":
        if not _fp16_safe(arch):
            fallback = "bf16" if gpu_bf16 else "fp32"
            return PrecisionChoice(fallback, f"fp16 is not safe for {arch} (its activations overflow); using {fallback}")
        if device.type == "cpu":
            return PrecisionChoice("fp32", "fp16 is not supported for inference by this CPU; using fp32")
    return PrecisionChoice(requested)


def _fp16_safe(arch: str | None) -> bool:
    """What the network's spec says (SwinIR's activations overflow fp16); an unknown network is taken as safe."""
    from .archs import specs

    spec = specs().get(arch or "")
    return spec is None or spec.fp16_safe


def resolve_precision(precision: str = "auto", device: torch.device | str = "cpu", arch: str | None = None) -> str:
    """Return "fp32", "bf16" or "fp16" for `arch` on `device`; a fallback is logged as a warning with its note."""
    choice = choose_precision(precision, device, arch)
    if choice.note:
        log.warning("%s", choice.note)
    else:
        log.info("precision %s for %s on %s: %s", precision, arch or "network", torch.device(device).type, choice.name)
    return choice.name


def precision_availability(device: torch.device | str = "auto") -> dict[str, str]:
    """For each precision a user can pick: "" when `device` runs it as asked, else the reason (for the settings)."""
    resolved = resolve_device(device)
    return {p: choose_precision(p, resolved).note.split(";")[0] for p in PRECISIONS}


def device_label(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return f"CUDA ({torch.cuda.get_device_name(device)})"
        except (RuntimeError, AssertionError):
            return "CUDA"
    return {"mps": "MPS", "cpu": "CPU"}.get(device.type, device.type.upper())


def describe(device: torch.device | str = "auto", precision: str = "auto", arch: str | None = None) -> str:
    """A short status-bar text such as "CPU, fp32" or "CUDA (NVIDIA H100), bf16"."""
    resolved = resolve_device(device)
    return f"{device_label(resolved)}, {choose_precision(precision, resolved, arch).name}"


def precision_note(device: torch.device | str = "auto", precision: str = "auto", arch: str | None = None) -> str:
    """The one-line note when `precision` cannot run as asked on `device` ("" when it can)."""
    return choose_precision(precision, resolve_device(device), arch).note


def busy_cpus_of_others(sample_seconds: float = 0.1) -> float | None:
    """How many logical CPUs other processes kept busy over a short sample (this process's own use is left out).

    Read from /proc/stat, so Linux only; None where the system does not say.
    """

    def busy_ticks() -> int:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(values) - values[3] - values[4]

    try:
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        busy_before, own_before, start = busy_ticks(), time.process_time(), time.monotonic()
        time.sleep(sample_seconds)
        busy_after, own_after, elapsed = busy_ticks(), time.process_time(), time.monotonic() - start
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    others = (busy_after - busy_before) / ticks_per_second - (own_after - own_before)
    return max(0.0, others / max(elapsed, 1e-3))


def threads_for_load(default_threads: int, logical_cpus: int, busy_by_others: float) -> int:
    """The share of `default_threads` that fits in the CPUs other processes leave free (at least 1).

    Intra-op threads wait for each other at the end of every op, so a single thread that shares its core with a busy
    process holds all of them up: one photo took 29.5 s instead of 2.5 s with 2 threads on a 2-core machine whose
    other core was training a network.
    """
    free_share = max(0.0, logical_cpus - busy_by_others) / max(1, logical_cpus)
    return max(1, min(default_threads, round(default_threads * free_share)))


_LOAD_CHECK_SECONDS = 5.0  # a batch of small photos re-uses the last choice instead of sampling for each one
_last_choice: tuple[float, int, int] | None = None  # (when, torch default it was made for, threads)


def cpu_threads(requested: int = 0) -> int:
    """Threads for CPU inference: `requested` when above 0; otherwise torch's current setting (by default one per
    physical core), lowered to the share of the CPUs that other processes leave idle right now."""
    global _last_choice
    if requested > 0:
        return int(requested)
    default = torch.get_num_threads()
    now = time.monotonic()
    if _last_choice is not None and now - _last_choice[0] < _LOAD_CHECK_SECONDS and _last_choice[1] == default:
        return _last_choice[2]
    busy = busy_cpus_of_others()
    threads = default if busy is None else threads_for_load(default, os.cpu_count() or 1, busy)
    if threads < default:
        log.info("other processes keep %.1f CPUs busy: running on %d of %d threads", busy, threads, default)
    _last_choice = (now, default, threads)
    return threads


@contextmanager
def cpu_threads_for(device: torch.device, requested: int = 0) -> Iterator[int]:
    """Run the body with `cpu_threads(requested)` torch threads when `device` is the CPU; restore them after."""
    if device.type != "cpu":
        yield torch.get_num_threads()
        return
    before = torch.get_num_threads()
    threads = cpu_threads(requested)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def _cpu_available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    try:  # macOS has no available-pages counter: assume half of the physical memory is usable
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def free_memory_bytes(device: torch.device | str) -> int:
    """Bytes a forward pass may still use on `device` (CUDA: free plus cached-but-unused; CPU: available RAM)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(cached_unused, 0))
    if device.type == "mps":
        try:
            limit = torch.mps.recommended_max_memory()
            return int(max(limit - torch.mps.driver_allocated_memory(), 0))
        except (AttributeError, RuntimeError):
            return _cpu_available_bytes() // 2
    return _cpu_available_bytes()


def empty_cache(device: torch.device | str) -> None:
    """Give cached blocks back after an out-of-memory error, so the retry starts from a clean pool."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        try:
            torch.mps.empty_cache()
        except (AttributeError, RuntimeError):
            pass


def _find_malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc; absent on musl
    except OSError:
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_host_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc only; elsewhere nothing to do).

    glibc keeps freed buffers of tile-sized tensors in its heap, so without this the resident size grows by the
    fragments left over from each large tile (measured: 0.19 GiB after a dozen 512-pixel MobileSR tiles).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors a device raises when one tile does not fit."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return (
            "can't allocate memory" in text
            or "DefaultCPUAllocator" in text
            or "out of memory" in text.lower()
        )
    return False


# --------------------------------------------------------------------------------------------------------------------
# Which GPUs this computer has and whether this build of torch can use them: the status bar and the About box say it,
# so that someone with an NVIDIA GPU and the CPU-only installer learns that a faster build exists.

NVIDIA_BUILD_HINT = (
    "To use it, install the NVIDIA build of Photo Enhancer (the download whose name ends in -nvidia, e.g. "
    "PhotoEnhancer-VERSION-nvidia-setup.exe, on the same page as this one)"
)
NVIDIA_PIP_HINT = "To use it: pip install torch --index-url https://download.pytorch.org/whl/cu128"
_DISPLAY_CLASS_KEY = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"
_PCI_DEVICES = Path("/sys/bus/pci/devices")


def _windows_display_adapters() -> list[str]:
    """The display adapters Windows knows (their driver descriptions), from the registry; no process is started."""
    try:
        import winreg
    except ImportError:
        return []
    names = []
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _DISPLAY_CLASS_KEY) as adapters:
            for index in range(winreg.QueryInfoKey(adapters)[0]):
                sub = winreg.EnumKey(adapters, index)
                if not sub.isdigit():
                    continue  # "Configuration", "Properties"
                try:
                    with winreg.OpenKey(adapters, sub) as adapter:
                        names.append(str(winreg.QueryValueEx(adapter, "DriverDesc")[0]))
                except OSError:
                    continue
    except OSError:
        return []
    return names


def _linux_pci_nvidia(devices: Path = _PCI_DEVICES) -> list[str]:
    """NVIDIA display controllers on the PCI bus (vendor 0x10de, class 0x03xxxx), also without an NVIDIA driver."""
    found = []
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return []
    for entry in entries:
        try:
            vendor = (entry / "vendor").read_text().strip().lower()
            klass = (entry / "class").read_text().strip().lower()
        except OSError:
            continue
        if vendor == "0x10de" and klass.startswith("0x03"):
            found.append(f"NVIDIA GPU (PCI {entry.name})")
    return found


def nvidia_gpus(which=None, run=None, platform: str | None = None, adapters=None, pci=None) -> list[str]:
    """The names of the NVIDIA GPUs in this computer, whether or not torch can use them ([] when there is none).

    `nvidia-smi` first (it comes with every NVIDIA driver, on Windows in System32); without it, the display adapters
    in the Windows registry, or the PCI bus on Linux. The arguments replace shutil.which, subprocess.run,
    sys.platform and the two fallbacks, for tests.
    """
    import shutil
    import subprocess

    which = which or shutil.which
    run = run or subprocess.run
    platform = platform or sys.platform
    smi = which("nvidia-smi")
    if smi:
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if platform == "win32" else 0  # no console flashing
        try:
            done = run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                       timeout=5, creationflags=flags)
            if done.returncode == 0:
                names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
                if names:
                    return names
        except (OSError, subprocess.SubprocessError):
            pass
    if platform == "win32":
        listed = (adapters or _windows_display_adapters)()
        return [name for name in listed if "nvidia" in name.lower()]
    if platform.startswith("linux"):
        return (pci or _linux_pci_nvidia)()
    return []


def gpu_hint(gpus: list[str] | None = None, cuda_built: bool | None = None, cuda_usable: bool | None = None,
             frozen: bool | None = None) -> str:
    """What to tell the user about an NVIDIA GPU this build of torch does not use ("" when there is nothing to say).

    The defaults ask this computer (nvidia_gpus(), torch's CUDA support, whether this is the installed app); tests
    pass them in.
    """
    gpus = nvidia_gpus() if gpus is None else gpus
    if not gpus:
        return ""
    cuda_built = (torch.version.cuda is not None) if cuda_built is None else cuda_built
    cuda_usable = torch.cuda.is_available() if cuda_usable is None else cuda_usable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if cuda_usable:
        return ""
    names = ", ".join(dict.fromkeys(gpus))
    if not cuda_built:
        where = NVIDIA_BUILD_HINT if frozen else NVIDIA_PIP_HINT
        return f"{names} found, but this build runs on the CPU only (torch {torch.__version__}). {where}."
    return (f"{names} found, but CUDA cannot use it (torch {torch.__version__}, CUDA {torch.version.cuda}): "
            "update the NVIDIA driver to one for this CUDA version or newer.")


def found_devices(gpus: list[str] | None = None) -> list[str]:
    """Every compute device on this computer, each marked when torch cannot use it: "CPU", "CUDA (NVIDIA ...)", ..."""
    found = ["CPU"]
    usable = []
    if torch.cuda.is_available():
        usable = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        found += [f"CUDA ({name})" for name in usable]
    if mps_available():
        found.append("Apple GPU (MPS)")
    gpus = nvidia_gpus() if gpus is None else gpus
    if not usable:  # with CUDA working, the NVIDIA GPUs are the CUDA devices above
        found += [f"{name} (not usable by this build)" for name in dict.fromkeys(gpus)]
    return found
