"""The model store: the folder in the user data dir where downloaded and imported model files live, and what the app
knows because of it: which models exist (the catalog plus the user's imported models), which are installed, which is
the default, and the file behind a model id.

The store holds model files side by side with `store.json`, which records imported models, checksums learnt on
first download (trust on first use) and licence acceptances. Every file name comes through
`enhancer.catalog.check_filename`, so nothing in the store can point outside it.

Layering: the store reads the catalog (`enhancer.catalog`) and model files (`enhancer.checkpoints`); neither of them
imports the store (the loader asks it for the file behind an id only when it is given one).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from . import paths
from .atomic import TEMP_PREFIX, AtomicFile
from .catalog import (
    SHA256_PATTERN,
    CatalogEntry,
    catalog_path,
    check_filename,
    entry_from_mapping,
    format_size,
    read_catalog_file,
)
from .checkpoints import CHECKPOINT_SUFFIXES, model_from_state_dict, read_state_dict
from .errors import Cancelled, ModelError

log = logging.getLogger(__name__)

STORE_INDEX = "store.json"
STORE_INDEX_VERSION = 1


# --------------------------------------------------------------------------------------------------------------------
# Where models live


def model_store() -> Path:
    """The folder where downloaded and imported model files live (created on first use)."""
    store = paths.data_dir() / "models"
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
# The known models: the catalog, then the user's imported models


def load_catalog() -> list[CatalogEntry]:
    """Every known model: the catalog's entries in file order, then the user's imported models."""
    entries = read_catalog_file(catalog_path())
    taken = {entry.id for entry in entries}
    for raw in read_store_index().get("imported", {}).values():
        try:
            entry = entry_from_mapping(raw, {}, str(model_store() / STORE_INDEX), imported=True)
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
    """The known model with this id; a ModelError that suggests close ids when there is none."""
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


# --------------------------------------------------------------------------------------------------------------------
# Installed files


def installed_path(entry: CatalogEntry) -> Path | None:
    """Where the entry's file is, when it is installed (bundled with the app, downloaded or imported)."""
    if entry.is_bundled:
        folder = paths.app_models_dir()
        path = folder / entry.bundled  # type: ignore[operator]
        if path.resolve().parent != folder.resolve():
            return None
        return path if path.is_file() else None
    path = store_file(entry.filename)
    return path if path.is_file() else None


def is_installed(entry: CatalogEntry) -> bool:
    return installed_path(entry) is not None


def resolve_model(source: str) -> tuple[Path, CatalogEntry]:
    """The installed file of a model id, or a ModelError that says how to download it."""
    entry = get_entry(source)
    path = installed_path(entry)
    if path is None:
        if entry.is_bundled:
            raise ModelError(
                f"{entry.id}: the bundled model file {entry.bundled} is missing from {paths.app_models_dir()}; "
                "reinstall the app"
            )
        size = f" ({format_size(entry.size)})" if entry.size else ""
        raise ModelError(
            f"model {entry.id!r} ({entry.name}) is not installed. Download it{size} with "
            f"`enhancer --download {entry.id}` or from the model manager in the app."
        )
    return path, entry


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


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
    data = dict(data, version=STORE_INDEX_VERSION)
    with AtomicFile(model_store() / STORE_INDEX, "w", encoding="utf-8", prefix=f"{TEMP_PREFIX}store-", suffix=".json.tmp") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)


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
    if isinstance(record, dict) and SHA256_PATTERN.match(str(record.get("sha256", ""))):
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


def import_model(path: str | os.PathLike, cancel: Callable[[], bool] | None = None) -> CatalogEntry:
    """Copy a model file the user has into the store and make it usable by id.

    The file is read only through the safe loader, detected, built and loaded strictly before anything is copied,
    so a file that is not a model (or carries code) is refused and leaves nothing behind. `cancel()` returning True
    stops the import between its steps with `Cancelled`; nothing is copied or recorded after that.
    """

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("import cancelled")

    source = Path(path).expanduser()
    if not source.is_file():
        raise ModelError(f"{source}: model file not found")
    state = read_state_dict(source)
    check_cancel()
    try:
        model = model_from_state_dict(state, name=source.stem, source=source)
    except ModelError:
        raise
    except MemoryError:
        raise ModelError(f"{source}: refused: building its network needs more memory than there is") from None
    except Exception as exc:  # an odd file must end in a message that names it, never a traceback
        raise ModelError(f"{source}: the model could not be built ({type(exc).__name__}: {exc})") from None
    check_cancel()
    digest = sha256_of(source)
    check_cancel()

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
    try:
        pending = AtomicFile(target, prefix=f"{TEMP_PREFIX}import-", suffix=".tmp")
        with pending as copy, open(source, "rb") as original:
            shutil.copyfileobj(original, copy)
            copy.flush()
            if sha256_of(pending.temp) != digest:
                raise ModelError(f"{source}: the file changed while it was being imported; try again")
            check_cancel()  # inside the `with`: the copy is discarded, never moved into the store
    except OSError as exc:
        raise ModelError(f"{source}: could not copy it into the model store {store} ({exc.strerror or exc})") from None

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
    entry = entry_from_mapping(raw, {}, "import", imported=True)  # validates what is about to be recorded
    _update_store_index("imported", model_id, raw)
    log.info("imported %s as %s (%s, %s x%d)", source, model_id, model.arch, model.task, model.scale)
    return entry


def delete_model(model_id: str) -> None:
    """Remove a downloaded or imported model from the store. The bundled default cannot be deleted."""
    entry = get_entry(model_id)
    if entry.is_bundled:
        raise ModelError(f"{entry.id}: the bundled default model is part of the app and cannot be deleted")
    path = store_file(entry.filename)
    partial = path.with_name(f"{TEMP_PREFIX}{path.name}.part")  # an unfinished download (enhancer.download)
    if not path.is_file() and not partial.is_file() and not entry.imported:
        raise ModelError(f"{entry.id}: not installed, nothing to delete")
    try:
        path.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    except OSError as exc:
        raise ModelError(f"{path}: could not delete it ({exc.strerror or exc})") from None
    if entry.imported:
        _update_store_index("imported", entry.id, None)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
