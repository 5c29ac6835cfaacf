"""MobileSR (NTIRE 2022 efficient SR, sunny2109/MobileSR-NTIRE2022), key for key with the official checkpoints.

The network is tiny (about 0.5 MFLOP per input pixel), so on a CPU its cost is memory traffic and per-op overhead,
not arithmetic. The inference path therefore:
  - keeps activations channels_last (NHWC in memory) from the head conv to the tail conv, so 1×1 convs are plain
    GEMMs (`F.linear`) on the NHWC view and LayerNorm needs no permute copies;
  - runs window attention with `F.scaled_dot_product_attention` on strided q/k/v views of one qkv GEMM;
  - adds the window output back into the residual in place, reading it through a permuted view (one pass for
    "window reverse + crop + add");
  - folds `x + pos_embed(x)` into the depth-wise kernel (centre tap + 1), cached per weight version, dtype and device;
  - does the pixel shuffles without shuffling: the 1×1 upsampling convs are applied in a permuted channel order,
    which leaves sub-pixels in a scrambled but regular order, and one LeakyReLU writes them straight into the
    final NHWC image;
  - runs every wide intermediate (qkv, the MLP and ResBlock hidden layers, the output-resolution upsampling) in row
    bands of about `BAND_BYTES`, so a large tile costs a few feature maps of memory, not a dozen wide ones.
With autograd enabled (training) a plain, differentiable path with the same results is used instead.
The network zero-pads each attention input to a multiple of the window internally, as the official code does.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
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
    (with `consume`, inference only) or into a contiguous copy of it, which is returned: each band is written only
    after the next band has read its context row, so one band is held back at a time, never a whole second map.
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


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """NHWC view of an N×C×H×W tensor (free when it is channels_last)."""
    return x.permute(0, 2, 3, 1)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W (channels_last) view of an NHWC tensor."""
    return x.permute(0, 3, 1, 2)


def _fused_cpu_ops_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_FUSED_OPS = _fused_cpu_ops_available()


def _autocasting(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)


def _use_fused(x: torch.Tensor) -> bool:
    """oneDNN's fused GEMM/conv + activation/add ops: plain fp32 on CPU. Under autocast or in bf16 the plain ops run,
    so that autocast picks each op's precision as it does for the official network."""
    if not _FUSED_OPS or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    return not _autocasting(x) and not torch.is_grad_enabled()  # the oneDNN ops have no backward


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


def _cached(owner: nn.Module, name: str, sources: Sequence[torch.Tensor], build: Callable[[], object]):
    """A value derived from parameters, rebuilt only when one of them changes (storage, in-place version, dtype)."""
    key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
    hit = owner.__dict__.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        value = build()
    owner.__dict__[name] = (key, value)
    return value


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
        qkv = linear_act(tokens, self.qkv.weight, None).view(n_windows, n_tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # strided views, no copies
        out = F.scaled_dot_product_attention(q, k, v)  # default scale: head_dim ** -0.5, as official
        return linear_act(out.transpose(1, 2).reshape(n_windows, n_tokens, dim), self.proj_out.weight, self.proj_out.bias)


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Linear(dim * ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def forward_add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """mlp(x) + residual, for inference."""
        hidden = linear_act(x, self.fc[0].weight, self.fc[0].bias, "gelu")
        return linear_add(hidden, self.fc[2].weight, self.fc[2].bias, residual)


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

    def _pos_embed_with_identity(self) -> torch.Tensor:
        def build() -> torch.Tensor:
            weight = self.pos_embed.weight.detach().clone()
            weight[:, 0, 1, 1] += 1.0  # x + dwconv(x) == dwconv'(x) with the centre tap raised by one
            return weight

        return _cached(self, "_pos_weight", (self.pos_embed.weight,), build)

    def forward(self, x: torch.Tensor, consume: bool = False) -> torch.Tensor:
        """With `consume` (inference only), large inputs are overwritten by the result to save a feature map."""
        if torch.is_grad_enabled():
            return self._forward_differentiable(x)
        _, c, _, w = x.shape
        ws = self.window_size
        hidden = max(3, self.mlp.fc[0].out_features // c) * c  # the widest per-pixel intermediate
        bytes_per_row = (w + ws) * hidden * x.element_size()
        # bands are whole window rows
        return _nchw(_in_row_bands(_nhwc(x), bytes_per_row, self._band, multiple=ws, consume=consume))

    def _band(self, rows: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
        """The block on NHWC rows; the 3×3 pos_embed reads the `crop` context rows, which are then dropped."""
        x = _nchw(rows)
        if _autocasting(x):
            x = x + self.pos_embed(x)  # keep the residual in fp32, as the official code does under autocast
        else:
            x = depthwise_act(x, self._pos_embed_with_identity(), self.pos_embed.bias)
        above, below = crop
        stream = _nhwc(x)[:, above : x.shape[2] - below]  # a fresh tensor, so attention may add into it in place
        if not stream.is_contiguous():
            stream = stream.contiguous()
        return self._attend_and_mlp(stream)

    def _attend_and_mlp(self, shortcut: torch.Tensor) -> torch.Tensor:
        """Window attention added into `shortcut` (NHWC, updated in place), then the MLP residual (a new tensor)."""
        b, h, w, c = shortcut.shape
        ws = self.window_size
        normed = self.norm1(shortcut)
        pad_b, pad_r = -h % ws, -w % ws
        if pad_b or pad_r:
            # As official: zero-pad after the norm, so padded tokens are exact zeros (keys with logit 0, value 0).
            normed = F.pad(normed, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        nh, nw = hp // ws, wp // ws
        windows = normed.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        del normed
        attended = self.attn(windows).view(b, nh, nw, ws, ws, c).transpose(2, 3)  # b, nh, ws, nw, ws, c
        del windows
        if pad_b or pad_r:
            shortcut.add_(attended.reshape(b, hp, wp, c)[:, :h, :w])
        else:
            shortcut.view(b, nh, ws, nw, ws, c).add_(attended)  # window reverse and residual in one pass
        del attended
        return self.mlp.forward_add(self.norm2(shortcut), shortcut)

    def _forward_differentiable(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = _nhwc(x)
        b, h, w, c = x.shape
        ws = self.window_size
        pad_b, pad_r = -h % ws, -w % ws
        normed = F.pad(self.norm1(x), (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        windows = normed.reshape(b, hp // ws, ws, wp // ws, ws, c).transpose(2, 3).reshape(-1, ws * ws, c)
        attended = self.attn(windows).reshape(b, hp // ws, wp // ws, ws, ws, c).transpose(2, 3).reshape(b, hp, wp, c)
        x = x + attended[:, :h, :w]
        x = x + self.mlp(self.norm2(x))
        return _nchw(x)


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

    def forward(self, x: torch.Tensor, consume: bool = False) -> torch.Tensor:
        """With `consume` (inference only), large inputs are overwritten by the result to save a feature map."""
        if torch.is_grad_enabled():
            return self.net(x) + x
        bytes_per_row = x.shape[3] * self.net[0].out_channels * x.element_size() * 2  # expanded, then depth-wise
        return _nchw(_in_row_bands(_nhwc(x), bytes_per_row, self._residual, consume=consume))

    def _residual(self, inp: torch.Tensor, crop: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """net(inp) + inp on NHWC rows, without the first crop[0] and last crop[1] rows (the band's context)."""
        expand, depthwise, reduce = self.net[0], self.net[2], self.net[4]
        hidden = linear_act(inp, expand.weight.view(expand.out_channels, -1), expand.bias, "leaky_relu")
        hidden = _nhwc(depthwise_act(_nchw(hidden), depthwise.weight, depthwise.bias, "leaky_relu"))
        above, below = crop
        if above or below:
            hidden = hidden[:, above : hidden.shape[1] - below]
            inp = inp[:, above : inp.shape[1] - below]
        if not hidden.is_contiguous():
            hidden = hidden.contiguous()
        return linear_add(hidden, reduce.weight.view(reduce.out_channels, -1), reduce.bias, inp)


class BaseBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, ratios: Sequence[int]):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Transformer(dim, num_heads, window_size, r), ResBlock(dim, r)]) for r in ratios
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, (transformer, resblock) in enumerate(self.layers):
            # Every tensor but the block's own input is ours to overwrite (inference only; training ignores it).
            x = resblock(transformer(x, consume=index > 0), consume=True)
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
        if torch.is_grad_enabled():
            base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
            feats = self.head(x)
            feats = self.fuse(torch.cat([feats, self.body(feats)], dim=1))
            return self.tail(self.act(self.upsapling(feats))) + base
        feats = self._head_body_fuse(x)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)  # not alive before
        self._add_upsampled_tail(feats, base)
        return base

    def _add_upsampled_tail(self, feats: torch.Tensor, base: torch.Tensor) -> None:
        """base += tail(act(upsapling(feats))) in strips of low-res rows.

        These run at output resolution with n_feats channels, by far the largest tensors of the network. Nothing is
        computed twice: the tail's 3×3 conv of a strip is centred one output row higher than the strip (it has no
        row below yet), and the strip's last two activated rows carry over to the next one.
        """
        height = feats.shape[2]
        r = self.scale
        rows = self._strip_rows(feats)
        carry: torch.Tensor | None = None  # the previous strip's last two activated output rows, NHWC
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            last = bottom == height
            # Buffer row j holds output row top·r − 2 + j; a zero row stands for the padding above and below.
            image = self._upsample_and_activate(feats[:, :, top:bottom], rows_above=2, rows_below=int(last))
            if carry is None:
                image[:, 1].zero_()
                image = image[:, 1:]
            else:
                image[:, :2].copy_(carry)
            if last:
                image[:, -1].zero_()
            else:
                carry = image[:, -2:].clone()
            out = F.conv2d(_nchw(image), self.tail.weight, self.tail.bias, padding=(0, 1))
            first = top * r - 1 + (1 if top == 0 else 0)  # the output row of out's first row
            base[:, :, first : first + out.shape[2]].add_(out)
            del image, out

    def _head_body_fuse(self, x: torch.Tensor) -> torch.Tensor:
        """fuse(cat(head(x), body(head(x)))) with the fuse conv split in two halves of its weight, so that no
        2·n_feats concatenation exists and at most three feature maps are alive at once."""

        def halves() -> tuple[torch.Tensor, torch.Tensor]:
            c = self.n_feats
            return self.fuse.weight[:, :c].contiguous(), self.fuse.weight[:, c:].contiguous()

        on_feats, on_body = _cached(self.fuse, "_halves", (self.fuse.weight,), halves)
        feats = self.head(x.contiguous(memory_format=torch.channels_last))
        body = self.body(feats)
        out = F.conv2d(body, on_body, self.fuse.bias, padding=1)
        del body
        return out.add_(F.conv2d(feats, on_feats, None, padding=1))

    def _strip_rows(self, feats: torch.Tensor) -> int:
        """Low-res rows per upsampling strip, so that each output-resolution tensor stays near BAND_BYTES."""
        batch, channels, _, width = feats.shape
        return max(1, BAND_BYTES // (batch * width * self.scale**2 * channels * feats.element_size()))

    def _subpixel_major(self, conv: nn.Conv2d, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The 1×1 conv's weight and bias with output channels reordered from (c, i, j) to (i, j, c)."""

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            c = self.n_feats
            weight = conv.weight.view(c, r * r, c).transpose(0, 1).reshape(r * r * c, c).contiguous()
            bias = conv.bias.view(c, r * r).t().reshape(r * r * c).contiguous()
            return weight, bias

        return _cached(conv, "_subpixel_major", (conv.weight, conv.bias), build)

    def _upsample_and_activate(self, feats: torch.Tensor, rows_above: int = 0, rows_below: int = 0) -> torch.Tensor:
        """upsapling + LeakyReLU, as one GEMM per stage and a single strided write of the final image.

        Returns it NHWC with `rows_above` and `rows_below` extra rows left uninitialised for the caller.
        """
        b, c, h, w = feats.shape
        r = self.scale
        inp = _nhwc(feats)
        if not inp.is_contiguous():
            inp = inp.contiguous()
        if r == 4:
            # Two x2 stages. Sub-pixels stay in (i1, j1, i2, j2) order behind each low-res pixel: a 1×1 conv does
            # not care about pixel order, so the shuffle is needed only once, at the end.
            w1, b1 = self._subpixel_major(self.upsapling[0], 2)
            w2, b2 = self._subpixel_major(self.upsapling[2], 2)
            stage1 = linear_act(inp, w1, b1).view(b, h, w, 4, c)
            stage2 = linear_act(stage1, w2, b2).view(b, h, w, 2, 2, 2, 2, c)  # b, h, w, i1, j1, i2, j2, c
            del stage1
        else:
            w1, b1 = self._subpixel_major(self.upsapling[0], r)
            stage2 = linear_act(inp, w1, b1).view(b, h, w, r, r, c)
        image = torch.empty(b, rows_above + h * r + rows_below, w * r, c, dtype=stage2.dtype, device=stage2.device)
        inner = image[:, rows_above : rows_above + h * r]
        if r == 4:
            # Output row 4h + 2 i1 + i2, column 4w + 2 j1 + j2.
            target = inner.view(b, h, 2, 2, w, 2, 2, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
        else:
            target = inner.view(b, h, r, w, r, c).permute(0, 1, 3, 2, 4, 5)
        torch._C._nn.leaky_relu(stage2, LEAKY_SLOPE, out=target)
        return image
