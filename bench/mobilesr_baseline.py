"""Frozen first, straightforward MobileSR: the peer that `enhancer/archs/mobilesr.py` is benchmarked against.

It is deliberately plain (no caching, no fused paths) and must not be optimised: the speed issue measures the
fast network as a ratio against this one. It matches the official forward pass (golden data, fp32, <= 1e-4) and
loads the official state dict key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BaselineWindowAttention(nn.Module):
    """Multi-head self-attention over the tokens of one window."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n_windows, n_tokens, dim = tokens.shape
        head_dim = dim // self.num_heads
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        q = q.reshape(n_windows, n_tokens, self.num_heads, head_dim).transpose(1, 2)
        k = k.reshape(n_windows, n_tokens, self.num_heads, head_dim).transpose(1, 2)
        v = v.reshape(n_windows, n_tokens, self.num_heads, head_dim).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n_windows, n_tokens, dim)
        return self.proj_out(out)


class BaselineMlp(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Linear(dim * ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class BaselineTransformer(nn.Module):
    """Depth-wise positional conv, then non-overlapping window attention and an MLP, both residual."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: int):
        super().__init__()
        self.window_size = window_size
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = BaselineWindowAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = BaselineMlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x.permute(0, 2, 3, 1)  # b h w c
        b, h, w, c = x.shape
        shortcut = x
        x = self.norm1(x)
        ws = self.window_size
        pad_b = (ws - h % ws) % ws
        pad_r = (ws - w % ws) % ws
        # The official code zero-pads after the norm, so padded tokens are exact zeros inside the attention.
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        windows = x.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        windows = self.attn(windows)
        x = windows.reshape(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        x = x[:, :h, :w, :]
        x = x + shortcut
        x = x + self.mlp(self.norm2(x))
        return x.permute(0, 3, 1, 2)


class BaselineResBlock(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        hidden = dim * ratio
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + x


class BaselineBody(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, ratios: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([BaselineTransformer(dim, num_heads, window_size, r), BaselineResBlock(dim, r)]) for r in ratios
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transformer, resblock in self.layers:
            x = resblock(transformer(x))
        return x


class MobileSRBaseline(nn.Module):
    """Same constructor arguments and state-dict keys as the official MobileSR (note the official `upsapling`)."""

    def __init__(
        self,
        n_feats: int = 40,
        n_heads: int = 8,
        ratios: list[int] | tuple[int, ...] = (4, 2, 2, 2, 4),
        upscaling_factor: int = 4,
        window_size: int = 8,
    ):
        super().__init__()
        self.scale = upscaling_factor
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = BaselineBody(n_feats, n_heads, window_size, list(ratios))
        self.fuse = nn.Conv2d(n_feats * 2, n_feats, 3, padding=1)
        if upscaling_factor == 4:
            self.upsapling = nn.Sequential(
                nn.Conv2d(n_feats, n_feats * 4, 1), nn.PixelShuffle(2), nn.Conv2d(n_feats, n_feats * 4, 1), nn.PixelShuffle(2)
            )
        else:
            s = upscaling_factor
            self.upsapling = nn.Sequential(nn.Conv2d(n_feats, n_feats * s * s, 1), nn.PixelShuffle(s))
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.head(x)
        feats = self.fuse(torch.cat([feats, self.body(feats)], dim=1))
        out = self.tail(self.act(self.upsapling(feats)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
