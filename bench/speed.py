"""Throughput and peak memory of our networks against a peer measured in the same run, on the same weights and input.

    python -m bench.speed                      # all models, 64/128/256, fp32 (+ bf16 where the CPU runs it fast)
    python -m bench.speed --models swinir-s --sizes 64 --repeat 2 --threads 1

Peers: spandrel (SwinIR), spandrel_extra_arches (Restormer), bench/mobilesr_baseline.py (MobileSR). Without the peer
package (the main .venv) the bench still runs, ours only, with fewer sizes. `make bench-env` builds `.venv-bench`
with both packages. Not part of `make test`: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ENHANCER_SHARED_DIR", ROOT.parent / "shared"))
MANIFESTS = SHARED / "golden" / "manifests"
MOBILESR_WEIGHTS = SHARED / "weights" / "mobilesr_x4.pth"

MODELS = ("swinir-m", "swinir-s", "restormer", "mobilesr")
FULL_SIZES = (64, 128, 256)
REDUCED_SIZES = (64, 128)


@dataclass
class Subject:
    """One network to measure: ours, its peer (or None) and how to count its work."""

    name: str
    ours: nn.Module
    peer: nn.Module | None
    peer_name: str
    in_channels: int = 3
    missing: str = ""  # why there is no peer
    flops_per_pixel: float = 0.0
    flops_counted_on: str = ""


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    output: torch.Tensor | None = None

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


# ---------------------------------------------------------------- subjects


def _manifest_kwargs(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text())["official_kwargs"]


def _official_swinir_state(net: nn.Module, kwargs: dict) -> dict[str, torch.Tensor]:
    """Our state dict plus the buffers the official files carry, so that spandrel loads it strictly."""
    from enhancer.archs.swinir.network import MASK_VALUE, _region_ids, relative_position_index

    state = dict(net.state_dict())
    window, size = kwargs["window_size"], kwargs["img_size"]
    shift = window // 2
    ids = _region_ids(size, size, window, shift)
    mask = (ids[:, None, :] != ids[:, :, None]).float() * MASK_VALUE
    for key in list(state):
        if key.endswith(".attn.relative_position_bias_table"):
            block = key[: -len(".attn.relative_position_bias_table")]
            state[f"{block}.attn.relative_position_index"] = relative_position_index(window).clone()
            if int(block.rsplit(".", 1)[1]) % 2 == 1 and size > window:
                state[f"{block}.attn_mask"] = mask.clone()
    return state


def swinir_subject(name: str, manifest: str) -> Subject:
    from enhancer.archs.swinir import SwinIR
    from enhancer.checkpoints import model_from_state_dict

    kwargs = _manifest_kwargs(manifest)
    torch.manual_seed(0)
    state = _official_swinir_state(SwinIR(**kwargs), kwargs)
    ours = model_from_state_dict(dict(state), name=name).net
    try:
        from spandrel import ModelLoader
    except ImportError as exc:
        return Subject(name, ours, None, "spandrel", missing=f"spandrel not installed ({exc.__class__.__name__})")
    peer = ModelLoader().load_from_state_dict(state).model.eval()
    return Subject(name, ours, peer, "spandrel")


def restormer_subject() -> Subject:
    from enhancer.archs.restormer import Restormer
    from enhancer.checkpoints import model_from_state_dict

    kwargs = _manifest_kwargs("restormer_motion_deblurring")
    torch.manual_seed(0)
    state = dict(Restormer(**kwargs).state_dict())
    ours = model_from_state_dict(dict(state), name="restormer").net
    try:
        import spandrel_extra_arches
        from spandrel import ModelLoader
    except ImportError as exc:
        return Subject("restormer", ours, None, "spandrel_extra_arches",
                       missing=f"spandrel_extra_arches not installed ({exc.__class__.__name__})")
    spandrel_extra_arches.install(ignore_duplicates=True)
    peer = ModelLoader().load_from_state_dict(state).model.eval()
    return Subject("restormer", ours, peer, "spandrel_extra_arches")


def mobilesr_subject() -> Subject:
    from bench.mobilesr_baseline import MobileSRBaseline
    from enhancer.checkpoints import model_from_state_dict, read_state_dict

    state = read_state_dict(MOBILESR_WEIGHTS)  # map_location="cpu": the file was saved on CUDA
    model = model_from_state_dict(dict(state), name="mobilesr")
    peer = MobileSRBaseline(**model.config)
    peer.load_state_dict(state, strict=True)
    return Subject("mobilesr", model.net, peer.eval(), "mobilesr_baseline (frozen first version)")


def make_subject(name: str) -> Subject:
    if name == "swinir-m":
        return swinir_subject("swinir-m", "swinir_classicalSR_s64w8_M_x4")
    if name == "swinir-s":
        return swinir_subject("swinir-s", "swinir_lightweightSR_s64w8_S_x4")
    if name == "restormer":
        return restormer_subject()
    if name == "mobilesr":
        return mobilesr_subject()
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


# ---------------------------------------------------------------- measuring


class PeakMemory:
    """Peak resident memory above the level at start, sampled by a thread (CPU) or from the CUDA allocator."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self._base)
            time.sleep(0.002)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        _release_freed_memory()
        self._base = self._rss() if sys.platform.startswith("linux") else 0
        if self._base:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        elif self._base:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss() - self._base)


def _release_freed_memory() -> None:
    """Give freed heap memory back to the OS, so the RSS peak of the next run is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_once(net: nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    _sync(x.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = net(x)
    _sync(x.device)
    return time.perf_counter() - start, out


class _Compiled(nn.Module):
    """Ours through `enhancer.compilation.run_network`, as `enhance(..., compile=True)` runs it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from enhancer.compilation import run_network

        return run_network(self.net, x, compile=True)


def inference_module(name: str, net: nn.Module, device: torch.device) -> nn.Module:
    """The module `enhancer.tiling` runs for `net` on `device`: its spec's CPU fast module, or the network itself."""
    from enhancer.archs import get_spec

    return get_spec(name.split("-")[0]).for_inference(net, device)


def run_autocast(net: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> tuple[float, torch.Tensor]:
    """One call the way `enhancer.tiling` runs a reduced precision: the fp32 network under autocast."""
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        return run_once(net, x)


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 1024, seconds: float = 4.0) -> float:
    """Best GFLOP/s of a square matmul: the practical arithmetic limit of this machine for `dtype`."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = math.inf
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or (time.perf_counter() < deadline and runs < 200):  # best of many: the CPU is shared
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
        runs += 1
    return 2 * size**3 / best / 1e9


def count_flops(net: nn.Module, channels: int, size: int = 64) -> float:
    """FLOPs per input pixel, counted once at `size`² (all four networks cost the same per pixel at any size)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, channels, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / (size * size)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--sizes", type=int, nargs="+", help="input sides (default 64 128 256; 64 128 without peers)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant after one warm-up (best is used)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="auto: only where a bf16 matmul runs at least half as fast as fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time ours through torch.compile (for GPUs)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [n.strip() for n in args.models.split(",") if n.strip()]

    peak32 = matmul_peak(torch.float32, device)
    peak16 = matmul_peak(torch.bfloat16, device)
    run_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and peak16 >= 0.5 * peak32)
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}  {platform.node()}  {_cpu_name()}  torch {torch.__version__}  "
          f"device {device}  threads {torch.get_num_threads()}  load {os.getloadavg()[0]:.1f}")
    print(f"# matmul peak: fp32 {peak32:.1f} GFLOP/s, bf16 {peak16:.1f} GFLOP/s"
          + ("" if run_bf16 else "  -> bf16 skipped (slower than fp32 here; --bf16 on to force)"))

    results = []
    for name in names:
        try:
            subject = make_subject(name)
        except Exception as exc:  # one broken peer must not cost the rest of a long run
            print(f"# {name}: could not be set up ({type(exc).__name__}: {exc}); skipped")
            continue
        sizes = args.sizes or (FULL_SIZES if subject.peer is not None else REDUCED_SIZES)
        if subject.missing:
            print(f"# {name}: {subject.missing}; measuring ours only at {sizes}")
        counted = subject.peer or subject.ours  # the peer's plain matmuls are all visible to the counter
        subject.flops_per_pixel = count_flops(counted, subject.in_channels)
        subject.flops_counted_on = "peer" if subject.peer is not None else "ours"
        variants: dict[str, Callable[[torch.Tensor], tuple[float, torch.Tensor]]] = {}
        if subject.peer is not None:
            peer = subject.peer.to(device)
            variants["peer fp32"] = lambda x, net=peer: run_once(net, x)
        plain32 = subject.ours.to(device)
        ours32 = inference_module(subject.name, plain32, device)  # what the tiler runs: the fast path where one is
        variants["ours fp32"] = lambda x, net=ours32: run_once(net, x)
        if run_bf16:  # as the app runs precision bf16: fp32 weights and input under bf16 autocast
            variants["ours bf16"] = lambda x, net=ours32: _to_float(run_autocast(net, x, torch.bfloat16))
        if args.compile:  # the app's --compile: the warm-up call compiles, the timed calls reuse the graph
            compiled = _Compiled(plain32)  # compile traces the plain network, as the tiler passes it
            variants["ours fp32 compiled"] = lambda x, net=compiled: run_once(net, x)
            if run_bf16:
                variants["ours bf16 compiled"] = lambda x, net=compiled: _to_float(run_autocast(net, x, torch.bfloat16))

        for size in sizes:
            torch.manual_seed(size)
            x = torch.rand(1, subject.in_channels, size, size, device=device)
            timings = {label: Timing() for label in variants}
            for label, fn in variants.items():  # warm-up: caches, allocator, oneDNN primitives
                _, timings[label].output = fn(x)
            for repeat in range(args.repeat):  # interleaved, so a burst of load on the shared CPU hits every variant
                for label, fn in variants.items():
                    if repeat == 0:  # peak memory of a warm call (the first call also holds one-time set-up)
                        with PeakMemory(device) as memory:
                            seconds, _ = fn(x)
                        timings[label].peak_bytes = memory.peak
                    else:
                        seconds, _ = fn(x)
                    timings[label].seconds.append(seconds)
            results.append(_report(subject, size, timings, peak32, peak16))
            if args.json:  # written as it goes, so an interrupted run keeps what it measured
                args.json.write_text(json.dumps(results, indent=1))
    # Once more at the end: on a shared machine a quiet moment anywhere in the run is the best estimate.
    peak32 = max(peak32, matmul_peak(torch.float32, device))
    print(f"\n# matmul peak fp32 measured again at the end: {peak32:.1f} GFLOP/s (percentages above use the first)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _to_float(result: tuple[float, torch.Tensor]) -> tuple[float, torch.Tensor]:
    return result[0], result[1].float()


def _report(subject: Subject, size: int, timings: dict[str, Timing], peak32: float, peak16: float) -> dict:
    pixels = size * size
    reference = timings.get("peer fp32")
    print(f"\n{subject.name} {size}x{size}  ({subject.flops_per_pixel / 1e6:.1f} MFLOP/pixel, counted on "
          f"{subject.flops_counted_on}; peer: {subject.peer_name if reference else 'none'})")
    print(f"  {'variant':18} {'kpix/s best':>11} {'median':>8} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6} "
          f"{'peak MiB':>9} {'maxabs vs peer':>14} {'PSNR vs peer':>12}")
    rows = []
    for label, t in timings.items():
        kpix = pixels / t.best / 1e3
        gflops = subject.flops_per_pixel * pixels / t.best / 1e9
        limit = peak16 if "bf16" in label else peak32
        ratio = reference.best / t.best if reference else float("nan")
        if reference and label != "peer fp32":
            diff = (t.output.float() - reference.output.float()).abs().max().item()
            quality = psnr(t.output, reference.output)
        else:
            diff, quality = float("nan"), float("nan")
        print(f"  {label:18} {kpix:11.2f} {pixels / t.median / 1e3:8.2f} {ratio:6.2f} {gflops:8.1f} "
              f"{100 * gflops / limit:5.1f}% {t.peak_bytes / 2**20:9.0f} {diff:14.2e} {quality:12.2f}")
        rows.append({"variant": label, "kpix_s_best": kpix, "kpix_s_median": pixels / t.median / 1e3,
                     "ratio_vs_peer_fp32": ratio, "gflop_s": gflops, "peak_mib": t.peak_bytes / 2**20,
                     "max_abs_diff_vs_peer": diff, "psnr_vs_peer": quality, "seconds": t.seconds})
    return {"model": subject.name, "size": size, "peer": subject.peer_name if reference else None, "rows": rows}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
