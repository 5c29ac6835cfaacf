"""Download catalog models into the model store: streamed, resumable, verified, and installed atomically.

A download goes to `<file>.part` in the store. A dropped connection is resumed with an HTTP `Range` request (as is a
`.part` left by an earlier run). The finished file must have the catalog's size and sha256, must load through the safe
loader and must be detected as the catalog's network before it is moved into place (`enhancer.atomic`), so a failed
download never leaves a model installed. `ENHANCER_MODEL_MIRROR` swaps the URL's base for a mirror, keeping the file name.
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
from .atomic import move_into_place
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
) -> Path:
    """Download, verify and install a catalog model; return its installed path.

    `progress(bytes_done, total_or_None, bytes_per_second)` is called as data arrives; `cancel()` returning True stops
    the download (raising Cancelled, leaving nothing behind). `accept_license=True` records acceptance of a licence
    that needs it (show `license_text(entry)` first). `on_notice(text)` receives messages the user should see, such
    as a checksum recorded on first use. Failures raise DownloadError saying why; nothing is installed then.
    """
    try:
        entry = store.get_entry(model_id)
    except DownloadError:
        raise
    except ModelError as exc:
        raise DownloadError(str(exc)) from None
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

    expected_sha, expected_size, from_first_use = store.expected_checksum(entry)
    url = source_url(entry)
    target = store.store_file(entry.filename)
    part = target.with_name(target.name + ".part")
    _check_free_space(target.parent, expected_size, part)

    had_partial = part.is_file() and part.stat().st_size > 0
    try:
        _fetch(url, part, expected_size, progress, cancel)
        try:
            digest = _check_bytes(entry, url, part, expected_sha, expected_size, from_first_use)
        except DownloadError:
            if not had_partial:
                raise
            # The .part left by an earlier run may belong to another version of the file: start afresh once.
            log.warning("%s: the resumed download did not verify; downloading it again from the start", entry.id)
            part.unlink(missing_ok=True)
            _fetch(url, part, expected_size, progress, cancel)
            digest = _check_bytes(entry, url, part, expected_sha, expected_size, from_first_use)
        _check_model_and_install(entry, url, part, target)
    except Cancelled:
        part.unlink(missing_ok=True)
        raise
    except DownloadError as exc:
        if not getattr(exc, "keep_partial", False):
            part.unlink(missing_ok=True)
        raise

    if expected_sha is None:
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
    checking = target.with_name(f".checking-{target.name}")
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


def _fetch(
    url: str, part: Path, expected_size: int | None, progress: ProgressCallback | None, cancel: CancelCallback | None
) -> None:
    """Fetch `url` into `part`, resuming after dropped connections; return when `part` holds the whole file."""
    total = expected_size
    failures = resumes = 0
    started = time.monotonic()
    received_now = 0  # bytes received in this call, for the rate
    last_report = 0.0
    last_error = ""
    context = _ssl_context() if url.lower().startswith("https:") else None

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
        if total is not None and have > total:
            part.unlink()
            have = 0
        had = have
        headers = {"User-Agent": f"photo-enhancer/{_version}", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
                mode, have, server_total = _start_body(response, have)
                if server_total is not None:
                    if expected_size is not None and server_total != expected_size:
                        raise DownloadError(
                            f"{url}: the server offers {server_total} bytes but the model is {expected_size} bytes; "
                            "it is another file. Nothing was installed."
                        )
                    total = server_total
                with _open_part(part, mode) as fh:
                    while True:
                        if cancel and cancel():
                            raise Cancelled("download cancelled")
                        chunk = response.read(CHUNK_BYTES)
                        if not chunk:
                            break
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
