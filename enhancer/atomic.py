"""Atomic file writes: a reader sees the old file or the whole new one, never a part, and a failure leaves nothing.

The bytes go to a hidden temporary file in the target's own folder (so the final rename never crosses file systems),
which is flushed and fsynced, given the permissions a normal new file gets, and then moved over the target with
`os.replace`. With `replace=False` the move never replaces a file that exists by then (a hard link, which fails
when the name is taken; a rename on Windows, where renaming onto an existing name fails too): `FileExistsError`.

    with AtomicFile(path, "w", encoding="utf-8") as fh:   # the temporary file, committed when the block succeeds
        json.dump(data, fh)

Any exception in the block (also KeyboardInterrupt) removes the temporary file and leaves the target untouched.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

# The start of every temporary file name this module makes unless a caller names its own: hidden, and recognisable
# as ours when one is left by a crash.
TEMP_PREFIX = ".enhancer-"

# mkstemp creates files with mode 0600; a finished file gets the permissions a normal new file would have.
_UMASK = os.umask(0)
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK


class AtomicFile:
    """An open temporary file next to `target` that becomes `target` on `commit()` (or at the end of a `with` block).

    Created at once: an `OSError` from the constructor means the folder cannot be written. `prefix` and `suffix`
    name the temporary file (default `.enhancer-{name}.` and `.tmp`); `temp` is its path, for a caller that checks
    the bytes before committing. `mode` and `encoding` are those of `open`.
    """

    def __init__(
        self,
        target: str | os.PathLike,
        mode: str = "wb",
        *,
        prefix: str | None = None,
        suffix: str = ".tmp",
        encoding: str | None = None,
        replace: bool = True,
    ) -> None:
        self.target = Path(target)
        self.replace = replace
        self._done = False
        fd, name = tempfile.mkstemp(
            prefix=prefix if prefix is not None else f"{TEMP_PREFIX}{self.target.name}.", suffix=suffix,
            dir=self.target.parent,
        )
        self.temp = Path(name)
        try:
            self.file: IO[Any] = os.fdopen(fd, mode, encoding=encoding)
        except BaseException:
            os.close(fd)
            self.temp.unlink(missing_ok=True)
            raise

    def __enter__(self) -> IO[Any]:
        return self.file

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        self.commit()

    def commit(self) -> Path:
        """Flush, fsync and close the temporary file, then move it onto the target. On failure nothing is left."""
        if self._done:
            raise ValueError(f"{self.target}: this atomic write is already finished")
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.temp, NEW_FILE_MODE)
            move_into_place(self.temp, self.target, replace=self.replace, sync=False)
        except BaseException:
            self.discard()
            raise
        self._done = True
        return self.target

    def discard(self) -> None:
        """Close and remove the temporary file; the target stays as it was."""
        self._done = True
        try:
            self.file.close()
        except OSError:
            pass
        self.temp.unlink(missing_ok=True)


def move_into_place(source: str | os.PathLike, target: str | os.PathLike, *, replace: bool = True, sync: bool = True) -> None:
    """Move a finished file (in the target's folder) onto `target` in one step; `sync` fsyncs it first.

    `replace=False` raises `FileExistsError` instead of replacing a file that exists; `source` is then kept.
    """
    source, target = Path(source), Path(target)
    if sync:
        with open(source, "rb") as fh:
            os.fsync(fh.fileno())
    if replace:
        os.replace(source, target)
    else:
        _move_no_replace(source, target)
    _sync_folder(target.parent)


def _move_no_replace(source: Path, target: Path) -> None:
    if os.name == "nt":
        os.rename(source, target)  # fails with FileExistsError when the name is taken
        return
    try:
        os.link(source, target)  # fails with FileExistsError when the name is taken, atomically
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        # A file system without hard links (FAT, some network shares): check, then rename. Not atomic against
        # another writer in the same instant, which is the best such a file system allows.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.replace(source, target)
        return
    source.unlink()


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows fsync of a folder (POSIX); best effort."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Files that start with TEMP_PREFIX but are no leftovers: a download's lock file may be held by a running process
# (it is removed when the download ends).
_NOT_SWEPT_SUFFIXES = (".lock",)


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file this app makes: `.enhancer-...`, or an encoder's temporary file of one
    (`..enhancer-...`). Lock files are not temporary files."""
    bare = name[1:] if name.startswith("." + TEMP_PREFIX) else name
    return bare.startswith(TEMP_PREFIX) and not name.endswith(_NOT_SWEPT_SUFFIXES)


def sweep_stale_temp(folder: str | os.PathLike, older_than_s: float = 86400) -> list[Path]:
    """Remove this app's temporary files (see `is_temp_name`) in `folder` (not below it) whose last change is more
    than `older_than_s` seconds ago: what a crash or a kill -9 left behind. Younger ones may belong to a job that is
    running now, and every other file is left alone. Returns what was removed; a folder that does not exist or
    cannot be read gives an empty list, and a file that cannot be removed is skipped (best effort, never an error).
    """
    import time

    folder = Path(folder)
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or info.st_mtime >= cutoff:
                continue  # a link or a folder is never ours to remove; a young file may be in use
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def sweep_app_folders(older_than_s: float = 86400) -> list[Path]:
    """`sweep_stale_temp` over the folders the app itself writes: the model store, the cache dir (where disk buffers
    of huge outputs may go) and the compiled backends' graph folder. Called when the CLI or the app starts; output folders are swept when a job
    starts writing into them (`enhancer.pipeline`)."""
    from . import paths
    from .backends.export import graphs_dir

    folders = [paths.data_dir() / "models", paths.cache_dir(), graphs_dir()]
    removed: list[Path] = []
    for folder in folders:
        removed.extend(sweep_stale_temp(folder, older_than_s))
    return removed
