"""Tiled inference: run a network over a photo of any size in tiles, seam-free and with bounded memory.

How a photo is cut:
- A tile is a span of `tile` pixels per side that shares `overlap` pixels with each neighbour. Every tile origin lies
  on the network's window grid, so each tile sees the same attention windows as a whole-image pass would.
- Each tile is fed to the network with a context margin of a few windows on every inner side (`context_for`); the
  output of that margin saw a cut receptive field and is cropped away.
- Across each shared band the two tiles are blended with a raised-cosine ramp, not an equal-weight average.
- The blend weights are separable and form a partition of unity, so tiles are added straight into the result array:
  there is no weight buffer, and the result array is the only buffer the size of the output. Peak memory is that
  array plus one batch of tiles, whatever the number of tiles.
- The result array is host memory; a caller with a huge output may pass `out=` a numpy memmap.
- On out-of-memory, the tile is computed again from tiles half its size, and later tiles go straight to that size.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .backends import make_runner
from .devices import (
    cpu_threads_for,
    empty_cache,
    free_memory_bytes,
    is_out_of_memory,
    release_host_memory,
    resolve_precision,
)
from .errors import Cancelled, DeviceError, EnhancerError

log = logging.getLogger(__name__)

# BT.601 luma, used to turn the colour output of a colour network back into gray for a gray photo.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Rows of input processed at once when the alpha channel is upscaled (bicubic needs 2 rows of context).
ALPHA_STRIP_ROWS = 256
ALPHA_CONTEXT_ROWS = 4
# Full-range BT.601 YCbCr as Pillow (and JPEG) define it, on values in [0, 1]: Cb and Cr are centred on 128/255.
CHROMA_OFFSET = 128.0 / 255.0


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


ProgressCallback = Callable[[int, int], Any]


# --------------------------------------------------------------------------------------------------------------------
# Geometry


def plan_axis(length: int, tile: int, overlap: int, grid: int) -> list[tuple[int, int]]:
    """Spans [start, stop) along one axis: origins on `grid`, neighbours sharing at least `overlap` pixels.

    All tiles have size `tile` except the last one, which ends at `length` and starts on the grid too, so it is
    up to `grid - 1` pixels longer. Origins are spread evenly so that the overlaps are alike.
    """
    if length <= tile:
        return [(0, length)]
    grid = max(1, grid)
    stride = max(grid, tile - overlap)
    span = length - tile
    last = (span // grid) * grid
    count = math.ceil(span / stride) + 1
    while True:
        origins = [((k * span) // (count - 1)) // grid * grid for k in range(count - 1)] + [last]
        origins = sorted(set(origins))
        if all(b - a <= stride for a, b in zip(origins, origins[1:])):
            break
        count += 1
    return [(o, o + tile) for o in origins[:-1]] + [(origins[-1], length)]


def _ramp(t: np.ndarray) -> np.ndarray:
    """0 → 1 with zero slope at both ends (raised cosine)."""
    t = np.clip(t, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


@dataclass(frozen=True)
class AxisTile:
    start: int  # input span fed to the network (the blended span plus context on each side, within the image)
    stop: int
    weight_start: int  # output pixels, absolute, where the tile's non-zero weights begin
    weights: np.ndarray  # float32 blend weights from weight_start on (their sum over tiles is 1 everywhere)


def plan_tiles(lo: int, hi: int, tile: int, overlap: int, context: int, grid: int, scale: int) -> list[AxisTile]:
    """The tiles along one axis of [lo, hi): blended spans of `tile` pixels sharing `overlap` with each neighbour,
    each fed to the network with `context` extra pixels per side (cut at lo/hi) that are cropped away.

    The weights ramp smoothly (raised cosine) across each shared band and are normalised to sum to exactly 1 at
    every output pixel.
    """
    spans = [(a + lo, b + lo) for a, b in plan_axis(hi - lo, tile, overlap, grid)]
    raw: list[np.ndarray] = []
    for k, (a, b) in enumerate(spans):
        centres = (np.arange(a * scale, b * scale, dtype=np.float64) + 0.5) / scale  # input coordinates
        w = np.ones_like(centres)
        if k > 0:
            z0, z1 = _ramp_zone(a, spans[k - 1][1])
            w *= _ramp((centres - z0) / (z1 - z0))
        if k + 1 < len(spans):
            z0, z1 = _ramp_zone(spans[k + 1][0], b)
            w *= 1.0 - _ramp((centres - z0) / (z1 - z0))
        raw.append(w)
    total = np.zeros((hi - lo) * scale, dtype=np.float64)
    for (a, _b), w in zip(spans, raw):
        total[(a - lo) * scale : (a - lo) * scale + w.size] += w
    if not np.all(total > 0):
        raise AssertionError("tile plan leaves pixels uncovered")  # a bug in plan_axis, not a user error
    tiles = []
    for (a, b), w in zip(spans, raw):
        w = w / total[(a - lo) * scale : (b - lo) * scale]
        nonzero = np.flatnonzero(w > 0)
        first, last = int(nonzero[0]), int(nonzero[-1]) + 1
        tiles.append(
            AxisTile(max(lo, a - context), min(hi, b + context), a * scale + first, w[first:last].astype(np.float32))
        )
    return tiles


def _extent(tiles: list[AxisTile]) -> int:
    return max(t.stop - t.start for t in tiles)


def uniform_extents(tiles: list[AxisTile], lo: int, hi: int, grid: int) -> list[AxisTile]:
    """The same tiles with at most two input extents: every tile is widened into the image to the largest extent,
    its start kept on the grid (the windows of an attention network then fall where they fall for the whole
    image), except where that would cross the far border: there one remainder extent ends at the border. The
    network never sees padding it would not see on its own, and a compiled backend needs at most four graphs
    (interior, right, bottom, corner) for a photo size. The blended spans and weights do not change: only the
    context grows."""
    extent = -(-_extent(tiles) // grid) * grid
    widened = []
    for t in tiles:
        # the first grid point from which `extent` still reaches the tile's end (tile starts are on the grid)
        start = min(t.start, lo + max(0, -(-(t.stop - extent - lo) // grid) * grid))
        widened.append(AxisTile(start, min(hi, start + extent), t.weight_start, t.weights))
    return widened


def _ramp_zone(band_start: int, band_stop: int) -> tuple[float, float]:
    """Where the ramp between two neighbours runs: their whole shared band [band_start, band_stop)."""
    if band_stop <= band_start:  # neighbours only touch: a hard cut
        middle = (band_start + band_stop) / 2
        return middle - 1e-6, middle + 1e-6
    return float(band_start), float(band_stop)


# --------------------------------------------------------------------------------------------------------------------
# Per-network defaults and memory cost


LARGE_CPU_TILE = 256
COMPILED_TILE = 256  # input pixels (context included) of an automatic tile for a compiled backend  # from this side on, a tile's freed buffers are handed back to the system after it


def tile_grid(model) -> int:
    """Tile origins and sizes snap to this: the window grid, and the padding multiple of the network."""
    window = max(1, int(model.window))
    pad = max(1, int(model.pad_multiple))
    return window * pad // math.gcd(window, pad)


def default_overlap(model) -> int:
    """Pixels of blended span shared by neighbouring tiles when the caller does not say: two windows."""
    return int(model.spec.default_overlap(model.config))


def context_for(model) -> int:
    """Extra input pixels fed on each side of a tile and cropped away, a multiple of the tile grid.

    Measured with the official MobileSR x4 weights on Set14: the error against a whole-image pass is still
    2.25/255 at 15 pixels from a tile edge on sharp graphics. With two windows of context and the default
    two-window overlap, tile 48 stays within 0.14/255 of a whole-image pass (one window of context: 1.04/255).
    SwinIR's shifted windows reach at least as far. Restormer normalises over the whole tile, so context helps it
    less; it gets the largest tiles instead.
    """
    grid = tile_grid(model)
    return max(16 // grid, 2) * grid


def bytes_per_pixel(model, precision: str = "fp32") -> float:
    """Estimated peak bytes of one forward pass per input pixel of a tile (activations, not weights)."""
    floats = model.spec.floats_per_pixel(model.config or {}, max(1, int(model.scale)))
    element = 4 if precision == "fp32" else 2
    # Mixed precision keeps fp32 copies around some ops, so half precision saves less than half.
    factor = 1.0 if precision == "fp32" else 0.7
    return float(floats) * 4 * factor if element == 2 else float(floats) * element


def auto_tile_size(
    model, device: torch.device, precision: str, image_hw: tuple[int, int], reserve: int = 0,
    host_budget: int | None = None,
) -> int:
    """The largest tile side (input pixels) whose forward pass fits in the free memory of `device`; on the CPU also
    within `host_budget` bytes for one tile when given (the photo's memory plan, `enhancer.memory_budget`)."""
    grid = tile_grid(model)
    free = free_memory_bytes(device)
    per_pixel = bytes_per_pixel(model, precision) * _channel_batch(model, 3)
    if device.type == "cpu":
        budget = (free - reserve) * 0.4  # leave room for the rest of the machine
        cap = model.spec.max_tile_cpu
        if host_budget is not None:  # the tile's own arrays (input, result piece) count there too
            per_pixel += _tile_array_bytes_per_pixel(model, 3)
            budget = min(budget, host_budget)
    else:
        budget = free * 0.7
        cap = model.spec.max_tile_gpu
    side = int(math.sqrt(max(budget, 0) / per_pixel)) if per_pixel > 0 else cap
    side = max(min(side, cap), 4 * grid)
    tile = (side - 2 * context_for(model)) // grid * grid  # the blended span; the context comes on top
    tile = max(tile, 2 * grid)
    longest = max(image_hw)
    if tile >= longest:
        return longest  # the whole image in one tile
    return tile


def _tile_array_bytes_per_pixel(model, channels: int) -> float:
    """Host bytes per network-input pixel of a tile besides the forward pass: the input stack and the result piece."""
    scale = max(1, int(model.scale))
    net_channels = 1 if channels >= 3 and runs_on_luma(model) else channels
    return 4.0 * net_channels * (1 + 2 * scale * scale)


def smallest_auto_tile(model) -> int:
    """The blended span of the smallest tile "auto" chooses (the run halves it further only on out-of-memory)."""
    grid = tile_grid(model)
    return max((4 * grid - 2 * context_for(model)) // grid * grid, 2 * grid)


def tile_side_for(
    model, image_hw: tuple[int, int], channels: int, tile: int | str | None, precision: str,
    host_budget: int | None = None,
) -> int:
    """The network input side (context included) of a tile of this run: the given `tile`, or for "auto" the one
    `auto_tile_size` picks within `host_budget` (None: the smallest "auto" may pick). Never more than the image."""
    device = torch.device(getattr(model, "device", "cpu"))
    grid = tile_grid(model)
    if tile == "auto" or (isinstance(tile, str) and tile.strip().lower() == "auto"):
        if host_budget is None:
            span = smallest_auto_tile(model)
        else:
            span = auto_tile_size(model, device, precision, image_hw, host_budget=host_budget)
    else:
        span = _resolve_tile(tile, lambda: max(image_hw), grid, image_hw)
    return min(span + 2 * context_for(model), max(image_hw))


def tile_host_bytes(model, box_hw: tuple[int, int], channels: int, precision: str) -> int:
    """Host memory of one tile with a network input of `box_hw` pixels: the forward pass where it runs on the host
    (CPU, or Apple's unified memory), the input stack and the result piece."""
    device = torch.device(getattr(model, "device", "cpu"))
    pixels = int(box_hw[0]) * int(box_hw[1])
    arrays = _tile_array_bytes_per_pixel(model, channels) * pixels
    if device.type in ("cpu", "mps"):
        arrays += bytes_per_pixel(model, precision) * _channel_batch(model, channels) * pixels
    return int(arrays)


def _channel_batch(model, image_channels: int) -> int:
    """How many network inputs one tile becomes: a colour photo through a gray network is run per channel (unless
    the network runs on luma, when only Y goes through it)."""
    if int(model.in_channels) == 1 and image_channels == 3 and not runs_on_luma(model):
        return image_channels
    return 1


def runs_on_luma(model) -> bool:
    """True when the network was trained on the Y of YCbCr (ESPCN as published) rather than on each channel."""
    spec = getattr(model, "spec", None)
    return bool(spec is not None and spec.runs_on_luma(model.config or {}))


# --------------------------------------------------------------------------------------------------------------------
# Running the network


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad bottom and right to a multiple (repeated reflection for inputs smaller than the pad)."""
    if multiple <= 1:
        return x
    height, width = x.shape[-2:]
    need_h = (-height) % multiple
    need_w = (-width) % multiple
    while need_h or need_w:
        h, w = x.shape[-2:]
        step_h = min(need_h, h - 1)
        step_w = min(need_w, w - 1)
        if (need_h and step_h <= 0) or (need_w and step_w <= 0):
            return F.pad(x, (0, need_w, 0, need_h), mode="replicate")  # a 1-pixel side cannot reflect
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        need_h -= step_h
        need_w -= step_w
    return x


@dataclass
class _Job:
    model: Any
    color: np.ndarray  # H×W×Ci, the channels that go through the network
    device: torch.device
    precision: str
    scale: int
    grid: int
    overlap: int
    context: int
    batch: int
    out_channels: int  # channels of the colour part of the result
    runner: Any = None  # what runs the tiles (see enhancer.backends): eager torch, OpenVINO or ONNX Runtime
    known_failing: int | None = None  # smallest tile side that ran out of memory
    retries: int = field(default=0)

    def forward(self, boxes: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
        """Run the network on input boxes (y0, y1, x0, x1) of one size; return H×W×C float32 outputs."""
        y0, y1, x0, x1 = boxes[0]
        height, width = y1 - y0, x1 - x0
        stack = np.stack([self.color[a:b, c:d] for a, b, c, d in boxes])  # N×h×w×Ci
        x = torch.from_numpy(stack).permute(0, 3, 1, 2)
        n, image_c = x.shape[:2]
        net_in = int(self.model.in_channels)
        if net_in == 1 and image_c == 3:
            x = x.reshape(n * 3, 1, height, width)  # each colour channel through the gray network
        elif net_in == 3 and image_c == 1:
            x = x.expand(n, 3, height, width)
        x = x.to(self.device, non_blocking=True).contiguous()
        x = _pad_to_multiple(x, int(self.model.pad_multiple))
        with torch.inference_mode():
            y = self.runner(x)
        expected = (height * self.scale, width * self.scale)
        if y.shape[-2] < expected[0] or y.shape[-1] < expected[1]:
            raise EnhancerError(
                f"{self.model.name}: the network returned {tuple(y.shape[-2:])} for a {height}×{width} tile, "
                f"not ×{self.scale} as its checkpoint says"
            )
        y = y[..., : expected[0], : expected[1]].float().cpu()
        del x
        if net_in == 1 and image_c == 3:
            y = y.reshape(n, 3, *expected)
        out = y.permute(0, 2, 3, 1).numpy()
        if out.shape[-1] == 3 and self.out_channels == 1:
            out = out @ LUMA_WEIGHTS[:, None]
        return list(out)

    def run_box(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """Output of one network input box, halving the tile on out-of-memory until it fits."""
        y0, y1, x0, x1 = box
        side = max(y1 - y0, x1 - x0)
        if self.known_failing is None or side < self.known_failing:
            try:
                return self.forward([box])[0]
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled, others re-raised
                if not is_out_of_memory(exc):
                    raise
                self._note_oom(side, exc)
        return self.run_split(box)

    def _note_oom(self, side: int, exc: BaseException) -> None:
        empty_cache(self.device)
        self.known_failing = side if self.known_failing is None else min(self.known_failing, side)
        self.retries += 1
        half = self.smaller_side()
        if half < 2 * self.grid:
            raise DeviceError(
                f"out of memory on {self.device.type} even for a {side}-pixel tile; close other programs, "
                "use a smaller model, or choose --device cpu"
            ) from exc
        log.warning("out of memory on %s at a %d-pixel tile; retrying with %d-pixel tiles", self.device.type, side, half)

    def smaller_side(self) -> int:
        """Half the smallest network input side known to run out of memory, on the grid."""
        return (int(self.known_failing or 0) // 2) // self.grid * self.grid

    def run_split(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """Compute a box that did not fit from smaller tiles, blended the same way as the main plan."""
        y0, y1, x0, x1 = box
        side = self.smaller_side()
        context = min(self.context, side // 4 // self.grid * self.grid)
        tile = side - 2 * context
        if tile < self.grid:
            raise DeviceError(f"out of memory on {self.device.type} even for the smallest tile")
        overlap = min(self.overlap, tile // 2)
        s = self.scale
        rows = plan_tiles(y0, y1, tile, overlap, context, self.grid, s)
        cols = plan_tiles(x0, x1, tile, overlap, context, self.grid, s)
        result = np.zeros(((y1 - y0) * s, (x1 - x0) * s, self.out_channels), dtype=np.float32)
        for row in rows:
            for col in cols:
                piece = self.run_box((row.start, row.stop, col.start, col.stop))
                _accumulate(result, piece, row, col, s, origin=(y0 * s, x0 * s))
        return result


def _accumulate(
    out: np.ndarray, piece: np.ndarray, row: AxisTile, col: AxisTile, scale: int, origin: tuple[int, int] = (0, 0)
) -> None:
    """out[region] += piece × (row weights ⊗ column weights), only where the weights are non-zero."""
    r0 = row.weight_start - row.start * scale  # offset of the weighted part inside the piece
    c0 = col.weight_start - col.start * scale
    part = piece[r0 : r0 + row.weights.size, c0 : c0 + col.weights.size]
    oy = row.weight_start - origin[0]
    ox = col.weight_start - origin[1]
    target = out[oy : oy + row.weights.size, ox : ox + col.weights.size, : part.shape[-1]]
    part *= row.weights[:, None, None]  # in place: the piece is ours, so no tile-sized temporaries
    part *= col.weights[None, :, None]
    target += part


# --------------------------------------------------------------------------------------------------------------------
# Channels


def _upscale_alpha_into(alpha: np.ndarray, scale: int, out: np.ndarray) -> None:
    """Bicubic upscale of the alpha plane into out (H·s × W·s), clamped, in strips so memory stays small."""
    if scale == 1:
        out[...] = alpha
        return
    height = alpha.shape[0]
    for start in range(0, height, ALPHA_STRIP_ROWS):
        stop = min(height, start + ALPHA_STRIP_ROWS)
        lo = max(0, start - ALPHA_CONTEXT_ROWS)
        hi = min(height, stop + ALPHA_CONTEXT_ROWS)
        strip = torch.from_numpy(np.ascontiguousarray(alpha[lo:hi]))[None, None]
        up = F.interpolate(strip, scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0, 1)
        out[start * scale : stop * scale] = up[0, 0, (start - lo) * scale : (stop - lo) * scale].numpy()


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr planes (float32) of an H×W×3 float RGB image in [0, 1]: full-range BT.601, Pillow's "YCbCr" in
    float (no rounding)."""
    r, g, b = (rgb[..., k].astype(np.float32, copy=False) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = CHROMA_OFFSET - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = CHROMA_OFFSET + 0.5 * r - 0.418688 * g - 0.081312 * b
    return y.astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)


def ycbcr_to_rgb_into(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, out: np.ndarray) -> None:
    """The inverse of `rgb_to_ycbcr` into an H×W×3 float32 `out` (not clamped). `y` may be a view of `out`."""
    cb = cb - CHROMA_OFFSET
    cr = cr - CHROMA_OFFSET
    y = np.array(y, dtype=np.float32)  # a copy: the writes below may overwrite the plane it views
    out[..., 0] = y + 1.402 * cr
    out[..., 1] = y - 0.344136 * cb - 0.714136 * cr
    out[..., 2] = y + 1.772 * cb


def _bicubic_pil(plane: np.ndarray, scale: int) -> np.ndarray:
    """Pillow's bicubic enlargement of a float32 plane (mode "F", so no 8-bit rounding)."""
    from PIL import Image

    height, width = plane.shape
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width * scale, height * scale), Image.Resampling.BICUBIC), dtype=np.float32)


def _merge_chroma_into(color: np.ndarray, scale: int, out: np.ndarray) -> None:
    """out[..., 0] holds the network's Y at the output size; enlarge Cb and Cr of the photo with Pillow's bicubic
    and turn Y, Cb, Cr into RGB in out[..., :3]. Done in strips of input rows (with context rows that are cropped
    away), so the temporaries stay a strip in size."""
    height = color.shape[0]
    for start in range(0, height, ALPHA_STRIP_ROWS):
        stop = min(height, start + ALPHA_STRIP_ROWS)
        lo = max(0, start - ALPHA_CONTEXT_ROWS)
        hi = min(height, stop + ALPHA_CONTEXT_ROWS)
        _y, cb, cr = rgb_to_ycbcr(color[lo:hi])
        keep = slice((start - lo) * scale, (stop - lo) * scale)
        cb = _bicubic_pil(cb, scale)[keep]
        cr = _bicubic_pil(cr, scale)[keep]
        rows = out[start * scale : stop * scale]
        y = np.clip(rows[..., 0], 0.0, 1.0)
        ycbcr_to_rgb_into(y, cb, cr, rows[..., :3])


def is_8bit_levels(color: np.ndarray, rows: int = 256) -> bool:
    """True when every value is an exact 8-bit level (k/255): the photo came from an 8-bit file."""
    for start in range(0, color.shape[0], rows):
        scaled = color[start : start + rows] * 255.0
        if np.abs(scaled - np.rint(scaled)).max() > 1e-3:
            return False
    return True


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def luma_input(color: np.ndarray, eight_bit: bool) -> np.ndarray:
    """The Y plane a luma network sees, H×W×1 float32. From an 8-bit photo it is Pillow's 8-bit Y, as PyTorch's
    super_resolution example feeds it (so the published models see what they were trained on)."""
    if not eight_bit:
        return rgb_to_ycbcr(color)[0][..., None]
    from PIL import Image

    y = np.empty(color.shape[:2], np.float32)
    for start in range(0, color.shape[0], ALPHA_STRIP_ROWS):
        strip = Image.fromarray(_to_u8(color[start : start + ALPHA_STRIP_ROWS])).convert("YCbCr")
        y[start : start + ALPHA_STRIP_ROWS] = np.asarray(strip.getchannel(0), np.float32) / 255.0
    return y[..., None]


def _merge_chroma_8bit_into(color: np.ndarray, scale: int, out: np.ndarray) -> None:
    """As `_merge_chroma_into`, in Pillow's 8-bit YCbCr, as the example does: Cb and Cr of the photo enlarged with
    Pillow's bicubic, merged with the network's Y (rounded to 8 bits) and converted to RGB by Pillow. The published
    models expect exactly this; in float the result is about a level brighter than theirs."""
    from PIL import Image

    height = color.shape[0]
    for start in range(0, height, ALPHA_STRIP_ROWS):
        stop = min(height, start + ALPHA_STRIP_ROWS)
        lo = max(0, start - ALPHA_CONTEXT_ROWS)
        hi = min(height, stop + ALPHA_CONTEXT_ROWS)
        _y, cb, cr = Image.fromarray(_to_u8(color[lo:hi])).convert("YCbCr").split()
        size = (cb.width * scale, cb.height * scale)
        keep = slice((start - lo) * scale, (stop - lo) * scale)
        cb = np.asarray(cb.resize(size, Image.Resampling.BICUBIC))[keep]
        cr = np.asarray(cr.resize(size, Image.Resampling.BICUBIC))[keep]
        rows = out[start * scale : stop * scale]
        y = _to_u8(rows[..., 0])  # the network's Y in 8 bits, rounded (the example truncates)
        planes = [Image.fromarray(np.ascontiguousarray(p)) for p in (y, cb, cr)]
        rgb = Image.merge("YCbCr", planes).convert("RGB")
        rows[..., :3] = np.asarray(rgb, np.float32) / 255.0


def _check_pixels(pixels: Any) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise EnhancerError(f"pixels must be a numpy array (H×W×C float32), not {type(pixels).__name__}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise EnhancerError(f"pixels must be H×W×C with C = 1, 3 or 4 channels, not shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise EnhancerError(f"the image is empty (shape {pixels.shape})")
    if not np.issubdtype(pixels.dtype, np.floating):
        raise EnhancerError(f"pixels must be float32 in [0, 1], not {pixels.dtype} (divide 8-bit data by 255)")
    return pixels


def _resolve_tile(tile: Any, auto: Callable[[], int], grid: int, image_hw: tuple[int, int]) -> int:
    if tile is None or tile == 0 or (isinstance(tile, str) and tile.strip().lower() in ("0", "none", "off")):
        return max(image_hw)
    if isinstance(tile, str) and tile.strip().lower() == "auto":
        return auto()
    try:
        value = int(tile)
    except (TypeError, ValueError):
        raise EnhancerError(f"tile must be 'auto' or a number of pixels, not {tile!r}") from None
    if value < 0:
        raise EnhancerError(f"tile must be positive, not {value}")
    if value >= max(image_hw):
        return max(image_hw)
    snapped = max(2 * grid, value // grid * grid)
    if snapped != value:
        log.info("tile %d snapped to %d (a multiple of the network's %d-pixel window)", value, snapped, grid)
    return snapped


# --------------------------------------------------------------------------------------------------------------------
# The tile plan of a run


@dataclass(frozen=True)
class TilePlan:
    """How `enhance` cuts one image for one network: the tiles along each axis and what feeds them. Also what the
    time estimate (`enhancer.estimate`) counts and times, so both see the same tiles."""

    model: Any
    height: int
    width: int
    side: int  # blended span of a tile, input pixels
    overlap: int
    context: int
    rows: list[AxisTile]
    cols: list[AxisTile]
    batch: int  # tiles per forward pass
    compiled_side: int  # the side a compiled backend uses instead (an automatic tile is capped for those)
    runner_shape: tuple[int, ...]  # 1×C×H×W network input of a compiled backend's tile, for its automatic choice

    @property
    def total(self) -> int:
        return len(self.rows) * len(self.cols)

    def for_runner(self, runner: Any) -> "TilePlan":
        """The plan as `runner` runs it: a compiled backend gets the capped side and at most two extents per axis,
        one tile per pass (few shapes, so few compiled graphs); eager torch takes the plan as it is."""
        if not runner.uniform_tiles:
            return self
        grid, scale = tile_grid(self.model), int(self.model.scale)
        side, overlap, rows, cols = self.side, self.overlap, self.rows, self.cols
        if self.compiled_side != side:
            side, overlap = self.compiled_side, min(overlap, self.compiled_side // 2)
            rows = plan_tiles(0, self.height, side, overlap, self.context, grid, scale)
            cols = plan_tiles(0, self.width, side, overlap, self.context, grid, scale)
        rows, cols = uniform_extents(rows, 0, self.height, grid), uniform_extents(cols, 0, self.width, grid)
        return TilePlan(self.model, self.height, self.width, side, overlap, self.context, rows, cols, 1,
                        self.compiled_side, self.runner_shape)

    def extents(self) -> dict[tuple[int, int], int]:
        """How many tiles have each input extent (height, width), context included, before any padding."""
        counts: dict[tuple[int, int], int] = {}
        for row in self.rows:
            for col in self.cols:
                key = (row.stop - row.start, col.stop - col.start)
                counts[key] = counts.get(key, 0) + 1
        return counts


def plan_run(
    model, image_hw: tuple[int, int], channels: int, tile: int | str | None = "auto", overlap: int | None = None,
    precision: str = "fp32", reserve: int = 0, host_budget: int | None = None,
) -> TilePlan:
    """The tile plan of `enhance` for an image of `image_hw` whose network input has `channels` channels (1 for a
    luma network), in the resolved `precision`; `reserve`: bytes of host memory the result will take; `host_budget`:
    the most bytes one automatic tile may use on the CPU. Call `TilePlan.for_runner` once the runner is known."""
    height, width = image_hw
    device = torch.device(model.device)
    grid = tile_grid(model)
    scale = int(model.scale)
    side = _resolve_tile(
        tile, lambda: auto_tile_size(model, device, precision, (height, width), reserve=reserve, host_budget=host_budget),
        grid, (height, width)
    )
    overlap = default_overlap(model) if overlap is None else int(overlap)
    if overlap < 0:
        raise EnhancerError(f"overlap must be 0 or more, not {overlap}")
    overlap = min(overlap, side // 2)
    context = context_for(model)
    rows = plan_tiles(0, height, side, overlap, context, grid, scale)
    cols = plan_tiles(0, width, side, overlap, context, grid, scale)
    batch = _batch_size(model, device, precision, side + 2 * context, channels)
    pad = max(1, int(model.pad_multiple))
    # A compiled graph runs the plain network, whose largest feature maps are at the output size: past a few hundred
    # pixels they leave the caches (MobileSR x4 at 512 px through OpenVINO: 3x slower than at 256 px per pixel), so
    # an automatic tile stays at COMPILED_TILE input pixels for those backends. The automatic choice compares the
    # backends on that tile.
    compiled_side = side
    if tile == "auto" or tile is None:
        compiled_side = max(grid, min(side, (COMPILED_TILE - 2 * context) // grid * grid))
    compiled_extent = min(compiled_side + 2 * context, max(height, width))
    runner_shape = (1, int(model.in_channels), *((-(-min(compiled_extent, n) // pad) * pad) for n in (height, width)))
    return TilePlan(model, height, width, side, overlap, context, rows, cols, batch, compiled_side, runner_shape)


# --------------------------------------------------------------------------------------------------------------------
# The public entry point


def enhance(
    pixels: np.ndarray,
    model,
    tile: int | str | None = "auto",
    overlap: int | None = None,
    precision: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    *,
    out: np.ndarray | None = None,
    threads: int = 0,
    compile: bool = False,
    backend: str = "auto",
    accelerator: str | None = None,
    report: Callable[[str], None] | None = None,
    tile_budget: int | None = None,
) -> np.ndarray:
    """Run `model` over a float32 H×W×C photo in [0, 1] (C = 1, 3 or 4) and return it enlarged by `model.scale`.

    tile: the side in input pixels of the pieces fed to the network ("auto": from free device memory; None or 0:
    the whole image at once). overlap: input pixels shared by neighbouring tiles (default per network).
    precision: "auto", "fp32", "bf16" or "fp16". progress(done_tiles, total_tiles) is called as tiles finish; cancel
    is checked between tiles (anything with is_set()) and raises Cancelled. out: optional preallocated H·s×W·s×C
    float32 array (for example a numpy memmap for huge outputs) that receives the result. threads: torch threads on
    the CPU (0: one per physical core, fewer while other processes keep cores busy; see `devices.cpu_threads`).
    compile: run the network through torch.compile, one graph per tile shape (for GPUs; see `enhancer.compilation`).
    backend: "auto", "torch", "openvino" or "onnxruntime" (see `enhancer.backends`); accelerator: "dml" or
    "intel-gpu" for a GPU that ONNX Runtime or OpenVINO drives. report(backend_name) says which backend ran.
    tile_budget: the most host bytes one automatic tile may take on the CPU (see `enhancer.memory_budget`).
    """
    was_2d = isinstance(pixels, np.ndarray) and pixels.ndim == 2
    pixels = _check_pixels(pixels)
    in_channels = int(model.in_channels)
    if in_channels not in (1, 3):
        raise EnhancerError(
            f"{model.name}: this model takes {in_channels} input channels (a dual-pixel defocus model needs the two "
            "dual-pixel views of a camera, not one photo), so it cannot enhance a single photo"
        )
    height, width, channels = pixels.shape
    has_alpha = channels in (2, 4)
    color_channels = channels - 1 if has_alpha else channels
    color = pixels[..., :color_channels]
    if color.dtype != np.float32:
        color = color.astype(np.float32)
    scale = int(model.scale)
    device = torch.device(model.device)
    chosen = resolve_precision(precision, device, model.arch)
    grid = tile_grid(model)
    # A luma network on a colour photo: only Y goes through it; the chroma is enlarged with bicubic at the end.
    luma = color_channels == 3 and in_channels == 1 and runs_on_luma(model)
    eight_bit = luma and is_8bit_levels(color)
    net_input = luma_input(color, eight_bit) if luma else color

    out_shape = (height * scale, width * scale, channels)
    if out is None:
        out = np.zeros(out_shape, dtype=np.float32)  # calloc: pages are only touched as tiles land
    else:
        if out.shape != out_shape or out.dtype != np.float32:
            raise EnhancerError(f"out must be float32 of shape {out_shape}, not {out.dtype} {out.shape}")
        out[...] = 0

    reserve = 0 if isinstance(out, np.memmap) else out.nbytes  # a disk buffer's pages are the system's to evict
    plan = plan_run(model, (height, width), net_input.shape[-1], tile, overlap, chosen, reserve=reserve,
                    host_budget=tile_budget)

    done = 0
    with cpu_threads_for(device, threads):
        runner = make_runner(model, device, chosen, backend, compile, accelerator, plan.runner_shape)
        plan = plan.for_runner(runner)
        side, overlap, context, rows, cols, total = plan.side, plan.overlap, plan.context, plan.rows, plan.cols, plan.total
        batch = plan.batch
        if report is not None:
            report(runner.name)
        log.info(
            "enhance %s: %d×%d ×%d on %s/%s through %s, tile %d, overlap %d, context %d, %d tiles, batch %d",
            model.name, width, height, scale, device.type, runner.precision, runner.name, side, overlap, context,
            total, batch,
        )
        job = _Job(
            model, net_input, device, runner.precision, scale, grid, overlap, context, batch,
            out_channels=net_input.shape[-1], runner=runner,
        )
        for row in rows:
            groups: dict[int, list[AxisTile]] = {}
            for col in cols:
                groups.setdefault(col.stop - col.start, []).append(col)
            for same_width in groups.values():
                for first in range(0, len(same_width), job.batch):
                    _check_cancel(cancel)
                    chunk = same_width[first : first + job.batch]
                    for col, piece in zip(chunk, _run_chunk(job, row, chunk)):
                        _accumulate(out, piece, row, col, scale)
                        done += 1
                        if progress is not None:
                            progress(done, total)
                    if device.type == "cpu" and side >= LARGE_CPU_TILE:
                        release_host_memory()  # so that heap fragments do not add up over many large tiles
    _check_cancel(cancel)
    del net_input
    if luma:
        (_merge_chroma_8bit_into if eight_bit else _merge_chroma_into)(color, scale, out)

    if has_alpha:
        _upscale_alpha_into(pixels[..., -1].astype(np.float32, copy=False), scale, out[..., -1])
    for start in range(0, out.shape[0], 512):  # clamp in strips: no full-size temporary
        np.clip(out[start : start + 512], 0.0, 1.0, out=out[start : start + 512])
    return out[..., 0] if was_2d else out


def _run_chunk(job: _Job, row: AxisTile, chunk: list[AxisTile]) -> list[np.ndarray]:
    boxes = [(row.start, row.stop, col.start, col.stop) for col in chunk]
    if len(boxes) > 1 and job.known_failing is None:
        try:
            return job.forward(boxes)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled, others re-raised
            if not is_out_of_memory(exc):
                raise
            empty_cache(job.device)
            job.batch = 1
            log.warning("out of memory with a batch of %d tiles; running them one at a time", len(boxes))
    return [job.run_box(box) for box in boxes]


def _batch_size(model, device: torch.device, precision: str, side: int, channels: int) -> int:
    """Several small tiles per forward pass on a GPU, where launch overhead dominates; one on the CPU."""
    if device.type == "cpu" or side > 256:
        return 1
    per_tile = bytes_per_pixel(model, precision) * side * side * _channel_batch(model, channels)
    return int(max(1, min(8, free_memory_bytes(device) * 0.5 // max(per_tile, 1))))


def _check_cancel(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")
