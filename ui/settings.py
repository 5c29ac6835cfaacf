"""Persistent GUI settings in an INI file in the platform's config location (`ENHANCER_DATA_DIR` overrides it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from enhancer.options import BACKENDS, DEVICES, OUTPUT_FORMATS, PRECISIONS
from enhancer.paths import config_dir

MAX_RECENT_FILES = 10
# What the app keeps of a photo's metadata (the engine's Job.strip_metadata vocabulary), with the words a user reads.
STRIP_METADATA_CHOICES = (
    ("none", "Keep all"),
    ("location", "Remove location (default)"),
    ("all", "Remove all metadata"),
)
# "system" follows the desktop's colour scheme; ENHANCER_THEME overrides the setting (tests, screenshots).
THEMES = ("system", "light", "dark")


def default_paste_folder() -> str:
    """Pasted images are saved here (so that "next to the original" still means a place the user knows)."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return pictures or str(Path.home() / "Pictures")


def output_formats() -> tuple[str, ...]:
    """The formats the settings offer: what this install can write (the engine knows), "same" first."""
    try:
        from enhancer.options import available_output_formats
    except ImportError:  # an engine without the probe: the fixed list
        return OUTPUT_FORMATS
    return tuple(available_output_formats())


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
    output_size: str = "model"  # enhancer.sizing.OutputSize.to_text(): "model", or e.g. "x2", "w3840", "fit1920x1080"
    paste_folder: str = field(default_factory=default_paste_folder)
    strip_metadata: str = "location"  # none | location | all
    theme: str = "system"  # system | light | dark
    window_geometry: str = ""  # QWidget.saveGeometry(), base64
    window_state: str = ""  # QMainWindow.saveState() (toolbars), base64
    splitter_state: str = ""  # QSplitter.saveState(), base64

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
        if self.output_format not in output_formats():
            self.output_format = "same"
        if self.strip_metadata not in (key for key, _ in STRIP_METADATA_CHOICES):
            self.strip_metadata = "location"
        if self.theme not in THEMES:
            self.theme = "system"
        if not self.paste_folder.strip():
            self.paste_folder = default_paste_folder()
        self.output_size = _valid_output_size(self.output_size)
        if not (str(self.tile) == "auto" or str(self.tile).isdigit()):
            self.tile = "auto"
        self.quality = min(100, max(1, int(self.quality)))
        if self.compare_mode not in ("slider", "side"):
            self.compare_mode = "slider"


def _valid_output_size(text: str) -> str:
    """The saved output size when the engine can read it, else "model" (the network's own scale)."""
    try:
        from enhancer.sizing import OutputSize
    except ImportError:
        return text or "model"
    try:
        return OutputSize.from_text(text).to_text()
    except (ValueError, AttributeError):
        return "model"


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
