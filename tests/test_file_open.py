"""macOS "Open With" and drops on the Dock icon: Finder sends a QFileOpenEvent to the application, not argv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtCore import QUrl  # noqa: E402
from PySide6.QtGui import QFileOpenEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ui.app import make_file_open_handler  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402


def _photo(path: Path) -> Path:
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[..., 1] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def handler(qapp):
    handler = make_file_open_handler(qapp)
    yield handler
    qapp.removeEventFilter(handler)
    handler.deleteLater()


@pytest.fixture
def window(qtbot):
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_a_file_open_event_opens_the_photo_in_the_main_window(qtbot, qapp, handler, window, tmp_path):
    photo = _photo(tmp_path / "from finder.png")
    handler.attach(window)
    with qtbot.waitSignal(window.photoLoaded, timeout=20000) as loaded:
        # what Cocoa's application:openFiles: turns into, delivered to the application object
        accepted = QApplication.sendEvent(qapp, QFileOpenEvent(str(photo)))
    assert accepted
    assert Path(loaded.args[0]) == photo
    assert window.photo_path == photo
    assert window.compare.has_before()


def test_a_file_open_event_before_the_window_exists_is_opened_when_it_does(qtbot, qapp, handler, tmp_path):
    early = _photo(tmp_path / "early.png")
    latest = _photo(tmp_path / "latest.png")
    # Finder's events can come before main() has built the window: posted, delivered by the event loop
    QApplication.postEvent(qapp, QFileOpenEvent(str(early)))
    QApplication.postEvent(qapp, QFileOpenEvent(QUrl.fromLocalFile(str(latest))))
    qtbot.waitUntil(lambda: len(handler.pending) == 2, timeout=5000)
    assert handler.pending == [str(early), str(latest)]

    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.photoLoaded, timeout=20000) as loaded:
        handler.attach(win)
    assert Path(loaded.args[0]) == latest  # one photo at a time: the last one asked for
    assert handler.pending == []
    win.close()


def test_other_events_pass_through(qapp, handler):
    from PySide6.QtCore import QEvent

    assert handler.eventFilter(qapp, QEvent(QEvent.Type.User)) is False
    assert handler.pending == []
