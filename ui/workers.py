"""Background work on the QThreadPool: enhancement jobs, photo decoding, downloads and other engine calls.

Each runnable owns a small QObject whose signals carry results back to the UI thread (queued across threads). The UI
never blocks on them; closing the window sets the cancel flag and waits for the pool.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from enhancer.errors import Cancelled, EnhancerError

log = logging.getLogger(__name__)


def readable_error(exc: BaseException) -> str:
    """The message a user sees: the engine's own text for its errors, a short line otherwise (the traceback is logged)."""
    if isinstance(exc, (EnhancerError, ValueError, OSError)):
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "Out of memory. Try a smaller tile size in Settings."
    log.error("unexpected error in a worker:\n%s", "".join(traceback.format_exception(exc)))
    return f"Unexpected error ({type(exc).__name__}): {exc}"


class JobSignals(QObject):
    job_started = Signal(int, object, object)  # number of files, model descriptions, notes (precision fallbacks)
    file_started = Signal(int, int, str)  # index (1-based), total, input path
    tile_progress = Signal(int, int, int)  # file index, tiles done, tiles total
    file_finished = Signal(int, int, object)  # index, total, FileResult
    finished = Signal(object, object)  # list[FileResult], preview (QImage, levels) of the single output or None
    cancelled = Signal(object)  # FileResults of the files finished before
    failed = Signal(str)


class JobRunnable(QRunnable):
    """Runs `enhancer.pipeline.run_job` and forwards its events as signals. With `preview`, the single output is decoded
    here too, so the compare view gets a ready QImage."""

    def __init__(self, job, cache, preview: bool = False):
        super().__init__()
        self.setAutoDelete(False)  # the window keeps a reference until `finished`/`cancelled`/`failed`
        self.job = job
        self.cache = cache
        self.preview = preview
        self.cancel_flag = threading.Event()
        self.signals = JobSignals()

    def cancel(self) -> None:
        self.cancel_flag.set()

    def _forward(self, event: Any) -> None:
        from enhancer import pipeline

        if isinstance(event, pipeline.JobStarted):
            self.signals.job_started.emit(event.total, event.models, event.notes)
        elif isinstance(event, pipeline.FileStarted):
            self.signals.file_started.emit(event.index, event.total, str(event.input))
        elif isinstance(event, pipeline.TileProgress):
            self.signals.tile_progress.emit(event.index, event.done, event.total)
        elif isinstance(event, pipeline.FileFinished):
            self.signals.file_finished.emit(event.index, event.total, event.result)

    def run(self) -> None:
        from enhancer.pipeline import run_job

        try:
            results = run_job(self.job, events=self._forward, cancel=self.cancel_flag, cache=self.cache)
            preview = None
            if self.preview and len(results) == 1 and results[0].status == "ok" and results[0].output is not None:
                from .imaging import pyramid, read_image

                image = read_image(results[0].output)
                preview = (image, pyramid(image))
            self.signals.finished.emit(results, preview)
        except Cancelled as exc:
            self.signals.cancelled.emit(list(getattr(exc, "results", [])))
        except BaseException as exc:  # noqa: BLE001 - a worker must always report back, never die silently
            self.signals.failed.emit(readable_error(exc))


class CallSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object, object, object)  # free-form, e.g. bytes done, total, rate for downloads


class CallRunnable(QRunnable):
    """Runs `function(*args)` in the pool; `done(result)` or `failed(message)`. For photo decoding, downloads and the
    device description (which imports torch)."""

    def __init__(self, function: Callable[..., Any], *args: Any):
        super().__init__()
        self.setAutoDelete(False)
        self.function = function
        self.args = args
        self.cancel_flag = threading.Event()
        self.signals = CallSignals()

    def cancel(self) -> None:
        self.cancel_flag.set()

    def run(self) -> None:
        try:
            result = self.function(*self.args)
        except Cancelled:
            self.signals.failed.emit("cancelled")
        except BaseException as exc:  # noqa: BLE001
            self.signals.failed.emit(readable_error(exc))
        else:
            self.signals.done.emit(result)


def load_photo_with_levels(path: str | Path):
    """Decode a photo (in a worker) into a QImage and its smooth pyramid for the compare view."""
    from .imaging import pyramid, read_image

    image = read_image(path)
    return str(path), image, pyramid(image)


def describe_device(device: str, precision: str) -> str:
    """E.g. "CPU, fp32", followed by the fallback note when the chosen precision cannot run here."""
    from enhancer import devices

    text = devices.describe(device, precision)
    note = devices.precision_note(device, precision)
    return f"{text} ({note})" if note else text
