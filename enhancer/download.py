"""Download catalog models into the model store: streamed, resumable, verified, and installed atomically.

A download goes to `.enhancer-<file>.part` in the store. A dropped connection is resumed with an HTTP `Range`
request (as is a `.part` left by an earlier run). The finished file must have the catalog's size and sha256, must load
through the safe loader and must be detected as the catalog's network before it is moved into place
(`enhancer.atomic`), so a failed download never leaves a model installed, and a checksum is recorded (trust on first
use) only for a file that passed all of that. `ENHANCER_MODEL_MIRROR` swaps the URL's base for a mirror, keeping the
file name.

Hostile or unlucky servers and users:
- one download per model id at a time: a lock file in the store (`.enhancer-<id>.lock`, an OS file lock, so a
  crashed holder never blocks anyone); a second download of the same id, in this process or another, waits up to
  `LOCK_WAIT_S` for the first and then uses its file, or fails with "already downloading <id>";
- at most the catalog's size is received (`MAX_UNKNOWN_SIZE` when the catalog does not know it), counted while the
  body streams, so a server that sends no Content-Length and never stops is cut off;
- a redirect never leaves https for a weaker scheme (https to http is refused), and only http(s) is followed;
- every failure is a `DownloadError` whose message starts with the model id and says why.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote, urlsplit

from . import __version__ as _version
from . import store
from .atomic import TEMP_PREFIX, move_into_place
from .catalog import CatalogEntry, format_size
from .errors import Cancelled, DownloadError, ModelError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None", float], None]  # bytes done, total bytes or None, bytes per second
CancelCallback = Callable[[], bool]

CHUNK_BYTES = 256 * 1024
TIMEOUT_S = 30.0  # for connecting and for each read; a stalled server counts as a dropped connection
MAX_FAILURES_IN_A_ROW = 4  # attempts that received nothing before giving up
MAX_RESUMES = 50  # resumes in one download, even when each of them makes progress
BACKOFF_S = 0.5  # first wait before a retry; doubles after each failure that made no progress
BACKOFF_MAX_S = 8.0
PROGRESS_INTERVAL_S = 0.1
RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
# The most bytes taken from a server for a model whose catalog entry has no size (the largest released models are
# a few hundred MB): a server that never stops sending is cut off here.
MAX_UNKNOWN_SIZE = 2 << 30
LOCK_WAIT_S = 600.0  # how long a second download of the same model waits for the first one to finish
LOCK_POLL_S = 0.1
# Constructor arguments that only size buffers our networks rebuild for the real input, so they may differ from the
# catalog without changing a single weight (SwinIR's training patch size).
CONFIG_KEYS_NOT_CHECKED = {"img_size"}


class _Transient(Exception):
    """A network failure worth retrying (dropped connection, timeout, 5xx)."""


def source_url(entry: CatalogEntry) -> str:
    """The URL a catalog entry is fetched from: its release URL, or the same file name under ENHANCER_MODEL_MIRROR."""
    if not entry.url:
        raise DownloadError(f"{entry.id}: has no download URL")
    mirror = os.environ.get("ENHANCER_MODEL_MIRROR", "").strip()
    if not mirror:
        return entry.url
    name = unquote(urlsplit(entry.url).path.rsplit("/", 1)[-1])
    return mirror.rstrip("/") + "/" + quote(name)


def license_text(entry: CatalogEntry) -> str:
    """What a user must read before downloading a model whose licence needs acceptance."""
    lines = [f"{entry.name} ({entry.id}) is licensed under: {entry.license}."]
    if entry.license_notice:
        lines.append(entry.license_notice)
    if entry.license_url:
        lines.append(f"Full licence: {entry.license_url}")
    return "\n".join(lines)


def download_model(
    model_id: str,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    accept_license: bool = False,
    on_notice: Callable[[str], None] | None = None,
    *,
    lock_wait_s: float | None = None,
) -> Path:
    """Download, verify and install a catalog model; return its installed path.

    `progress(bytes_done, total_or_None, bytes_per_second)` is called as data arrives; `cancel()` returning True stops
    the download (raising Cancelled, leaving nothing behind). `accept_license=True` records acceptance of a licence
    that needs it (show `license_text(entry)` first). `on_notice(text)` receives messages the user should see, such
    as a checksum recorded on first use. When another download of the same model runs (another window or process),
    this one waits up to `lock_wait_s` seconds (default `LOCK_WAIT_S`) and then returns the file that one installed.
    Failures raise DownloadError, its message starting with the model id and saying why; nothing is installed then.
    """
    try:
        entry = store.get_entry(model_id)
    except DownloadError:
        raise
    except ModelError as exc:
        raise DownloadError(str(exc)) from None
    try:
        return _download_entry(entry, progress, cancel, accept_license, on_notice,
                               LOCK_WAIT_S if lock_wait_s is None else lock_wait_s)
    except Cancelled:
        raise
    except DownloadError as exc:
        if str(exc).startswith(f"{entry.id}:"):
            raise
        raise DownloadError(f"{entry.id}: {exc}") from None
    except ModelError as exc:  # from the store (a folder that cannot be created, a refused file name)
        raise DownloadError(f"{entry.id}: {exc}") from None
    except OSError as exc:  # a full disk, a folder that went away, a permission changed under us
        where = f"{exc.filename}: " if exc.filename else ""
        raise DownloadError(
            f"{entry.id}: the download failed ({where}{exc.strerror or exc}). Nothing was installed."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a server or a file we did not foresee still ends in a DownloadError
        raise DownloadError(
            f"{entry.id}: the download failed ({type(exc).__name__}: {exc}). Nothing was installed."
        ) from exc


def part_path(target: Path) -> Path:
    """Where the download of `target` collects its bytes (resumed from there by a later run)."""
    return target.with_name(f"{TEMP_PREFIX}{target.name}.part")


def _download_entry(
    entry: CatalogEntry,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
    accept_license: bool,
    on_notice: Callable[[str], None] | None,
    lock_wait_s: float,
) -> Path:
    if entry.is_bundled or entry.imported:
        path = store.installed_path(entry)
        if path is None:
            raise DownloadError(f"{entry.id}: this model is not downloadable and its file is missing")
        return path
    if entry.requires_license_acceptance and not store.license_accepted(entry):
        if not accept_license:
            raise DownloadError(
                f"{entry.id}: its licence must be accepted before downloading.\n{license_text(entry)}\n"
                f"To accept it: `enhancer --download {entry.id} --accept-license`, or accept it in the model manager."
            )
        store.accept_license(entry.id)
        log.info("%s: licence %r accepted", entry.id, entry.license)

    existing = store.installed_path(entry)
    if existing is not None:
        return existing
    with DownloadLock(entry.id, store.model_store(), lock_wait_s, cancel):
        existing = store.installed_path(entry)  # the download we waited for installed it
        if existing is not None:
            return existing
        return _download_locked(entry, progress, cancel, on_notice)


def _download_locked(
    entry: CatalogEntry,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
    on_notice: Callable[[str], None] | None,
) -> Path:
    expected_sha, expected_size, from_first_use = store.expected_checksum(entry)
    url = source_url(entry)
    target = store.store_file(entry.filename)
    part = part_path(target)
    legacy = target.with_name(target.name + ".part")  # where versions before 0.2 kept it: resumed, not orphaned
    if legacy.is_file() and not part.exists():
        os.replace(legacy, part)
    _check_free_space(target.parent, expected_size, part)
    limit = expected_size if expected_size is not None else MAX_UNKNOWN_SIZE

    had_partial = part.is_file() and part.stat().st_size > 0
    try:
        _fetch(url, part, expected_size, progress, cancel, limit)
        try:
            digest = _check_bytes(entry, url, part, expected_sha, expected_size, from_first_use)
        except DownloadError:
            if not had_partial:
                raise
            # The .part left by an earlier run may belong to another version of the file: start afresh once.
            log.warning("%s: the resumed download did not verify; downloading it again from the start", entry.id)
            part.unlink(missing_ok=True)
            _fetch(url, part, expected_size, progress, cancel, limit)
            digest = _check_bytes(entry, url, part, expected_sha, expected_size, from_first_use)
        _check_model_and_install(entry, url, part, target)
    except Cancelled:
        part.unlink(missing_ok=True)
        raise
    except DownloadError as exc:
        if not getattr(exc, "keep_partial", False):
            part.unlink(missing_ok=True)
        raise
    except BaseException:
        part.unlink(missing_ok=True)  # bytes of a download that failed in an unforeseen way are never resumed
        raise

    if expected_sha is None:  # only now: the file passed size, loader and network checks and is installed
        store.record_checksum(entry, digest, target.stat().st_size, url)
        message = (
            f"{entry.id}: no checksum is published for this file, so its sha256 {digest} was recorded now "
            "(trust on first use); later downloads must match it."
        )
        log.warning("%s", message)
        if on_notice:
            on_notice(message)
    log.info("%s: installed %s (%d bytes, sha256 %s)", entry.id, target, target.stat().st_size, digest)
    return target


# --------------------------------------------------------------------------------------------------------------------
# One download per model at a time


class DownloadLock:
    """An exclusive lock on `folder/.enhancer-<model_id>.lock` for as long as the `with` block runs.

    An OS file lock (flock on POSIX, a byte-range lock on Windows), so it is held per open file: two threads, two
    windows or two processes exclude each other, and a holder that crashes releases it with its process. The holder
    removes the file when it is done; a waiter that locked a file removed meanwhile tries the new one. Waits up to
    `wait_s` seconds (checking `cancel()`), then raises DownloadError "already downloading <id>".
    """

    def __init__(self, model_id: str, folder: Path, wait_s: float = LOCK_WAIT_S,
                 cancel: CancelCallback | None = None) -> None:
        self.model_id = model_id
        self.path = Path(folder) / f"{TEMP_PREFIX}{store.sanitised_id(model_id)}.lock"
        self.wait_s = wait_s
        self.cancel = cancel
        self._fd: int | None = None

    def __enter__(self) -> "DownloadLock":
        deadline = time.monotonic() + max(self.wait_s, 0.0)
        logged = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if _try_lock(fd):
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
                if current is not None and os.path.samestat(os.fstat(fd), current):
                    self._fd = fd
                    return self
                _unlock(fd)  # the holder before us removed this file: lock the one at the path now
            os.close(fd)
            if self.cancel and self.cancel():
                raise Cancelled("download cancelled")
            if time.monotonic() >= deadline:
                raise DownloadError(
                    f"{self.model_id}: already downloading {self.model_id} (in another window or process); "
                    "try again when that download has finished"
                )
            if not logged:
                log.info("%s: another download of this model is running; waiting for it", self.model_id)
                logged = True
            time.sleep(LOCK_POLL_S)

    def __exit__(self, *exc: Any) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.name != "nt":
            self.path.unlink(missing_ok=True)  # while still locked, so no one locks this file after us
        _unlock(fd)
        os.close(fd)
        if os.name == "nt":
            try:  # Windows cannot remove a file another process holds open; that one removes it later
                self.path.unlink(missing_ok=True)
            except OSError:
                pass


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # BlockingIOError: held by someone else
        return False


def _unlock(fd: int) -> None:
    try:
        if os.name == "nt":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------------------------
# Verification


def _check_bytes(
    entry: CatalogEntry, url: str, part: Path, expected_sha: str | None, expected_size: int | None, from_first_use: bool
) -> str:
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(
            f"{url}: the download has {size} bytes but {entry.id} is {expected_size} bytes; "
            "the file is damaged or the server sent another file. Nothing was installed."
        )
    digest = store.sha256_of(part)
    if expected_sha is not None and digest != expected_sha:
        source = "the checksum recorded on its first download" if from_first_use else "the catalog's checksum"
        raise DownloadError(
            f"{url}: wrong checksum: the download's sha256 is {digest}, but {source} for {entry.id} is {expected_sha}. "
            "The file is damaged or was replaced. Nothing was installed."
        )
    return digest


def _check_model_and_install(entry: CatalogEntry, url: str, part: Path, target: Path) -> None:
    """Load the verified bytes through the safe loader, check the network, then move the file into place."""
    from .checkpoints import model_from_state_dict, read_state_dict

    # The safe loader picks the reader by suffix, so the file is checked under a hidden name that keeps it.
    checking = target.with_name(f"{TEMP_PREFIX}checking-{target.name}")
    os.replace(part, checking)
    try:
        with open(checking, "rb") as fh:
            start = fh.read(512).lstrip().lower()
        if start.startswith((b"<!doctype html", b"<html", b"<?xml", b"{")):
            kind = "JSON" if start.startswith(b"{") else "a web page"
            raise DownloadError(
                f"{url}: the server sent {kind}, not a model file (an error or login page?). Nothing was installed."
            )
        try:
            state = read_state_dict(checking)
            model = model_from_state_dict(state, name=entry.id, source=checking)
        except ModelError as exc:
            detail = str(exc).replace(str(checking), entry.filename)
            raise DownloadError(f"{url}: the download is not a usable model ({detail}). Nothing was installed.") from None
        problems = config_differences(entry, model.arch, model.config)
        if problems:
            raise DownloadError(
                f"{url}: the download is not the model {entry.id} expects: {'; '.join(problems)}. Nothing was installed."
            )
        del state, model
        move_into_place(checking, target)
    finally:
        checking.unlink(missing_ok=True)


def config_differences(entry: CatalogEntry, arch: str, config: Mapping[str, Any]) -> list[str]:
    """How a detected network differs from the catalog entry (empty when it matches)."""
    if arch != entry.arch:
        return [f"it is a {arch} network, not {entry.arch}"]
    problems = []
    for key, wanted in entry.config.items():
        if key in CONFIG_KEYS_NOT_CHECKED or key not in config:
            continue
        found = config[key]
        if _normalise(found) != _normalise(wanted):
            problems.append(f"{key} is {found!r}, expected {wanted!r}")
    return problems


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(value)


def _check_free_space(folder: Path, expected_size: int | None, part: Path) -> None:
    if expected_size is None:
        return
    have = part.stat().st_size if part.is_file() else 0
    needed = expected_size - have
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise DownloadError(
            f"{folder}: not enough free disk space: the model needs {format_size(needed)} more, "
            f"only {format_size(free)} is free"
        )


# --------------------------------------------------------------------------------------------------------------------
# HTTP


def ca_bundle_path() -> str:
    """The CA certificates HTTPS downloads trust: certifi's cacert.pem, inside the bundle when the app is frozen.

    A frozen app must not depend on where the build machine's OpenSSL looked for certificates (a Linux build's
    /usr/lib/ssl, a macOS build's Homebrew OpenSSL): those paths are compiled into the bundled libssl and rarely exist
    on the user's computer. So the context is always built from an explicit file, never from OpenSSL's defaults.
    """
    import sys

    frozen_root = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and frozen_root:
        bundled = Path(frozen_root) / "certifi" / "cacert.pem"  # where PyInstaller's certifi hook puts it
        if bundled.is_file():
            return str(bundled)
    try:
        import certifi
    except ImportError:
        raise DownloadError("the certifi package is missing, so HTTPS certificates cannot be checked: "
                            "pip install certifi (or reinstall the app)") from None
    return certifi.where()


def _ssl_context() -> ssl.SSLContext:
    # cafile given: Python loads only that file, not OpenSSL's compiled-in default paths or SSL_CERT_FILE/SSL_CERT_DIR
    return ssl.create_default_context(cafile=ca_bundle_path())


SCHEME_STRENGTH = {"http": 0, "https": 1}


class NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s), and never from https to a weaker scheme (a downgrade would let anyone on
    the way swap the file; the checksum is not published for every model)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        old = urlsplit(req.full_url).scheme.lower()
        new = urlsplit(newurl).scheme.lower()
        if new not in SCHEME_STRENGTH or SCHEME_STRENGTH[new] < SCHEME_STRENGTH.get(old, 0):
            raise DownloadError(
                f"{req.full_url}: refused a redirect (HTTP {code}) from {old} to {new or 'no scheme'} ({newurl}): "
                "a download never leaves https for a weaker scheme. Nothing was installed."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(url: str) -> urllib.request.OpenerDirector:
    # The certificate context also for an http URL, for a redirect that upgrades it to https.
    context = _ssl_context()
    return urllib.request.build_opener(NoDowngradeRedirects(), urllib.request.HTTPSHandler(context=context))


def _fetch(
    url: str, part: Path, expected_size: int | None, progress: ProgressCallback | None, cancel: CancelCallback | None,
    limit: int | None = None,
) -> None:
    """Fetch `url` into `part`, resuming after dropped connections; return when `part` holds the whole file.
    `limit`: the most bytes the file may have (default: `expected_size`, else `MAX_UNKNOWN_SIZE`), enforced as the
    body streams whatever the server announces."""
    if limit is None:
        limit = expected_size if expected_size is not None else MAX_UNKNOWN_SIZE
    total = expected_size
    failures = resumes = 0
    started = time.monotonic()
    received_now = 0  # bytes received in this call, for the rate
    last_report = 0.0
    last_error = ""
    opener = _opener(url)

    def report(done: int, force: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        if progress and (force or now - last_report >= PROGRESS_INTERVAL_S):
            last_report = now
            progress(done, total, received_now / max(now - started, 1e-6))

    while True:
        if cancel and cancel():
            raise Cancelled("download cancelled")
        have = part.stat().st_size if part.is_file() else 0
        if total is not None and have == total and have > 0:
            report(have, force=True)
            return
        if (total is not None and have > total) or have > limit:
            part.unlink()
            have = 0
        had = have
        headers = {"User-Agent": f"photo-enhancer/{_version}", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            request = urllib.request.Request(url, headers=headers)
            with opener.open(request, timeout=TIMEOUT_S) as response:
                mode, have, server_total = _start_body(response, have)
                if server_total is not None:
                    if expected_size is not None and server_total != expected_size:
                        raise DownloadError(
                            f"{url}: the server offers {server_total} bytes but the model is {expected_size} bytes; "
                            "it is another file. Nothing was installed."
                        )
                    if server_total > limit:
                        raise DownloadError(
                            f"{url}: the server offers {format_size(server_total)}, more than the "
                            f"{format_size(limit)} a model of unknown size may have. Nothing was installed."
                        )
                    total = server_total
                with _open_part(part, mode) as fh:
                    while True:
                        if cancel and cancel():
                            raise Cancelled("download cancelled")
                        # Never more than one byte past the limit, whatever the server announced (or did not).
                        chunk = response.read(min(CHUNK_BYTES, limit + 1 - have))
                        if not chunk:
                            break
                        if have + len(chunk) > limit:
                            what = "the model's size in the catalog" if expected_size is not None else (
                                "the most a model of unknown size may have")
                            raise DownloadError(
                                f"{url}: the server sent more than {limit:,} bytes ({what}); the download was cut "
                                "off there. Nothing was installed."
                            )
                        _write(fh, chunk, part)
                        have += len(chunk)
                        received_now += len(chunk)
                        report(have)
            if total is None or have == total:
                if have == 0:
                    raise DownloadError(f"{url}: the server sent an empty file. Nothing was installed.")
                total = have
                report(have, force=True)
                return
            if have > total:
                raise DownloadError(f"{url}: the server sent more bytes than it announced ({have} > {total})")
            raise _Transient(f"the connection closed after {have} of {total} bytes")
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and had:
                part.unlink(missing_ok=True)  # our partial file is longer than the server's: start over
                last_error = "the server refused to resume (HTTP 416)"
            elif exc.code in RETRYABLE_HTTP:
                last_error = f"HTTP {exc.code} {exc.reason}"
            else:
                raise _http_error(url, exc) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                host = urlsplit(url).netloc
                raise _keep_partial(
                    DownloadError(
                        f"{url}: connection refused by {host}: no server is answering there. "
                        "Check the address (and ENHANCER_MODEL_MIRROR if set), then try again."
                    )
                ) from None
            if isinstance(reason, socket.gaierror):
                host = urlsplit(url).hostname
                raise _keep_partial(
                    DownloadError(f"{url}: cannot find the server {host}; check the internet connection")
                ) from None
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise DownloadError(f"{url}: the server's certificate is not trusted ({reason})") from None
            last_error = str(reason) or type(reason).__name__
        except (_Transient, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout, ssl.SSLError) as exc:
            last_error = str(exc) or type(exc).__name__

        now_have = part.stat().st_size if part.is_file() else 0
        failures = 0 if now_have > had else failures + 1
        resumes += 1
        if failures >= MAX_FAILURES_IN_A_ROW or resumes > MAX_RESUMES:
            raise _keep_partial(
                DownloadError(
                    f"{url}: the download failed after {resumes} attempts: {last_error}. "
                    "Try again later; it will resume where it stopped."
                )
            )
        log.info("download of %s interrupted (%s); resuming at byte %d", url, last_error, now_have)
        _sleep(min(BACKOFF_S * (2 ** max(failures - 1, 0)), BACKOFF_MAX_S), cancel)


def _start_body(response: Any, have: int) -> tuple[str, int, int | None]:
    """How to write this response: ("ab", have, total) for a matching 206, else ("wb", 0, total) from the start."""
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    if have and response.status == 206:
        start, full = _parse_content_range(response.headers.get("Content-Range", ""))
        if start == have:
            if full is None and length is not None:
                full = have + length
            return "ab", have, full
        raise _Transient(f"the server resumed at byte {start}, not {have}")
    return "wb", 0, length


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    """`bytes 100-199/2000` -> (100, 2000); `bytes 100-199/*` -> (100, None)."""
    try:
        unit, _, rest = value.strip().partition(" ")
        span, _, full = rest.partition("/")
        start = int(span.split("-", 1)[0])
        return (start if unit == "bytes" else None), (int(full) if full.strip().isdigit() else None)
    except ValueError:
        return None, None


def _http_error(url: str, exc: urllib.error.HTTPError) -> DownloadError:
    if exc.code == 404:
        return DownloadError(
            f"{url}: not found on the server (HTTP 404). The file may have moved; "
            "check for an app update or set ENHANCER_MODEL_MIRROR to a mirror that has it."
        )
    if exc.code in (401, 403):
        return DownloadError(f"{url}: the server refused access (HTTP {exc.code} {exc.reason})")
    return DownloadError(f"{url}: the server answered HTTP {exc.code} {exc.reason}")


def _keep_partial(exc: DownloadError) -> DownloadError:
    exc.keep_partial = True  # type: ignore[attr-defined]  # the bytes so far are good; the next try resumes them
    return exc


def _open_part(part: Path, mode: str):
    try:
        return open(part, mode)
    except OSError as exc:
        raise DownloadError(f"{part}: cannot write the download ({exc.strerror or exc})") from None


def _write(fh: Any, chunk: bytes, part: Path) -> None:
    try:
        fh.write(chunk)
    except OSError as exc:  # a full disk must not look like a network failure worth retrying
        raise DownloadError(f"{part}: cannot write the download ({exc.strerror or exc})") from None


def _sleep(seconds: float, cancel: CancelCallback | None) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if cancel and cancel():
            raise Cancelled("download cancelled")
        time.sleep(min(left, 0.1))
