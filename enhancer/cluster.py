"""The same Job on a Ray cluster: `enhancer --cluster local|auto|ray://HOST:PORT ...` (the `cluster` extra).

The driver (this process) keeps the file list, the progress events and the results, in input order, as `run_job`
does. Workers are Ray actors, each holding the loaded model chain for its device (one per GPU, or one per
`cpus_per_worker` CPU cores); each reads its photo from the shared filesystem and writes next to it.

Written once or reported failed, never half-written, never twice, also when a worker dies mid-photo:
- a worker writes the whole output under a hidden name that carries the photo's token
  (`.enhancer-<job>-<index>.<attempt>.part<ext>`), then gives it its final name with a hard link, which never
  replaces an existing file (the first free one of `name`, `name-1`, ...);
- the driver removes the hidden name once the worker has reported. A retry that finds a hidden name of its photo
  with two links knows the earlier attempt finished and reports that output instead of writing another; one with
  a single link is an unfinished write and is removed.
The driver keeps at most `in_flight` photos submitted, so its memory stays flat for any number of inputs.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .atomic import TEMP_PREFIX  # one recognisable prefix for every temporary file of the app
from .errors import Cancelled, EnhancerError

log = logging.getLogger(__name__)

INSTALL_HINT = "the --cluster option needs Ray: pip install 'photo-enhancer[cluster]' (or: pip install ray)"
DEFAULT_RETRIES = 2  # attempts after the first, per photo, when its worker dies


class ClusterError(EnhancerError):
    """The cluster cannot be reached or used (no Ray, a bad address, no worker left)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


# ------------------------------------------------------------------------------------------------ output naming


def hidden_name(folder: Path, job_token: str, index: int, attempt: int, extension: str) -> Path:
    return folder / f"{TEMP_PREFIX}{job_token}-{index}.{attempt}.part{extension}"


def claim_output(written: Path, wanted: Path, avoid: Path | None = None) -> Path:
    """Give the finished file `written` the first free name of `wanted`, `wanted-1`, ... (never `avoid`, the input)
    with a hard link, which fails instead of replacing a file, so concurrent writers on any machine of a shared
    filesystem never get the same name. `written` keeps its name (and a second link) until the caller removes it."""
    number = 0
    while True:
        candidate = wanted if number == 0 else wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
        number += 1
        if avoid is not None and candidate.name == avoid.name and candidate.parent == avoid.parent:
            continue
        try:
            os.link(written, candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A filesystem without hard links (FAT, some network shares): claim the name with O_EXCL, then move in.
            try:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(written, candidate)
            return candidate


def finished_earlier(folder: Path, job_token: str, index: int, wanted: Path) -> Path | None:
    """An output that an earlier attempt of this photo wrote and claimed but could not report (its worker died):
    found through the hidden file it left with two links. Every hidden file of the photo is removed: a finished
    one's data lives on in its output, an unfinished one is garbage."""
    found = None
    for hidden in _hidden_files(folder, f"{job_token}-{index}."):
        try:
            info = hidden.stat()
        except FileNotFoundError:
            continue
        if info.st_nlink > 1 and found is None:
            found = _linked_name(hidden, info, wanted)
        hidden.unlink(missing_ok=True)
    return found


def _hidden_files(folder: Path, stem: str) -> list[Path]:
    """This job's hidden files in `folder`, with the encoder's own temporary files of them (`.<hidden>.*.part`)."""
    return [*folder.glob(f"{TEMP_PREFIX}{stem}*"), *folder.glob(f".{TEMP_PREFIX}{stem}*")]


def _linked_name(hidden: Path, info: os.stat_result, wanted: Path) -> Path | None:
    pattern = f"{wanted.stem}*{wanted.suffix}"
    for candidate in sorted(wanted.parent.glob(pattern)):
        try:
            other = candidate.stat()
        except FileNotFoundError:
            continue
        if (other.st_ino, other.st_dev) == (info.st_ino, info.st_dev) and candidate != hidden:
            return candidate
    return None


def remove_leftovers(folders: set[Path], job_token: str) -> int:
    """After the job (also after a cancel): remove this job's hidden files. A finished write keeps its output."""
    removed = 0
    for folder in folders:
        for hidden in _hidden_files(folder, f"{job_token}-"):
            hidden.unlink(missing_ok=True)
            removed += 1
    return removed


# ------------------------------------------------------------------------------------------------ the worker


@dataclass
class PhotoTask:
    index: int  # 1-based, in the job's input order
    path: str
    root: str | None
    attempt: int = 0


class Worker:
    """One Ray actor: the job's model chain loaded once for its device, then photos one at a time."""

    def __init__(self, job_fields: dict[str, Any], job_token: str, threads: int) -> None:
        from .pipeline import Job, ModelCache, default_suffix, load_chain, make_suffix

        self.job = Job(**job_fields)
        if threads and not self.job.threads:
            self.job.threads = threads
        self.token = job_token
        self.models = load_chain(self.job, ModelCache())
        self.suffix = (make_suffix(self.job.suffix, self.models, self.job.output_size) if self.job.suffix is not None
                       else default_suffix(self.models, self.job.output_size))

    def ready(self) -> str:
        return f"{os.uname().nodename}:{os.getpid()}"

    def process(self, task: PhotoTask) -> tuple[dict[str, Any], str | None]:
        """Enhance one photo; (its FileResult as a dict, the hidden name the driver removes once it has the result)."""
        from .pipeline import FileResult, InputFile, render_file, result_from_error

        item = InputFile(Path(task.path), Path(task.root) if task.root else None)
        started = time.monotonic()
        output_dir = Path(self.job.output_dir) if self.job.output_dir is not None else None
        hidden: Path | None = None
        try:
            rendered = render_file(self.job, item, task.index, self.models, self.suffix, output_dir)
            if isinstance(rendered, FileResult):  # skipped: its output exists
                result = rendered
            else:
                earlier = finished_earlier(rendered.wanted.parent, self.token, task.index, rendered.wanted)
                if earlier is not None:
                    result = FileResult(item.path, "ok", output=earlier, notes=rendered.notes, size=rendered.size)
                else:
                    hidden = hidden_name(rendered.wanted.parent, self.token, task.index, task.attempt,
                                         rendered.wanted.suffix)
                    rendered.write(hidden)
                    output = claim_output(hidden, rendered.wanted, avoid=item.path)
                    result = FileResult(item.path, "ok", output=output, notes=rendered.notes,
                                        backend=rendered.backend, size=rendered.size)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            if hidden is not None and hidden.exists() and hidden.stat().st_nlink == 1:
                hidden.unlink(missing_ok=True)
            hidden = None
            result = result_from_error(item.path, exc)
        result.seconds = time.monotonic() - started
        return result.to_dict(), (str(hidden) if hidden is not None else None)


# ------------------------------------------------------------------------------------------------ the driver


def connect(address: str, num_cpus: int | None = None) -> Any:
    """Start or join Ray: "local" starts one on this machine, "auto" joins the running cluster (`ray start`),
    "ray://HOST:PORT" connects through the Ray client."""
    if address not in ("local", "auto") and not address.startswith("ray://"):
        raise ClusterError(f"unknown cluster address {address!r}; use local, auto or ray://HOST:PORT")
    ray = _ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ...: say what it was, in one line
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r}: {' '.join(str(exc).split())}") from None
    return ray


def _worker_shape(ray, cpus_per_worker: int, device: str) -> tuple[int, dict[str, float], int]:
    """(how many workers, each one's resources, each one's CPU threads) from what the cluster has."""
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    if gpus and device in ("auto", "cuda"):
        return gpus, {"num_gpus": 1, "num_cpus": 1}, 0
    cpus = int(total.get("CPU", 1))
    per = max(1, min(int(cpus_per_worker), cpus))
    return max(1, cpus // per), {"num_cpus": per}, per


def run_job_on_cluster(
    job: Any,
    address: str = "local",
    events: Callable[[Any], None] | None = None,
    cancel: Any = None,
    cpus_per_worker: int = 4,
    max_retries: int = DEFAULT_RETRIES,
    in_flight_per_worker: int = 2,
    on_workers: Callable[[list[Any]], None] | None = None,
) -> list[Any]:
    """`pipeline.run_job` over Ray workers: the same results (input order) and errors, and the same events but
    FileStarted and TileProgress (photos run in parallel, elsewhere; FileFinished comes as each ends). A photo whose
    worker dies is retried on another worker up to `max_retries` times. `cancel.is_set()` stops the job between photos:
    running photos are abandoned (their workers killed), nothing partial is left, and `Cancelled` is raised with the
    results finished before. `on_workers(actors)` is called once the workers exist (for tests and monitoring)."""
    from .pipeline import (
        FileResult, JobFinished, JobStarted, ModelCache, default_suffix, job_inputs,
        describe_model, load_chain, make_suffix, output_folder, precision_note,
    )

    started = time.monotonic()
    job.validate()
    emit = events or (lambda event: None)
    models = load_chain(job, ModelCache())  # on the driver too: errors before any worker starts, and the names
    suffix = (make_suffix(job.suffix, models, job.output_size) if job.suffix is not None
              else default_suffix(models, job.output_size))
    described = tuple(describe_model(m, job.precision) for m in models)
    notes = tuple(dict.fromkeys(n for n in (precision_note(m, job.precision) for m in models) if n))
    del models
    items = job_inputs(job, suffix)  # earlier outputs left out as run_job does
    total = len(items)

    ray = connect(address)
    count, resources, threads = _worker_shape(ray, cpus_per_worker, job.device)
    count = max(1, min(count, sum(not isinstance(i, FileResult) for i in items) or 1))
    token = uuid.uuid4().hex[:12]
    actor_class = ray.remote(Worker)
    fields = asdict(job)
    actors = [actor_class.options(**resources).remote(fields, token, threads) for _ in range(count)]
    try:
        ray.get([a.ready.remote() for a in actors])
    except Exception as exc:  # noqa: BLE001 - a model that loads here but not there, a worker that cannot start
        for actor in actors:
            ray.kill(actor)
        raise ClusterError(f"the Ray workers could not start: {' '.join(str(exc).split())[:400]}") from None
    if on_workers is not None:
        on_workers(list(actors))
    per_worker = "1 GPU" if "num_gpus" in resources else f"{resources['num_cpus']} CPU(s)"
    where = f" (Ray: {count} worker(s), {per_worker} each)"
    emit(JobStarted(total=total, models=tuple(d + where for d in described), notes=notes))

    results: list[Any] = [None] * total
    folders: set[Path] = set()
    pending: dict[Any, tuple[PhotoTask, Any]] = {}  # object ref -> (task, actor)
    idle = list(actors)
    queue: Iterator[PhotoTask] = _tasks(items, results, emit, total)
    retry: list[PhotoTask] = []
    output_dir = Path(job.output_dir) if job.output_dir is not None else None
    limit = max(1, in_flight_per_worker)
    load = {id(a): 0 for a in actors}

    def submit(task: PhotoTask) -> bool:
        free = [a for a in actors if load[id(a)] < limit]
        if not free:
            return False
        actor = min(free, key=lambda a: load[id(a)])
        load[id(actor)] += 1
        pending[actor.process.remote(task)] = (task, actor)
        return True

    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            while retry and submit(retry[0]):
                retry.pop(0)
            while not retry:
                task = next(queue, None)
                if task is None:
                    break
                folders.add(output_folder(_input(task), output_dir, job.recursive))
                if not submit(task):
                    retry.append(task)
                    break
            if not pending:
                if retry:
                    for task in retry:
                        _finish(results, emit, total, task.index, FileResult(
                            Path(task.path), "failed", error=f"{task.path}: every Ray worker stopped; not written"))
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                task, actor = pending.pop(ref)
                if id(actor) in load:
                    load[id(actor)] -= 1
                try:
                    payload, hidden = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died (RayActorError) or the node left
                    if _actor_dead(exc):
                        actors = [a for a in actors if a is not actor]
                        load.pop(id(actor), None)
                    if task.attempt < max_retries:
                        log.warning("%s: its worker stopped (%s); retrying", task.path, type(exc).__name__)
                        retry.append(PhotoTask(task.index, task.path, task.root, task.attempt + 1))
                    else:
                        _finish(results, emit, total, task.index, FileResult(
                            Path(task.path), "failed", error=f"{task.path}: its Ray worker stopped "
                            f"{task.attempt + 1} times ({type(exc).__name__}); not written"))
                    continue
                if hidden:
                    Path(hidden).unlink(missing_ok=True)
                _finish(results, emit, total, task.index, _result_from_dict(payload))
    except (Cancelled, KeyboardInterrupt):
        for actor in actors:
            ray.kill(actor)
        remove_leftovers(folders, token)
        exc = Cancelled("cancelled by the user; the photos in progress were not written")
        exc.results = [r for r in results if r is not None]  # type: ignore[attr-defined]
        raise exc from None
    for actor in actors:
        ray.kill(actor)
    remove_leftovers(folders, token)
    final = [r for r in results if r is not None]
    emit(JobFinished(tuple(final), time.monotonic() - started))
    return final


def _input(task: PhotoTask):
    from .pipeline import InputFile

    return InputFile(Path(task.path), Path(task.root) if task.root else None)


def _tasks(items: list[Any], results: list[Any], emit, total: int) -> Iterator[PhotoTask]:
    """Photos to submit, in input order; inputs that could not be used are reported in their place as they pass."""
    from .pipeline import FileResult

    for index, item in enumerate(items, start=1):
        if isinstance(item, FileResult):
            _finish(results, emit, total, index, item)
            continue
        yield PhotoTask(index, str(item.path), str(item.root) if item.root is not None else None)


def _finish(results: list[Any], emit, total: int, index: int, result: Any) -> None:
    from .pipeline import FileFinished

    results[index - 1] = result
    emit(FileFinished(index, total, result))


def _result_from_dict(payload: dict[str, Any]):
    from .pipeline import FileResult

    return FileResult(
        input=Path(payload["input"]), status=payload["status"],
        output=Path(payload["output"]) if payload["output"] else None, error=payload["error"],
        seconds=float(payload["seconds"]), notes=list(payload["notes"]), backend=payload.get("backend"),
        size=tuple(payload["size"]) if payload.get("size") else None,
    )


def _actor_dead(exc: BaseException) -> bool:
    name = type(exc).__name__
    return "ActorDied" in name or "ActorError" in name or "ActorUnavailable" in name
