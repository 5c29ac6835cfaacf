"""Restormer (Zamir et al., CVPR 2022), key for key with the official checkpoints, written for inference speed.

Layout: activations are kept channels_last (NHWC in memory, NCHW in shape) from the first conv to the last. Then
  - the channel LayerNorm is one `F.layer_norm` pass over the contiguous channel dim, with no permute copies,
  - 1×1 and depth-wise convs run on oneDNN without format reorders,
  - the transposed ("channel") attention reads q, k and v straight out of the qkv tensor as strided views.
The attention never materialises the normalised q and k: the Gram matrix q·kᵀ is divided by the outer product of
their norms afterwards, and `project_out` is folded into the small per-image C×C mixing matrix, so the image-sized
work is one matmul over v. In fp32 CPU inference the feed-forward's gate and value halves are computed apart, with
GELU and the gating product as post-ops of oneDNN's depth-wise convs. H and W of the input must be multiples of 8
(the caller reflect-pads).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..onednn import fused_ops_usable
from ..onednn import nchw as _nchw
from ..onednn import nhwc as _nhwc

LAYER_NORM_EPS = 1e-5
NORMALIZE_EPS = 1e-12  # F.normalize's default, as in the official attention


def _linear_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1×1 conv with an (out, in) weight as one oneDNN GEMM on the NHWC view of channels_last `x`."""
    inp = _nhwc(x)
    if not inp.is_contiguous():
        inp = inp.contiguous()
    return _nchw(torch.ops.mkldnn._linear_pointwise(inp, weight, bias, "none", [], ""))


def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 conv as one GEMM on the NHWC view (fp32 CPU inference). PyTorch would send a 1×1 conv with one thread
    and a small batch to its slow im2col path; oneDNN's inner product runs it directly on channels_last data."""
    if not fused_ops_usable(x):
        return conv(x)
    return _linear_nhwc(x, conv.weight.view(conv.out_channels, conv.in_channels), conv.bias)


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
        x = _nhwc(x)
        if self.with_bias:
            out = F.layer_norm(x, (x.shape[-1],), self.body.weight, self.body.bias, LAYER_NORM_EPS)
        else:
            var = torch.var(x, dim=-1, keepdim=True, unbiased=False)
            out = x * torch.rsqrt(var + LAYER_NORM_EPS) * self.body.weight
        return _nchw(out)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network: 1×1 up, depth-wise 3×3, GELU(x1)·x2, 1×1 down."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)  # the official rounding: 48 * 2.66 -> 127
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fused_ops_usable(x):
            return conv1x1(self.project_out, self._gated_fused(x))
        gate, value = self.dwconv(conv1x1(self.project_in, x)).chunk(2, dim=1)
        gated = F.gelu(gate)
        gated = gated * value if torch.is_grad_enabled() else gated.mul_(value)
        return conv1x1(self.project_out, gated)

    def _gated_fused(self, x: torch.Tensor) -> torch.Tensor:
        """GELU(dw(gate)) · dw(value) with the halves computed apart: two GEMMs of `hidden` outputs run 2-3× faster
        than one of 2·hidden (rows of 254 or 256 floats thrash the cache), the GELU is a post-op of the gate's
        depth-wise conv, and the product a post-op of the value's. No 2·hidden tensor, no separate GELU pass."""
        hidden = self.project_out.in_channels
        w_in = self.project_in.weight.view(2 * hidden, -1)
        b_in, b_dw = self.project_in.bias, self.dwconv.bias
        gate, value = (
            _linear_nhwc(x, w_in[part], None if b_in is None else b_in[part])
            for part in (slice(0, hidden), slice(hidden, None))
        )
        w_dw = self.dwconv.weight
        ops, same = torch.ops.mkldnn, [1, 1]  # padding, stride and dilation of the 3×3 depth-wise conv
        gate = ops._convolution_pointwise(
            gate, w_dw[:hidden], None if b_dw is None else b_dw[:hidden], same, same, same, hidden, "gelu", [], "none"
        )
        return ops._convolution_pointwise(
            value, gate, w_dw[hidden:], None if b_dw is None else b_dw[hidden:], same, same, same, hidden,
            "mul", None, None, [], None,
        )


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
        heads, head_dim = self.num_heads, c // self.num_heads
        qkv = _nhwc(self.qkv_dwconv(conv1x1(self.qkv, x)))
        if not qkv.is_contiguous():
            qkv = qkv.contiguous()
        qkv = qkv.reshape(b, h * w, 3 * c)
        q, k, v = qkv[..., :c], qkv[..., c : 2 * c], qkv[..., 2 * c :]

        # Per head: (head_dim × pixels) @ (pixels × head_dim), read in place from the NHWC qkv tensor.
        q_heads = q.view(b, h * w, heads, head_dim).permute(0, 2, 3, 1)
        k_heads = k.view(b, h * w, heads, head_dim).transpose(1, 2)
        gram = torch.matmul(q_heads, k_heads)
        # Norms over the pixels of each channel (what F.normalize(dim=-1) divides by in the official code), as the
        # diagonals of q·qᵀ and k·kᵀ: GEMMs read the strided channels 4-5× faster than a strided norm reduction.
        q_norm = _gram_diagonal(q_heads).sqrt().clamp_min(NORMALIZE_EPS).view(b, heads, head_dim, 1)
        k_norm = _gram_diagonal(k_heads.transpose(-1, -2)).sqrt().clamp_min(NORMALIZE_EPS).view(b, heads, 1, head_dim)
        logits = gram / (q_norm * k_norm) * self.temperature
        attn = logits.softmax(dim=-1)  # b × heads × head_dim × head_dim

        # project_out(attn @ v) == (W_out · blockdiag(attn)) @ v: mix once with a small C×C matrix per image.
        w_out = self.project_out.weight.view(c, heads, head_dim).transpose(0, 1)  # heads × C × head_dim
        mix = torch.matmul(w_out, attn)  # b × heads × C(out) × head_dim(in)
        mix = mix.permute(0, 2, 1, 3).reshape(b, c, c)
        if self.project_out.bias is None:
            out = torch.bmm(v, mix.transpose(1, 2))
        else:
            out = torch.baddbmm(self.project_out.bias.view(1, 1, c), v, mix.transpose(1, 2))
        return _nchw(out.view(b, h, w, c))


def _gram_diagonal(rows: torch.Tensor) -> torch.Tensor:
    """The squared norms of the rows of each … × n × pixels matrix."""
    return torch.matmul(rows, rows.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _residual(self.attn(self.norm1(x)), x)
        return _residual(self.ffn(self.norm2(x)), x)


def _residual(update: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x + update, in place into `update` when that is safe; under autocast the sum keeps x's (higher) precision."""
    if update.dtype == x.dtype and not (torch.is_grad_enabled() and update.requires_grad):
        return update.add_(x)
    return x + update


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
        x = inp_img.contiguous(memory_format=torch.channels_last)
        enc1_in = self.patch_embed(x)
        enc1 = self.encoder_level1(enc1_in)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(conv1x1(self.reduce_chan_level3, torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(conv1x1(self.reduce_chan_level2, torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1)))
        if self.dual_pixel_task:
            out = self.output(dec1 + conv1x1(self.skip_conv, enc1_in))
        else:
            out = self.output(dec1) + x
        return out.contiguous()
