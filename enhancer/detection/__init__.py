"""Detect a network and its whole configuration from the key names and shapes of a state dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ModelError


@dataclass
class Detected:
    arch: str
    config: dict[str, Any]  # the official constructor's keyword arguments
    task: str
    scale: int
    in_channels: int
    out_channels: int
    # Official buffers that are stored in checkpoints but rebuilt by our networks for the real input size.
    ignored_suffixes: tuple[str, ...] = field(default=())


def detect(state: dict[str, torch.Tensor], where: str = "<memory>") -> Detected:
    from . import mobilesr, restormer, swinir

    for module in (swinir, restormer, mobilesr):
        found = module.detect(state)
        if found is not None:
            return found
    looked_for = "; ".join(f"{m.ARCH}: {', '.join(m.SIGNATURE_KEYS)}" for m in (swinir, restormer, mobilesr))
    sample = ", ".join(list(state)[:5])
    raise ModelError(
        f"{where}: unknown model: its weights match no supported architecture. "
        f"Looked for keys of {looked_for}. The file has keys such as: {sample}"
    )
