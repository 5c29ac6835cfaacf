"""MobileSR (NTIRE 2022 efficient SR, sunny2109/MobileSR-NTIRE2022), key for key with the official checkpoints.

The network as published: a 3×3 head conv, a body of (Transformer, ResBlock) pairs, a 3×3 fuse conv over the head
features concatenated with the body's, pixel-shuffle upsampling, a 3×3 tail conv and a bilinear skip of the input.
Each Transformer adds a depth-wise positional conv to its input, then runs multi-head self-attention inside
non-overlapping windows and an MLP, both residual; the attention input is zero-padded to a multiple of the window
after the norm, as the official code does. Plain differentiable ops only: this module trains, exports
(`torch.onnx.export`, `torch.export.export`) and compiles. The CPU inference fast path with the same weights and
results is `fast_cpu.MobileSRFastCPU`, registered in the package's spec.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2


class WindowAttention(nn.Module):
    """Multi-head self-attention inside one window (official names: `qkv` without bias, `proj_out`)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"MobileSR: {dim} features do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (windows, tokens per window, dim) -> same shape."""
        n_windows, n_tokens, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(n_windows, n_tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ / sqrt(head_dim))·v, as official
        return self.proj_out(out.transpose(1, 2).reshape(n_windows, n_tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Linear(dim * ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Transformer(nn.Module):
    """x + pos_embed(x), then window attention and an MLP, both residual, on non-overlapping windows."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: int):
        super().__init__()
        self.window_size = window_size
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x.permute(0, 2, 3, 1)  # b, h, w, c
        b, h, w, c = x.shape
        ws = self.window_size
        pad_b, pad_r = -h % ws, -w % ws
        normed = F.pad(self.norm1(x), (0, 0, 0, pad_r, 0, pad_b))  # padded tokens are exact zeros, as official
        hp, wp = h + pad_b, w + pad_r
        windows = normed.reshape(b, hp // ws, ws, wp // ws, ws, c).transpose(2, 3).reshape(-1, ws * ws, c)
        attended = self.attn(windows).reshape(b, hp // ws, wp // ws, ws, ws, c).transpose(2, 3).reshape(b, hp, wp, c)
        x = x + attended[:, :h, :w]
        x = x + self.mlp(self.norm2(x))
        return x.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """1×1 expand, LeakyReLU, depth-wise 3×3, LeakyReLU, 1×1 reduce, plus the input."""

    def __init__(self, dim: int, ratio: int):
        super().__init__()
        hidden = dim * ratio
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(hidden, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + x


class BaseBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, ratios: Sequence[int]):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Transformer(dim, num_heads, window_size, r), ResBlock(dim, r)]) for r in ratios
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transformer, resblock in self.layers:
            x = resblock(transformer(x))
        return x


class MobileSR(nn.Module):
    """The official constructor (plus `window_size`, fixed to 8 in the official code); RGB in, RGB ×scale out."""

    def __init__(
        self,
        n_feats: int = 40,
        n_heads: int = 8,
        ratios: Sequence[int] = (4, 2, 2, 2, 4),
        upscaling_factor: int = 4,
        window_size: int = 8,
    ):
        super().__init__()
        if upscaling_factor not in (2, 3, 4):
            raise ValueError(f"MobileSR supports upscaling factors 2, 3 and 4, not {upscaling_factor}")
        self.scale = upscaling_factor
        self.n_feats = n_feats
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = BaseBlock(n_feats, n_heads, window_size, list(ratios))
        self.fuse = nn.Conv2d(n_feats * 2, n_feats, 3, padding=1)
        if upscaling_factor == 4:
            self.upsapling = nn.Sequential(  # (sic) the official attribute name
                nn.Conv2d(n_feats, n_feats * 4, 1), nn.PixelShuffle(2), nn.Conv2d(n_feats, n_feats * 4, 1), nn.PixelShuffle(2)
            )
        else:
            s = upscaling_factor
            self.upsapling = nn.Sequential(nn.Conv2d(n_feats, n_feats * s * s, 1), nn.PixelShuffle(s))
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        feats = self.head(x)
        feats = self.fuse(torch.cat([feats, self.body(feats)], dim=1))
        return self.tail(self.act(self.upsapling(feats))) + base
