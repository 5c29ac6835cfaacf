"""Restormer (Zamir et al. 2022): motion deblurring, deraining, defocus deblurring and denoising."""

from __future__ import annotations

from ..onednn import on_cpu_fast_path
from ..spec import ArchSpec, Config
from . import detect as _detect
from .fast_cpu import RestormerFastCPU
from .network import Restormer


def _floats_per_pixel(config: Config, scale: int) -> float:
    dim = int(config.get("dim", 48))
    ffn = float(config.get("ffn_expansion_factor", 2.66))
    return (8 * ffn + 12) * dim


SPEC = ArchSpec(
    id="restormer",
    title="Restormer (Zamir et al. 2022)",
    build=lambda config: Restormer(**config),
    detect=_detect.detect,
    signature_keys=_detect.SIGNATURE_KEYS,
    tasks=("deblur", "derain", "defocus", "denoise"),
    window=lambda config: 8,  # three 2x downsamplings
    pad_multiple=lambda config: 8,
    default_overlap=lambda config: 16,
    floats_per_pixel=_floats_per_pixel,
    # Its channel attention normalises over the whole tile, so it gets the largest tiles that fit.
    max_tile_cpu=1024,
    max_tile_gpu=4096,
    for_inference=on_cpu_fast_path(RestormerFastCPU),  # the plain network on other devices
)

__all__ = ["SPEC", "Restormer", "RestormerFastCPU"]
