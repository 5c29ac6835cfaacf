"""SwinIR (Liang et al., 2021), key-for-key compatible with the official checkpoints.

Differences from the official code that do not change the result:
- The tokens stay in (B, H*W, C) order for the whole body; viewed as (B, C, H, W) that is channels_last memory, so the
  convolutions between the stages need no transposes.
- Attention runs through `F.scaled_dot_product_attention` with the bias (and, for shifted blocks, the mask) as an
  additive float mask. In shifted blocks only the last row and column of windows have a mask at all, so those windows
  are attended separately and all inner windows share one small (heads, N, N) bias.
- `relative_position_index` and `attn_mask` are not parameters and are not in `state_dict()`; the loader drops
  those official buffers (see `enhancer.archs.swinir.detect.IGNORED_SUFFIXES`). The network gathers the bias and
  builds the shift mask for the input's size on every call; the CPU inference module (`fast_cpu.SwinIRFastCPU`)
  keeps them between calls and hands them in through `biases`, which gives the same numbers.
Plain differentiable ops only: this module trains, exports (`torch.onnx.export`, `torch.export.export`) and compiles.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The official mask value for token pairs from different regions of a shifted window.
MASK_VALUE = -100.0

# Where a block's attention biases come from: (block, height, width, batch, device, dtype) -> (the (1, heads, N, N)
# position bias, the (batch*nB, heads, N, N) bias plus shift mask of the border windows or None when not shifted).
BiasSource = Callable[["SwinTransformerBlock", int, int, int, torch.device, torch.dtype],
                      tuple[torch.Tensor, "torch.Tensor | None"]]


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N) index into the (2w-1)^2 bias table, as in the official code."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def _region_ids(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """(nW, N) region label of every token of every window of a shifted (rolled) image, as the official mask uses."""
    ids = torch.zeros(height, width)
    bounds = ((0, height - window), (height - window, height - shift), (height - shift, height))
    wbounds = ((0, width - window), (width - window, width - shift), (width - shift, width))
    label = 0
    for top, bottom in bounds:
        for left, right in wbounds:
            ids[top:bottom, left:right] = label
            label += 1
    ids = ids.view(height // window, window, width // window, window).permute(0, 2, 1, 3)
    return ids.reshape(-1, window * window)


def border_shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """(nB, N, N) additive mask of the windows in the last row and column, in `_BorderSplit` order.

    All other windows of a shifted image lie in one region and need no mask.
    """
    rows, cols = height // window, width // window
    ids = _region_ids(height, width, window, shift).view(rows, cols, -1)
    border = torch.cat([ids[: rows - 1, cols - 1], ids[rows - 1, :]], dim=0)  # last column, then last row
    differs = border[:, None, :] != border[:, :, None]
    return torch.zeros(differs.shape).masked_fill_(differs, MASK_VALUE)


class Mlp(nn.Module):
    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with the learned relative-position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True, qk_scale: float | None = None):
        super().__init__()
        self.dim = dim
        self.window_size = (window_size, window_size)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(1, heads, N, N) bias gathered from the table (4-D: a 3-D mask sends SDPA to its slow math path on the
        CPU)."""
        table = self.relative_position_bias_table
        window = self.window_size[0]
        n = window * window
        index = relative_position_index(window).to(table.device).view(-1)
        return table[index].view(n, n, -1).permute(2, 0, 1)[None].contiguous().to(device=device, dtype=dtype)

    def attend(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """windows: (B_, N, C) tokens; mask: additive float mask broadcastable to (B_, heads, N, N)."""
        count, n, channels = windows.shape
        qkv = self.qkv(windows).view(count, n, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return out.transpose(1, 2).reshape(count, n, channels)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Official signature: mask is (nW, N, N) or None; used by tests and peers, not by SwinIR.forward."""
        bias = self.position_bias(windows.device, windows.dtype)
        if mask is None:
            return self.proj(self.attend(windows, bias))
        nw = mask.shape[0]
        full = (bias + mask[:, None].to(bias.dtype)).repeat(windows.shape[0] // nw, 1, 1, 1)
        return self.proj(self.attend(windows, full))


class SwinTransformerBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        if min(input_resolution) <= window_size:  # the official rule: a window never exceeds the training patch
            shift_size = 0
            window_size = min(input_resolution)
        self.dim = dim
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def border_bias(self, bias: torch.Tensor, height: int, width: int, batch: int) -> torch.Tensor:
        """(batch*nB, heads, N, N): position `bias` plus shift mask for the last row and column of windows."""
        mask = border_shift_mask(height, width, self.window_size, self.shift_size).to(device=bias.device, dtype=bias.dtype)
        return (bias + mask[:, None]).repeat(batch, 1, 1, 1)

    def attention_biases(
        self, height: int, width: int, batch: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The position bias, and the border windows' bias plus shift mask (None for an unshifted block)."""
        bias = self.attn.position_bias(device, dtype)
        return bias, self.border_bias(bias, height, width, batch) if self.shift_size else None

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], biases: BiasSource | None = None) -> torch.Tensor:
        height, width = x_size
        batch, _, channels = x.shape
        w = self.window_size
        rows, cols = height // w, width // w
        if biases is None:
            bias, border = self.attention_biases(height, width, batch, x.device, x.dtype)
        else:
            bias, border = biases(self, height, width, batch, x.device, x.dtype)
        h = self.norm1(x).view(batch, height, width, channels)
        if self.shift_size:
            h = torch.roll(h, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        grid = h.view(batch, rows, w, cols, w, channels).permute(0, 1, 3, 2, 4, 5)  # (B, rows, cols, w, w, C)
        attn = self.attn
        if not self.shift_size:
            windows = grid.reshape(-1, w * w, channels)
            out = attn.proj(attn.attend(windows, bias))
            out = out.view(batch, rows, cols, w, w, channels).permute(0, 1, 3, 2, 4, 5)
        else:
            out = self._shifted_attention(grid, batch, rows, cols, bias, border)
        out = out.reshape(batch, height, width, channels)
        if self.shift_size:
            out = torch.roll(out, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x + out.reshape(batch, height * width, channels)
        return x + self.mlp(self.norm2(x))

    def _shifted_attention(
        self, grid: torch.Tensor, batch: int, rows: int, cols: int, bias: torch.Tensor, border_bias: torch.Tensor
    ) -> torch.Tensor:
        """Attention of a shifted block: inner windows with the bias only, border windows with bias + mask.

        grid: (B, rows, cols, w, w, C) windows. Returns (B, rows, w, cols, w, C) in image order.
        """
        w = self.window_size
        channels = grid.shape[-1]
        n = w * w
        attn = self.attn
        # The border windows of each image: its last column without the corner, then its last row.
        border = torch.cat([grid[:, : rows - 1, cols - 1], grid[:, rows - 1]], dim=1).reshape(-1, n, channels)
        border = attn.proj(attn.attend(border, border_bias)).view(batch, rows + cols - 1, w, w, channels)
        # Back in image order, (B, rows, w, cols, w, C), assembled by concatenation (no writes into views).
        last_row = border[:, rows - 1 :].permute(0, 2, 1, 3, 4)[:, None]  # (B, 1, w, cols, w, C)
        if rows == 1:
            return last_row
        last_column = border[:, : rows - 1, None].permute(0, 1, 3, 2, 4, 5)  # (B, rows-1, w, 1, w, C)
        if cols == 1:
            top = last_column
        else:
            inner = grid[:, : rows - 1, : cols - 1].reshape(-1, n, channels)
            inner = attn.proj(attn.attend(inner, bias)).view(batch, rows - 1, cols - 1, w, w, channels)
            top = torch.cat([inner.permute(0, 1, 3, 2, 4, 5), last_column], dim=3)
        return torch.cat([top, last_row], dim=1)


class BasicLayer(nn.Module):
    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, norm_layer):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                input_resolution,
                num_heads,
                window_size,
                0 if i % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                qk_scale,
                norm_layer,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], biases: BiasSource | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, x_size, biases)
        return x


def _residual_conv(dim: int, resi_connection: str) -> nn.Module:
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":  # a bottleneck that saves parameters (used by SwinIR-L)
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    raise ValueError(f"SwinIR: unknown resi_connection {resi_connection!r} (expected '1conv' or '3conv')")


def tokens_to_image(x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) tokens as a (B, C, H, W) view: channels_last memory, no copy."""
    batch, _, channels = x.shape
    return x.transpose(1, 2).view(batch, channels, x_size[0], x_size[1])


def image_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) to (B, H*W, C); free when x is channels_last."""
    return x.flatten(2).transpose(1, 2)


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a group of Swin blocks, a convolution and a skip connection."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, norm_layer,
                 resi_connection: str = "1conv"):
        super().__init__()
        self.residual_group = BasicLayer(dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias,
                                         qk_scale, norm_layer)
        self.conv = _residual_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], biases: BiasSource | None = None) -> torch.Tensor:
        body = tokens_to_image(self.residual_group(x, x_size, biases), x_size)
        out = self.conv(body.contiguous(memory_format=torch.channels_last))
        return image_to_tokens(out.contiguous(memory_format=torch.channels_last)) + x


class PatchEmbed(nn.Module):
    """Official name kept for the key `patch_embed.norm`; with patch size 1 it only flattens and normalises."""

    def __init__(self, embed_dim: int, norm_layer: type[nn.Module] | None):
        super().__init__()
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = image_to_tokens(x.contiguous(memory_format=torch.channels_last))
        return self.norm(x) if self.norm is not None else x


class Upsample(nn.Sequential):
    """Conv + PixelShuffle stages for scale 2^n or 3."""

    def __init__(self, scale: int, num_feat: int) -> None:
        stages: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                stages += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            stages += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"SwinIR: scale {scale} is not supported by 'pixelshuffle' (use 2^n or 3)")
        super().__init__(*stages)


class UpsampleOneStep(nn.Sequential):
    """One conv + PixelShuffle straight to the output channels (lightweight SR)."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


class SwinIR(nn.Module):
    """SwinIR with the official constructor arguments (dropout and drop-path are accepted; inference ignores them)."""

    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
        **kwargs,
    ) -> None:
        super().__init__()
        if patch_size != 1:
            raise ValueError("SwinIR: only patch_size=1 exists in the official models")
        num_out_ch = in_chans
        num_feat = 64
        self.img_range = float(img_range)
        self.upscale = int(upscale)
        self.upsampler = upsampler
        self.window_size = int(window_size)
        self.ape = ape
        mean = (0.4488, 0.4371, 0.4040) if in_chans == 3 else (0.0,) * in_chans
        # Not a parameter of the official files, so not persistent; it follows .to(device, dtype).
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, norm_layer if patch_norm else None)
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, size[0] * size[1], embed_dim))
        self.layers = nn.ModuleList(
            RSTB(embed_dim, size, depths[i], num_heads[i], window_size, mlp_ratio, qkv_bias, qk_scale, norm_layer,
                 resi_connection)
            for i in range(len(depths))
        )
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = _residual_conv(embed_dim, resi_connection)

        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = Upsample(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = UpsampleOneStep(upscale, embed_dim, num_out_ch)
        elif upsampler == "nearest+conv":
            if upscale not in (2, 4, 8):
                raise ValueError(f"SwinIR: 'nearest+conv' supports scale 2, 4 or 8, not {upscale}")
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            if upscale >= 4:
                self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            if upscale == 8:
                self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        elif upsampler == "":
            self.conv_last = nn.Conv2d(embed_dim, num_out_ch, 3, 1, 1)
        else:
            raise ValueError(f"SwinIR: unknown upsampler {upsampler!r}")
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.zeros_(module.bias)
            nn.init.ones_(module.weight)

    def pad_to_window(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad H and W up to a multiple of the window, like the official check_image_size."""
        height, width = x.shape[-2:]
        pad_h = (self.window_size - height % self.window_size) % self.window_size
        pad_w = (self.window_size - width % self.window_size) % self.window_size
        return F.pad(x, (0, pad_w, 0, pad_h), "reflect") if pad_h or pad_w else x

    def forward_features(self, x: torch.Tensor, biases: BiasSource | None = None) -> torch.Tensor:
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed
        for layer in self.layers:
            x = layer(x, x_size, biases)
        return tokens_to_image(self.norm(x), x_size)

    def forward(self, x: torch.Tensor, biases: BiasSource | None = None) -> torch.Tensor:
        """`biases`: where the blocks' attention biases come from (None: gathered and built here, on every call)."""
        height, width = x.shape[-2:]
        x = self.pad_to_window(x)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        if self.upsampler == "":  # restoration: the network predicts a residual of its input
            first = self.conv_first(x.contiguous(memory_format=torch.channels_last))
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first, biases)) + first)
        else:
            x = self.conv_first(x.contiguous(memory_format=torch.channels_last))
            x = self.conv_after_body(self.forward_features(x, biases)) + x
            if self.upsampler == "pixelshuffle":
                x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
            elif self.upsampler == "pixelshuffledirect":
                x = self.upsample(x)
            else:
                x = self.conv_before_upsample(x)
                x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
                if self.upscale >= 4:
                    x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
                if self.upscale == 8:
                    x = self.lrelu(self.conv_up3(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[:, :, : height * self.upscale, : width * self.upscale].contiguous()
