"""The model catalog: the official release files listed in `models/catalog.toml` and our bundled default, as
validated `CatalogEntry` records, and the rules every entry obeys (also an imported model's, recorded by the store).

A catalog entry can only name a plain file name, so no entry can ever point outside the model store (or, for the
bundled default, outside the app's own `models/` folder). This module only reads the catalog file: what is installed,
what the user imported and which model is the default live in `enhancer.store`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from . import paths
from .archs import arch_ids
from .checkpoints import CHECKPOINT_SUFFIXES
from .errors import ModelError

TASKS = ("sr", "denoise", "jpeg", "deblur", "derain", "defocus")
# What input a model is made for: "real-photo" (camera, phone and web photos: blur, noise, JPEG, unknown downscaling),
# "clean" (clean, bicubic-downscaled images), or the one flaw a restoration model removes.
INPUT_KINDS = ("real-photo", "clean", "noisy", "jpeg", "blurred", "rainy")
_INPUT_BY_TASK = {"sr": "clean", "denoise": "noisy", "jpeg": "jpeg", "deblur": "blurred", "defocus": "blurred",
                  "derain": "rainy"}

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_FILENAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CatalogEntry:
    """One model file the app knows about."""

    id: str
    name: str
    task: str
    scale: int
    arch: str
    config: dict[str, Any]
    license: str = "unknown"
    license_url: str | None = None
    license_notice: str | None = None
    requires_license_acceptance: bool = False
    url: str | None = None
    filename: str = ""
    size: int | None = None
    sha256: str | None = None
    default: bool = False
    bundled: str | None = None  # file name in the app's models/ folder, for the bundled default
    description: str | None = None
    imported: bool = False  # True for a model the user imported with `--import`
    expects: str = "clean"  # one of INPUT_KINDS

    @property
    def is_bundled(self) -> bool:
        return self.bundled is not None


# --------------------------------------------------------------------------------------------------------------------
# Location


def catalog_path() -> Path:
    """The catalog file shipped with the app."""
    return paths.app_models_dir() / "catalog.toml"


# --------------------------------------------------------------------------------------------------------------------
# Validation


def check_filename(filename: str, what: str = "file name") -> str:
    """A model file name must be a plain name in one folder: no separators, no `..`, no hidden or odd names."""
    if (
        not isinstance(filename, str)
        or not _FILENAME_PATTERN.match(filename)
        or ".." in filename
        or "/" in filename
        or "\\" in filename
        or filename.endswith(".part")
    ):
        raise ModelError(
            f"{what} {filename!r} is not allowed: it must be a plain file name (letters, digits, '.', '_', '-', '+'), "
            "with no folder separators and no '..'"
        )
    if Path(filename).suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ModelError(f"{what} {filename!r} is not allowed: it must end in one of {', '.join(CHECKPOINT_SUFFIXES)}")
    return filename


def entry_from_mapping(
    raw: Mapping[str, Any], licenses: Mapping[str, Any], where: str, imported: bool
) -> CatalogEntry:
    """Validate one `[[model]]` table (or an imported model's record) into an entry; a ModelError names the problem."""

    def fail(problem: str) -> ModelError:
        return ModelError(f"{where}: model {raw.get('id', '?')!r}: {problem}")

    known = {
        "id", "name", "task", "scale", "arch", "config", "license", "license_url", "license_notice",
        "requires_license_acceptance", "url", "filename", "size", "sha256", "default", "bundled", "description",
        "expects",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)}")
    for key in ("id", "name", "task", "scale", "arch", "config"):
        if key not in raw:
            raise fail(f"the field {key!r} is missing")
    model_id = raw["id"]
    if not isinstance(model_id, str) or not _ID_PATTERN.match(model_id):
        raise fail("the id must be lowercase letters, digits and dashes")
    if raw["task"] not in TASKS:
        raise fail(f"task {raw['task']!r} is not one of {', '.join(TASKS)}")
    if raw["arch"] not in arch_ids():
        raise fail(f"arch {raw['arch']!r} is not one of {', '.join(arch_ids())}")
    scale = raw["scale"]
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 16:
        raise fail(f"scale {scale!r} must be a whole number from 1 to 16")
    if not isinstance(raw["config"], Mapping) or not raw["config"]:
        raise fail("config must be a table of the network's constructor arguments")

    url = raw.get("url")
    bundled = raw.get("bundled")
    if bundled is not None:
        check_filename(bundled, f"{where}: model {model_id!r}: bundled")
    elif not imported and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        raise fail("needs an http(s) url (or a bundled file name)")
    if imported and not raw.get("filename"):
        raise fail("an imported model needs its file name in the store")
    filename = raw.get("filename") or bundled or _url_filename(url or "")
    check_filename(filename, f"{where}: model {model_id!r}: filename")

    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise fail(f"size {size!r} must be a positive number of bytes")
    sha256 = raw.get("sha256")
    if sha256 is not None:
        sha256 = str(sha256).lower()
        if not SHA256_PATTERN.match(sha256):
            raise fail(f"sha256 {raw.get('sha256')!r} is not 64 hexadecimal digits")

    expects = raw.get("expects", _INPUT_BY_TASK[raw["task"]])
    if expects not in INPUT_KINDS:
        raise fail(f"expects {expects!r} is not one of {', '.join(INPUT_KINDS)}")

    license_name = str(raw.get("license", "unknown"))
    license_info = licenses.get(license_name, {}) if isinstance(licenses, Mapping) else {}
    return CatalogEntry(
        id=model_id,
        name=str(raw["name"]),
        task=raw["task"],
        scale=scale,
        arch=raw["arch"],
        config=dict(raw["config"]),
        license=license_name,
        license_url=raw.get("license_url") or license_info.get("url"),
        license_notice=raw.get("license_notice") or license_info.get("notice"),
        requires_license_acceptance=bool(raw.get("requires_license_acceptance", False)),
        url=url,
        filename=filename,
        size=size,
        sha256=sha256,
        default=bool(raw.get("default", False)),
        bundled=bundled,
        description=raw.get("description"),
        imported=imported,
        expects=expects,
    )


def _url_filename(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


# --------------------------------------------------------------------------------------------------------------------
# Reading the catalog


def read_catalog_file(path: str | os.PathLike) -> list[CatalogEntry]:
    """Read and validate one catalog TOML file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ModelError(f"{path}: the model catalog is missing; the installation is incomplete") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: the model catalog is not valid TOML ({exc})") from None
    licenses = data.get("licenses", {})
    entries = [entry_from_mapping(raw, licenses, str(path), imported=False) for raw in data.get("model", [])]
    _check_unique(entries, str(path))
    if sum(entry.default for entry in entries) > 1:
        raise ModelError(f"{path}: more than one model is marked default = true")
    return entries


def _check_unique(entries: list[CatalogEntry], where: str) -> None:
    seen_ids: set[str] = set()
    seen_files: dict[str, str] = {}
    for entry in entries:
        if entry.id in seen_ids:
            raise ModelError(f"{where}: the id {entry.id!r} appears twice")
        seen_ids.add(entry.id)
        key = entry.filename.lower()  # case-insensitive file systems (Windows, macOS) must not mix two models
        if key in seen_files and not entry.is_bundled:
            raise ModelError(f"{where}: {entry.id!r} and {seen_files[key]!r} share the file name {entry.filename!r}")
        seen_files[key] = entry.id


# --------------------------------------------------------------------------------------------------------------------
# Formatting


def format_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
