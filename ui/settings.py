"""Persistent GUI settings in an INI file in the platform's config location (`ENHANCER_DATA_DIR` overrides it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from PySide6.QtCore import QSettings

from enhancer.options import BACKENDS, DEVICES, OUTPUT_FORMATS, PRECISIONS
from enhancer.paths import config_dir

MAX_RECENT_FILES = 10


def settings_path() -> Path:
    """Where the settings live: under ENHANCER_DATA_DIR when set (tests, portable installs), else the user config dir."""
    return config_dir() / "gui-settings.ini"


@dataclass
class Settings:
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    tile: str = "auto"  # "auto" or a number of pixels
    output_format: str = "same"
    quality: int = 95
    suffix: str = ""  # empty: the engine's default `_{model}_x{scale}`
    output_dir: str = ""  # empty: next to the original
    skip_existing: bool = False
    model_id: str = ""
    compare_mode: str = "slider"
    recent_files: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        store = QSettings(str(path or settings_path()), QSettings.Format.IniFormat)
        loaded = cls()
        for spec in fields(cls):
            default = getattr(loaded, spec.name)
            raw = store.value(spec.name)
            if raw is None:
                continue
            setattr(loaded, spec.name, _coerce(raw, default))
        loaded._sanitise()
        return loaded

    def save(self, path: Path | None = None) -> None:
        target = path or settings_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        store = QSettings(str(target), QSettings.Format.IniFormat)
        for spec in fields(self):
            store.setValue(spec.name, getattr(self, spec.name))
        store.sync()

    def tile_value(self) -> int | str:
        return int(self.tile) if str(self.tile).isdigit() else "auto"

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT_FILES:]

    def _sanitise(self) -> None:
        # A hand-edited or older INI must never put the app into a state the dialogs cannot show.
        if self.device not in DEVICES:
            self.device = "auto"
        if self.precision not in PRECISIONS:
            self.precision = "auto"
        if self.backend not in BACKENDS:
            self.backend = "auto"
        if self.output_format not in OUTPUT_FORMATS:
            self.output_format = "same"
        if not (str(self.tile) == "auto" or str(self.tile).isdigit()):
            self.tile = "auto"
        self.quality = min(100, max(1, int(self.quality)))
        if self.compare_mode not in ("slider", "side"):
            self.compare_mode = "slider"


def _coerce(raw, default):
    """QSettings' INI backend returns strings (and a string for a one-item list); turn them back into the field's type."""
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            return default
    if isinstance(default, list):
        if raw in ("", None):
            return []
        return [str(item) for item in raw] if isinstance(raw, (list, tuple)) else [str(raw)]
    return str(raw)
