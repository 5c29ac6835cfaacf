"""What the rest of the engine needs to know about a network, so that nothing outside `archs/` branches on its name.

Each network package (`archs/<name>/`) holds the network as published, its detection and one `ArchSpec`. The
tiler, the devices, the checkpoint loader, the catalog and the CLI read the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

Config = Mapping[str, Any]


@dataclass
class Detected:
    """A state dict recognised as one network: the official constructor's arguments and what they mean."""

    arch: str
    config: dict[str, Any]  # the official constructor's keyword arguments
    task: str
    scale: int
    in_channels: int
    out_channels: int


def _one(config: Config) -> int:
    return 1


@dataclass(frozen=True)
class ArchSpec:
    """One network family. Functions take the network's constructor config (as detected or as in the catalog)."""

    id: str  # "swinir", "restormer", "mobilesr", "espcn"
    title: str  # for people: "SwinIR (Liang et al. 2021)"
    build: Callable[[Config], nn.Module]  # the network as published, from its constructor arguments
    detect: Callable[[Mapping[str, torch.Tensor]], Detected | None]  # None when the keys are not this network's
    signature_keys: tuple[str, ...]  # named in the error when no network matches
    tasks: tuple[str, ...]  # the tasks its released models serve
    # Tile origins snap to this (the attention window); 1 for a plain convolutional network.
    window: Callable[[Config], int] = _one
    # Input H and W are reflect-padded to a multiple of this before the forward pass (1: none needed).
    pad_multiple: Callable[[Config], int] = _one
    # Pixels of blended span shared by neighbouring tiles when the caller does not say.
    default_overlap: Callable[[Config], int] = lambda config: 16
    # Peak activation floats of one fp32 forward pass per input pixel, for tile sizing: f(config, scale).
    floats_per_pixel: Callable[[Config, int], float] = lambda config, scale: 2048.0
    # The largest tile side worth using on a CPU and on a GPU (a network that normalises over the whole tile, such
    # as Restormer, gains from larger ones).
    max_tile_cpu: int = 512
    max_tile_gpu: int = 1024
    fp16_safe: bool = True  # False where activations overflow half precision (SwinIR)
    # Official buffers that are stored in checkpoints but rebuilt by our networks for the real input size.
    ignored_buffer_suffixes: tuple[str, ...] = ()
    # True for a one-channel network trained on luma (ESPCN as published): the photo is converted to YCbCr, Y goes
    # through the network and Cb, Cr are enlarged with bicubic. False: each colour channel goes through it.
    runs_on_luma: Callable[[Config], bool] = lambda config: False
    # Whether the network exports to ONNX (for the compiled backends); a network from outside the registry may not.
    exports: bool = True
    # A faster module for inference on `device`, with the same weights and results, or the network itself.
    for_inference: Callable[[nn.Module, torch.device], nn.Module] = lambda net, device: net
    # The most weights (values in the state dict) a file of this network may declare before the network is built:
    # the released models have at most tens of millions; a file that declares more is refused as hostile or broken.
    max_parameters: int = 200_000_000

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this network is safe in."""
        return ("fp32", "bf16", "fp16") if self.fp16_safe else ("fp32", "bf16")
