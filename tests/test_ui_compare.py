"""The compare view: slider, side by side, synced zoom and pan, on a 4000×3000 result (offscreen Qt)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402

from ui.compare_view import CompareView  # noqa: E402
from ui.imaging import pyramid  # noqa: E402


def solid(width: int, height: int, colour: str) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB888)
    image.fill(QColor(colour))
    return image


@pytest.fixture
def view(qtbot):
    widget = CompareView()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    qtbot.waitExposed(widget)
    before = solid(1000, 750, "red")
    after = solid(4000, 3000, "blue")
    widget.set_before(before, pyramid(before))
    widget.set_after(after, pyramid(after))
    return widget


def test_slider_shows_before_left_and_after_right(view):
    view.set_mode("slider")
    view.set_split(0.5)
    shot = view.grab().toImage()
    assert shot.pixelColor(200, 300) == QColor("red")
    assert shot.pixelColor(600, 300) == QColor("blue")
    view.set_split(0.9)
    assert view.grab().toImage().pixelColor(600, 300) == QColor("red")


def test_dragging_the_handle_moves_the_split(qtbot, view):
    view.set_mode("slider")
    view.set_split(0.5)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(view, QPoint(200, 300))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(200, 300))
    assert view.split == pytest.approx(0.25, abs=0.01)


def test_fit_100_percent_zoom_and_pan_are_shared_by_both_images(qtbot, view):
    view.fit()
    assert view.zoom == pytest.approx(0.2, rel=0.01)  # 4000×3000 into 800×600
    view.actual_size()
    assert view.zoom == 1.0
    centre = view.center
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(150, 130))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(150, 130))
    assert view.center.x() == pytest.approx(centre.x() - 50 * view.devicePixelRatioF(), abs=1)
    view.set_mode("side")  # both panes show the same image region at the same zoom
    shot = view.grab().toImage()
    assert shot.pixelColor(200, 300) == QColor("red") and shot.pixelColor(600, 300) == QColor("blue")
    view.zoom_in()
    assert view.zoom == pytest.approx(1.25)
    view.zoom_out()
    view.zoom_out()
    assert view.zoom == pytest.approx(0.8)


def test_wheel_zoom_keeps_the_point_under_the_pointer(qtbot, view):
    from PySide6.QtCore import QPoint as P
    from PySide6.QtGui import QWheelEvent

    view.set_mode("slider")
    view.fit()
    anchor = QPointF(600, 200)
    before = view._to_image(view._panes()[0], anchor)
    event = QWheelEvent(anchor, view.mapToGlobal(anchor), P(0, 0), P(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(event)
    assert view.zoom == pytest.approx(0.2 * 1.25**2, rel=0.01)
    after = view._to_image(view._panes()[0], anchor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=0.5)


def test_zoomed_out_painting_uses_a_small_pyramid_level(view):
    view.fit()
    layer = view._after
    pixmap, ratio = layer.pick(view.zoom / layer.scale)
    assert pixmap.width() < 4000 and ratio <= 0.25  # no full-size resample per frame when the whole image is shown
