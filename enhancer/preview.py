"""Region preview: run a job's chain on one part of a photo, in seconds, to judge a model before the full run.

    result = enhance_region(Job(inputs=[path], models=["own-mobilesr-x4"]), path, (400, 300, 656, 556))
    result.before   # the photo's pixels in the box
    result.after    # what the full run gives for the same box (to within the tiler's blending), at the chain's scale

The box is cut out with a margin on every side, so that its pixels see the same surroundings as in the full run
(the network's receptive field and the tiler's context), and the margin is cropped off the output again. The chain
runs through `pipeline.run_chain`, the code of the full run, with the job's tile, device, precision and backend. The
job's output size and format are not applied: the preview shows the network's own pixels. Nothing is written.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import Cancelled
from .imageio import Photo, read_photo
from .pipeline import CancelFlag, Job, ModelCache, describe_model, load_chain, run_chain

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in photo pixels, right and bottom exclusive


@dataclass(frozen=True)
class RegionResult:
    """One model chain on one region. `box` is the region as used (clipped to the photo); `before` the photo's pixels
    there (float32 H×W×C in [0, 1]); `after` the chain's output for it, `scale` times larger; `margin` the input
    pixels of context cut with the box on each side where the photo goes on (see `region_margin`)."""

    box: Box
    before: np.ndarray
    after: np.ndarray
    scale: int
    margin: int
    models: tuple[str, ...]  # as `pipeline.describe_model` says them, e.g. "own-mobilesr-x4 (mobilesr x4) on CPU, fp32"
    backend: str  # what ran the networks ("+"-joined when a chain used several)
    seconds: float  # the chain's run time, without reading the photo


def region_margin(models: list[Any]) -> int:
    """Input pixels to add on each side of a region so that its output does not depend on where the region was cut.

    Each model needs the tiler's context (`tiling.context_for`, which covers the reach of its windows) in its own
    input pixels; a later model of a chain sees pixels already enlarged by the models before it, so its need counts
    for less in the photo's pixels. One more window of the first model, and 2 pixels for the bicubic chroma of the
    luma networks, come on top.
    """
    from .tiling import context_for, tile_grid

    margin = 2.0
    enlarged = 1
    for model in models:
        margin += context_for(model) / enlarged
        enlarged *= max(1, int(getattr(model, "scale", 1)))
    if models:
        margin += tile_grid(models[0])
    return int(math.ceil(margin))


def check_box(box: Any, width: int, height: int, where: str) -> Box:
    """`box` as four ints clipped to a `width`×`height` photo; `ValueError` naming `where` when it holds no pixel."""
    try:
        left, top, right, bottom = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: the region must be four numbers (left, top, right, bottom), got {box!r}") from None
    left, right = max(0, min(left, right)), min(width, max(left, right))
    top, bottom = max(0, min(top, bottom)), min(height, max(top, bottom))
    if right <= left or bottom <= top:
        raise ValueError(f"{where}: the region {tuple(box)!r} does not overlap the {width}×{height} photo")
    return left, top, right, bottom


def enhance_region(
    job: Job,
    path: str | os.PathLike | Photo,
    box: Any,
    cache: ModelCache | None = None,
    cancel: CancelFlag | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RegionResult:
    """Run `job`'s chain on `box` of the photo at `path` (or an already read `Photo`, for an A/B of two models on
    one photo) and return the region before and after.

    `box` is (left, top, right, bottom) in the photo's pixels as seen (EXIF orientation applied); it is clipped to the
    photo. Raises `ValueError` for a box outside the photo or invalid job options, `ImageError` for a photo that
    cannot be read, `ModelError` / `DeviceError` when the chain cannot be loaded, and `Cancelled` when `cancel` is
    set (checked between tiles). `progress(done, total)` counts tiles of the whole chain.
    """
    photo = path if isinstance(path, Photo) else read_photo(Path(path))
    where = str(photo.source or path)
    job.validate()
    cache = cache if cache is not None else ModelCache()
    from .backends import check as check_backend

    check_backend(job.backend)
    models = load_chain(job, cache)
    left, top, right, bottom = check_box(box, photo.width, photo.height, where)
    margin = region_margin(models)
    # The cut starts on the first model's window grid, as the full run's tiles do, so the windows fall the same way.
    from .tiling import tile_grid

    grid = tile_grid(models[0]) if models else 1
    cut_left = max(0, left - margin) // grid * grid
    cut_top = max(0, top - margin) // grid * grid
    cut_right = min(photo.width, right + margin)
    cut_bottom = min(photo.height, bottom + margin)
    pixels = np.ascontiguousarray(photo.pixels[cut_top:cut_bottom, cut_left:cut_right])

    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")
    backends: list[str] = []
    started = time.monotonic()
    enlarged = run_chain(job, pixels, models, progress, cancel, report=backends.append)
    seconds = time.monotonic() - started
    scale = 1
    for model in models:
        scale *= max(1, int(getattr(model, "scale", 1)))
    y0, x0 = (top - cut_top) * scale, (left - cut_left) * scale
    after = np.ascontiguousarray(enlarged[y0 : y0 + (bottom - top) * scale, x0 : x0 + (right - left) * scale])
    before = np.ascontiguousarray(photo.pixels[top:bottom, left:right])
    return RegionResult(
        box=(left, top, right, bottom),
        before=before,
        after=after,
        scale=scale,
        margin=margin,
        models=tuple(describe_model(m, job.precision) for m in models),
        backend="+".join(dict.fromkeys(backends)),
        seconds=seconds,
    )
