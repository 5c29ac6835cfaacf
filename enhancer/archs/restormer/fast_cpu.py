"""Restormer inference on a CPU: the same weights and the same results as `network.Restormer`, faster.

`RestormerFastCPU` wraps a plain `Restormer` (its parameters, no copy) and runs its forward pass with:
  - activations kept channels_last (NHWC in memory, NCHW in shape) from the first conv to the last, so the channel
    LayerNorm is one `F.layer_norm` pass over the contiguous channel dim with no permute copies, and 1×1 and
    depth-wise convs run on oneDNN without format reorders;
  - 1×1 convs as one oneDNN GEMM on the NHWC view (PyTorch would send a 1×1 conv with one thread and a small batch
    to its slow im2col path);
  - the transposed ("channel") attention reading q, k and v straight out of the qkv tensor as strided views, never
    materialising the normalised q and k: the Gram matrix q·kᵀ is divided by the outer product of their norms
    afterwards, and `project_out` is folded into the small per-image C×C mixing matrix, so the image-sized work is
    one matmul over v;
  - in fp32 the feed-forward's gate and value halves computed apart, with GELU and the gating product as post-ops
    of oneDNN's depth-wise convs;
  - residual sums in place.
Under autocast the same layout and attention run with autocast's plain convs. With autograd enabled (training) or
inside torch.compile tracing it runs the plain network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..onednn import compiling, fused_ops_usable
from ..onednn import nchw as _nchw
from ..onednn import nhwc as _nhwc
from .network import LAYER_NORM_EPS, NORMALIZE_EPS, Attention, FeedForward, LayerNorm, Restormer, TransformerBlock


def _linear_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1×1 conv with an (out, in) weight as one oneDNN GEMM on the NHWC view of channels_last `x`."""
    inp = _nhwc(x)
    if not inp.is_contiguous():
        inp = inp.contiguous()
    return _nchw(torch.ops.mkldnn._linear_pointwise(inp, weight, bias, "none", [], ""))


def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 conv as one GEMM on the NHWC view (fp32 CPU inference); the conv module otherwise (autocast)."""
    if not fused_ops_usable(x):
        return conv(x)
    return _linear_nhwc(x, conv.weight.view(conv.out_channels, conv.in_channels), conv.bias)


def layer_norm(norm: LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """`norm(x)` on channels_last `x`: the NHWC view is contiguous, so no permute copies."""
    x = _nhwc(x)
    if norm.with_bias:
        out = F.layer_norm(x, (x.shape[-1],), norm.body.weight, norm.body.bias, LAYER_NORM_EPS)
    else:
        var = torch.var(x, dim=-1, keepdim=True, unbiased=False)
        out = x * torch.rsqrt(var + LAYER_NORM_EPS) * norm.body.weight
    return _nchw(out)


def feed_forward(ffn: FeedForward, x: torch.Tensor) -> torch.Tensor:
    if fused_ops_usable(x):
        return conv1x1(ffn.project_out, _gated_fused(ffn, x))
    gate, value = ffn.dwconv(conv1x1(ffn.project_in, x)).chunk(2, dim=1)
    return conv1x1(ffn.project_out, F.gelu(gate).mul_(value))


def _gated_fused(ffn: FeedForward, x: torch.Tensor) -> torch.Tensor:
    """GELU(dw(gate)) · dw(value) with the halves computed apart: two GEMMs of `hidden` outputs run 2-3× faster
    than one of 2·hidden (rows of 254 or 256 floats thrash the cache), the GELU is a post-op of the gate's
    depth-wise conv, and the product a post-op of the value's. No 2·hidden tensor, no separate GELU pass."""
    hidden = ffn.project_out.in_channels
    w_in = ffn.project_in.weight.view(2 * hidden, -1)
    b_in, b_dw = ffn.project_in.bias, ffn.dwconv.bias
    gate, value = (
        _linear_nhwc(x, w_in[part], None if b_in is None else b_in[part])
        for part in (slice(0, hidden), slice(hidden, None))
    )
    w_dw = ffn.dwconv.weight
    ops, same = torch.ops.mkldnn, [1, 1]  # padding, stride and dilation of the 3×3 depth-wise conv
    gate = ops._convolution_pointwise(
        gate, w_dw[:hidden], None if b_dw is None else b_dw[:hidden], same, same, same, hidden, "gelu", [], "none"
    )
    return ops._convolution_pointwise(
        value, gate, w_dw[hidden:], None if b_dw is None else b_dw[hidden:], same, same, same, hidden,
        "mul", None, None, [], None,
    )


def attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """`attn(x)` on channels_last `x`, with q, k, v read in place and `project_out` folded into the mixing."""
    b, c, h, w = x.shape
    heads, head_dim = attn.num_heads, c // attn.num_heads
    qkv = _nhwc(attn.qkv_dwconv(conv1x1(attn.qkv, x)))
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
    logits = gram / (q_norm * k_norm) * attn.temperature
    weights = logits.softmax(dim=-1)  # b × heads × head_dim × head_dim

    # project_out(attn @ v) == (W_out · blockdiag(attn)) @ v: mix once with a small C×C matrix per image.
    w_out = attn.project_out.weight.view(c, heads, head_dim).transpose(0, 1)  # heads × C × head_dim
    mix = torch.matmul(w_out, weights)  # b × heads × C(out) × head_dim(in)
    mix = mix.permute(0, 2, 1, 3).reshape(b, c, c)
    if attn.project_out.bias is None:
        out = torch.bmm(v, mix.transpose(1, 2))
    else:
        out = torch.baddbmm(attn.project_out.bias.view(1, 1, c), v, mix.transpose(1, 2))
    return _nchw(out.view(b, h, w, c))


def _gram_diagonal(rows: torch.Tensor) -> torch.Tensor:
    """The squared norms of the rows of each … × n × pixels matrix."""
    return torch.matmul(rows, rows.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1)


def transformer_block(block: TransformerBlock, x: torch.Tensor) -> torch.Tensor:
    x = _residual(attention(block.attn, layer_norm(block.norm1, x)), x)
    return _residual(feed_forward(block.ffn, layer_norm(block.norm2, x)), x)


def _residual(update: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x + update, in place into `update`; under autocast the sum keeps x's (higher) precision."""
    return update.add_(x) if update.dtype == x.dtype else x + update


def _level(blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = transformer_block(block, x)
    return x


class RestormerFastCPU(nn.Module):
    """`net(x)` for CPU inference, computed faster (see the module docstring). Holds `net` itself, not a copy."""

    def __init__(self, net: Restormer):
        super().__init__()
        self.net = net

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        net = self.net
        if torch.is_grad_enabled() or compiling():
            return net(inp_img)  # autograd or graph capture: the plain, differentiable network
        if inp_img.shape[-1] % 8 or inp_img.shape[-2] % 8:
            raise ValueError(f"Restormer needs H and W that are multiples of 8, got {tuple(inp_img.shape[-2:])}")
        x = inp_img.contiguous(memory_format=torch.channels_last)
        enc1_in = net.patch_embed(x)
        enc1 = _level(net.encoder_level1, enc1_in)
        enc2 = _level(net.encoder_level2, net.down1_2(enc1))
        enc3 = _level(net.encoder_level3, net.down2_3(enc2))
        latent = _level(net.latent, net.down3_4(enc3))

        dec3 = _level(net.decoder_level3, conv1x1(net.reduce_chan_level3, torch.cat([net.up4_3(latent), enc3], 1)))
        dec2 = _level(net.decoder_level2, conv1x1(net.reduce_chan_level2, torch.cat([net.up3_2(dec3), enc2], 1)))
        dec1 = _level(net.refinement, _level(net.decoder_level1, torch.cat([net.up2_1(dec2), enc1], 1)))
        if net.dual_pixel_task:
            out = net.output(dec1 + conv1x1(net.skip_conv, enc1_in))
        else:
            out = net.output(dec1) + x
        return out.contiguous()
