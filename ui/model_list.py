"""The catalog grouped by what a user wants to do, for the model picker and the model manager."""

from __future__ import annotations

from enhancer.catalog import CatalogEntry, format_size
from enhancer.store import is_installed, load_catalog

# Real photos first (what most people open), then clean-image upscaling, then the restoration tasks.
REAL_PHOTO_GROUP = "Photo (real-world)"
TASK_GROUPS = (REAL_PHOTO_GROUP, "Clean image x2", "Clean image x3", "Clean image x4", "Denoise", "Deblur",
               "Fix JPEG", "Derain", "Other")


def task_group(entry: CatalogEntry) -> str:
    if entry.task == "sr" and entry.expects == "real-photo":
        return REAL_PHOTO_GROUP
    if entry.task == "sr":
        return f"Clean image x{entry.scale}" if entry.scale in (2, 3, 4) else "Other"
    return {"denoise": "Denoise", "deblur": "Deblur", "defocus": "Deblur", "jpeg": "Fix JPEG", "derain": "Derain"}.get(
        entry.task, "Other"
    )


def grouped_catalog() -> list[tuple[str, list[tuple[CatalogEntry, bool]]]]:
    """[(group title, [(entry, installed), ...]), ...] in TASK_GROUPS order; installed entries first in each group
    (in the real-photo group then by scale: x2 before x4)."""
    groups: dict[str, list[tuple[CatalogEntry, bool]]] = {name: [] for name in TASK_GROUPS}
    for entry in load_catalog():
        groups[task_group(entry)].append((entry, is_installed(entry)))
    for items in groups.values():
        items.sort(key=lambda item: (not item[1], not item[0].default))
    groups[REAL_PHOTO_GROUP].sort(key=lambda item: (not item[1], item[0].scale, not item[0].default))
    return [(name, items) for name, items in groups.items() if items]


def entry_label(entry: CatalogEntry, installed: bool) -> str:
    if installed and entry.imported:
        return entry.name  # the name already says "(imported)", which implies installed
    if installed:
        state = "bundled" if entry.default and entry.bundled else "installed"
    else:
        state = f"not installed, {format_size(entry.size)}" if entry.size else "not installed"
    return f"{entry.name}  ({state})"
