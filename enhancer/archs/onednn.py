"""When the networks' CPU inference fast paths (`archs/<name>/fast_cpu.py`) are used and may call oneDNN's fused
ops (GEMM/conv with an activation, add or multiply post-op), and the NHWC views those ops work on. Shared by the fast
modules; holds no network. The networks themselves (`network.py`) never call oneDNN."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..devices import cpu_capabilities


def compiling() -> bool:
    """True while torch.compile / torch.export traces the code (inductor fuses the plain ops itself and cannot lower
    oneDNN's fused ones, so the fast modules hand over to the plain network)."""
    check = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(check and check())


def fused_ops_usable(x: torch.Tensor, dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> bool:
    """True for CPU inference on `x` in one of `dtypes` where this CPU runs the fused kernels in that dtype (bf16
    only where oneDNN has bf16 kernels), with no autograd (the fused ops have no backward), no autocast (it picks
    each op's precision itself) and no torch.compile tracing (inductor fuses the plain ops itself and cannot lower
    these)."""
    return (
        x.device.type == "cpu"
        and x.dtype in dtypes
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not compiling()
        and dtype_runs_fused(x.dtype)
    )


def dtype_runs_fused(dtype: torch.dtype) -> bool:
    """Whether this CPU runs oneDNN's fused kernels in `dtype` (fp32 on any x86-64; bf16 needs AVX-512 or
    AVX-NE-CONVERT, see `devices.cpu_capabilities`)."""
    caps = cpu_capabilities()
    if not caps.onednn_fused_ops:
        return False
    return dtype == torch.float32 or (dtype == torch.bfloat16 and caps.bf16_runs)


def cpu_fast_path(device: torch.device | str) -> bool:
    """The one rule for using a network's CPU fast module: a CPU device whose oneDNN runs the fused fp32 ops (what
    `fused_ops_usable` needs of the machine). Elsewhere (CUDA, MPS, a CPU without them) the plain network runs.
    Per call the fast modules still hand autograd and compile tracing to the plain network."""
    return torch.device(device).type == "cpu" and dtype_runs_fused(torch.float32)


def on_cpu_fast_path(
    make: Callable[[nn.Module], nn.Module],
) -> Callable[[nn.Module, torch.device], nn.Module]:
    """An `ArchSpec.for_inference`: `make(net)` (the fast module wrapping `net`) where `cpu_fast_path(device)`,
    otherwise `net` itself."""

    def for_inference(net: nn.Module, device: torch.device) -> nn.Module:
        return make(net) if cpu_fast_path(device) else net

    return for_inference


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """NHWC view of an N×C×H×W tensor (free when it is channels_last)."""
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W (channels_last) view of an NHWC tensor."""
    return x.permute(0, 3, 1, 2)
