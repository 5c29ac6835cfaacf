"""Recognise an official MobileSR state dict and recover its constructor arguments from key names and shapes.

`n_heads` leaves no trace in the weights (the attention's qkv projection is one dim×3dim matrix whatever the head
count), so it is inferred by a rule that reproduces every known configuration: the largest power of two, at most the
official 8, that divides `n_feats` while keeping at least 4 channels per head. The released x4 model (40 features)
gets 8 heads, as published; a 16-feature model gets 4. A catalog entry may state the heads explicitly.
"""

from __future__ import annotations

import re

import torch

from ..spec import Detected

ARCH = "mobilesr"
SIGNATURE_KEYS = ("head.weight", "body.layers.0.0.attn.qkv.weight", "body.layers.0.1.net.0.weight", "fuse.weight",
                  "upsapling.0.weight", "tail.weight")

OFFICIAL_MAX_HEADS = 8
MIN_HEAD_DIM = 4
_LAYER = re.compile(r"^body\.layers\.(\d+)\.0\.mlp\.fc\.0\.weight$")


def infer_heads(n_feats: int) -> int:
    """The head count used for `n_feats` features (see the module docstring for why it is a rule, not a reading)."""
    heads = OFFICIAL_MAX_HEADS
    while heads > 1 and (n_feats % heads or n_feats // heads < MIN_HEAD_DIM):
        heads //= 2
    return heads


def detect(state: dict[str, torch.Tensor]) -> Detected | None:
    if not all(k in state for k in SIGNATURE_KEYS):
        return None
    head = state["head.weight"]
    if head.ndim != 4 or head.shape[1] != 3:
        return None  # the official network is RGB in, RGB out
    n_feats = int(head.shape[0])

    layer_ids = sorted(int(m.group(1)) for k in state if (m := _LAYER.match(k)))
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        return None
    ratios = []
    for i in layer_ids:
        hidden = int(state[f"body.layers.{i}.0.mlp.fc.0.weight"].shape[0])
        if hidden % n_feats:
            return None
        ratios.append(hidden // n_feats)

    if "upsapling.2.weight" in state:
        scale = 4  # x4 upsamples in two pixel-shuffle x2 steps
    else:
        factor = int(state["upsapling.0.weight"].shape[0]) // n_feats
        scale = round(factor**0.5)
        if scale * scale != factor or scale not in (2, 3):
            return None

    config = {"n_feats": n_feats, "n_heads": infer_heads(n_feats), "ratios": ratios, "upscaling_factor": scale}
    return Detected(arch=ARCH, config=config, task="sr", scale=scale, in_channels=3, out_channels=3)
