"""How long a job will take, before it runs: "about 6 min on the CPU".

The estimate loads the chain as the run does (same device, precision, backend, tile size and overlap), plans the
tiles with the run's own `tiling.plan_run` (with the photo's memory plan, as the run), times ONE real network pass
of the tile shape the run uses most (after one warm-up pass of that shape, so first-call costs are not multiplied; a
tile that would take more than a few seconds is timed on smaller probes, see `PROBE_SIDES`), and multiplies: every
tile of every photo through every model of the chain (a later model sees the image the earlier ones enlarged).
Tiles of other shapes (the edge remainders) are counted at the timed pass's cost per pixel. A per-photo cost for
decoding, the colour merge of luma networks, a resize to an asked output size and encoding the output is added from
the pixel counts, at rates measured here on a small sample.

Per-pass times are remembered for the process, per (model, device, backend, precision, threads, tile shape), so the
estimate of a batch, or a second estimate of the same job, costs almost nothing.

    estimate = estimate_job(job, cache=cache)      # reads only the image headers for their sizes
    print(estimate.text)                           # "about 40 s on the CPU"

First-shape cost: a compiled backend prepares a graph the first time it sees a tile shape: OpenVINO and ONNX Runtime
export the network to ONNX (cached on disk) and compile it (kept for the process), torch.compile traces and compiles
(seconds to minutes on a GPU). On the 2-core AMD EPYC, MobileSR x4 on a 256-pixel tile through OpenVINO took 5.3 s
the first time, export and compile included, and 4.9-5.3 s after (under load). That cost is not in the estimate:
the warm-up pays it for the main shape, and the graph is kept, so the run that follows does not pay it again for
that shape; the up to three edge shapes of a compiled run are still prepared during the run, once each. Eager torch
has no such cost beyond its first call, which the warm-up also absorbs.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TYPE_CHECKING

import numpy as np
import torch

from .errors import Cancelled, EnhancerError, ImageError

if TYPE_CHECKING:
    from .pipeline import Job, ModelCache

# Eager torch times the tile on a ladder of probes cut from its corner, PROBE_SIDES then the tile itself: from each
# rung timed it climbs to the largest one that the time per pixel so far says takes at most `RUNG_LIMIT_S`, and the
# largest rung timed gives the time per pixel. So a heavy model's estimate does not take minutes (SwinIR-M x4: a
# 496×512 tile is about 2 min on the 2-core AMD EPYC), and the time per pixel comes from a tile near the real size:
# it falls with the size (there, MobileSR x4 on one thread: 28 µs a pixel at 128², 16 at 256², 15 at 496²; SwinIR-M
# x4 on two: 834 at 64², 501 at 128², 437 at 256²). Compiled backends always time the real tile: a probe would be
# one more graph to prepare, and their automatic tiles are small anyway.
PROBE_SIDES = (128, 256)
RUNG_LIMIT_S = 4.0
# Fast passes are timed a few times (median), so that timer and scheduling noise do not dominate.
REPEAT_BELOW_S = 0.5
MAX_REPEATS = 5
# The side of the sample image that the per-photo costs (decode, colour merge, encode) are measured on.
SAMPLE_SIDE = 512
# A tile shape whose area is within this factor of one already timed is not timed again, only scaled by area.
NEAR_AREA_RATIO = 1.5
# A longer estimate than this on a CPU has `lighter_alternative` look for a lighter model of the same task.
LONG_SECONDS = 60.0
# A model counts as lighter when its estimate is at most this fraction of the job's.
LIGHTER_FRACTION = 0.7


@dataclass(frozen=True)
class Estimate:
    """The expected time of a job (or one photo of it) and where it would run."""

    seconds: float
    device: str  # for people: "the CPU", "an NVIDIA H200", "the Apple GPU"
    tiles: int  # network tiles the whole run will compute, over every photo and every model of the chain

    @property
    def text(self) -> str:
        """E.g. "about 40 s on the CPU", "about 1 h 10 min on an NVIDIA H200"."""
        return f"{format_duration(self.seconds)} on {self.device}"


def format_duration(seconds: float) -> str:
    """A rough duration for people: "about 4 s", "about 40 s", "about 6 min", "about 1 h 10 min".

    Rounded to what an estimate can say: whole seconds below 10 s, 5 s steps below a minute, whole minutes below an
    hour, 5-minute steps above."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds >= 0, got {seconds!r}")
    if seconds < 0.5:
        return "under 1 s"
    if seconds < 9.5:
        return f"about {round(seconds)} s"
    if seconds < 57.5:
        return f"about {max(10, 5 * round(seconds / 5))} s"
    minutes = seconds / 60
    if minutes < 59.5:
        return f"about {max(1, round(minutes))} min"
    total = 5 * round(minutes / 5)
    hours, rest = divmod(total, 60)
    return f"about {hours} h" + (f" {rest} min" if rest else "")


# ------------------------------------------------------------------------------------------------------ the API


def estimate_job(job: "Job", cache: "ModelCache | None" = None, cancel: Any = None) -> Estimate:
    """The time of the whole `job`: every input it would process (folders expanded as the run does), each sized from
    its image header only. Inputs that cannot be read, or that the run would refuse for their memory, count nothing
    (the run reports them). The automatic tiles are those of the run's memory plan. Raises what `run_job`
    raises before it touches a file (`ValueError`, `ModelError`, `DeviceError`) and `Cancelled`. A run in progress on
    the same device slows the timed tile too: estimate before a run, not during one."""
    models = _load(job, cache)
    return _estimate_many(job, models, _headers(job, models, cancel), cancel)


def estimate_photo(
    job: "Job", width: int, height: int, cache: "ModelCache | None" = None, cancel: Any = None, *,
    channels: int = 3, source_format: str = "JPEG",
) -> Estimate:
    """The time of one `width`×`height` photo (as shown, after its orientation) through `job`'s chain.
    `channels`: 1 gray, 3 RGB, 4 with alpha; `source_format`: Pillow's name of the input's format (for the
    output format of `format="same"`). Raises `memory_budget.MemoryBudgetError` (an `ImageError`) when the run would
    refuse a photo of that size on this machine, saying what it needs."""
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"a photo size must be positive, got {width}×{height}")
    models = _load(job, cache)
    return _estimate(job, models, int(width), int(height), int(channels), source_format, cancel)


def estimate_file(
    job: "Job", path: str | os.PathLike, models: list[Any] | None = None, cache: "ModelCache | None" = None,
    cancel: Any = None,
) -> Estimate | None:
    """The time of one image file through `job`'s chain (`models`: the chain already loaded, as `run_job` has it);
    None when its header cannot be read."""
    header = read_header(path)
    if header is None:
        return None
    if models is None:
        models = _load(job, cache)
    width, height, channels, source_format = header
    return _estimate(job, models, width, height, channels, source_format, cancel, path)


def lighter_alternative(
    job: "Job", cache: "ModelCache | None" = None, cancel: Any = None, long_seconds: float = LONG_SECONDS,
) -> "tuple[str, Estimate] | None":
    """When `job` would take longer than `long_seconds` on a CPU: an installed catalog model of the same task as the
    slowest model of its chain that makes the job clearly faster (at most `LIGHTER_FRACTION` of its time), as
    (model id, the job's estimate with it in that place). The display name is `store.get_entry(model_id).name`.
    The model has the same scale; one of another scale only when no such model exists and the job asks for an output
    size (`Job.output_size`), which the resize then keeps.

    Of the lighter models, the slowest one whose estimate is within `long_seconds` is chosen (the heaviest model that
    is quick enough), else the fastest. None when the job is not long, runs on a GPU, or no installed model of that
    task is lighter."""
    from . import store
    from .devices import accelerator_for

    models = _load(job, cache)
    if accelerator_for(job.device) or any(torch.device(m.device).type != "cpu" for m in models):
        return None  # a GPU run is rarely long enough to trade quality for time
    headers = _headers(job, models, cancel)
    if not headers:
        return None
    current = _estimate_many(job, models, headers, cancel)
    if current.seconds <= long_seconds:
        return None
    # The model of the chain that costs most is the one worth replacing.
    costs = [_estimate_many(job, [m], _headers_at(headers, models[:k]), cancel).seconds for k, m in enumerate(models)]
    slowest = max(range(len(models)), key=costs.__getitem__)
    target = models[slowest]
    task, scale = getattr(target, "task", None), int(target.scale)
    if not task:
        return None
    current_ids = {str(getattr(m, "name", "")) for m in models}
    candidates = []
    for entry in store.load_catalog():
        if entry.task != task or entry.id in current_ids or not store.is_installed(entry):
            continue
        candidates.append(entry)
    same_scale = [e for e in candidates if int(e.scale) == scale]
    size = getattr(job, "output_size", None)
    if same_scale:
        candidates = same_scale
    elif size is None or size.mode == "model":
        return None  # another scale would change the output size; with an asked size it stays the same
    lighter: list[tuple[float, str, Estimate]] = []
    cache = cache if cache is not None else _shared_cache()
    for entry in candidates:
        _check(cancel)
        try:
            replacement = cache.get(entry.id, job.device)
        except EnhancerError:
            continue  # an installed file that does not load is the model manager's business, not an offer
        chain = list(models)
        chain[slowest] = replacement
        estimate = _estimate_many(job, chain, headers, cancel)
        if estimate.seconds <= current.seconds * LIGHTER_FRACTION:
            lighter.append((estimate.seconds, entry.id, estimate))
    if not lighter:
        return None
    quick_enough = [c for c in lighter if c[0] <= long_seconds]
    seconds, model_id, estimate = max(quick_enough) if quick_enough else min(lighter)
    return model_id, estimate


def device_for_people(device: str | torch.device, models: list[Any] | None = None) -> str:
    """Where the networks run, as a sentence says it: "the CPU", "an NVIDIA H200", "the Apple GPU"."""
    from .devices import accelerator_for, resolve_device

    accelerator = accelerator_for(device)
    if accelerator == "dml":
        return "the GPU (DirectML)"
    if accelerator == "intel-gpu":
        return "the Intel GPU"
    resolved = torch.device(models[0].device) if models else resolve_device(device)
    if resolved.type == "cuda":
        try:
            name = torch.cuda.get_device_name(resolved)
        except (RuntimeError, AssertionError):
            return "the GPU"
        return f"{_article(name)} {name}"
    if resolved.type == "mps":
        return "the Apple GPU"
    return "the CPU"


def _article(name: str) -> str:
    """ "an NVIDIA H200", "an AMD Radeon", "a GeForce": a vowel, or an acronym said from a letter such as N or R."""
    text = name.strip()
    first = text[:1].upper()
    spelled = len(text) > 1 and text[:2].isupper() and first in "FHLMNRSX"
    return "an" if first in "AEIOU" or spelled else "a"


def read_header(path: str | os.PathLike) -> tuple[int, int, int, str] | None:
    """(width, height, channels, Pillow format) of an image file from its header, the sides as shown (EXIF
    orientation applied); None when Pillow cannot open it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = _orientation(im)
            channels = _channels(im)
            source_format = im.format or "PNG"
    except Exception:  # noqa: BLE001 - the run reports an unreadable file; an estimate just counts nothing for it
        return None
    if orientation in (5, 6, 7, 8):  # a quarter turn: the photo is shown with its sides swapped
        width, height = height, width
    return width, height, channels, source_format


def _orientation(im) -> int:
    from PIL import Image

    raw = im.info.get("exif")
    try:
        # PNG keeps EXIF in a chunk: reading it through getexif() would decode the image, so only the header's.
        exif = Image.Exif() if im.format == "PNG" else im.getexif()
        if im.format == "PNG" and raw:
            exif.load(raw)
        return int(exif.get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the run copes, the estimate assumes upright
        return 1


def _channels(im) -> int:
    """The channels `read_photo` gives this image: 1 gray, 3 RGB, 4 with alpha (gray with alpha comes as RGBA)."""
    mode = im.mode
    alpha = "A" in mode or "a" in mode or "transparency" in im.info
    gray = mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
    return 4 if alpha else (1 if gray else 3)


# ------------------------------------------------------------------------------------------------------ the work


_cache_lock = threading.Lock()
# One measurement at a time: two estimates timing tiles at once (two windows of the app) would slow each other down.
_timing_lock = threading.Lock()
_default_cache: "ModelCache | None" = None
# (model key, device, backend, precision, threads, channels, batch) -> {tile extent: seconds of one pass}
_pass_seconds: dict[tuple, dict[tuple[int, int], float]] = {}
# ("encode" | "decode" | "luma" | "resize", ...) -> seconds per pixel of that per-photo step
_pixel_seconds: dict[tuple, float] = {}


def _shared_cache() -> "ModelCache":
    global _default_cache
    from .pipeline import ModelCache

    with _cache_lock:
        if _default_cache is None:
            _default_cache = ModelCache()
        return _default_cache


def _load(job: "Job", cache: "ModelCache | None") -> list[Any]:
    from .backends import check as check_backend
    from .pipeline import load_chain

    job.validate()
    check_backend(job.backend)
    return load_chain(job, cache if cache is not None else _shared_cache())


def _check(cancel: Any) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")


def _headers(job: "Job", models: list[Any], cancel: Any = None) -> list[tuple[int, int, int, str]]:
    """(width, height, channels, format) of every input the run would process, as `run_job` collects them."""
    from .pipeline import InputFile, collect_inputs, default_suffix, make_suffix

    size = getattr(job, "output_size", None)
    suffix = make_suffix(job.suffix, models, size) if job.suffix is not None else default_suffix(models, size)
    found = []
    for item in collect_inputs(job.inputs, job.recursive, skip_stem_suffix=suffix):
        _check(cancel)
        if isinstance(item, InputFile):
            header = read_header(item.path)
            if header is not None:
                found.append(header)
    return found


def _headers_at(headers: list[tuple[int, int, int, str]], before: list[Any]) -> list[tuple[int, int, int, str]]:
    """The photo sizes as the model after `before` sees them."""
    scale = math.prod(int(m.scale) for m in before)
    return [(w * scale, h * scale, c, f) for w, h, c, f in headers]


def _estimate_many(job: "Job", models: list[Any], headers, cancel: Any) -> Estimate:
    # Photos of one size (a camera's folder) are planned once and counted as many times as they occur.
    counts: dict[tuple[int, int, int, str], int] = {}
    for header in headers:
        counts[header] = counts.get(header, 0) + 1
    seconds, tiles = 0.0, 0
    for (width, height, channels, source_format), count in counts.items():
        try:
            one = _estimate(job, models, width, height, channels, source_format, cancel)
        except ImageError:  # a photo too large for this machine's memory: the run refuses it, saying what it needs
            continue
        seconds, tiles = seconds + count * one.seconds, tiles + count * one.tiles
    return Estimate(seconds, device_for_people(job.device, models), tiles)


def _estimate(job: "Job", models: list[Any], width: int, height: int, channels: int, source_format: str,
              cancel: Any, path: str | os.PathLike = "photo") -> Estimate:
    """One photo through the chain. Raises `MemoryBudgetError` (an `ImageError`) when the run would refuse it."""
    memory = _memory_plan(job, models, width, height, channels, path)
    budgets = memory.tile_budgets if memory is not None and memory.tile_budgets else (None,) * len(models)
    streamed = memory is not None and memory.streamed
    seconds, tiles = _io_seconds(job, models, width, height, channels, source_format), 0
    for model, budget in zip(models, budgets):
        _check(cancel)
        model_seconds, model_tiles = _network_seconds(job, model, height, width, channels, cancel, budget, streamed)
        seconds += model_seconds
        tiles += model_tiles
        height, width = height * int(model.scale), width * int(model.scale)
    return Estimate(seconds, device_for_people(job.device, models), tiles)


def _memory_plan(job: "Job", models: list[Any], width: int, height: int, channels: int, path: str | os.PathLike):
    """The photo's memory plan as `run_job` makes it (`enhancer.memory_budget`): it bounds the automatic tiles."""
    from .memory_budget import plan_photo
    from .paths import cache_dir

    scale = math.prod(int(m.scale) for m in models)
    size = getattr(job, "output_size", None)
    final_w, final_h = size.target(width, height, scale) if size is not None else (width * scale, height * scale)
    return plan_photo(Path(path), models, (height, width), channels, tile=job.tile, final_hw=(final_h, final_w),
                      buffer_folders=(cache_dir(),))


def _network_seconds(job: "Job", model: Any, height: int, width: int, channels: int, cancel: Any,
                     host_budget: int | None = None, streamed: bool = False) -> tuple[float, int]:
    """Seconds and tiles of one model over one image, planned and run as `tiling.enhance` does (`host_budget`: the
    memory plan's bound on one automatic tile; `streamed`: the result goes to a disk buffer, not reserved memory)."""
    from .backends import make_runner
    from .devices import accelerator_for, cpu_threads_for, resolve_precision
    from .tiling import plan_run, runs_on_luma

    device = torch.device(model.device)
    precision = resolve_precision(job.precision, device, model.arch)
    color_channels = 3 if channels == 4 else channels
    luma = color_channels == 3 and int(model.in_channels) == 1 and runs_on_luma(model)
    net_channels = 1 if luma else color_channels
    scale = int(model.scale)
    # The result array, as `enhance` reserves it (a disk buffer's pages are the system's to evict: nothing).
    reserve = 0 if streamed else height * scale * width * scale * channels * 4
    plan = plan_run(model, (height, width), net_channels, job.tile, job.overlap, precision, reserve=reserve,
                    host_budget=host_budget)
    with _timing_lock, cpu_threads_for(device, job.threads) as threads:
        runner = make_runner(model, device, precision, job.backend, job.compile, accelerator_for(job.device),
                             plan.runner_shape)
        plan = plan.for_runner(runner)
        passes = _passes(plan)
        # The shape most passes have (the interior tiles) is the one timed.
        reference = max(passes, key=lambda shape: (passes[shape], shape[0] * shape[1]))
        pad = max(1, int(model.pad_multiple))
        key = (_model_key(model), str(device), runner.name, runner.precision, threads, net_channels, plan.batch)
        measured = _pass_seconds.setdefault(key, {})
        reference_area = _padded_area(reference, pad)
        per_pass = measured.get(reference)
        if per_pass is None:
            # A shape of about the same area already timed (a photo of another size) is scaled by area, so that a
            # batch of photos of many sizes is timed a few times, not once per photo.
            near = [(abs(math.log(_padded_area(shape, pad) / reference_area)), shape) for shape in measured]
            near = [item for item in near if item[0] <= math.log(NEAR_AREA_RATIO)]
            if near:
                shape = min(near)[1]
                per_pass = measured[shape] * reference_area / _padded_area(shape, pad)
            else:
                _check(cancel)
                per_pass = measured[reference] = _time_pass(model, runner, device, plan, reference, net_channels)
    seconds = sum(count * per_pass * _padded_area(shape, pad) / reference_area for shape, count in passes.items())
    return seconds, plan.total


def _passes(plan: Any) -> dict[tuple[int, int], int]:
    """Forward passes per tile extent: `enhance` batches the tiles of a row that have the same width."""
    passes: dict[tuple[int, int], int] = {}
    for row in plan.rows:
        widths: dict[int, int] = {}
        for col in plan.cols:
            widths[col.stop - col.start] = widths.get(col.stop - col.start, 0) + 1
        for width, count in widths.items():
            key = (row.stop - row.start, width)
            passes[key] = passes.get(key, 0) + math.ceil(count / plan.batch)
    return passes


def _padded_area(shape: tuple[int, int], pad: int) -> int:
    return (-(-shape[0] // pad) * pad) * (-(-shape[1] // pad) * pad)


def _model_key(model: Any) -> tuple:
    return (str(getattr(model, "source", "")), str(getattr(model, "name", "")), model.arch, repr(model.config),
            id(model.net))


def _time_pass(
    model: Any, runner: Any, device: torch.device, plan: Any, shape: tuple[int, int], channels: int
) -> float:
    """Seconds of one forward pass of `plan.batch` tiles of `shape`, through the run's own tile code (stacking,
    padding, the runner, the copy back, and on out-of-memory the same split into smaller tiles) and the blend into
    the result. Each shape timed is run once first (the warm-up) and its time thrown away; eager torch climbs the
    ladder of probes (`PROBE_SIDES`)."""
    pad = max(1, int(model.pad_multiple))
    if runner.uniform_tiles or getattr(runner, "compile", False):
        return _timed(_pass_runner(model, runner, device, plan, shape, channels))
    rungs = [tuple(min(side, -(-probe // pad) * pad) for side in shape) for probe in PROBE_SIDES]
    rungs = [rung for rung in dict.fromkeys(rungs) if rung != shape] + [shape]
    rung = rungs[0]
    while True:
        per_pixel = _timed(_pass_runner(model, runner, device, plan, rung, channels)) / _padded_area(rung, pad)
        # Up to the largest rung that this time per pixel says is quick enough to time (often the tile itself).
        higher = [r for r in rungs[rungs.index(rung) + 1 :] if per_pixel * _padded_area(r, pad) <= RUNG_LIMIT_S]
        if not higher:
            return per_pixel * _padded_area(shape, pad)
        rung = higher[-1]


def _timed(one_pass: Any) -> float:
    one_pass()  # the warm-up: first-call costs (weight packing, allocations, a compiled graph) are not multiplied
    times = [one_pass()]
    while sum(times) < REPEAT_BELOW_S and len(times) < MAX_REPEATS:
        times.append(one_pass())
    return statistics.median(times)


def _pass_runner(model: Any, runner: Any, device: torch.device, plan: Any, shape: tuple[int, int], channels: int):
    """A function that runs one pass of `plan.batch` tiles of `shape` and returns its seconds."""
    from .tiling import AxisTile, _accumulate, _Job, _run_chunk, tile_grid

    height, width = shape
    scale = int(model.scale)
    generator = np.random.default_rng(0)
    # Noise, not a flat colour: some kernels (denormals, attention) run at other speeds on constant input.
    color = generator.random((height, width, channels), dtype=np.float32)
    job = _Job(model, color, device, runner.precision, scale, tile_grid(model), plan.overlap, plan.context,
               plan.batch, out_channels=channels, runner=runner)
    # A tile of the plan with this extent moved to the sample's origin (the same blend weights), or for a probe
    # weights over the whole piece.
    row = next((r for r in plan.rows if r.stop - r.start == height), None)
    col = next((c for c in plan.cols if c.stop - c.start == width), None)
    sample_row = (AxisTile(0, height, row.weight_start - row.start * scale, row.weights) if row is not None
                  else AxisTile(0, height, 0, np.ones(height * scale, np.float32)))
    sample_col = (AxisTile(0, width, col.weight_start - col.start * scale, col.weights) if col is not None
                  else AxisTile(0, width, 0, np.ones(width * scale, np.float32)))
    scratch = np.zeros((height * scale, width * scale, channels), np.float32)

    def one_pass() -> float:
        start = time.perf_counter()
        pieces = _run_chunk(job, sample_row, [sample_col] * plan.batch)
        _synchronize(device)
        for piece in pieces:
            _accumulate(scratch, piece, sample_row, sample_col, scale)
        return time.perf_counter() - start

    return one_pass


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# ------------------------------------------------------------------------------------------------------ per photo


def _io_seconds(job: "Job", models: list[Any], width: int, height: int, channels: int, source_format: str) -> float:
    """Decoding, the colour merge of luma networks and clipping/encoding the output, from the pixel counts."""
    from .imageio import Photo, output_format

    scale = math.prod(int(m.scale) for m in models)
    out_w, out_h = width * scale, height * scale
    seconds = 0.0
    size = getattr(job, "output_size", None)
    if size is not None and size.mode != "model":  # the chain's result is resized to the asked size
        seconds += _rate(("resize", channels)) * out_w * out_h
        out_w, out_h = size.target(width, height, scale)
    sample = Photo(np.zeros((1, 1, channels), np.float32), format=source_format)
    try:
        fmt = output_format(sample, job.format, (out_w, out_h))
    except EnhancerError:
        fmt = "PNG"
    seconds += _rate(("encode", fmt, channels, job.quality)) * out_w * out_h
    seconds += _rate(("decode", source_format, channels)) * width * height
    w, h = width, height
    for model in models:
        if _is_luma(model, channels):
            seconds += _rate(("luma", int(model.scale))) * w * h * int(model.scale) ** 2
        w, h = w * int(model.scale), h * int(model.scale)
    return seconds


def _is_luma(model: Any, channels: int) -> bool:
    from .tiling import runs_on_luma

    return (3 if channels == 4 else channels) == 3 and int(model.in_channels) == 1 and runs_on_luma(model)


def _rate(key: tuple) -> float:
    """Seconds per pixel of one of the per-photo steps, measured once per process on a `SAMPLE_SIDE` sample."""
    rate = _pixel_seconds.get(key)
    if rate is None:
        # The better of two: the first also pays one-time costs (a codec's set-up, imports) that no photo repeats.
        rate = min(_measure_rate(key), _measure_rate(key)) / (SAMPLE_SIDE * SAMPLE_SIDE)
        _pixel_seconds[key] = rate
    return rate


def _sample_pixels(channels: int) -> np.ndarray:
    # A smooth gradient with mild noise: compresses about as a photo does (pure noise would be the worst case).
    y, x = np.mgrid[0:SAMPLE_SIDE, 0:SAMPLE_SIDE].astype(np.float32) / SAMPLE_SIDE
    noise = np.random.default_rng(0).normal(0, 0.02, (SAMPLE_SIDE, SAMPLE_SIDE, channels)).astype(np.float32)
    base = np.stack([(x + y) / 2, x, y, np.ones_like(x)][:channels], axis=-1)
    return np.clip(base + noise, 0, 1).astype(np.float32)


def _measure_rate(key: tuple) -> float:
    from .imageio import Photo, read_photo, write_photo

    kind = key[0]
    if kind == "resize":
        from .sizing import resize_to

        pixels = _sample_pixels(key[1])
        start = time.perf_counter()
        resize_to(pixels, (SAMPLE_SIDE * 2 // 3, SAMPLE_SIDE * 2 // 3))
        return time.perf_counter() - start
    if kind == "luma":
        from .tiling import _merge_chroma_8bit_into

        scale = key[1]
        small = SAMPLE_SIDE // scale or 1
        color = np.round(_sample_pixels(3)[:small, :small] * 255) / 255
        out = np.zeros((small * scale, small * scale, 3), np.float32)
        start = time.perf_counter()
        _merge_chroma_8bit_into(color, scale, out)
        return (time.perf_counter() - start) * (SAMPLE_SIDE * SAMPLE_SIDE) / (small * scale) ** 2
    with tempfile.TemporaryDirectory(prefix="enhancer-estimate-") as folder:
        if kind == "encode":
            _, fmt, channels, quality = key
            photo = Photo(_sample_pixels(channels), alpha=channels == 4)
            target = Path(folder) / "sample"
            start = time.perf_counter()
            try:
                write_photo(photo, target, format=fmt.lower(), quality=quality)
            except (EnhancerError, ValueError, KeyError, OSError):
                write_photo(photo, target.with_suffix(".png"), format="png")
            return time.perf_counter() - start
        _, source_format, channels = key
        photo = Photo(_sample_pixels(channels), format=source_format, alpha=channels == 4)
        try:
            path = write_photo(photo, Path(folder) / "sample", format=source_format.lower())
        except (EnhancerError, ValueError, KeyError, OSError):
            path = write_photo(photo, Path(folder) / "sample.png", format="png")
        start = time.perf_counter()
        read_photo(path)
        return time.perf_counter() - start
