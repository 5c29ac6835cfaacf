"""Background work on the QThreadPool: enhancement jobs, photo decoding, downloads and other engine calls.

Each runnable owns a small QObject whose signals carry results back to the UI thread (queued across threads). The UI
never blocks on them. Closing a window cancels its workers and waits a moment (`stop_workers`); a worker that cannot
stop by then (one model load or one tile cannot be interrupted) is left to finish in the background, silenced, and
writes nothing: the engine checks the cancel flag before every write.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from enhancer.errors import Cancelled, EnhancerError

log = logging.getLogger(__name__)

# How long closing a window waits for its cancelled workers: the app must close within 2 s at any point of a job.
CLOSE_WAIT_MS = 1500
# Pools whose workers did not stop in time, with the runnables they run (kept referenced until they are done).
_left_running: list[tuple[QThreadPool, list[QRunnable]]] = []


def stop_workers(pool: QThreadPool, runnables: Iterable[Any], wait_ms: int = CLOSE_WAIT_MS) -> bool:
    """Cancel `runnables` (anything with `cancel()`; None is skipped) and wait at most `wait_ms` for `pool`.

    True when the pool is idle. Otherwise the pool is detached from its window, so that destroying the window does not
    wait for it either, and kept with its runnables until they end; their signals are blocked, so nothing reaches a
    window that is gone. Never blocks longer than `wait_ms`."""
    running = [runnable for runnable in runnables if runnable is not None]
    for runnable in running:
        runnable.cancel()
    if any(left is pool for left, _ in _left_running):  # stopped before (closeEvent, then reject): no second wait
        return pool.activeThreadCount() == 0
    if pool.waitForDone(wait_ms):
        return True
    for runnable in running:
        signals = getattr(runnable, "signals", None)
        if signals is not None:
            signals.blockSignals(True)
    pool.setParent(None)
    _left_running.append((pool, running))
    log.info("%d worker(s) still stopping in the background", pool.activeThreadCount())
    return False


def background_workers() -> int:
    """How many workers of closed windows are still stopping."""
    _left_running[:] = [(pool, keep) for pool, keep in _left_running if pool.activeThreadCount() > 0]
    return sum(pool.activeThreadCount() for pool, _ in _left_running)


def wait_for_background(timeout_s: float) -> bool:
    """Wait up to `timeout_s` for the workers left running by closed windows; True when none is left."""
    deadline = time.monotonic() + timeout_s
    while background_workers():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        for pool, _ in list(_left_running):
            pool.waitForDone(int(min(remaining, 0.1) * 1000))
    return True


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
    device description (which imports torch). `pass_cancel`: the function also gets `cancel=` (a callable that
    returns True once `cancel()` was called), e.g. `store.import_model`."""

    def __init__(self, function: Callable[..., Any], *args: Any, pass_cancel: bool = False):
        super().__init__()
        self.setAutoDelete(False)
        self.function = function
        self.args = args
        self.pass_cancel = pass_cancel
        self.cancel_flag = threading.Event()
        self.signals = CallSignals()

    def cancel(self) -> None:
        self.cancel_flag.set()

    def run(self) -> None:
        try:
            if self.pass_cancel:
                result = self.function(*self.args, cancel=self.cancel_flag.is_set)
            else:
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
