"""Where the app keeps things: its own files, the user's data (model store), caches and settings.

Every location the engine and the app use is computed here, so that one environment variable moves them for tests and
portable installs: `ENHANCER_DATA_DIR` replaces the user data dir and the settings folder. The platform folders come
from platformdirs (imported on first use, so importing this module stays cheap).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "photo-enhancer"
DATA_DIR_ENV = "ENHANCER_DATA_DIR"


def app_dir() -> Path:
    """The app's own folder: the repository root, or the unpacked bundle when frozen (PyInstaller)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    return Path(__file__).resolve().parent.parent


def app_models_dir() -> Path:
    """The app's own `models/` folder (catalog.toml and the bundled default); inside the bundle when frozen."""
    return app_dir() / "models"


def _data_dir_override() -> Path | None:
    override = os.environ.get(DATA_DIR_ENV)
    return Path(override).expanduser() if override else None


def data_dir() -> Path:
    """The user data dir: `ENHANCER_DATA_DIR` when set, else the platform's user data dir for the app."""
    override = _data_dir_override()
    if override is not None:
        return override
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


def config_dir() -> Path:
    """Where settings live: `ENHANCER_DATA_DIR` when set (tests, portable installs), else the user config dir."""
    override = _data_dir_override()
    if override is not None:
        return override
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """The user cache dir for the app (compiled kernels, prepared training data); nothing in it is precious."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME))
