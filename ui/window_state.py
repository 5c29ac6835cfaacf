"""Where the main window opens and what it remembers: a size that fits the screen, then the user's own geometry and
splitter positions from the last run (kept in Settings as base64 text)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSize
from PySide6.QtWidgets import QMainWindow, QSplitter

from .settings import Settings

# The size the window asks for on first start; never more than SCREEN_SHARE of the screen's free area.
PREFERRED_SIZE = QSize(1280, 800)
SCREEN_SHARE = 0.8


def first_geometry(available: QRect, preferred: QSize = PREFERRED_SIZE, share: float = SCREEN_SHARE) -> QRect:
    """The preferred size, shrunk to at most `share` of `available` (the screen without task bars), centred in it."""
    width = min(preferred.width(), int(available.width() * share))
    height = min(preferred.height(), int(available.height() * share))
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect


def _to_text(data: QByteArray) -> str:
    return bytes(data.toBase64()).decode("ascii")


def _from_text(text: str) -> QByteArray:
    return QByteArray.fromBase64(text.encode("ascii"))


def _splitters(window: QMainWindow) -> list[QSplitter]:
    # Named ones only, in a stable order, so that each state goes back to the splitter it came from.
    found = [s for s in window.findChildren(QSplitter) if s.objectName()]
    return sorted(found, key=lambda s: s.objectName())


def restore_window(window: QMainWindow, settings: Settings) -> None:
    """Put the window where it was last time, or at `first_geometry` on its screen; restore toolbars and splitters."""
    restored = bool(settings.window_geometry) and window.restoreGeometry(_from_text(settings.window_geometry))
    screen = window.screen()
    if screen is not None:
        available = screen.availableGeometry()
        if not restored or not available.intersects(window.frameGeometry()):
            # First start, or the screen it was on is gone: fit this one.
            window.setGeometry(first_geometry(available))
    if settings.window_state:
        window.restoreState(_from_text(settings.window_state))
    states = dict(item.split("=", 1) for item in settings.splitter_state.split(";") if "=" in item)
    for splitter in _splitters(window):
        if splitter.objectName() in states:
            splitter.restoreState(_from_text(states[splitter.objectName()]))


def save_window(window: QMainWindow, settings: Settings) -> None:
    """Remember the window's geometry, its toolbars and every named splitter in `settings` (saved by the caller)."""
    settings.window_geometry = _to_text(window.saveGeometry())
    settings.window_state = _to_text(window.saveState())
    settings.splitter_state = ";".join(f"{s.objectName()}={_to_text(s.saveState())}" for s in _splitters(window))
