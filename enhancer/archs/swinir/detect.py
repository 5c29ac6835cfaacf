"""Recognise an official SwinIR state dict and recover its constructor arguments from key names and shapes."""

from __future__ import annotations

import math
import re

import torch

from ..spec import Detected

ARCH = "swinir"
SIGNATURE_KEYS = (
    "conv_first.weight",
    "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
    "conv_after_body.weight | conv_after_body.0.weight",
)
# Official buffers that the network rebuilds for the real input size; the loader drops them.
IGNORED_SUFFIXES = ("relative_position_index", "attn_mask")
# The official default when no attn_mask records the training patch size.
DEFAULT_IMG_SIZE = 64

_BLOCK = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")


def detect(state: dict[str, torch.Tensor]) -> Detected | None:
    try:
        return _detect(state)
    except (KeyError, IndexError, ValueError):  # SwinIR-like names but not a whole SwinIR
        return None


def _detect(state: dict[str, torch.Tensor]) -> Detected | None:
    if "conv_first.weight" not in state or "layers.0.residual_group.blocks.0.attn.relative_position_bias_table" not in state:
        return None
    if "conv_after_body.weight" in state:
        resi_connection = "1conv"
    elif "conv_after_body.0.weight" in state:
        resi_connection = "3conv"
    else:
        return None
    first = state["conv_first.weight"]
    if first.ndim != 4:
        return None
    embed_dim, in_chans = int(first.shape[0]), int(first.shape[1])

    depths_by_layer: dict[int, int] = {}
    for key in state:
        m = _BLOCK.match(key)
        if m:
            layer, block = int(m.group(1)), int(m.group(2))
            depths_by_layer[layer] = max(depths_by_layer.get(layer, 0), block + 1)
    num_layers = max(depths_by_layer) + 1
    if sorted(depths_by_layer) != list(range(num_layers)):
        return None
    depths = [depths_by_layer[i] for i in range(num_layers)]
    num_heads = [
        int(state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"].shape[1])
        for i in range(num_layers)
    ]
    table_rows = int(state["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape[0])
    window_size = (math.isqrt(table_rows) + 1) // 2
    if (2 * window_size - 1) ** 2 != table_rows:
        return None
    hidden = int(state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0])
    mlp_ratio = hidden / embed_dim

    upsampler, upscale = _upsampler(state, embed_dim, in_chans)
    if upsampler is None:
        return None

    # A shifted block's attn_mask is (windows, N, N) of the training patch: windows = (img_size / window)^2.
    img_size = DEFAULT_IMG_SIZE
    mask = next((v for k, v in state.items() if k.endswith(".attn_mask") and v.ndim == 3), None)
    if mask is not None:
        img_size = math.isqrt(int(mask.shape[0])) * window_size

    if upsampler:
        task = "sr"
    else:
        task = "jpeg" if window_size == 7 else "denoise"
    # The official JPEG artifact models (window 7) work on 0..255; every other release on 0..1.
    img_range = 255.0 if window_size == 7 else 1.0

    config = {
        "upscale": upscale,
        "in_chans": in_chans,
        "img_size": img_size,
        "window_size": window_size,
        "img_range": img_range,
        "depths": depths,
        "embed_dim": embed_dim,
        "num_heads": num_heads,
        "mlp_ratio": mlp_ratio,
        "upsampler": upsampler,
        "resi_connection": resi_connection,
        "qkv_bias": "layers.0.residual_group.blocks.0.attn.qkv.bias" in state,
        "ape": "absolute_pos_embed" in state,
        "patch_norm": "patch_embed.norm.weight" in state,
    }
    return Detected(
        arch=ARCH,
        config=config,
        task=task,
        scale=upscale,
        in_channels=in_chans,
        out_channels=in_chans,
    )


def _upsampler(state: dict[str, torch.Tensor], embed_dim: int, in_chans: int) -> tuple[str | None, int]:
    """The upsampler name and the scale, from which upsampling keys exist and their shapes."""
    if "conv_up1.weight" in state:
        return "nearest+conv", 8 if "conv_up3.weight" in state else 4 if "conv_up2.weight" in state else 2
    if "conv_before_upsample.0.weight" in state:
        # Upsample: conv(num_feat -> 4 num_feat) + shuffle(2) per doubling, or one conv(-> 9 num_feat) for x3.
        convs = sorted(int(k.split(".")[1]) for k in state if re.fullmatch(r"upsample\.\d+\.weight", k))
        if not convs:
            return None, 0
        ratio = int(state[f"upsample.{convs[0]}.weight"].shape[0]) // int(state[f"upsample.{convs[0]}.weight"].shape[1])
        if ratio == 9:
            return "pixelshuffle", 3
        return "pixelshuffle", 2 ** len(convs)
    if "upsample.0.weight" in state:
        out = int(state["upsample.0.weight"].shape[0])
        scale = math.isqrt(out // in_chans)
        if scale * scale * in_chans != out:
            return None, 0
        return "pixelshuffledirect", scale
    if "conv_last.weight" in state:
        return "", 1
    return None, 0
