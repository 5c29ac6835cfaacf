"""Recognise an ESPCN state dict (`conv1`..`conv4`) and read its scale and channels from the layer shapes."""

from __future__ import annotations

import torch

from ..spec import Detected

ARCH = "espcn"
SIGNATURE_KEYS = ("conv1.weight", "conv2.weight", "conv3.weight", "conv4.weight")
_SHAPES = {"conv1": (64, None, 5, 5), "conv2": (64, 64, 3, 3), "conv3": (32, 64, 3, 3), "conv4": (None, 32, 3, 3)}


def detect(state: dict[str, torch.Tensor]) -> Detected | None:
    names = {f"{layer}.{part}" for layer in _SHAPES for part in ("weight", "bias")}
    if set(state) != names:
        return None  # exactly the four layers: other networks have conv1.. keys among many more
    for layer, shape in _SHAPES.items():
        weight = state[f"{layer}.weight"]
        if weight.ndim != 4 or any(want is not None and got != want for got, want in zip(weight.shape, shape)):
            return None
    channels = int(state["conv1.weight"].shape[1])
    if channels not in (1, 3):
        return None
    factor, rest = divmod(int(state["conv4.weight"].shape[0]), channels)
    scale = round(factor**0.5)
    if rest or scale * scale != factor or scale not in (2, 3, 4):
        return None
    config = {"upscale_factor": scale, "in_channels": channels}
    return Detected(arch=ARCH, config=config, task="sr", scale=scale, in_channels=channels, out_channels=channels)
