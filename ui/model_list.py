"""The catalog grouped by what a user wants to do, for the model picker and the model manager."""

from __future__ import annotations

from enhancer.catalog import CatalogEntry, format_size
from enhancer.store import is_installed, load_catalog

TASK_GROUPS = ("Upscale x2", "Upscale x3", "Upscale x4", "Denoise", "Deblur", "Fix JPEG", "Derain", "Other")


def task_group(entry: CatalogEntry) -> str:
    if entry.task == "sr":
        return f"Upscale x{entry.scale}" if entry.scale in (2, 3, 4) else "Other"
    return {"denoise": "Denoise", "deblur": "Deblur", "defocus": "Deblur", "jpeg": "Fix JPEG", "derain": "Derain"}.get(
        entry.task, "Other"
    )


def grouped_catalog() -> list[tuple[str, list[tuple[CatalogEntry, bool]]]]:
    """[(group title, [(entry, installed), ...]), ...] in TASK_GROUPS order; installed entries first in each group."""
    groups: dict[str, list[tuple[CatalogEntry, bool]]] = {name: [] for name in TASK_GROUPS}
    for entry in load_catalog():
        groups[task_group(entry)].append((entry, is_installed(entry)))
    for items in groups.values():
        items.sort(key=lambda item: (not item[1], not item[0].default))
    return [(name, items) for name, items in groups.items() if items]


def entry_label(entry: CatalogEntry, installed: bool) -> str:
    if installed and entry.imported:
        return entry.name  # the name already says "(imported)", which implies installed
    if installed:
        state = "bundled" if entry.default and entry.bundled else "installed"
    else:
        state = f"not installed, {format_size(entry.size)}" if entry.size else "not installed"
    return f"{entry.name}  ({state})"
