"""MobileSR (NTIRE 2022 efficient SR challenge): a small hybrid of convolutions and window attention."""

from __future__ import annotations

from ..onednn import on_cpu_fast_path
from ..spec import ArchSpec, Config
from . import detect as _detect
from .fast_cpu import MobileSRFastCPU
from .network import MobileSR


def _window(config: Config) -> int:
    return int(config.get("window_size", 8))


def _floats_per_pixel(config: Config, scale: int) -> float:
    feats = int(config.get("n_feats", 40))
    heads = int(config.get("n_heads", 8))
    hidden = feats * max(config.get("ratios") or [4])
    return 2 * feats * scale * scale + 2 * heads * _window(config) ** 2 + 3 * hidden + 8 * feats


SPEC = ArchSpec(
    id="mobilesr",
    title="MobileSR (NTIRE 2022)",
    build=lambda config: MobileSR(**config),
    detect=_detect.detect,
    signature_keys=_detect.SIGNATURE_KEYS,
    tasks=("sr",),
    window=_window,
    pad_multiple=lambda config: 1,  # it zero-pads each attention input to the window inside the network
    default_overlap=lambda config: 2 * _window(config),
    floats_per_pixel=_floats_per_pixel,
    for_inference=on_cpu_fast_path(MobileSRFastCPU),  # the plain network on other devices
)

__all__ = ["SPEC", "MobileSR", "MobileSRFastCPU"]
