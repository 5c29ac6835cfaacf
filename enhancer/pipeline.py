"""A Job (inputs, a chain of models, options) turned into output files, with progress events and cancel.

Shared by the CLI and the GUI. The usual use:

    cache = ModelCache()                       # keep one per worker: models stay loaded between jobs
    results = run_job(Job(inputs=["photos/"], models=["mobilesr-x4"]), events=print, cancel=stop_event, cache=cache)

- Inputs are files or folders. In folders, hidden and system files (`.DS_Store`, `Thumbs.db`, `._*`), files that are not
  images (by extension) and earlier outputs of the same job (their stem ends with the job's suffix) are skipped quietly.
  A file named explicitly is always tried, and one that cannot be used gets a result saying why.
- Each output is `{stem}{suffix}{ext}` next to its original, or under `output_dir` (with `recursive`, the folder tree
  below each input folder is kept). An output never takes its input's place and never overwrites a file: `-1`, `-2`
  ... are added, or with `skip_existing` the input is skipped when its output already exists. An empty suffix keeps
  the original names, so it needs an `output_dir` apart from the originals; an `output_dir` inside an input folder
  is never scanned for inputs (its files are earlier outputs).
- The models run in order (e.g. deblur, then x4); the default suffix is `_{model}_x{scale}` with the names of a chain
  joined by "+" and the scales multiplied.
- A failure of one file never stops the batch. Writes are atomic (see `enhancer.imageio.write_photo`): nothing
  half-written is ever left, also on cancel, which is checked between tiles, between models and before each write.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from .atomic import sweep_stale_temp
from .memory_budget import format_bytes
from .errors import Cancelled, EnhancerError, ModelError
from .imageio import (
    FORMAT_NAMES, IMAGE_EXTENSIONS, STRIP_METADATA, format_notes, output_extension, output_format, read_photo,
    write_photo,
)
from .options import BACKENDS, OUTPUT_FORMATS
from .sizing import OutputSize, resize_to

SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
DEFAULT_SUFFIX = "_{model}_x{scale}"


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class Job:
    """What to do. Every field but `inputs` has a default that matches the CLI's.

    `models`: model ids or file paths, run in order; empty means the catalog's default model.
    `suffix`: added to the stem; `{model}` and `{scale}` are filled in; None means `_{model}_x{scale}`.
    `format`: same | png | jpg | webp | tiff (also bmp, heic, avif); `quality`: 1-100 for the lossy formats.
    `tile`: tile size in pixels or "auto"; `overlap`: pixels or None (the engine's default).
    `device`: auto | cpu | cuda | mps; `precision`: auto | fp32 | bf16 | fp16.
    `threads`: CPU threads; 0 means one per physical core, fewer while other processes keep cores busy.
    `compile`: run the networks through torch.compile (for GPUs; the first tiles of each size wait for the compiler).
    `output_size`: the final size (see `enhancer.sizing.OutputSize`): the chain runs at its own scale, then the
    result is resized to it; also given as its text ("x2", "w3840") or as the dict `dataclasses.asdict` makes.
    """

    inputs: list[str | os.PathLike]
    models: list[str | os.PathLike] = field(default_factory=list)
    output_dir: str | os.PathLike | None = None
    suffix: str | None = None
    format: str = "same"
    quality: int = 95
    recursive: bool = False
    tile: int | str = "auto"
    overlap: int | None = None
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0
    compile: bool = False
    backend: str = "auto"  # auto | torch | openvino | onnxruntime (see enhancer.backends)
    skip_existing: bool = False
    # What of the photo's metadata stays out of the output: "none", "location" (GPS and other location fields; the
    # colour profile and camera data are kept) or "all" (EXIF, XMP and maker notes; the colour profile is kept).
    strip_metadata: str = "location"
    output_size: OutputSize = OutputSize()
    # Estimate each photo's time before it runs (`enhancer.estimate`; FileStarted.estimate_seconds): a tile (or a
    # probe of a slow one) is timed per model and tile size, after a warm-up: seconds, not minutes, the first time,
    # next to nothing for later photos of about the same size.
    estimate: bool = False

    def __post_init__(self) -> None:
        # The cluster sends a Job as `dataclasses.asdict`, which turns the OutputSize into a dict; settings keep text.
        if isinstance(self.output_size, dict):
            self.output_size = OutputSize(**self.output_size)
        elif isinstance(self.output_size, str):
            self.output_size = OutputSize.from_text(self.output_size)

    def validate(self) -> None:
        """Raise `ValueError` with a user-facing message when an option is out of range."""
        if not self.inputs:
            raise ValueError("no input given")
        if str(self.backend).lower() not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        fmt = str(self.format).lower()
        if fmt != "same" and fmt not in FORMAT_NAMES:
            raise ValueError(f"unknown format {self.format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
        if not 1 <= int(self.quality) <= 100:
            raise ValueError(f"quality must be between 1 and 100, got {self.quality}")
        if self.tile != "auto" and (not isinstance(self.tile, int) or self.tile < 8):
            raise ValueError(f"tile must be 'auto' or a size of at least 8 pixels, got {self.tile!r}")
        if self.overlap is not None and (not isinstance(self.overlap, int) or self.overlap < 0):
            raise ValueError(f"overlap must be a number of pixels >= 0, got {self.overlap!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be 0 (automatic) or a positive number, got {self.threads!r}")
        if self.strip_metadata not in STRIP_METADATA:
            raise ValueError(f"strip_metadata must be one of {', '.join(STRIP_METADATA)}, got {self.strip_metadata!r}")
        if self.suffix is not None and re.search(r"[/\\\x00]", self.suffix):
            raise ValueError(f"the suffix must not contain a path separator: {self.suffix!r}")
        if not isinstance(self.output_size, OutputSize):
            raise ValueError(f"output_size must be an OutputSize, got {self.output_size!r}")


@dataclass
class FileResult:
    """The outcome for one input. `status`: "ok", "failed" or "skipped"; `error` says why for the last two."""

    input: Path
    status: str
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. "converted from CMYK to RGB"
    backend: str | None = None  # what ran the networks: "torch", "openvino" or "onnxruntime"
    size: tuple[int, int] | None = None  # (width, height) of the written output
    estimate_seconds: float | None = None  # the time estimated before it ran (with Job.estimate), else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "status": self.status,
            "output": str(self.output) if self.output else None,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "backend": self.backend,
            "size": list(self.size) if self.size else None,
            "estimate_seconds": round(self.estimate_seconds, 3) if self.estimate_seconds is not None else None,
        }


# Progress events, sent to `events(event)` in this order: JobStarted, then per file FileStarted, TileProgress...,
# FileFinished, and JobFinished at the end (not after a cancel: then `Cancelled` is raised instead).
@dataclass(frozen=True)
class JobStarted:
    total: int  # number of files to process (inputs that failed before reading are reported as FileFinished too)
    models: tuple[str, ...]  # "name (arch xN on device)" per model in the chain
    notes: tuple[str, ...] = ()  # one line each, e.g. "bf16 is not supported by this CPU; using fp32"


@dataclass(frozen=True)
class FileStarted:
    index: int  # 1-based
    total: int
    input: Path
    estimate_seconds: float | None = None  # with Job.estimate: the expected time of this photo (None: unknown)


@dataclass(frozen=True)
class TileProgress:
    index: int  # the file, 1-based
    done: int  # tiles finished, over all models of the chain for this file
    total: int


@dataclass(frozen=True)
class FileFinished:
    index: int
    total: int
    result: FileResult


@dataclass(frozen=True)
class JobFinished:
    results: tuple[FileResult, ...]
    seconds: float


Event = JobStarted | FileStarted | TileProgress | FileFinished | JobFinished


class ModelCache:
    """Loaded models per (source, device), so that a worker loads each model once. Thread-safe."""

    def __init__(self, loader: Callable[..., Any] | None = None) -> None:
        self._loader = loader
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, source: str | os.PathLike, device: str = "auto"):
        """The `Model` for `source` (a catalog id or a file path) on `device`, loading it on first use."""
        from .devices import resolve_device

        resolved = resolve_device(device)
        key = (_source_key(source), str(resolved))
        with self._lock:
            model = self._models.get(key)
            if model is None:
                loader = self._loader
                if loader is None:
                    from . import load_model as loader
                model = loader(source, resolved)
                self._models[key] = model
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        return len(self._models)


def _source_key(source: str | os.PathLike) -> str:
    path = Path(source)
    return str(path.resolve()) if path.is_file() else str(source)


# ------------------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class InputFile:
    """A file to process and the folder it was found in (None when named explicitly), for keeping the tree."""

    path: Path
    root: Path | None = None


def is_hidden_or_system(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def collect_inputs(
    inputs: Iterable[str | os.PathLike], recursive: bool = False, skip_stem_suffix: str | None = None,
    skip_folders: Iterable[str | os.PathLike] = (),
) -> list[InputFile | FileResult]:
    """Expand files and folders, in the order given, into the files to process (`InputFile`) and results for inputs
    that cannot be used (`FileResult`, failed or skipped, with the reason).

    Folders give their images (sub-folders too with `recursive`); hidden and system files, non-images, files whose
    stem ends with `skip_stem_suffix` (earlier outputs) and sub-folders in `skip_folders` (the job's output folder
    inside an input folder, whose files are earlier outputs whatever their names) are left out quietly. Named files
    are kept whatever their extension (the content decides), except hidden/system files, which are reported as skipped.
    """
    files: list[InputFile | FileResult] = []
    seen: set[Path] = set()
    output_name = _output_stem_pattern(skip_stem_suffix)
    skipped = {Path(folder).resolve() for folder in skip_folders}

    def add(item: InputFile) -> None:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(item)

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(_walk(path, recursive, skipped - {path.resolve()}))
            images = [p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden_or_system(p)]
            if output_name is not None:
                images = [p for p in images if not output_name.search(p.stem)]
            if not images:
                hint = "" if recursive else " (use --recursive to include sub-folders)"
                files.append(FileResult(path, "failed", error=f"{path}: no images found in this folder{hint}"))
            for image in images:
                add(InputFile(image, path))
        elif path.is_file():
            if is_hidden_or_system(path):
                files.append(FileResult(path, "skipped", error=f"{path}: hidden or system file, skipped"))
            else:
                add(InputFile(path, None))
        elif path.exists():
            files.append(FileResult(path, "failed", error=f"{path}: not a regular file"))
        else:
            files.append(FileResult(path, "failed", error=f"{path}: no such file or folder"))
    return files


def _walk(folder: Path, recursive: bool, skip_folders: set[Path] = frozenset()) -> Iterable[Path]:
    if not recursive:
        return (p for p in folder.iterdir() if p.is_file())
    found = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")  # .git, .thumbnails, ...
                   and (not skip_folders or (Path(current) / d).resolve() not in skip_folders)]
        found.extend(Path(current) / n for n in names)
    return found


def _output_stem_pattern(suffix: str | None) -> re.Pattern | None:
    if not suffix:
        return None
    return re.compile(re.escape(suffix) + r"(-\d+)?$")


# ------------------------------------------------------------------------------------------------------ naming


def default_suffix(models: list[Any], output_size: OutputSize | None = None) -> str:
    """`_{model}_x{scale}` for one model; for a chain, the names joined by "+" and the scales multiplied. With an
    output size, its text instead of the model's scale: `_{model}_x2`, `_{model}_w3840`, `_{model}_fit3840x2160`."""
    if output_size is not None and output_size.mode not in ("model", "scale"):
        return make_suffix(DEFAULT_SUFFIX.replace("x{scale}", output_size.to_text()), models, output_size)
    return make_suffix(DEFAULT_SUFFIX, models, output_size)


def make_suffix(template: str, models: list[Any], output_size: OutputSize | None = None) -> str:
    """`template` with `{model}` (the names, "+"-joined) and `{scale}` (the final factor of an "xF" output size,
    else the product of the models' scales) filled in."""
    names = "+".join(_safe_name(getattr(m, "name", "model")) for m in models)
    scale: int | str = 1
    for m in models:
        scale *= int(getattr(m, "scale", 1))
    if output_size is not None and output_size.mode == "scale":
        scale = output_size.to_text()[1:]  # "x1.5" -> "1.5"
    try:
        return template.format(model=names, scale=scale)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"the suffix {template!r} may only use {{model}} and {{scale}} ({exc})") from None


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(name)).strip("-") or "model"


def output_folder(item: InputFile, output_dir: Path | None, recursive: bool) -> Path:
    if output_dir is None:
        return item.path.parent
    if recursive and item.root is not None:
        return output_dir / item.path.parent.relative_to(item.root)
    return output_dir


# The longest file name (in bytes) that the usual file systems take: ext4, APFS, NTFS (in UTF-16 units) and others.
MAX_NAME_BYTES = 255


def first_output_name(item: InputFile, folder: Path, suffix: str, extension: str) -> Path:
    return fit_name(folder / f"{item.path.stem}{suffix}{extension}", item.path.stem)


def fit_name(path: Path, stem: str, extra: str = "") -> Path:
    """`path` with `extra` (e.g. "-2") put before its extension, its name kept within `MAX_NAME_BYTES`: the part that
    came from the input's `stem` is shortened (never the suffix or the extension)."""
    name = path.name
    # The part from the stem: all of it, or what is left of it when `path` was shortened before.
    keep = len(os.path.commonprefix([name, stem])) if stem else 0
    head, tail = (name[:keep], name[keep:]) if keep else (path.stem, path.suffix)
    tail_stem, dot, extension = tail.rpartition(".") if "." in tail else (tail, "", "")
    tail = f"{tail_stem}{extra}{dot}{extension}"
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    encoded = head.encode("utf-8")
    if len(encoded) > room:
        head = encoded[: max(room, 1)].decode("utf-8", "ignore").rstrip(" .") or "photo"
    return path.with_name(head + tail)


def free_output_name(item: InputFile, wanted: Path, taken: set[Path]) -> Path:
    """`wanted`, or `stem-1.ext`, `stem-2.ext`... : the first that does not exist, is not planned in this job and is
    not the input itself, within `MAX_NAME_BYTES`. Only a hint when another process writes to the same folder:
    `Rendered.write(..., exclusive=True)` reserves the name for good."""
    stem = item.path.stem
    candidate = fit_name(wanted, stem)
    number = 0
    while (
        os.path.lexists(candidate)
        or candidate.resolve() in taken
        or (candidate.name == item.path.name and candidate.parent.resolve() == item.path.parent.resolve())
    ):
        number += 1
        candidate = fit_name(wanted, stem, f"-{number}")
    return candidate


# ------------------------------------------------------------------------------------------------------ running


def load_chain(job: Job, cache: ModelCache, cancel: CancelFlag | None = None) -> list[Any]:
    """The job's models, loaded (or taken from the cache) in chain order. Raises `ModelError`, and `Cancelled` when
    `cancel` is set before or after a model loads (one load cannot be interrupted; the next step never starts)."""
    sources = list(job.models)
    if not sources:
        try:
            from .store import default_model_id
        except ImportError:
            raise ModelError("no model given and no model catalog is available; name one with --model") from None
        sources = [default_model_id()]
    models = []
    for source in sources:
        _check_cancel(cancel)
        try:
            models.append(cache.get(source, job.device))
        except EnhancerError:
            raise
        except Exception as exc:  # a bug or an odd file must still end in a message that names the model
            raise ModelError(f"{source}: the model could not be loaded ({type(exc).__name__}: {exc})") from exc
    _check_cancel(cancel)
    return models


def describe_model(model: Any, precision: str = "auto") -> str:
    """E.g. "mobilesr_x4 (mobilesr x4) on CPU, bf16", with the precision it runs in. `DeviceError`: unknown precision."""
    from . import devices

    arch = getattr(model, "arch", None)
    where = str(getattr(model, "device", "cpu"))
    describe = getattr(devices, "describe", None)
    if describe is not None:
        where = describe(getattr(model, "device", "cpu"), precision, arch)
    return f"{getattr(model, 'name', 'model')} ({arch} x{getattr(model, 'scale', 1)}) on {where}"


def precision_note(model: Any, precision: str = "auto") -> str:
    """The note when `precision` cannot run as asked for `model` on its device ("" when it can)."""
    from . import devices

    return devices.precision_note(getattr(model, "device", "cpu"), precision, getattr(model, "arch", None))


def run_job(
    job: Job,
    events: Callable[[Event], None] | None = None,
    cancel: CancelFlag | None = None,
    cache: ModelCache | None = None,
) -> list[FileResult]:
    """Process every input of `job` and return one `FileResult` per input, in order.

    Each result's `notes` say what a user may want to know about that file (a CMYK conversion, a format change).
    `events(event)` receives JobStarted, FileStarted, TileProgress, FileFinished and JobFinished (see above); it is
    called from the thread that runs the job. `cancel` is anything with `is_set()` (a `threading.Event`); when it is
    set the job stops between tiles, removes what it had started and raises `Cancelled`, whose `results` attribute
    holds the results of the files finished before. Raises `ValueError` for invalid options and `ModelError` /
    `DeviceError` when the models cannot be loaded, before any file is touched.
    """
    from . import enhance

    started = time.monotonic()
    job.validate()
    emit = events or (lambda event: None)
    cache = cache if cache is not None else ModelCache()
    from .backends import check as check_backend

    check_backend(job.backend)  # an uninstalled backend is an error before any file is touched
    try:
        models = load_chain(job, cache, cancel)
    except Cancelled:
        raise _cancelled([]) from None
    suffix = (make_suffix(job.suffix, models, job.output_size) if job.suffix is not None
              else default_suffix(models, job.output_size))
    if re.search(r"[/\\\x00]", suffix):
        raise ValueError(f"the suffix must not contain a path separator: {suffix!r}")
    output_dir = Path(job.output_dir) if job.output_dir is not None else None
    described = tuple(describe_model(m, job.precision) for m in models)  # also checks the precision early
    notes = tuple(dict.fromkeys(note for note in (precision_note(m, job.precision) for m in models) if note))
    items = job_inputs(job, suffix)
    total = len(items)
    emit(JobStarted(total=total, models=described, notes=notes))

    results: list[FileResult] = []
    planned: set[Path] = set()
    swept: set[Path] = set()
    for index, item in enumerate(items, start=1):
        if cancel is not None and cancel.is_set():
            raise _cancelled(results)
        if isinstance(item, FileResult):  # an input that could not be used: report it in its place
            results.append(item)
            emit(FileFinished(index, total, item))
            continue
        folder = output_folder(item, output_dir, job.recursive)
        if folder not in swept:  # what a crash left in a folder this job writes into, over a day old
            swept.add(folder)
            sweep_stale_temp(folder)
        try:
            estimate = _estimate_seconds(job, item.path, models, cancel) if job.estimate else None
        except Cancelled:
            raise _cancelled(results) from None
        emit(FileStarted(index, total, item.path, estimate))
        t0 = time.monotonic()
        try:
            result = _process_file(job, item, index, models, suffix, output_dir, planned, enhance, emit, cancel)
        except Cancelled:
            raise _cancelled(results) from None
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
            result = result_from_error(item.path, exc)
        result.seconds = time.monotonic() - t0
        result.estimate_seconds = estimate
        results.append(result)
        emit(FileFinished(index, total, result))
    emit(JobFinished(tuple(results), time.monotonic() - started))
    return results


def job_inputs(job: Job, suffix: str) -> list[InputFile | FileResult]:
    """The job's inputs as `collect_inputs` finds them, leaving out earlier outputs: names that end with the job's
    `suffix`, and everything in its output folder when that lies inside an input folder. `ValueError` for an empty
    suffix whose outputs would land next to their originals. Shared by `run_job` and the cluster driver."""
    output_dir = Path(job.output_dir) if job.output_dir is not None else None
    items = collect_inputs(job.inputs, job.recursive, skip_stem_suffix=suffix,
                           skip_folders=[output_dir] if output_dir is not None else [])
    if not suffix:
        _check_empty_suffix(items, output_dir, job.recursive)
    return items


def _check_empty_suffix(items: list[InputFile | FileResult], output_dir: Path | None, recursive: bool) -> None:
    """An empty suffix keeps the original's name, which only works in another folder: next to the originals the
    outputs would be `-1` copies that a later run could not tell from photos (and would enhance again)."""
    for item in items:
        if isinstance(item, InputFile) and output_folder(item, output_dir, recursive).resolve() == \
                item.path.parent.resolve():
            raise ValueError(
                f"an empty suffix keeps the original names, so the outputs need a folder apart from the originals "
                f"(--output-dir), not {item.path.parent}"
            )


def _estimate_seconds(job: Job, path: Path, models: list[Any], cancel: CancelFlag | None) -> float | None:
    """The estimated seconds of one photo, None when it cannot be estimated (the run then says why it fails)."""
    from .estimate import estimate_file

    try:
        estimate = estimate_file(job, path, models, cancel=cancel)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 - an estimate is a courtesy: it never fails a file
        return None
    return estimate.seconds if estimate is not None else None


def result_from_error(path: Path, exc: BaseException) -> FileResult:
    """The failed result for one file, with a one-line reason that names it."""
    if isinstance(exc, EnhancerError):
        return FileResult(path, "failed", error=_one_line(str(exc), path))
    if isinstance(exc, MemoryError):
        return FileResult(path, "failed", error=f"{path}: out of memory (try a smaller --tile)")
    return FileResult(path, "failed", error=_one_line(f"{type(exc).__name__}: {exc}", path))


@dataclass
class Rendered:
    """A photo through the whole chain, ready to be written: `wanted` is its first-choice output name."""

    photo: Any  # imageio.Photo with the enhanced pixels
    wanted: Path
    extension: str
    quality: int
    notes: list[str]
    backend: str = ""  # what ran the chain, e.g. "openvino" ("+"-joined for a chain that used several)

    strip_metadata: str = "location"  # none | location | all (see Job.strip_metadata)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the photo that will be written."""
        return self.photo.width, self.photo.height

    def write(
        self, path: Path, *, exclusive: bool = False, item: InputFile | None = None, taken: set[Path] | None = None
    ) -> Path:
        """Write the photo at `path` and return where it went. `exclusive`: the name is reserved atomically, never
        replacing a file (another process may write into the same folder): when `path` is taken by the time the
        file is complete, the next free name of `item` (`-1`, `-2`...) is tried, and so on."""
        # The format resolved with the name, so that the name and the content always agree.
        options = dict(format=self.extension.lstrip("."), quality=self.quality, strip_metadata=self.strip_metadata)
        if not exclusive:
            write_photo(self.photo, path, **options)
            return path
        taken = taken if taken is not None else set()
        while True:
            try:
                return write_photo(self.photo, path, overwrite=False, **options)
            except FileExistsError:
                taken.add(path.resolve())
                if item is None:
                    raise
                path = free_output_name(item, self.wanted, taken)


def run_chain(
    job: Job,
    pixels: Any,
    models: list[Any],
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelFlag | None = None,
    enhance: Callable[..., Any] | None = None,
    report: Callable[[str], None] | None = None,
    memory: Any | None = None,
) -> Any:
    """Run the loaded chain `models` over float32 H×W×C `pixels` with the job's tile, precision, device and backend
    settings, and return the result (enlarged by the product of the scales, nothing else applied). The full run and
    the region preview (`enhancer.preview`) share it. `progress(done, total)` counts tiles over the whole chain;
    `report(backend)` is called once per model with what ran it. `memory`: the photo's `memory_budget.MemoryPlan`,
    which bounds the automatic tiles and may put each model's result in a disk buffer."""
    if enhance is None:
        from . import enhance
    from .devices import accelerator_for

    accelerator = accelerator_for(job.device)
    done_before = 0
    total_tiles: list[int] = [0] * len(models)
    for step, model in enumerate(models):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")

        def on_tiles(done: int, total: int, step: int = step, base: int = done_before) -> None:
            total_tiles[step] = total
            # Later models' tile counts are unknown yet: count each as this one's until they report.
            grand = sum(total_tiles[: step + 1]) + total * (len(models) - step - 1)
            if progress is not None:
                progress(base + done, grand)

        bounded: dict[str, Any] = {}
        if memory is not None:
            out = memory.out_array(step)
            if out is not None:
                bounded["out"] = out
            if memory.tile_budgets and memory.tile_budgets[step] is not None:
                bounded["tile_budget"] = memory.tile_budgets[step]
        pixels = enhance(
            pixels, model, tile=job.tile, overlap=job.overlap, precision=job.precision, progress=on_tiles, cancel=cancel,
            threads=job.threads, compile=job.compile, backend=job.backend, accelerator=accelerator, report=report,
            **bounded,
        )
        done_before += total_tiles[step]
    return pixels


def render_file(
    job: Job,
    item: InputFile,
    index: int,
    models: list[Any],
    suffix: str,
    output_dir: Path | None,
    enhance: Callable[..., Any] | None = None,
    emit: Callable[[Event], None] | None = None,
    cancel: CancelFlag | None = None,
) -> Rendered | FileResult:
    """Read one photo and run the chain on it; a `FileResult` instead when it is skipped (its output exists).
    Shared by the local run and the cluster workers, which name and write the result each in their own way."""
    if enhance is None:
        from . import enhance
    emit = emit or (lambda event: None)
    folder = output_folder(item, output_dir, job.recursive)
    _plan_memory(job, item.path, models, folder, declared_photo_shape(item.path))  # refuse before decoding
    photo = read_photo(item.path)
    _check_cancel(cancel)  # decoding a large photo takes long: a cancel during it stops here
    scale = 1
    for model in models:
        scale *= int(getattr(model, "scale", 1))
    size = job.output_size.target(photo.width, photo.height, scale)
    fmt = output_format(photo, job.format, size)
    extension = output_extension(photo, job.format, size)
    wanted = first_output_name(item, folder, suffix, extension)
    if job.skip_existing and wanted.exists():
        return FileResult(item.path, "skipped", output=wanted, error=f"{wanted}: output exists, skipped")
    notes = list(photo.notes)
    memory = _plan_memory(job, item.path, models, folder, photo.pixels.shape, (size[1], size[0]),
                          deep=photo.bit_depth == 16 and fmt in ("PNG", "TIFF"), gray=photo.gray)
    if memory is not None and memory.streamed:
        notes.append(f"the result went through a disk buffer: it needs about {format_bytes(memory.in_memory_peak)} "
                     f"of memory, {format_bytes(memory.budget)} is available")

    backends_used: list[str] = []
    pixels = run_chain(
        job, photo.pixels, models, lambda done, total: emit(TileProgress(index, done, total)), cancel, enhance,
        report=backends_used.append, memory=memory,
    )

    _check_cancel(cancel)
    if job.output_size.mode != "model":
        notes.extend(_size_notes(job.output_size, photo.width, photo.height, scale))
        pixels = resize_to(pixels, size)
    natural = output_format(photo, job.format)
    if fmt != natural:
        notes.append(f"written as {fmt}: {size[0]}×{size[1]} is too large for {natural}")
    notes.extend(format_notes(photo, fmt))
    return Rendered(photo.with_pixels(pixels), wanted, extension, job.quality, notes,
                    "+".join(dict.fromkeys(backends_used)), strip_metadata=job.strip_metadata)


def declared_photo_shape(path: Path) -> tuple[int, int, int] | None:
    """(height, width, channels) of the float pixels a photo will decode to, from its header alone (None when
    Pillow cannot tell; the decoders' own size guard still applies)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            mode, transparent = im.mode, "transparency" in im.info
    except Exception:  # noqa: BLE001 - not for Pillow (16-bit gray+alpha TIFF...) or damaged: read_photo says why
        return None
    channels = 4 if ("A" in mode or transparent) else 1 if mode in ("1", "L", "I", "F") or mode.startswith("I;") else 3
    return height, width, channels


def _plan_memory(job: Job, path: Path, models: list[Any], folder: Path, shape: tuple[int, ...] | None,
                 final_hw: tuple[int, int] | None = None, deep: bool = False, gray: bool = False):
    """The photo's memory plan (`enhancer.memory_budget`); raises `MemoryBudgetError` when it cannot fit."""
    from .memory_budget import plan_photo
    from .paths import cache_dir

    if shape is None:
        return None
    height, width, channels = (int(v) for v in shape)
    return plan_photo(path, models, (height, width), channels, tile=job.tile, final_hw=final_hw, deep=deep,
                      gray=gray, buffer_folders=(folder, cache_dir()))


def _size_notes(output_size: OutputSize, width: int, height: int, scale: int) -> list[str]:
    """What a user should know when the asked size is not the model's: it is still done, by a resize."""
    asked = output_size.target(width, height, scale)
    natural = OutputSize().target(width, height, scale)
    if output_size.below_model(width, height, scale):
        return [f"asked size {asked[0]}×{asked[1]} is below the model's x{scale} ({natural[0]}×{natural[1]}): "
                f"enhanced at x{scale}, then downscaled"]
    if output_size.above_model(width, height, scale):
        return [f"asked size {asked[0]}×{asked[1]} is above the model's x{scale} ({natural[0]}×{natural[1]}): "
                f"enhanced at x{scale}, then enlarged by resizing, which adds no detail"]
    return []


def _process_file(job, item, index, models, suffix, output_dir, planned, enhance, emit, cancel) -> FileResult:
    rendered = render_file(job, item, index, models, suffix, output_dir, enhance, emit, cancel)
    if isinstance(rendered, FileResult):
        return rendered
    _check_cancel(cancel)  # the last moment a cancel can stop the write: a cancelled job writes nothing further
    if job.skip_existing:
        try:  # the name, or nothing: another process may have written this output while this one ran
            out = rendered.write(rendered.wanted, exclusive=True)
        except FileExistsError:
            return FileResult(item.path, "skipped", output=rendered.wanted,
                              error=f"{rendered.wanted}: output exists (written meanwhile by another job), skipped")
        planned.add(out.resolve())
        return FileResult(item.path, "ok", output=out, notes=rendered.notes, backend=rendered.backend,
                          size=rendered.size)
    out = free_output_name(item, rendered.wanted, planned)
    out = rendered.write(out, exclusive=True, item=item, taken=planned)
    planned.add(out.resolve())
    return FileResult(item.path, "ok", output=out, notes=rendered.notes, backend=rendered.backend,
                      size=rendered.size)


def _check_cancel(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _cancelled(results: list[FileResult]) -> Cancelled:
    exc = Cancelled("cancelled by the user; the file in progress was not written")
    exc.results = list(results)  # type: ignore[attr-defined]
    return exc


def _one_line(message: str, path: Path) -> str:
    text = " ".join(message.split())
    return text if str(path) in text else f"{path}: {text}"
