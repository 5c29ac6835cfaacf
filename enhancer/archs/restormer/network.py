"""Restormer (Zamir et al., CVPR 2022), key for key with the official checkpoints.

The network as published: a 4-level encoder-decoder of transformer blocks, each a multi-Dconv head transposed
attention (attention between channels, over all pixels) and a gated-Dconv feed-forward network, both after a channel
LayerNorm and both residual. Plain differentiable ops only: this module trains, exports (`torch.onnx.export`,
`torch.export.export`) and compiles. The CPU inference fast path with the same weights and results is
`fast_cpu.RestormerFastCPU`, registered in the package's spec. H and W of the input must be multiples of 8 (the
caller reflect-pads).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-5
NORMALIZE_EPS = 1e-12  # F.normalize's default, as in the official attention


class _NormParams(nn.Module):
    """Holds the LayerNorm's weight (and bias) under the official names `body.weight` / `body.bias`."""

    def __init__(self, dim: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None


class LayerNorm(nn.Module):
    """LayerNorm over the channels of an N×C×H×W tensor. BiasFree divides by the std without centring (official)."""

    def __init__(self, dim: int, layer_norm_type: str):
        super().__init__()
        if layer_norm_type not in ("WithBias", "BiasFree"):
            raise ValueError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', not {layer_norm_type!r}")
        self.with_bias = layer_norm_type == "WithBias"
        self.body = _NormParams(dim, self.with_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # b, h, w, c
        if self.with_bias:
            out = F.layer_norm(x, (x.shape[-1],), self.body.weight, self.body.bias, LAYER_NORM_EPS)
        else:
            var = torch.var(x, dim=-1, keepdim=True, unbiased=False)
            out = x * torch.rsqrt(var + LAYER_NORM_EPS) * self.body.weight
        return out.permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network: 1×1 up, depth-wise 3×3, GELU(x1)·x2, 1×1 down."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)  # the official rounding: 48 * 2.66 -> 127
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv head transposed attention: attention between channels, over all pixels of the input."""

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Restormer attention: {dim} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        heads = self.num_heads
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in (q, k, v))  # b, head, c, (h w)
        q = F.normalize(q, dim=-1, eps=NORMALIZE_EPS)
        k = F.normalize(k, dim=-1, eps=NORMALIZE_EPS)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        out = (attn @ v).reshape(b, c, h, w)
        return self.project_out(out)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    def __init__(self, in_c: int, embed_dim: int, bias: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _level(dim: int, heads: int, count: int, ffn: float, bias: bool, norm: str) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, ffn, bias, norm) for _ in range(count)])


class Restormer(nn.Module):
    """The official constructor; N×C×H×W in, with H and W multiples of 8."""

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",
        dual_pixel_task: bool = False,
    ):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError("Restormer needs 4 entries in num_blocks and in heads")
        args = (ffn_expansion_factor, bias, LayerNorm_type)
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = _level(dim, heads[0], num_blocks[0], *args)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = _level(dim * 2, heads[1], num_blocks[1], *args)
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = _level(dim * 4, heads[2], num_blocks[2], *args)
        self.down3_4 = Downsample(dim * 4)
        self.latent = _level(dim * 8, heads[3], num_blocks[3], *args)
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = _level(dim * 4, heads[2], num_blocks[2], *args)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = _level(dim * 2, heads[1], num_blocks[1], *args)
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = _level(dim * 2, heads[0], num_blocks[0], *args)
        self.refinement = _level(dim * 2, heads[0], num_refinement_blocks, *args)
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        if inp_img.shape[-1] % 8 or inp_img.shape[-2] % 8:
            raise ValueError(f"Restormer needs H and W that are multiples of 8, got {tuple(inp_img.shape[-2:])}")
        enc1_in = self.patch_embed(inp_img)
        enc1 = self.encoder_level1(enc1_in)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1)))
        if self.dual_pixel_task:
            return self.output(dec1 + self.skip_conv(enc1_in))
        return self.output(dec1) + inp_img
