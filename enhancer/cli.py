"""The `enhancer` command: enhance photos from the command line, and manage models.

    enhancer [options] INPUT...          (also `python -m enhancer`)

Progress bars (one overall with an ETA, one per file counting tiles) and error lines go to stderr; the list of written
files, or the `--json` summary, goes to stdout. Before each photo a line on stderr says how long it should take
("  [1/3] photo.jpg: about 40 s on the CPU"; `estimate_seconds` per file in `--json`); `--no-estimate` skips that
(the estimate times a tile, or a probe of a slow one, per model and tile size: seconds, not minutes, the first time).

Exit codes: 0 every input succeeded (skipped inputs count as success); 1 some inputs failed (the others were written),
or a model-management action failed; 2 usage error (bad option, unknown or unloadable model, unavailable device);
130 interrupted by Ctrl-C: the batch stops between tiles, the file in progress is not written and no partial or
temporary file is left. A second Ctrl-C stops at once (still leaving no partial file).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from .errors import Cancelled, EnhancerError
from .options import BACKENDS, DEVICES, OUTPUT_FORMATS, PRECISIONS, available_output_formats

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enhancer",
        description="Enhance photos with SwinIR, Restormer and MobileSR: upscale, denoise, deblur, remove JPEG artifacts.",
        epilog=(
            "Outputs are named {stem}{suffix}.{ext} next to each original (or under --output-dir) and never overwrite "
            "a file: -1, -2... are added instead. Exit codes: 0 all succeeded, 1 some failed, 2 usage error, "
            "130 interrupted (no partial file is left)."
        ),
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "--model", action="append", default=[], metavar="ID|PATH",
        help="model id (see --list-models) or model file; repeat to chain models in order (default: the bundled default)",
    )
    parser.add_argument("--output-dir", type=Path, metavar="DIR", help="where results go (default: next to each original)")
    parser.add_argument(
        "--suffix", metavar="TEXT",
        help="added to the file stem; {model} and {scale} are filled in (default: _{model}_x{scale}); "
        "write --suffix=-TEXT for one that starts with -",
    )
    formats = available_output_formats()
    parser.add_argument(
        "--format", default="same", type=_output_format, choices=formats, metavar="{" + ",".join(formats) + "}",
        help="output format (default same: the input's where it can be written)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--scale", type=_output_scale, metavar="F",
        help="final size as a factor of the input, any number > 0 (e.g. 2 with an x4 model): the models run at "
        "their own scale, then a high-quality resize gives the exact size (default: the models' scale)",
    )
    size.add_argument("--width", type=_output_width, metavar="W", help="final width in pixels, aspect kept")
    size.add_argument("--height", type=_output_height, metavar="H", help="final height in pixels, aspect kept")
    size.add_argument("--fit", type=_output_fit, metavar="WxH", help="largest size that fits in W×H, aspect kept")
    parser.add_argument(
        "--quality", type=_quality, default=95, metavar="N",
        help="quality 1-100 for JPEG, WebP, AVIF, HEIC and JPEG XL (default 95; 100: lossless WebP and JPEG XL)",
    )
    parser.add_argument("--recursive", action="store_true", help="walk folders; the folder tree is kept under --output-dir")
    parser.add_argument("--tile", type=_tile, default="auto", metavar="N|auto", help="tile size in pixels (default auto)")
    parser.add_argument("--overlap", type=_non_negative_int, default=None, metavar="N", help="tile overlap in pixels")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where the networks run")
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS, help="number format of the networks"
    )
    parser.add_argument(
        "--backend", default="auto", choices=BACKENDS,
        help="what runs the networks (default auto: torch on a GPU; on the CPU the faster of torch and OpenVINO, "
        "measured once)",
    )
    parser.add_argument(
        "--threads", type=_non_negative_int, default=0, metavar="N",
        help="CPU threads (default 0: one per core, fewer while other programs keep cores busy)",
    )
    parser.add_argument(
        "--compile", action="store_true",
        help="run the networks through torch.compile: faster on a GPU after a compile of up to minutes per tile size",
    )
    parser.add_argument(
        "--cluster", metavar="local|auto|ray://HOST:PORT",
        help="run the job on Ray workers (the 'cluster' extra): local starts Ray here, auto joins the running cluster",
    )
    parser.add_argument(
        "--cpus-per-worker", type=_positive_int, default=4, metavar="N",
        help="with --cluster: CPU cores per CPU worker (default 4); GPU workers take one GPU each",
    )
    parser.add_argument("--skip-existing", action="store_true", help="skip inputs whose output already exists")
    parser.add_argument(
        "--strip-metadata", default="location", choices=("none", "location", "all"),
        help="what of the photo's metadata stays out of the output (default location: GPS and place names removed, "
        "colour profile and camera data kept; all: no EXIF, XMP or maker notes; the colour profile is always kept)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument(
        "--no-estimate", dest="estimate", action="store_false",
        help="do not print how long each photo should take before it runs (the estimate times a tile per model)",
    )
    parser.add_argument("--list-models", action="store_true", help="list the known models and whether they are installed")
    parser.add_argument("--download", action="append", default=[], metavar="ID", help="download and install a model")
    parser.add_argument("--import", dest="import_paths", action="append", default=[], metavar="PATH",
                        help="add a model file you have to the model store")
    parser.add_argument("--accept-license", action="store_true", help="accept the licence of a model being downloaded")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {value}")
    return value


def _tile(text: str) -> int | str:
    if text.lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of pixels or 'auto', got {text!r}") from None
    if value < 8:
        raise argparse.ArgumentTypeError(f"must be at least 8 pixels, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _output_format(text: str) -> str:
    name = text.lower().lstrip(".")
    if name in OUTPUT_FORMATS and name not in available_output_formats():
        from .imageio import FORMAT_NAMES, writer_requirement

        raise argparse.ArgumentTypeError(
            f"{name} cannot be written by this installation ({writer_requirement(FORMAT_NAMES[name])}); "
            f"available: {', '.join(available_output_formats())}"
        )
    return name


def _output_scale(text: str):
    from .sizing import OutputSize

    try:
        return OutputSize("scale", scale=float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number greater than 0 (e.g. 2 or 1.5), got {text!r}") from None


def _output_side(name: str, text: str):
    from .sizing import OutputSize

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 pixel, got {value}")
    return OutputSize(name, **{name: value})


def _output_width(text: str):
    return _output_side("width", text)


def _output_height(text: str):
    return _output_side("height", text)


def _output_fit(text: str):
    from .sizing import OutputSize

    try:
        return OutputSize.from_text(f"fit{text.strip()}")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT in whole pixels (e.g. 3840x2160), got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors, 0 for --help/--version
        return int(exc.code or 0)
    _log_through_tqdm()
    from .atomic import sweep_app_folders

    sweep_app_folders()  # temporary files a crash or a kill left in the model store and the cache, over a day old
    managing = args.list_models or args.download or args.import_paths
    if not args.inputs and not managing:
        parser.print_usage(sys.stderr)
        print("enhancer: error: no INPUT given (an image file or a folder)", file=sys.stderr)
        return EXIT_USAGE

    cancel = threading.Event()
    with _CtrlC(cancel):
        try:
            code = EXIT_OK
            if managing:
                code = _manage_models(args, cancel)
                if code != EXIT_OK or not args.inputs:
                    return code
            return _enhance(args, cancel)
        except KeyboardInterrupt:  # a second Ctrl-C: stop now (writes clean up their temporary files)
            print("\nenhancer: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


class _TqdmLogHandler(logging.Handler):
    """Log lines printed above the progress bars (not through them), each distinct message once per run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("enhancer: %(message)s"))
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        text = self.format(record)
        if text not in self.seen:  # e.g. a precision fallback is logged for every photo
            self.seen.add(text)
            tqdm.write(text, file=sys.stderr)


def _log_through_tqdm() -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _TqdmLogHandler)), None)
    if handler is None:
        root.addHandler(_TqdmLogHandler())
    else:
        handler.seen.clear()  # main() called again in the same process: a new run
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


class _CtrlC:
    """First Ctrl-C sets `cancel` (the job stops between tiles); the second raises KeyboardInterrupt at once."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.previous: Any = None

    def __enter__(self) -> "_CtrlC":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt
        self.cancel.set()
        print("\nenhancer: stopping after the current tile (Ctrl-C again to stop at once)...", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ------------------------------------------------------------------------------------------------------ enhancing


def _enhance(args: argparse.Namespace, cancel: threading.Event) -> int:
    from .pipeline import Job, ModelCache, run_job
    from .sizing import OutputSize

    job = Job(
        inputs=list(args.inputs),
        models=list(args.model),
        output_dir=args.output_dir,
        suffix=args.suffix,
        format=args.format,
        quality=args.quality,
        recursive=args.recursive,
        tile=args.tile,
        overlap=args.overlap,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        compile=args.compile,
        backend=args.backend,
        skip_existing=args.skip_existing,
        strip_metadata=args.strip_metadata,
        estimate=args.estimate and not args.cluster,  # cluster workers do not estimate
        output_size=args.scale or args.width or args.height or args.fit or OutputSize(),
    )
    reporter = _ProgressReporter(sys.stderr, device=args.device)
    started = time.monotonic()
    cancelled = False
    try:
        if args.cluster:
            from .cluster import run_job_on_cluster

            results = run_job_on_cluster(job, args.cluster, events=reporter, cancel=cancel,
                                         cpus_per_worker=args.cpus_per_worker)
        else:
            results = run_job(job, events=reporter, cancel=cancel, cache=ModelCache())
    except Cancelled as exc:
        cancelled = True
        results = list(getattr(exc, "results", []))
    except (ValueError, EnhancerError) as exc:  # options, model or device: nothing was processed
        reporter.close()
        print(f"enhancer: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        reporter.close()

    failed = sum(r.status == "failed" for r in results)
    code = EXIT_INTERRUPTED if cancelled else (EXIT_FAILED if failed else EXIT_OK)
    seconds = time.monotonic() - started
    if cancelled:
        print(
            f"enhancer: cancelled: {sum(r.status == 'ok' for r in results)} file(s) written before the stop; "
            "the file in progress was not written",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(_summary(results, seconds, code, cancelled), indent=2))
    else:
        for result in results:
            if result.status == "ok":
                print(f"{result.input} -> {result.output}")
        counts = _counts(results)
        ran = ", ".join(_backends(results))
        print(
            f"enhancer: {counts['ok']} written, {counts['skipped']} skipped, {counts['failed']} failed "
            f"in {seconds:.1f} s" + (f" (through {ran})" if ran else ""),
            file=sys.stderr,
        )
    return code


def _backends(results) -> list[str]:
    """What ran the networks, over the whole job, e.g. ["openvino"]."""
    return list(dict.fromkeys(part for r in results if r.backend for part in r.backend.split("+")))


def _counts(results) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in ("ok", "skipped", "failed")}


def _summary(results, seconds: float, code: int, cancelled: bool) -> dict[str, Any]:
    return {
        "results": [r.to_dict() for r in results],
        **_counts(results),
        "seconds": round(seconds, 3),
        "cancelled": cancelled,
        "exit_code": code,
        "backends": _backends(results),
    }


class _ProgressReporter:
    """Turns pipeline events into tqdm bars on stderr: one overall (files, with ETA) and one per file (tiles)."""

    def __init__(self, stream: TextIO, device: str = "auto") -> None:
        self.stream = stream
        self.overall = None
        self.file_bar = None
        self.device = device
        self._where: str | None = None

    def __call__(self, event) -> None:
        from tqdm import tqdm

        from .pipeline import FileFinished, FileStarted, JobFinished, JobStarted, TileProgress

        if isinstance(event, JobStarted):
            for model in event.models:
                tqdm.write(f"enhancer: model {model}", file=self.stream)
            for note in event.notes:  # a precision fallback, logged again by each photo's run: said here, once
                log.warning("%s", note)
            self.overall = tqdm(total=event.total, desc="photos", unit="photo", file=self.stream, position=0,
                                dynamic_ncols=True)
        elif isinstance(event, FileStarted):
            self._close_file_bar()
            if event.estimate_seconds is not None:
                tqdm.write(f"  [{event.index}/{event.total}] {event.input.name}: {self._estimate_text(event)}",
                           file=self.stream)
            self.file_bar = tqdm(total=None, desc=_short(event.input.name), unit="tile", file=self.stream, position=1,
                                 leave=False, dynamic_ncols=True)
        elif isinstance(event, TileProgress) and self.file_bar is not None:
            self.file_bar.total = event.total
            self.file_bar.n = event.done
            self.file_bar.refresh()
        elif isinstance(event, FileFinished):
            self._close_file_bar()
            result = event.result
            if result.status == "failed":
                tqdm.write(f"enhancer: error: {result.error}", file=self.stream)
            elif result.status == "skipped" and result.error:
                tqdm.write(f"enhancer: skipped: {result.error}", file=self.stream)
            for note in result.notes:
                tqdm.write(f"enhancer: note: {result.input}: {note}", file=self.stream)
            if self.overall is not None:
                self.overall.update(1)
        elif isinstance(event, JobFinished):
            self.close()

    def _estimate_text(self, event) -> str:
        from .estimate import device_for_people, format_duration

        if self._where is None:
            try:
                self._where = device_for_people(self.device)
            except EnhancerError:
                self._where = ""
        where = f" on {self._where}" if self._where else ""
        return format_duration(event.estimate_seconds) + where

    def _close_file_bar(self) -> None:
        if self.file_bar is not None:
            self.file_bar.close()
            self.file_bar = None

    def close(self) -> None:
        self._close_file_bar()
        if self.overall is not None:
            self.overall.close()
            self.overall = None


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------------------ models


def _manage_models(args: argparse.Namespace, cancel: threading.Event) -> int:
    code = EXIT_OK
    for path in args.import_paths:
        code = max(code, _import_model(path))
    for model_id in args.download:
        if cancel.is_set():
            return EXIT_INTERRUPTED
        code = max(code, _download(model_id, args.accept_license, cancel))
    if args.list_models:
        code = max(code, _list_models())
    return code


def _list_models() -> int:
    from . import store
    from .catalog import format_size

    try:
        entries = store.load_catalog()
        try:
            default = store.default_model_id()
        except EnhancerError:
            default = None
    except EnhancerError as exc:
        print(f"enhancer: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    rows = [("id", "task", "scale", "installed", "size", "licence")]
    for entry in entries:
        installed = store.installed_path(entry) is not None
        rows.append((
            entry.id + (" *" if entry.id == default else ""),
            str(entry.task),
            f"x{entry.scale}",
            "yes" if installed else "no",
            format_size(entry.size),
            str(entry.license),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if default:
        print(f"* the default model ({default})")
    return EXIT_OK


def _download(model_id: str, accept_license: bool, cancel: threading.Event) -> int:
    from tqdm import tqdm

    from . import download, store

    try:
        entry = store.get_entry(model_id)
        if (
            getattr(entry, "requires_license_acceptance", False)
            and not store.license_accepted(entry)
            and not accept_license
            and sys.stdin is not None
            and sys.stdin.isatty()
        ):
            print(download.license_text(entry), file=sys.stderr)
            answer = input("Accept this licence and download? [y/N] ").strip().lower()
            accept_license = answer in ("y", "yes")
            if not accept_license:
                print(f"enhancer: {entry.id} not downloaded: the licence was not accepted", file=sys.stderr)
                return EXIT_FAILED
    except EnhancerError as exc:
        print(f"enhancer: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED

    bar = tqdm(desc=f"download {entry.id}", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
               dynamic_ncols=True)

    def progress(done: int, total: int | None, rate: float) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = download.download_model(
            entry.id, progress=progress, cancel=cancel.is_set, accept_license=accept_license,
            on_notice=lambda text: tqdm.write(f"enhancer: {text}", file=sys.stderr),
        )
    except Cancelled:
        bar.close()
        print(f"enhancer: download of {entry.id} cancelled; nothing was installed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EnhancerError as exc:
        bar.close()
        print(f"enhancer: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    bar.close()
    print(f"installed {entry.id} at {path}")
    return EXIT_OK


def _import_model(path: str) -> int:
    from . import store

    try:
        entry = store.import_model(path)
    except EnhancerError as exc:
        print(f"enhancer: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    print(f"imported {path} as {entry.id} ({entry.arch}, {entry.task}, x{entry.scale}); use it with --model {entry.id}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
