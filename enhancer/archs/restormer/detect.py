"""Recognise an official Restormer state dict and recover its constructor arguments from key names and shapes."""

from __future__ import annotations

import math
import re

import torch

from ..spec import Detected

ARCH = "restormer"
SIGNATURE_KEYS = ("patch_embed.proj.weight", "down1_2.body.0.weight", "up2_1.body.0.weight", "output.weight")

DEFAULT_HEADS = (1, 2, 4, 8)
DEFAULT_FFN_EXPANSION = 2.66
# Level name -> channel multiple of `dim` (and index into num_blocks / heads where it has one).
_LEVELS = {
    "encoder_level1": (1, 0),
    "encoder_level2": (2, 1),
    "encoder_level3": (4, 2),
    "latent": (8, 3),
    "decoder_level3": (4, None),
    "decoder_level2": (2, None),
    "decoder_level1": (2, None),
    "refinement": (2, None),
}
_BLOCK = re.compile(r"^(\w+?)\.(\d+)\.")


def detect(state: dict[str, torch.Tensor]) -> Detected | None:
    if not all(k in state for k in SIGNATURE_KEYS):
        return None
    embed = state["patch_embed.proj.weight"]
    if embed.ndim != 4:
        return None
    dim, inp_channels = int(embed.shape[0]), int(embed.shape[1])
    out_channels = int(state["output.weight"].shape[0])

    blocks: dict[str, int] = {name: 0 for name in _LEVELS}
    for key in state:
        m = _BLOCK.match(key)
        if m and m.group(1) in blocks:
            blocks[m.group(1)] = max(blocks[m.group(1)], int(m.group(2)) + 1)

    heads = list(DEFAULT_HEADS)
    for name, (_, index) in _LEVELS.items():
        if index is not None and blocks[name]:
            heads[index] = int(state[f"{name}.0.attn.temperature"].shape[0])

    norm_keys = [k for k in state if k.endswith(".norm1.body.weight")]
    with_bias_norm = bool(norm_keys) and all(k[: -len("weight")] + "bias" in state for k in norm_keys)
    layer_norm_type = "WithBias" if with_bias_norm else "BiasFree"

    ffn = _ffn_expansion_factor(state, dim, blocks)
    if ffn is None:
        return None
    dual_pixel = "skip_conv.weight" in state
    config = {
        "inp_channels": inp_channels,
        "out_channels": out_channels,
        "dim": dim,
        "num_blocks": [blocks["encoder_level1"], blocks["encoder_level2"], blocks["encoder_level3"], blocks["latent"]],
        "num_refinement_blocks": blocks["refinement"],
        "heads": heads,
        "ffn_expansion_factor": ffn,
        "bias": "output.bias" in state,
        "LayerNorm_type": layer_norm_type,
        "dual_pixel_task": dual_pixel,
    }
    if dual_pixel:
        task = "defocus"
    elif inp_channels == 1 or layer_norm_type == "BiasFree":
        task = "denoise"
    else:
        task = "deblur"  # motion deblurring and deraining share this layout; the catalog says which
    return Detected(arch=ARCH, config=config, task=task, scale=1, in_channels=inp_channels, out_channels=out_channels)


def _ffn_expansion_factor(state: dict[str, torch.Tensor], dim: int, blocks: dict[str, int]) -> float | None:
    """The factor f for which the official `int(width * f)` gives every hidden width found in the file.

    The official default 2.66 is preferred when it fits; otherwise the value with the fewest decimals that fits,
    so that a round trip through the constructor rebuilds exactly the same shapes.
    """
    widths = []  # (level width, hidden width)
    for name, (multiple, _) in _LEVELS.items():
        if blocks[name]:
            widths.append((dim * multiple, int(state[f"{name}.0.ffn.project_out.weight"].shape[1])))
    if not widths:
        return DEFAULT_FFN_EXPANSION

    def fits(f: float) -> bool:
        return all(int(width * f) == hidden for width, hidden in widths)

    if fits(DEFAULT_FFN_EXPANSION):
        return DEFAULT_FFN_EXPANSION
    low = max(hidden / width for width, hidden in widths)
    high = min((hidden + 1) / width for width, hidden in widths)
    for decimals in range(7):
        step = 10**decimals
        first = math.floor(low * step)
        for candidate in range(first, first + 3):  # float rounding: look just around the interval's start
            f = round(candidate / step, decimals)
            if f < high and fits(f):
                return f
    return None
