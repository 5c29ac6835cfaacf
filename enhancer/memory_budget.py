"""How much memory one photo's job needs, whether it fits, and a disk buffer for an output that does not.

Before a photo is enhanced, `plan_photo` adds up what the run holds at its peak: the decoded photo, each model's
result array, one tile's forward pass (the network's floats per pixel from its `ArchSpec`, at the tile size the run
will use), the Y plane of a luma network, a final resize and what the encoder needs to write the result. That is set
against the memory this process may use (`memory_budget`):

- it fits: the run goes as always, in memory;
- only the result arrays do not fit: they go to `DiskBuffer`s, numpy memmaps in hidden `.enhancer-` files next to
  the output (or in the cache dir), which the system pages out to disk instead of killing the process;
- even that does not fit (the disk is too full, or the photo and one tile alone are too large, or the process's
  address-space limit counts the mapped files too): `MemoryBudgetError`, naming the file and how much is needed.
  The batch goes on with the next file.

The budget is the memory available now (Linux: MemAvailable, within the cgroup's limit; Windows:
GlobalMemoryStatusEx; macOS: half of the physical memory), less a margin for the rest of the machine.
`ENHANCER_MEMORY_BUDGET` (bytes, or with K, M, G: "600M") replaces it, for tests and for users who want the app to
stay small.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .atomic import TEMP_PREFIX
from .errors import ImageError

BUDGET_ENV = "ENHANCER_MEMORY_BUDGET"
AVAILABLE_SHARE = 0.85  # of the memory available now: the rest is left to the system, other programs, fragmentation
ADDRESS_SPACE_SHARE = 0.7  # of the room below RLIMIT_AS: thread arenas and stacks reserve address space too
DISK_MARGIN = 1.05  # a disk buffer's folder must have its size and 5% more free
FLOAT = 4  # bytes of a float32


class MemoryBudgetError(ImageError):
    """A photo whose job needs more memory (or disk for its buffer) than this process may use."""


# --------------------------------------------------------------------------------------------------------------------
# How much there is


def parse_size(text: str) -> int:
    """ "123", "600K", "1.5G" (powers of 1024; a trailing "B" or "iB" is allowed) -> bytes. `ValueError` if not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if not match:
        raise ValueError(f"not a size in bytes: {text!r} (use e.g. 800M or 4G)")
    factor = 1024 ** " kmgt".index(match.group(2) or " ")
    return int(float(match.group(1)) * factor)


def system_available_bytes() -> int:
    """Memory that can be allocated now without swapping: Linux MemAvailable (or the cgroup's room when that is
    smaller), Windows' available physical memory, elsewhere what sysconf says (macOS: half the physical memory)."""
    values = [v for v in (_meminfo_available(), _cgroup_room(), _windows_available()) if v is not None]
    if values:
        return max(min(values), 0)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    try:  # macOS has no available-pages counter: half of the physical memory is a cautious guess
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def memory_budget() -> int:
    """Bytes of host memory one photo's job may use now: `ENHANCER_MEMORY_BUDGET` when set, else a share of what is
    available (`system_available_bytes`)."""
    override = os.environ.get(BUDGET_ENV, "").strip()
    if override:
        return parse_size(override)
    return int(system_available_bytes() * AVAILABLE_SHARE)


def address_space_room() -> int | None:
    """Bytes this process may still map under its address-space limit (`ulimit -v`), None when there is none.
    Mapped files count there too, so a disk buffer does not help against this limit."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _vm_size()
    return int(max(soft - used, 0) * ADDRESS_SPACE_SHARE)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """memory.max minus memory.current of this process's cgroup (v2; v1's limit_in_bytes), None without a limit."""
    try:
        line = next(l for l in Path("/proc/self/cgroup").read_text().splitlines() if l.startswith("0::"))
        group = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
        limit = (group / "memory.max").read_text().strip()
        if limit != "max":
            return int(limit) - int((group / "memory.current").read_text())
    except (OSError, StopIteration, ValueError):
        pass
    try:
        limit_v1 = int(Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").read_text())
        if limit_v1 < 1 << 60:
            return limit_v1 - int(Path("/sys/fs/cgroup/memory/memory.usage_in_bytes").read_text())
    except (OSError, ValueError):
        pass
    return None


def _windows_available() -> int | None:
    if sys.platform != "win32":
        return None
    import ctypes

    class MemoryStatusEx(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatusEx()
    status.dwLength = ctypes.sizeof(MemoryStatusEx)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullAvailPhys)


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} bytes"


# --------------------------------------------------------------------------------------------------------------------
# A result array on disk


class DiskBuffer:
    """A float32 array backed by a hidden temporary file (`.enhancer-buffer-*.f32`) in `folder`, for a result that
    does not fit in memory. On POSIX the file is unlinked as soon as it is mapped, so nothing is left even after a
    kill -9; on Windows it is removed when the array is released (and by the start-up sweep after a crash)."""

    def __init__(self, folder: Path, shape: tuple[int, ...]) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}buffer-", suffix=".f32", dir=folder)
        self.path = Path(name)
        try:
            with os.fdopen(fd, "w+b") as fh:
                self.array: np.ndarray = np.memmap(fh, dtype=np.float32, mode="w+", shape=shape)
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        if os.name != "nt":
            self.path.unlink()  # the mapping keeps the space until the array is gone
        else:
            weakref.finalize(self.array, _remove_quietly, self.path)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------------------------
# What a photo's job needs


@dataclass(frozen=True)
class Stage:
    """One model of the chain on this photo: its input and output sizes, and its tile."""

    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    channels: int
    input_bytes: int  # the array this model reads (the photo, or the previous model's result)
    output_bytes: int  # the result array it writes
    luma_bytes: int  # the Y plane a luma network reads (0 for the others)
    tile_bytes: int  # host memory of one tile at the size the run uses
    tile_side: int  # network input side of that tile (context included)


@dataclass(frozen=True)
class MemoryPlan:
    """What a photo's run needs and how it will go: `streamed` puts the results in `DiskBuffer`s in `folder`."""

    path: Path
    stages: tuple[Stage, ...]
    photo_bytes: int
    finish_bytes: int  # a final resize and the encoder, while the result exists
    budget: int
    in_memory_peak: int
    streamed_peak: int
    streamed: bool = False
    folder: Path | None = None
    tile_budgets: tuple[int | None, ...] = field(default=())

    def out_array(self, step: int) -> np.ndarray | None:
        """The preallocated result array of model `step` (a disk buffer when streamed), None for a plain one."""
        if not self.streamed or self.folder is None:
            return None
        stage = self.stages[step]
        return DiskBuffer(self.folder, (*stage.out_hw, stage.channels)).array


def stages_for(models: Sequence[Any], height: int, width: int, channels: int, tile: int | str, precision: str,
               tile_room: int | None) -> list[Stage]:
    """The chain's stages on an H×W×C photo, each with its tile's host memory at the side the run will use: the
    given tile, or with "auto" the largest that fits in `tile_room` bytes (the smallest useful one when None)."""
    from .tiling import tile_host_bytes, tile_side_for

    stages = []
    for model in models:
        scale = max(1, int(getattr(model, "scale", 1)))
        out_hw = (height * scale, width * scale)
        luma = channels >= 3 and _runs_on_luma(model)
        side = tile_side_for(model, (height, width), channels, tile, precision, tile_room)
        stages.append(Stage(
            in_hw=(height, width), out_hw=out_hw, channels=channels,
            input_bytes=height * width * channels * FLOAT, output_bytes=out_hw[0] * out_hw[1] * channels * FLOAT,
            luma_bytes=height * width * FLOAT if luma else 0,
            tile_bytes=tile_host_bytes(model, (min(side, height), min(side, width)), channels, precision),
            tile_side=side,
        ))
        height, width = out_hw
    return stages


def _runs_on_luma(model: Any) -> bool:
    from .tiling import runs_on_luma

    try:
        return runs_on_luma(model)
    except AttributeError:
        return False


def finish_bytes(out_hw: tuple[int, int], channels: int, final_hw: tuple[int, int], deep: bool, gray: bool) -> int:
    """Host memory beyond the result array for a final resize to `final_hw` and for encoding the file: the 8- or
    16-bit copy, Pillow's own image (4 bytes a pixel), the in-memory compressed stream of the 16-bit writers, and a
    float copy where the layout changes (alpha, gray)."""
    src = out_hw[0] * out_hw[1]
    dst = final_hw[0] * final_hw[1]
    resize = 0 if final_hw == out_hw else 2 * src * FLOAT + 3 * dst * channels * FLOAT
    quantized = dst * channels * (2 if deep else 1)
    encoder = 2 * quantized if deep else dst * 4
    layout = dst * channels * FLOAT if channels == 4 or gray else 0
    return resize + quantized + encoder + layout


def plan_photo(
    path: Path,
    models: Sequence[Any],
    photo_hw: tuple[int, int],
    channels: int,
    *,
    tile: int | str = "auto",
    precision: str = "fp32",
    final_hw: tuple[int, int] | None = None,
    deep: bool = False,
    gray: bool = False,
    buffer_folders: Sequence[Path] = (),
    budget: int | None = None,
) -> MemoryPlan:
    """How the photo at `path` (decoded to `photo_hw` × `channels` float32) can run through `models`: in memory,
    or with its results in disk buffers in the first of `buffer_folders` with room. `budget`: bytes this job may use
    (default `memory_budget()`); `final_hw`: the written size (after a resize); `deep`/`gray`: the output is 16-bit
    / gray. Raises `MemoryBudgetError` naming the file and what it needs when neither fits."""
    budget = memory_budget() if budget is None else int(budget)
    height, width = photo_hw
    photo_bytes = height * width * channels * FLOAT
    smallest = stages_for(models, height, width, channels, tile, precision, None)
    last = smallest[-1]
    finish = finish_bytes(last.out_hw, channels, final_hw or last.out_hw, deep, gray)

    def peak(stages: list[Stage], streamed: bool) -> int:
        """The most held at once: during each model (the photo, its input, its result, Y, one tile), then at the end
        (the result and the writing). Results in disk buffers are not held in memory."""
        worst = 0
        for step, stage in enumerate(stages):
            held = photo_bytes + stage.luma_bytes + stage.tile_bytes
            if step > 0 and not streamed:
                held += stage.input_bytes  # the previous result; the photo is held besides it
            if not streamed:
                held += stage.output_bytes
            worst = max(worst, held)
        return max(worst, finish + (0 if streamed else last.output_bytes))

    in_memory = peak(smallest, streamed=False)
    streamed = peak(smallest, streamed=True)
    room = address_space_room()
    disk_needed = max(
        stage.output_bytes + (smallest[step - 1].output_bytes if step else 0) for step, stage in enumerate(smallest)
    )

    def tile_budgets(streamed_run: bool) -> tuple[int | None, ...]:
        """What each model's tiles may use: the budget less what that stage holds besides them."""
        if tile != "auto":
            return tuple(None for _ in smallest)
        result = []
        for step, stage in enumerate(smallest):
            held = photo_bytes + stage.luma_bytes
            if not streamed_run:
                held += stage.output_bytes + (stage.input_bytes if step else 0)
            result.append(max(budget - held, stage.tile_bytes))
        return tuple(result)

    common = dict(path=path, stages=tuple(smallest), photo_bytes=photo_bytes, finish_bytes=finish, budget=budget,
                  in_memory_peak=in_memory, streamed_peak=streamed)
    if in_memory <= budget and (room is None or in_memory <= room):
        return MemoryPlan(**common, tile_budgets=tile_budgets(False))
    size_text = f"{width}×{height} to {last.out_hw[1]}×{last.out_hw[0]}"
    if streamed > budget:
        raise MemoryBudgetError(
            f"{path}: needs about {format_bytes(streamed)} of memory ({size_text}, even with the result on disk: the "
            f"photo, one {smallest[0].tile_side}-pixel tile and writing the file), but only "
            f"{format_bytes(budget)} is available; close other programs, use a smaller --tile, or shrink the photo"
        )
    if room is not None and streamed + disk_needed > room:
        raise MemoryBudgetError(
            f"{path}: needs about {format_bytes(streamed + disk_needed)} of address space ({size_text}), but this "
            f"process's limit (ulimit -v) leaves {format_bytes(room)}; raise the limit or shrink the photo"
        )
    for folder in buffer_folders:
        if _disk_free(folder) >= disk_needed * DISK_MARGIN:
            return MemoryPlan(**common, streamed=True, folder=Path(folder), tile_budgets=tile_budgets(True))
    where = ", ".join(str(f) for f in buffer_folders) or "no folder"
    raise MemoryBudgetError(
        f"{path}: needs about {format_bytes(in_memory)} of memory ({size_text}) but only {format_bytes(budget)} is "
        f"available, and a disk buffer of {format_bytes(disk_needed)} does not fit in {where}; free some disk space "
        "or memory, or shrink the photo"
    )


def _disk_free(folder: Path) -> int:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:  # an output folder the job has not created yet
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


__all__ = [
    "BUDGET_ENV", "DiskBuffer", "MemoryBudgetError", "MemoryPlan", "Stage", "address_space_room", "finish_bytes",
    "format_bytes", "memory_budget", "parse_size", "plan_photo", "stages_for", "system_available_bytes",
]
