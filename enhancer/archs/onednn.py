"""When the networks' CPU inference fast paths may call oneDNN's fused ops (GEMM/conv with an activation, add or
multiply post-op), and the NHWC views those ops work on. Shared by the network modules; holds no network."""

from __future__ import annotations

import torch

from ..devices import cpu_capabilities


def _compiling() -> bool:
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
        and not _compiling()
        and dtype_runs_fused(x.dtype)
    )


def dtype_runs_fused(dtype: torch.dtype) -> bool:
    """Whether this CPU runs oneDNN's fused kernels in `dtype` (fp32 on any x86-64; bf16 needs AVX-512 or
    AVX-NE-CONVERT, see `devices.cpu_capabilities`)."""
    caps = cpu_capabilities()
    if not caps.onednn_fused_ops:
        return False
    return dtype == torch.float32 or (dtype == torch.bfloat16 and caps.bf16_runs)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """NHWC view of an N×C×H×W tensor (free when it is channels_last)."""
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W (channels_last) view of an NHWC tensor."""
    return x.permute(0, 3, 1, 2)
