"""The known models: the official release files listed in `models/catalog.toml`, our bundled default, and the
models a user imported. Also the model store in the user data dir, where downloaded and imported files live.

The store holds model files side by side with `store.json`, which records imported models, checksums learnt on
first download (trust on first use) and licence acceptances. A catalog entry can only name a plain file name, so no
entry can ever point outside the store (or, for the bundled default, outside the app's own `models/` folder).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .archs import arch_ids
from .checkpoints import CHECKPOINT_SUFFIXES
from .errors import ModelError

log = logging.getLogger(__name__)

TASKS = ("sr", "denoise", "jpeg", "deblur", "derain", "defocus")
APP_NAME = "photo-enhancer"
STORE_INDEX = "store.json"
STORE_INDEX_VERSION = 1

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_FILENAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


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

    @property
    def is_bundled(self) -> bool:
        return self.bundled is not None


# --------------------------------------------------------------------------------------------------------------------
# Locations


def app_models_dir() -> Path:
    """The app's own `models/` folder (catalog.toml and the bundled default); inside the bundle when frozen."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "models"
    return Path(__file__).resolve().parent.parent / "models"


def catalog_path() -> Path:
    return app_models_dir() / "catalog.toml"


def data_dir() -> Path:
    """The user data dir: `ENHANCER_DATA_DIR` when set, else the platform's user data dir for the app."""
    override = os.environ.get("ENHANCER_DATA_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


def model_store() -> Path:
    """The folder where downloaded and imported model files live (created on first use)."""
    store = data_dir() / "models"
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{store}: cannot create the model store folder ({exc.strerror or exc})") from None
    return store


def store_file(filename: str) -> Path:
    """The path of `filename` inside the model store, refusing any name that could lead outside it."""
    check_filename(filename, "model store file")
    store = model_store()
    path = store / filename
    if path.resolve().parent != store.resolve():
        raise ModelError(f"{filename!r}: refused: it resolves outside the model store {store}")
    return path


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


def _entry_from_mapping(raw: Mapping[str, Any], licenses: Mapping[str, Any], where: str, imported: bool) -> CatalogEntry:
    def fail(problem: str) -> ModelError:
        return ModelError(f"{where}: model {raw.get('id', '?')!r}: {problem}")

    known = {
        "id", "name", "task", "scale", "arch", "config", "license", "license_url", "license_notice",
        "requires_license_acceptance", "url", "filename", "size", "sha256", "default", "bundled", "description",
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
        if not _SHA256_PATTERN.match(sha256):
            raise fail(f"sha256 {raw.get('sha256')!r} is not 64 hexadecimal digits")

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
    entries = [_entry_from_mapping(raw, licenses, str(path), imported=False) for raw in data.get("model", [])]
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


def load_catalog() -> list[CatalogEntry]:
    """Every known model: the catalog's entries in file order, then the user's imported models."""
    entries = read_catalog_file(catalog_path())
    taken = {entry.id for entry in entries}
    for raw in read_store_index().get("imported", {}).values():
        try:
            entry = _entry_from_mapping(raw, {}, str(model_store() / STORE_INDEX), imported=True)
        except ModelError as exc:
            log.warning("skipping an imported model: %s", exc)
            continue
        if entry.id in taken:
            log.warning("skipping imported model %r: its id is now used by the catalog", entry.id)
            continue
        taken.add(entry.id)
        entries.append(entry)
    return entries


def get_entry(model_id: str) -> CatalogEntry:
    """The entry with this id; a ModelError that suggests close ids when there is none."""
    entries = load_catalog()
    by_id = {entry.id: entry for entry in entries}
    if model_id in by_id:
        return by_id[model_id]
    lowered = str(model_id).strip().lower()
    if lowered in by_id:
        return by_id[lowered]
    close = difflib.get_close_matches(lowered, list(by_id), n=4, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelError(
        f"{model_id!r} is neither a model file nor a known model id.{hint} "
        "`enhancer --list-models` lists every model."
    )


# --------------------------------------------------------------------------------------------------------------------
# Installed files


def installed_path(entry: CatalogEntry) -> Path | None:
    """Where the entry's file is, when it is installed (bundled with the app, downloaded or imported)."""
    if entry.is_bundled:
        folder = app_models_dir()
        path = folder / entry.bundled  # type: ignore[operator]
        if path.resolve().parent != folder.resolve():
            return None
        return path if path.is_file() else None
    path = store_file(entry.filename)
    return path if path.is_file() else None


def is_installed(entry: CatalogEntry) -> bool:
    return installed_path(entry) is not None


def resolve_model(source: str) -> tuple[Path, CatalogEntry]:
    """The installed file of a catalog id, or a ModelError that says how to download it."""
    entry = get_entry(source)
    path = installed_path(entry)
    if path is None:
        if entry.is_bundled:
            raise ModelError(
                f"{entry.id}: the bundled model file {entry.bundled} is missing from {app_models_dir()}; "
                "reinstall the app"
            )
        size = f" ({format_size(entry.size)})" if entry.size else ""
        raise ModelError(
            f"model {entry.id!r} ({entry.name}) is not installed. Download it{size} with "
            f"`enhancer --download {entry.id}` or from the model manager in the app."
        )
    return path, entry


def default_model_id() -> str:
    """The model used when none is chosen: the bundled default, else the first installed super-resolution model."""
    entries = load_catalog()
    for entry in entries:
        if entry.default and is_installed(entry):
            return entry.id
    for entry in entries:
        if entry.task == "sr" and is_installed(entry):
            return entry.id
    raise ModelError(
        "no super-resolution model is installed. Download one, for example `enhancer --download mobilesr-x4`, "
        "or import a model file with `enhancer --import PATH`."
    )


def format_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# --------------------------------------------------------------------------------------------------------------------
# The store index: imported models, checksums learnt on first use, licence acceptances


def read_store_index() -> dict[str, Any]:
    path = model_store() / STORE_INDEX
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # A damaged index must not lock users out of their models; the catalog still works without it.
        log.warning("%s: the model store index cannot be read (%s); ignoring it", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_store_index(data: dict[str, Any]) -> None:
    store = model_store()
    data = dict(data, version=STORE_INDEX_VERSION)
    fd, tmp = tempfile.mkstemp(prefix=".store-", suffix=".json.tmp", dir=store)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, store / STORE_INDEX)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _update_store_index(section: str, key: str, value: Any | None) -> None:
    data = read_store_index()
    table = dict(data.get(section, {}))
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
    data[section] = table
    _write_store_index(data)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def recorded_checksum(entry: CatalogEntry) -> dict[str, Any] | None:
    """The sha256 and size learnt on the first verified download of an entry whose catalog sha256 is unknown."""
    record = read_store_index().get("checksums", {}).get(entry.id)
    if isinstance(record, dict) and _SHA256_PATTERN.match(str(record.get("sha256", ""))):
        return record
    return None


def record_checksum(entry: CatalogEntry, sha256: str, size: int, url: str) -> None:
    _update_store_index("checksums", entry.id, {"sha256": sha256, "size": size, "url": url, "recorded": _now()})


def expected_checksum(entry: CatalogEntry) -> tuple[str | None, int | None, bool]:
    """(sha256, size, from_trust_on_first_use) to verify a download of `entry` against."""
    if entry.sha256:
        return entry.sha256, entry.size, False
    record = recorded_checksum(entry)
    if record:
        return record["sha256"], entry.size or record.get("size"), True
    return None, entry.size, False


def license_accepted(entry: CatalogEntry) -> bool:
    if not entry.requires_license_acceptance:
        return True
    record = read_store_index().get("licenses_accepted", {}).get(entry.id)
    return isinstance(record, dict) and record.get("license") == entry.license


def accept_license(model_id: str) -> CatalogEntry:
    """Record that the user accepted the licence of a model (shown to them before)."""
    entry = get_entry(model_id)
    _update_store_index("licenses_accepted", entry.id, {"license": entry.license, "accepted": _now()})
    return entry


# --------------------------------------------------------------------------------------------------------------------
# Import and delete


def sanitised_id(text: str) -> str:
    """A model id from a file stem: lowercase letters, digits and single dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:60].strip("-") or "model")


def import_model(path: str | os.PathLike) -> CatalogEntry:
    """Copy a model file the user has into the store and make it usable by id.

    The file is read only through the safe loader, detected, built and loaded strictly before anything is copied,
    so a file that is not a model (or carries code) is refused and leaves nothing behind.
    """
    from .checkpoints import model_from_state_dict, read_state_dict

    source = Path(path).expanduser()
    if not source.is_file():
        raise ModelError(f"{source}: model file not found")
    state = read_state_dict(source)
    model = model_from_state_dict(state, name=source.stem, source=source)
    digest = sha256_of(source)

    data = read_store_index()
    imported = data.get("imported", {})
    for raw in imported.values():
        if raw.get("sha256") == digest and (model_store() / str(raw.get("filename", ""))).is_file():
            log.info("%s is already imported as %s", source, raw["id"])
            return get_entry(raw["id"])

    taken_ids = {entry.id for entry in load_catalog()}
    store = model_store()
    taken_files = {p.name.lower() for p in store.iterdir()}
    base_id = sanitised_id(source.stem)
    suffix = source.suffix.lower() if source.suffix.lower() in CHECKPOINT_SUFFIXES else ".pth"
    model_id, n = base_id, 1
    while model_id in taken_ids or f"{model_id}{suffix}".lower() in taken_files:
        n += 1
        model_id = f"{base_id}-{n}"
    filename = check_filename(f"{model_id}{suffix}", "imported file name")

    target = store_file(filename)
    fd, tmp = tempfile.mkstemp(prefix=".import-", suffix=".tmp", dir=store)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        if sha256_of(Path(tmp)) != digest:
            raise ModelError(f"{source}: the file changed while it was being imported; try again")
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"{source}: could not copy it into the model store {store} ({exc.strerror or exc})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)

    raw = {
        "id": model_id,
        "name": f"{source.name} (imported)",
        "task": model.task,
        "scale": int(model.scale),
        "arch": model.arch,
        "config": _json_safe(model.config),
        "license": "unknown",
        "license_notice": "Imported by you; its licence is whatever its source says.",
        "url": source.resolve().as_uri(),
        "filename": filename,
        "size": target.stat().st_size,
        "sha256": digest,
    }
    entry = _entry_from_mapping(raw, {}, "import", imported=True)  # validates what is about to be recorded
    _update_store_index("imported", model_id, raw)
    log.info("imported %s as %s (%s, %s x%d)", source, model_id, model.arch, model.task, model.scale)
    return entry


def delete_model(model_id: str) -> None:
    """Remove a downloaded or imported model from the store. The bundled default cannot be deleted."""
    entry = get_entry(model_id)
    if entry.is_bundled:
        raise ModelError(f"{entry.id}: the bundled default model is part of the app and cannot be deleted")
    path = store_file(entry.filename)
    partial = path.with_name(path.name + ".part")
    if not path.is_file() and not partial.is_file() and not entry.imported:
        raise ModelError(f"{entry.id}: not installed, nothing to delete")
    try:
        path.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    except OSError as exc:
        raise ModelError(f"{path}: could not delete it ({exc.strerror or exc})") from None
    if entry.imported:
        _update_store_index("imported", entry.id, None)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
