"""Closing the app never waits for a worker that cannot stop, and a worker left running writes nothing.

A model load (or one tile) cannot be interrupted, so the tests hold a worker exactly there with an Event: the real
loader (or the real tile callback) waits until the test releases it. Closing must return while it is still held,
and once released the cancelled job must end without writing a file. Offscreen Qt, the bundled tiny ESPCN x2.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402

from enhancer import load_model, store  # noqa: E402
from enhancer.pipeline import ModelCache  # noqa: E402
from test_ui_main import open_photo, write_photo  # noqa: E402
from ui import workers  # noqa: E402
from ui.batch_dialog import BatchDialog  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.model_manager import ModelManagerDialog  # noqa: E402
from ui.settings import Settings  # noqa: E402

MODEL = "own-espcn-x2"  # bundled and tiny: loads and runs in moments
HOLD_S = 120  # the most a held worker waits for the test (a failing test must not hang forever)


class HeldLoader:
    """The engine's own loader, held at the start of every load until `release` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, source, device):
        self.entered.set()
        self.release.wait(HOLD_S)
        return load_model(source, device)


@pytest.fixture(autouse=True)
def no_workers_left():
    yield
    assert workers.wait_for_background(HOLD_S), "a worker of an earlier test is still running"


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def window_with_photo(qtbot, photo: Path, loader=None) -> MainWindow:
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    if loader is not None:
        win.cache = ModelCache(loader=loader)
    win.show()
    open_photo(qtbot, win, photo)
    assert win.select_model(MODEL)
    return win


def test_close_during_the_model_load_returns_and_the_job_then_writes_nothing(qtbot, tmp_path):
    photo = write_photo(tmp_path / "load.png", 48, 32)
    loader = HeldLoader()
    win = window_with_photo(qtbot, photo, loader)
    win.enhance()
    assert loader.entered.wait(HOLD_S)

    win.close()
    # close returned while the worker was still inside the load: it did not wait for it.
    assert not win.isVisible()
    assert not loader.release.is_set()
    assert workers.background_workers() == 1

    loader.release.set()
    assert workers.wait_for_background(HOLD_S)
    assert files_in(tmp_path) == ["load.png"]  # the model loaded after the cancel: the job stopped there


def test_close_during_a_tile_returns_and_the_job_then_writes_nothing(qtbot, tmp_path):
    photo = write_photo(tmp_path / "tiles.png", 96, 64)
    win = window_with_photo(qtbot, photo)
    win.settings.tile = "16"  # many tiles, so that one is held in the middle of the photo
    in_tile, release = threading.Event(), threading.Event()

    def hold_first_tile(*args) -> None:  # runs in the worker thread, between two tiles
        if not in_tile.is_set():
            in_tile.set()
            release.wait(HOLD_S)

    win.jobCreated.connect(
        lambda runnable: runnable.signals.tile_progress.connect(hold_first_tile, Qt.ConnectionType.DirectConnection)
    )
    win.enhance()
    assert in_tile.wait(HOLD_S)

    win.close()
    assert not release.is_set() and workers.background_workers() == 1

    release.set()
    assert workers.wait_for_background(HOLD_S)
    assert files_in(tmp_path) == ["tiles.png"]


def test_a_job_that_stops_in_time_is_simply_waited_for(qtbot, tmp_path):
    photo = write_photo(tmp_path / "quick.png", 32, 24)
    loader = HeldLoader()
    win = window_with_photo(qtbot, photo, loader)
    win.enhance()
    assert loader.entered.wait(HOLD_S)
    loader.release.set()  # the load ends at once: the cancelled job stops within the wait
    assert workers.stop_workers(win.pool, [win._job], wait_ms=60000)
    assert workers.background_workers() == 0
    win.close()
    assert files_in(tmp_path) == ["quick.png"]


def test_closing_the_batch_dialog_mid_batch_returns_and_nothing_is_written(qtbot, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        write_photo(photos / name, 24, 16)
    loader = HeldLoader()
    dialog = BatchDialog(Settings.load(), ModelCache(loader=loader), folder=str(photos), model_id=MODEL)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start_button.click()
    assert loader.entered.wait(HOLD_S)

    dialog.close()
    assert not dialog.isVisible() and not loader.release.is_set()
    assert workers.background_workers() == 1

    loader.release.set()
    assert workers.wait_for_background(HOLD_S)
    assert files_in(photos) == ["a.png", "b.png", "c.png"]


def test_closing_the_model_manager_mid_import_returns_and_nothing_is_imported(qtbot, tmp_path, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real_import = store.import_model

    def held_import(path, cancel=None):  # the real import, held before its first step
        entered.set()
        release.wait(HOLD_S)
        return real_import(path, cancel=cancel)

    monkeypatch.setattr(store, "import_model", held_import)
    copy = tmp_path / "my-espcn.safetensors"
    copy.write_bytes(store.installed_path(store.get_entry(MODEL)).read_bytes())

    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.import_file(str(copy))
    assert entered.wait(HOLD_S)
    dialog.close()
    assert not release.is_set() and workers.background_workers() == 1

    release.set()
    assert workers.wait_for_background(HOLD_S)
    assert not store.read_store_index().get("imported")
    assert not any(p.name.startswith("my-espcn") for p in store.model_store().iterdir())


def test_actions_that_start_or_change_jobs_are_off_while_one_runs(qtbot, tmp_path):
    photo = write_photo(tmp_path / "busy.png", 32, 24)
    loader = HeldLoader()
    win = window_with_photo(qtbot, photo, loader)
    assert win.batch_action.isEnabled() and win.models_action.isEnabled() and win.enhance_action.isEnabled()
    with qtbot.waitSignal(win.jobEnded, timeout=HOLD_S * 1000) as ended:
        win.enhance()
        assert loader.entered.wait(HOLD_S)
        for action in (win.batch_action, win.models_action, win.enhance_action, win.open_action):
            assert not action.isEnabled(), action.text()

        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
        enter = QDragEnterEvent(QPointF(10, 10).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                                Qt.KeyboardModifier.NoModifier)
        win.dragEnterEvent(enter)
        assert not enter.isAccepted()  # a folder dropped now would start a batch: refused
        drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                          Qt.KeyboardModifier.NoModifier)
        drop.setAccepted(False)
        win.dropEvent(drop)
        assert not drop.isAccepted() and "dropping" in win.statusBar().currentMessage()
        loader.release.set()
    assert ended.args == ["ok"], win.last_error
    assert win.batch_action.isEnabled() and win.models_action.isEnabled()
    enter = QDragEnterEvent(QPointF(10, 10).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    win.dragEnterEvent(enter)
    assert enter.isAccepted()
