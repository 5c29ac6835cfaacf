"""ESPCN (Shi et al., CVPR 2016): four convolutions at low resolution and a sub-pixel (PixelShuffle) upscale.

As published it is a one-channel network trained on luma: the app runs it on the Y of YCbCr and enlarges the chroma
with bicubic. A three-channel ESPCN runs on RGB like the other networks.
"""

from __future__ import annotations

from ..spec import ArchSpec, Config
from . import detect as _detect
from .network import ESPCN


def _channels(config: Config) -> int:
    return int(config.get("in_channels", 1))


def _floats_per_pixel(config: Config, scale: int) -> float:
    out = _channels(config) * scale * scale
    # The activations of the four layers, plus the input and the shuffled output (and a copy of conv4's output).
    return 64 + 64 + 32 + 2 * out + _channels(config)


SPEC = ArchSpec(
    id="espcn",
    title="ESPCN (Shi et al. 2016)",
    build=lambda config: ESPCN(**config),
    detect=_detect.detect,
    signature_keys=_detect.SIGNATURE_KEYS,
    tasks=("sr",),
    window=lambda config: 1,
    pad_multiple=lambda config: 1,
    default_overlap=lambda config: 8,  # the receptive field is 5 + 2 + 2 + 2 = 11 LR pixels: 5 per side
    floats_per_pixel=_floats_per_pixel,
    runs_on_luma=lambda config: _channels(config) == 1,
)

__all__ = ["SPEC", "ESPCN"]
