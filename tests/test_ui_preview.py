"""Region preview in the main window: drag a rectangle, Preview, before/after (or A/B) of that region in the slider;
offscreen Qt, the real engine with the bundled MobileSR x4 (slow enough on a CPU that a whole photo takes longer)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QPointF, QRect, Qt  # noqa: E402
from test_ui_estimate import write_photo  # noqa: E402

from ui.main_window import PREVIEW_VISIBLE_SIDE, MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402

MODEL = "own-mobilesr-x4"
QUICK = "own-espcn-x4"


@pytest.fixture
def window(qtbot):
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def open_photo(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.photoLoaded, timeout=20000):
        window.open_photo(path)


def shift_drag(qtbot, view, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, start)
    qtbot.mouseMove(view, QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, end)


def run_preview(qtbot, window: MainWindow) -> float:
    started = time.monotonic()
    with qtbot.waitSignal(window.previewEnded, timeout=120000) as ended:
        window.preview_action.trigger()
    assert ended.args == ["ok"], window.last_error
    return time.monotonic() - started


def mean_difference(a, b, rect: QRect) -> float:
    diffs = []
    for y in range(rect.top(), rect.bottom(), 3):
        for x in range(rect.left(), rect.right(), 3):
            ca, cb = a.pixelColor(x, y), b.pixelColor(x, y)
            diffs.append(abs(ca.red() - cb.red()) + abs(ca.green() - cb.green()) + abs(ca.blue() - cb.blue()))
    return float(np.mean(diffs))


def test_a_dragged_region_is_previewed_in_the_slider_faster_than_a_full_run(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "meadow.png", 400, 300)
    open_photo(qtbot, window, photo)
    assert window.select_model(MODEL)
    view = window.compare
    pane = view._panes()[0]
    start, end = QPoint(int(pane.center().x()) - 60, int(pane.center().y()) - 50), QPoint(int(pane.center().x()) + 40,
                                                                                           int(pane.center().y()) + 30)
    shift_drag(qtbot, view, start, end)
    selection = view.selection()
    corner = view._to_photo(pane, QPointF(start))
    assert selection is not None and abs(selection.left() - corner.x()) <= 1 and abs(selection.top() - corner.y()) <= 1
    assert 40 <= selection.width() <= 200 and selection.width() > selection.height()
    assert window.clear_region_action.isEnabled()
    without = view.grab().toImage()

    preview_seconds = run_preview(qtbot, window)
    assert view.has_region_result()
    assert view.region_box() == selection
    assert view.region_labels() == ("Before", f"After: {MODEL}")
    result, image = window.last_preview[0]
    assert (image.width(), image.height()) == (selection.width() * 4, selection.height() * 4)
    assert result.box == (selection.left(), selection.top(), selection.right() + 1, selection.bottom() + 1)
    assert "Nothing was saved" in window.preview_label.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meadow.png"]

    # The view zoomed to the region; right of the split is the network's output, left of it the photo as it is.
    view.set_split(0.5)
    shot = view.grab().toImage()
    box = view._image_box(selection, view._panes()[0]).toRect()
    split = int(view.width() * 0.5)
    right_half = QRect(split + 4, box.top() + 4, box.right() - split - 8, box.height() - 8)
    left_half = QRect(box.left() + 4, box.top() + 4, split - box.left() - 8, box.height() - 8)
    assert right_half.width() > 20 and left_half.width() > 20
    view.clear_region_result()
    view.clear_selection()
    plain = view.grab().toImage()  # the same zoom, the photo alone
    assert mean_difference(shot, plain, right_half) > 3 * max(mean_difference(shot, plain, left_half), 1.0)
    assert mean_difference(without, without, right_half) == 0

    # The full run afterwards: the same settings, its own result over the whole photo.
    started = time.monotonic()
    with qtbot.waitSignal(window.jobEnded, timeout=300000) as ended:
        window.enhance_action.trigger()
    full_seconds = time.monotonic() - started
    assert ended.args == ["ok"], window.last_error
    with Image.open(window.last_output) as written:
        assert written.size == (1600, 1200)
    assert not view.has_region_result() and view.has_after()
    ratio = preview_seconds / full_seconds
    print(f"\nregion {selection.width()}×{selection.height()} preview {preview_seconds:.2f} s, "
          f"400×300 full run {full_seconds:.2f} s, ratio {ratio:.2f}")
    assert ratio < 0.5


def test_an_a_b_of_two_models_on_the_visible_part(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "ab.png", 480, 360)
    open_photo(qtbot, window, photo)
    assert window.select_model(MODEL)
    assert window.set_compare_model(QUICK)
    assert window.compare_model_id() == QUICK
    assert window.compare.selection() is None
    box, how = window.preview_box()  # the whole photo is visible: its middle, at most PREVIEW_VISIBLE_SIDE a side
    assert (box.width(), box.height()) == (PREVIEW_VISIBLE_SIDE, PREVIEW_VISIBLE_SIDE)
    assert (box.left(), box.top()) == (80, 20) and "visible part" in how
    run_preview(qtbot, window)
    assert window.compare.region_labels() == (f"A: {MODEL}", f"B: {QUICK}")
    (a, image_a), (b, image_b) = window.last_preview
    assert a.box == b.box and image_a.size() == image_b.size()
    assert np.abs(a.after - b.after).mean() > 1 / 255
    assert "A/B" in window.preview_label.text()
    window.set_compare_mode("side")  # A in the left pane, B in the right one
    assert len(window.compare._panes()) == 2
    window.clear_region()
    assert not window.compare.has_region_result() and window.compare.selection() is None


def test_the_region_tool_makes_a_plain_drag_select_and_a_click_clears(qtbot, window, tmp_path):
    open_photo(qtbot, window, write_photo(tmp_path / "tool.png", 200, 150))
    view = window.compare
    centre = view.rect().center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(60, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 40))
    assert view.selection() is None  # a plain drag pans
    window.region_tool_action.trigger()
    assert view.select_mode
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(60, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 40))
    assert view.selection() is not None
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert view.selection() is None


def test_a_preview_for_a_photo_that_was_replaced_is_dropped(qtbot, window, tmp_path):
    first = write_photo(tmp_path / "first.png", 300, 200)
    second = write_photo(tmp_path / "second.png", 120, 90)
    open_photo(qtbot, window, first)
    assert window.select_model(MODEL)
    window.compare.set_selection(QRect(50, 50, 120, 100))
    with qtbot.waitSignal(window.previewEnded, timeout=120000) as ended:
        window.preview_region()
        window.open_photo(second)
    assert ended.args == ["dropped"]
    qtbot.waitUntil(lambda: window.photo_path == second, timeout=20000)
    assert not window.compare.has_region_result() and window.compare.before_size().width() == 120


def test_cancel_stops_a_preview(qtbot, window, tmp_path):
    open_photo(qtbot, window, write_photo(tmp_path / "stop.png", 300, 200))
    assert window.select_model(MODEL)
    window.settings.tile = "16"  # many tiles: a "between tiles" to stop at
    window.compare.set_selection(QRect(20, 20, 200, 150))
    with qtbot.waitSignal(window.previewEnded, timeout=120000) as ended:
        window.preview_region()
        assert window.cancel_action.isEnabled() and not window.enhance_action.isEnabled()
        window.cancel_action.trigger()
    assert ended.args == ["cancelled"]
    assert not window.compare.has_region_result()
    assert window.preview_action.isEnabled()


def test_the_view_draws_a_and_b_inside_the_box_on_their_sides_of_the_split(qtbot):
    from PySide6.QtGui import QColor, QImage

    from ui.compare_view import CompareView

    def solid(width: int, height: int, colour: str) -> QImage:
        image = QImage(width, height, QImage.Format.Format_RGB888)
        image.fill(QColor(colour))
        return image

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_before(solid(400, 300, "red"))
    box = QRect(100, 100, 80, 60)
    view.set_region_result(box, solid(320, 240, "lime"), solid(320, 240, "blue"), "A: one", "B: two")
    assert view.region_labels() == ("A: one", "B: two")
    view.set_mode("slider")
    view.set_split(0.5)
    target = view._image_box(box, view._panes()[0])
    assert target.width() > 500  # zoomed to the box
    shot = view.grab().toImage()
    y = int(target.center().y())
    assert shot.pixelColor(int(target.left()) + 30, y) == QColor("lime")
    assert shot.pixelColor(int(target.right()) - 30, y) == QColor("blue")
    view.fit()  # the whole photo: the box shows its images, the rest is the photo
    shot = view.grab().toImage()
    outside = view._image_box(QRect(300, 280, 1, 1), view._panes()[0]).center()  # away from the labels
    assert shot.pixelColor(int(outside.x()), int(outside.y())) == QColor("red")
    view.set_mode("side")
    left, right = view._panes()
    shot = view.grab().toImage()
    in_left = view._image_box(box, left).center()
    in_right = view._image_box(box, right).center()
    assert shot.pixelColor(int(in_left.x()), int(in_left.y())) == QColor("lime")
    assert shot.pixelColor(int(in_right.x()), int(in_right.y())) == QColor("blue")
    # A full result replaces the preview; a new photo drops region and selection.
    view.set_selection(QRect(0, 0, 50, 50))
    view.set_after(solid(1600, 1200, "yellow"))
    assert not view.has_region_result() and view.selection() == QRect(0, 0, 50, 50)
    view.set_before(solid(100, 100, "red"))
    assert view.selection() is None and view.visible_region() == QRect(0, 0, 100, 100)



def test_the_preview_reports_its_tiles_while_it_runs(qtbot, window, tmp_path):
    from PySide6.QtCore import QTimer

    open_photo(qtbot, window, write_photo(tmp_path / "tiles.png", 200, 150))
    assert window.select_model(MODEL)
    window.settings.tile = "16"  # several tiles
    window.compare.set_selection(QRect(10, 10, 100, 80))
    texts: list[str] = []
    timer = QTimer()
    timer.setInterval(5)

    def note() -> None:  # every new text of the status line while the preview runs
        text = window.preview_label.text()
        if not texts or texts[-1] != text:
            texts.append(text)

    timer.timeout.connect(note)
    timer.start()
    run_preview(qtbot, window)
    timer.stop()
    progress = [t for t in texts if ", tile " in t]
    assert progress and progress[-1].startswith("Previewing the region (100×80 px): own-mobilesr-x4, tile "), texts
