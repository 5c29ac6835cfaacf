"""SwinIR (Liang et al. 2021): classical, lightweight and real-world SR, gray/colour denoising and JPEG artefacts."""

from __future__ import annotations

from ..onednn import on_cpu_fast_path
from ..spec import ArchSpec, Config
from . import detect as _detect
from .fast_cpu import SwinIRFastCPU
from .network import SwinIR


def _window(config: Config) -> int:
    return int(config.get("window_size", 8))


def _floats_per_pixel(config: Config, scale: int) -> float:
    dim = int(config.get("embed_dim", 96))
    heads = max(config.get("num_heads") or [6])
    window = _window(config)
    mlp = float(config.get("mlp_ratio", 2.0))
    feat = dim if config.get("upsampler", "") == "pixelshuffledirect" else 64
    up = 2 * feat * scale * scale if scale > 1 else 0
    return 3 * heads * window**2 + (6 + 2 * mlp) * dim + up + 2 * feat


SPEC = ArchSpec(
    id="swinir",
    title="SwinIR (Liang et al. 2021)",
    build=lambda config: SwinIR(**config),
    detect=_detect.detect,
    signature_keys=_detect.SIGNATURE_KEYS,
    tasks=("sr", "denoise", "jpeg"),
    window=_window,
    pad_multiple=_window,  # the official test script reflect-pads to a multiple of the window
    default_overlap=lambda config: 2 * _window(config),
    floats_per_pixel=_floats_per_pixel,
    fp16_safe=False,  # its attention overflows in half precision
    ignored_buffer_suffixes=_detect.IGNORED_SUFFIXES,
    for_inference=on_cpu_fast_path(SwinIRFastCPU),  # the plain network on other devices
)

__all__ = ["SPEC", "SwinIR", "SwinIRFastCPU"]
