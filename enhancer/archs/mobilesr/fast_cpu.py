"""MobileSR inference on a CPU: the same weights and the same results as `network.MobileSR`, faster.

The network is tiny (about 0.5 MFLOP per input pixel), so on a CPU its cost is memory traffic and per-op overhead,
not arithmetic. `MobileSRFastCPU` wraps a plain `MobileSR` (its parameters, no copy; only derived constants are
cached) and:
  - keeps activations channels_last (NHWC in memory) from the head conv to the tail conv, so 1×1 convs are plain
    GEMMs (`F.linear`) on the NHWC view and LayerNorm needs no permute copies;
  - runs GEMMs and depth-wise convs with their activation or residual add as oneDNN post-ops;
  - runs window attention with `F.scaled_dot_product_attention` on strided q/k/v views of one qkv GEMM;
  - adds the window output back into the residual in place, reading it through a permuted view (one pass for
    "window reverse + crop + add");
  - folds `x + pos_embed(x)` into the depth-wise kernel (centre tap + 1), cached per weight version, dtype and device;
  - never builds the output-resolution feature map in pixel order: the upsampling 1×1 convs (composed into one for
    x4) give each sub-pixel position its own low-res map, and the tail's 3×3 conv is split into its nine taps, computed
    by one batched GEMM and added into the bilinear skip as shifted slices;
  - runs every wide intermediate (qkv, the MLP and ResBlock hidden layers, the sub-pixel maps) in row bands of about
    `BAND_BYTES`, so a large tile costs a few feature maps of memory, not a dozen wide ones;
  - under bf16 autocast on a CPU whose oneDNN has bf16 kernels, runs natively in bf16 (weights converted once,
    autocast off, oneDNN's fused bf16 ops), with the norms and the attention in fp32 and the bilinear skip and the sum
    in the input's precision. Under any other autocast the same layout runs with autocast's plain ops.
With autograd enabled (training) or inside torch.compile tracing it runs the plain network.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..onednn import compiling, dtype_runs_fused, fused_ops_usable
from ..onednn import nchw as _nchw
from ..onednn import nhwc as _nhwc
from .network import LEAKY_SLOPE, MobileSR, ResBlock, Transformer, WindowAttention

# Inference runs its widest tensors in row bands of about this size: large enough that per-op overhead and the
# recomputed context rows stay small, small enough that a 512-pixel tile costs little more memory than a 64-pixel
# one (measured on a 544-pixel tile: 24 MB bands 6.1 s and +393 MB peak RSS, 8 MB 6.5 s +264 MB, 4 MB 7.5 s +229 MB).
BAND_BYTES = 12 << 20
MIN_BAND_ROWS = 16  # each band recomputes a context row on each side


def _band_rows(bytes_per_row: int, multiple: int = 1) -> int:
    """Rows per band so that a tensor of `bytes_per_row` per row stays near BAND_BYTES (a multiple of `multiple`)."""
    rows = max(BAND_BYTES // max(1, bytes_per_row), MIN_BAND_ROWS)
    return max(multiple, rows // multiple * multiple)


def _in_row_bands(
    x: torch.Tensor, bytes_per_row: int, compute: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor],
    multiple: int = 1, consume: bool = False,
) -> torch.Tensor:
    """Apply a layer that reaches one row up and down to N×H×W×C `x` in row bands of about BAND_BYTES
    (`bytes_per_row`: its widest intermediate per image row; bands are a multiple of `multiple` rows).

    `compute(rows_with_context, (above, below))` returns the band's own rows, without the `above`/`below` context
    rows. A small `x` goes in one call and the result is a new tensor. Otherwise the results are written into `x`
    (with `consume`) or into a contiguous copy of it, which is returned: each band is written only after the next
    band has read its context row, so one band is held back at a time, never a whole second map.
    """
    if not x.is_contiguous():
        x, consume = x.contiguous(), True  # the copy is ours to overwrite
    b, h = x.shape[:2]
    if b * h * bytes_per_row <= BAND_BYTES:
        return compute(x, (0, 0))
    if not consume:
        x = x.clone()
    rows = _band_rows(bytes_per_row, multiple)
    for image in x.split(1):  # one image at a time keeps every band a contiguous block
        pending: tuple[int, torch.Tensor] | None = None
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            above, below = min(top, 1), min(h - bottom, 1)
            result = compute(image[:, top - above : bottom + below], (above, below))
            if pending is not None:
                image[:, pending[0] : top].copy_(pending[1])
            pending = (top, result)
        image[:, pending[0] :].copy_(pending[1])
    return x


def _autocasting(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)


def _use_fused(x: torch.Tensor) -> bool:
    """oneDNN's fused GEMM/conv + activation/add ops: fp32 or bf16 CPU inference (the bf16 path turns autocast off
    and converts the weights itself)."""
    return fused_ops_usable(x, (torch.float32, torch.bfloat16))


def linear_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str = "none") -> torch.Tensor:
    """x @ weightᵀ + bias, then `act` ("none", "gelu" (erf) or "leaky_relu"), fused in one oneDNN call on CPU."""
    if _use_fused(x):
        scalars = [LEAKY_SLOPE] if act == "leaky_relu" else []
        algorithm = "none" if act == "gelu" else ""
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, act, scalars, algorithm)
    out = F.linear(x, weight, bias)
    if act == "gelu":
        return torch.ops.aten.gelu_(out)
    if act == "leaky_relu":
        return F.leaky_relu_(out, LEAKY_SLOPE)
    return out


def linear_add(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
    """x @ weightᵀ + bias + residual (same shape and layout as the result), fused on CPU."""
    if _use_fused(x):
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
    out = F.linear(x, weight, bias)
    # Under autocast the GEMM runs in bf16; the residual stream keeps its own (higher) precision, as official.
    return out.add_(residual) if out.dtype == residual.dtype else residual + out


def depthwise_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str = "none") -> torch.Tensor:
    """Depth-wise 3×3 conv (padding 1) of a channels_last tensor, then `act`, fused on CPU."""
    groups = x.shape[1]
    if _use_fused(x):
        scalars = [LEAKY_SLOPE] if act == "leaky_relu" else []
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, [1, 1], [1, 1], [1, 1], groups, act, scalars, "")
    out = F.conv2d(x, weight, bias, padding=1, groups=groups)
    return F.leaky_relu_(out, LEAKY_SLOPE) if act == "leaky_relu" else out


class MobileSRFastCPU(nn.Module):
    """`net(x)` for CPU inference, computed faster (see the module docstring). Holds `net` itself, not a copy."""

    def __init__(self, net: MobileSR):
        super().__init__()
        self.net = net
        # Constants derived from the weights, per (layer, name): (the key of their sources, value).
        self._derived: dict[tuple[int, str], tuple[tuple, object]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or compiling():
            return self.net(x)  # autograd or graph capture: the plain, differentiable network
        net = self.net
        compute = inference_dtype(x)
        native_bf16 = compute != x.dtype  # bf16 autocast on the CPU: run natively in bf16, autocast off
        with torch.autocast("cpu", enabled=False) if native_bf16 else contextlib.nullcontext():
            feats = self._head_body_fuse(x.to(compute))
            base = F.interpolate(x, scale_factor=net.scale, mode="bilinear", align_corners=False).contiguous()
            self._add_upsampled_tail(feats, base)
        return base

    # ------------------------------------------------------------ derived constants

    def _cached(self, owner: nn.Module, name: str, sources: Sequence[torch.Tensor], build: Callable[[], object]):
        """A value derived from parameters, rebuilt only when one of them changes (storage, in-place version, dtype)."""
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        hit = self._derived.get((id(owner), name))
        if hit is not None and hit[0] == key:
            return hit[1]
        with torch.no_grad():
            value = build()
        self._derived[(id(owner), name)] = (key, value)
        return value

    def _as_dtype(self, owner: nn.Module, name: str, tensor: torch.Tensor | None, dtype: torch.dtype):
        """A parameter (or a view of one) in the compute dtype, converted once per weight version."""
        if tensor is None or tensor.dtype == dtype:
            return tensor
        return self._cached(owner, f"{name}_as_{dtype}", (tensor,), lambda: tensor.detach().to(dtype))

    def _weight_and_bias(
        self, layer: nn.Linear | nn.Conv2d, dtype: torch.dtype, as_matrix: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A layer's weight (as out × in with `as_matrix`, for a 1×1 conv) and bias in `dtype`."""
        weight = layer.weight.view(layer.weight.shape[0], -1) if as_matrix else layer.weight
        return self._as_dtype(layer, "weight", weight, dtype), self._as_dtype(layer, "bias", layer.bias, dtype)

    def _layer_norm(self, x: torch.Tensor, norm: nn.LayerNorm, keep_fp32: bool = False) -> torch.Tensor:
        """`norm(x)`; a bf16 `x` is normalised in fp32, as autocast does (and on CPU 2x faster than the bf16 kernel),
        and the result returned in fp32 with `keep_fp32`."""
        if x.dtype == torch.float32 or _autocasting(x):
            return norm(x)
        weight = self._as_dtype(norm, "weight", norm.weight, torch.float32)
        bias = self._as_dtype(norm, "bias", norm.bias, torch.float32)
        normed = F.layer_norm(x.float(), norm.normalized_shape, weight, bias, norm.eps)
        return normed if keep_fp32 else normed.to(x.dtype)

    # ------------------------------------------------------------ body

    def _attention(self, attn: WindowAttention, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (windows, tokens per window, dim) -> same shape."""
        n_windows, n_tokens, dim = tokens.shape
        qkv = linear_act(tokens, *self._weight_and_bias(attn.qkv, tokens.dtype))
        qkv = qkv.view(n_windows, n_tokens, 3, attn.num_heads, dim // attn.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # strided views, no copies
        out = F.scaled_dot_product_attention(q, k, v)  # default scale: head_dim ** -0.5, as official
        out = out.transpose(1, 2).reshape(n_windows, n_tokens, dim)
        return linear_act(out, *self._weight_and_bias(attn.proj_out, tokens.dtype))

    def _pos_embed_with_identity(self, block: Transformer, dtype: torch.dtype) -> torch.Tensor:
        def build() -> torch.Tensor:
            weight = block.pos_embed.weight.detach().float().clone()
            weight[:, 0, 1, 1] += 1.0  # x + dwconv(x) == dwconv'(x) with the centre tap raised by one
            return weight.to(dtype)

        return self._cached(block, f"pos_weight_{dtype}", (block.pos_embed.weight,), build)

    def run_transformer(self, block: Transformer, x: torch.Tensor, consume: bool = False) -> torch.Tensor:
        """`block(x)` on channels_last `x`; with `consume`, large inputs are overwritten by the result to save a
        feature map."""
        _, c, _, w = x.shape
        ws = block.window_size
        hidden = max(3, block.mlp.fc[0].out_features // c) * c  # the widest per-pixel intermediate
        bytes_per_row = (w + ws) * hidden * x.element_size()
        band = lambda rows, crop: self._transformer_band(block, rows, crop)  # noqa: E731
        # bands are whole window rows
        return _nchw(_in_row_bands(_nhwc(x), bytes_per_row, band, multiple=ws, consume=consume))

    def _transformer_band(self, block: Transformer, rows: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
        """The block on NHWC rows; the 3×3 pos_embed reads the `crop` context rows, which are then dropped."""
        x = _nchw(rows)
        if _autocasting(x):
            x = x + block.pos_embed(x)  # keep the residual in fp32, as the official code does under autocast
        else:
            bias = self._as_dtype(block.pos_embed, "bias", block.pos_embed.bias, x.dtype)
            x = depthwise_act(x, self._pos_embed_with_identity(block, x.dtype), bias)
        above, below = crop
        stream = _nhwc(x)[:, above : x.shape[2] - below]  # a fresh tensor, so attention may add into it in place
        if not stream.is_contiguous():
            stream = stream.contiguous()
        return self._attend_and_mlp(block, stream)

    def _attend_and_mlp(self, block: Transformer, shortcut: torch.Tensor) -> torch.Tensor:
        """Window attention added into `shortcut` (NHWC, updated in place), then the MLP residual (a new tensor)."""
        b, h, w, c = shortcut.shape
        ws = block.window_size
        # A bf16 stream's attention runs in fp32: the CPU attention kernel is slower in bf16, and casting the
        # normalised tokens back to bf16 and qkv up to fp32 would cost more than the fp32 GEMMs.
        normed = self._layer_norm(shortcut, block.norm1, keep_fp32=True)
        pad_b, pad_r = -h % ws, -w % ws
        if pad_b or pad_r:
            # As official: zero-pad after the norm, so padded tokens are exact zeros (keys with logit 0, value 0).
            normed = F.pad(normed, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        nh, nw = hp // ws, wp // ws
        windows = normed.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        del normed
        attended = self._attention(block.attn, windows).view(b, nh, nw, ws, ws, c).transpose(2, 3)  # b,nh,ws,nw,ws,c
        del windows
        if pad_b or pad_r:
            shortcut.add_(attended.reshape(b, hp, wp, c)[:, :h, :w])
        else:
            shortcut.view(b, nh, ws, nw, ws, c).add_(attended)  # window reverse and residual in one pass
        del attended
        fc = block.mlp.fc
        normed = self._layer_norm(shortcut, block.norm2)
        hidden = linear_act(normed, *self._weight_and_bias(fc[0], normed.dtype), "gelu")
        return linear_add(hidden, *self._weight_and_bias(fc[2], normed.dtype), shortcut)

    def run_resblock(self, block: ResBlock, x: torch.Tensor, consume: bool = False) -> torch.Tensor:
        """`block(x)` on channels_last `x`; with `consume`, large inputs are overwritten by the result."""
        bytes_per_row = x.shape[3] * block.net[0].out_channels * x.element_size() * 2  # expanded, then depth-wise
        band = lambda rows, crop: self._resblock_band(block, rows, crop)  # noqa: E731
        return _nchw(_in_row_bands(_nhwc(x), bytes_per_row, band, consume=consume))

    def _resblock_band(self, block: ResBlock, inp: torch.Tensor, crop: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """net(inp) + inp on NHWC rows, without the first crop[0] and last crop[1] rows (the band's context)."""
        expand, depthwise, reduce = block.net[0], block.net[2], block.net[4]
        hidden = linear_act(inp, *self._weight_and_bias(expand, inp.dtype, as_matrix=True), "leaky_relu")
        hidden = _nhwc(depthwise_act(_nchw(hidden), *self._weight_and_bias(depthwise, inp.dtype), "leaky_relu"))
        above, below = crop
        if above or below:
            hidden = hidden[:, above : hidden.shape[1] - below]
            inp = inp[:, above : inp.shape[1] - below]
        if not hidden.is_contiguous():
            hidden = hidden.contiguous()
        return linear_add(hidden, *self._weight_and_bias(reduce, inp.dtype, as_matrix=True), inp)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        for index, (transformer, resblock) in enumerate(self.net.body.layers):
            # Every tensor but the body's own input is ours to overwrite.
            x = self.run_resblock(resblock, self.run_transformer(transformer, x, consume=index > 0), consume=True)
        return x

    def _head_body_fuse(self, x: torch.Tensor) -> torch.Tensor:
        """fuse(cat(head(x), body(head(x)))) with the fuse conv split in two halves of its weight, so that no
        2·n_feats concatenation exists and at most three feature maps are alive at once."""
        net, dtype = self.net, x.dtype

        def weights() -> tuple[torch.Tensor, ...]:
            c = net.n_feats
            fuse = net.fuse.weight.to(dtype)
            head = (net.head.weight.to(dtype), net.head.bias.to(dtype))
            return (*head, fuse[:, :c].contiguous(), fuse[:, c:].contiguous(), net.fuse.bias.to(dtype))

        sources = (net.head.weight, net.head.bias, net.fuse.weight, net.fuse.bias)
        head_weight, head_bias, on_feats, on_body, fuse_bias = self._cached(net, f"head_fuse_{dtype}", sources, weights)
        feats = F.conv2d(x.contiguous(memory_format=torch.channels_last), head_weight, head_bias, padding=1)
        body = self._body(feats)
        out = F.conv2d(body, on_body, fuse_bias, padding=1)
        del body
        return out.add_(F.conv2d(feats, on_feats, None, padding=1))

    # ------------------------------------------------------------ upsampling and tail

    def _add_upsampled_tail(self, feats: torch.Tensor, base: torch.Tensor) -> None:
        """base += tail(act(upsapling(feats))), without building the output-resolution feature map in pixel order.

        The upsampling 1×1 convs (two for x4, with no activation between them, so they compose) become one batched
        GEMM that gives each sub-pixel position (i, j) its own low-res map. The tail's 3×3 conv is split into its
        nine taps: a second batched GEMM gives every tap's 3 outputs at every sub-pixel, and each tap is added into
        base as shifted slices (a tap of a border sub-pixel lands in the neighbouring low-res pixel). This runs in
        strips of low-res rows that keep the sub-pixel maps near BAND_BYTES; a strip's taps also reach one row
        above and below it, and since they are added into base, nothing is recomputed or carried between strips.
        """
        batch, c, height, width = feats.shape
        r = self.net.scale
        up_weight = self._folded_upsampling(feats.dtype)
        tap_weight = self._tail_taps(feats.dtype).expand(r * r, -1, -1)
        tail = self.net.tail
        tail_bias = self._as_dtype(tail, "bias", tail.bias, base.dtype).view(1, 1, 3, 1, 1)
        shifts = [_tap_shifts(r, d) for d in (-1, 0, 1)]
        by_subpixel = base.view(batch, 3, height, r, width, r).permute(0, 3, 5, 1, 2, 4)  # b, i, j, o, y, x
        inp = _nhwc(feats)
        rows = self._strip_rows(feats)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            first, last = max(0, top - 1), min(height, bottom + 1)  # the low-res rows this strip's taps reach
            for image in range(batch):
                # A column of ones carries the bias through the GEMM (cheaper than a broadcast bias on the output).
                pixels = feats.new_empty((bottom - top) * width, c + 1)
                pixels[:, :c] = inp[image, top:bottom].reshape(-1, c)
                pixels[:, c] = 1
                # subpixels[(i, j), (y, x)]: sub-pixel (i, j) of low-res pixel (y, x), activated
                subpixels = F.leaky_relu_(torch.bmm(pixels.expand(r * r, -1, -1), up_weight), LEAKY_SLOPE)
                del pixels
                # taps[i, j, 3·t + o, y, x]: tap t of output channel o, taken at sub-pixel (i, j) of pixel (y, x)
                taps = torch.bmm(tap_weight, subpixels.transpose(1, 2)).view(r, r, 27, bottom - top, width)
                del subpixels
                total = base.new_zeros(r, r, 3, last - first, width)  # i, j, o, y, x on rows first..last
                torch.add(taps[:, :, 12:15], tail_bias, out=total[:, :, :, top - first : bottom - first])
                _add_off_centre_taps(total, taps, shifts, (top, bottom), first, height)
                by_subpixel[image, :, :, :, first:last].add_(total)
                del taps, total

    def _strip_rows(self, feats: torch.Tensor) -> int:
        """Low-res rows per upsampling strip, so that the sub-pixel maps of one image stay near BAND_BYTES."""
        _, channels, _, width = feats.shape
        return max(1, BAND_BYTES // (width * self.net.scale**2 * channels * feats.element_size()))

    def _folded_upsampling(self, dtype: torch.dtype) -> torch.Tensor:
        """The upsampling convs as scale² matrices of (c + 1) × c, one per sub-pixel (i, j): row i, column j inside
        each low-res pixel of the final image; input c + 1 is a constant 1 and its row the bias. Composed in float64
        on the CPU."""
        net = self.net
        convs = [m for m in net.upsapling if isinstance(m, nn.Conv2d)]

        def build() -> torch.Tensor:
            c, device = net.n_feats, convs[0].weight.device
            w1, b1 = (t.detach().cpu().double() for t in (convs[0].weight, convs[0].bias))
            if len(convs) == 2:  # x4: PixelShuffle(2) twice; final row 4y + 2·i1 + i2, column 4x + 2·j1 + j2
                w2, b2 = (t.detach().cpu().double() for t in (convs[1].weight, convs[1].bias))
                w1, b1, w2, b2 = w1.view(c, 2, 2, c), b1.view(c, 2, 2), w2.view(c, 2, 2, c), b2.view(c, 2, 2)
                weight = torch.einsum("aklb,bijd->ikjlda", w2, w1)  # i1, i2, j1, j2, c in, c out
                bias = torch.einsum("aklb,bij->ikjla", w2, b1) + b2.permute(1, 2, 0)[None, :, None]
            else:  # PixelShuffle channel k = c·r² + i·r + j
                r = net.scale
                weight = w1.view(c, r, r, c).permute(1, 2, 3, 0)
                bias = b1.view(c, r, r).permute(1, 2, 0)
            weight = torch.cat([weight.reshape(-1, c, c), bias.reshape(-1, 1, c)], dim=1)
            return weight.to(device=device, dtype=dtype).contiguous()

        sources = [t for conv in convs for t in (conv.weight, conv.bias)]
        return self._cached(net, f"folded_upsampling_{dtype}", sources, build)

    def _tail_taps(self, dtype: torch.dtype) -> torch.Tensor:
        """The tail conv's weight as a 27 × c matrix, rows ordered (tap row, tap column, output channel)."""
        net = self.net

        def build() -> torch.Tensor:
            return net.tail.weight.permute(2, 3, 0, 1).reshape(27, net.n_feats).to(dtype).contiguous()

        return self._cached(net, f"tail_taps_{dtype}", (net.tail.weight,), build)


def _add_off_centre_taps(
    total: torch.Tensor, taps: torch.Tensor, shifts: list[list[tuple[slice, slice, int]]], rows: tuple[int, int],
    first: int, height: int,
) -> None:
    """Add the eight off-centre taps of a strip into `total` (i, j, o, y, x from low-res row `first`).

    taps[i, j, 3·t + o, y, x] was computed at sub-pixel (i, j) of the strip's low-res pixel (top + y, x); the output
    sub-pixel it belongs to is shifted by the tap's offset, across low-res pixels where `shifts` says so.
    """
    top, bottom = rows
    width = taps.shape[-1]
    for dy in range(3):
        for dx in range(3):
            if dy == dx == 1:
                continue
            tap = taps[:, :, 3 * (3 * dy + dx) : 3 * (3 * dy + dx) + 3]
            for to_i, from_i, shift_y in shifts[dy]:
                # output row y reads source row y + shift_y, which must lie in this strip
                y0, y1 = max(top - shift_y, 0), min(bottom - shift_y, height)
                source_rows = slice(y0 + shift_y - top, y1 + shift_y - top)
                for to_j, from_j, shift_x in shifts[dx]:
                    x0, x1 = max(0, -shift_x), min(width, width - shift_x)
                    total[to_i, to_j, :, y0 - first : y1 - first, x0:x1] += tap[
                        from_i, from_j, :, source_rows, x0 + shift_x : x1 + shift_x
                    ]


def _tap_shifts(r: int, d: int) -> list[tuple[slice, slice, int]]:
    """Where a 3×3 tap at offset `d` (−1, 0, 1) along one axis reads, on a grid of r sub-pixels per low-res pixel:
    (output sub-pixels, the input sub-pixels they read, the low-res shift of the input)."""
    groups = [(slice(max(0, -d), min(r, r - d)), slice(max(0, d), min(r, r + d)), 0)]
    if d == -1:
        groups.append((slice(0, 1), slice(r - 1, r), -1))
    elif d == 1:
        groups.append((slice(r - 1, r), slice(0, 1), 1))
    return groups


def inference_dtype(x: torch.Tensor) -> torch.dtype:
    """bf16 under bf16 autocast on a CPU whose oneDNN has bf16 kernels, where the fast path runs natively in bf16
    (weights converted once, norms and attention scores in fp32, the bilinear skip and the output in the input's
    dtype); otherwise x's dtype (other autocasts run autocast's plain ops)."""
    if (
        x.device.type == "cpu"
        and _autocasting(x)
        and _autocast_dtype("cpu") == torch.bfloat16
        and dtype_runs_fused(torch.bfloat16)
    ):
        return torch.bfloat16
    return x.dtype


def _autocast_dtype(device_type: str) -> torch.dtype:
    getter = getattr(torch, "get_autocast_dtype", None)  # torch >= 2.4
    return getter(device_type) if getter is not None else torch.get_autocast_cpu_dtype()
