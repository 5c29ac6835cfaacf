"""The before/after compare view: a split slider or side by side, with zoom and pan kept in sync.

Painting maps only the visible part of the image to the screen (`drawPixmap` with a source rectangle), picks a
pre-shrunk pyramid level when zoomed out, and never converts an image per frame, so a 4000×3000 result pans smoothly.
Image coordinates are those of the "after" image; "before" is drawn scaled up by the model's factor with smooth
interpolation so both line up pixel for pixel.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_ZOOM = 1 / 64
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
HANDLE_GRAB_PX = 8


class _Layer:
    """One image as a pyramid of pixmaps; `scale` maps image (after) coordinates to full-size pixmap pixels."""

    def __init__(self, levels: list[QImage], scale: float):
        self.pixmaps = [QPixmap.fromImage(level) for level in levels]
        self.scale = scale
        self.size = levels[0].size()

    def pick(self, device_px_per_pixel: float) -> tuple[QPixmap, float]:
        """The smallest level that still has at least one pixel per device pixel, and its size ratio to full size."""
        chosen, ratio = self.pixmaps[0], 1.0
        for pixmap in self.pixmaps[1:]:
            level_ratio = pixmap.width() / self.pixmaps[0].width()
            if device_px_per_pixel > level_ratio:
                break
            chosen, ratio = pixmap, level_ratio
        return chosen, ratio


class CompareView(QWidget):
    """Shows `before` alone, or `before` and `after` with a draggable split or side by side."""

    zoomChanged = Signal(float)  # 1.0 = 100 %: one image pixel per device pixel

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._before: _Layer | None = None
        self._after: _Layer | None = None
        self._width = 0.0  # image size, in after coordinates
        self._height = 0.0
        self._zoom = 1.0
        self._center = QPointF()
        self._fit = True  # keep fitting on resize until the user zooms
        self._split = 0.5  # slider position as a fraction of the widget width
        self._mode = "slider"
        self._drag: str | None = None  # "split" or "pan"
        self._last_pos = QPointF()
        self.placeholder = "Drop a photo here, or press Ctrl+O to open one"

    # ----- content
    def set_before(self, image: QImage, levels: list[QImage] | None = None) -> None:
        """Show a new photo alone; any previous result is dropped."""
        self._before = _Layer(levels or [image], 1.0)
        self._after = None
        self._width, self._height = float(image.width()), float(image.height())
        self.fit()

    def set_after(self, image: QImage, levels: list[QImage] | None = None) -> None:
        """Add the result; the view keeps showing the same part of the photo."""
        if self._before is None:
            raise ValueError("set_before must come first")
        factor = image.width() / self._before.size.width()
        old_width = self._width
        self._after = _Layer(levels or [image], 1.0)
        self._width, self._height = float(image.width()), float(image.height())
        self._before.scale = self._before.size.width() / self._width
        ratio = self._width / old_width if old_width else factor
        self._center = QPointF(self._center.x() * ratio, self._center.y() * ratio)
        self._zoom /= ratio
        if self._fit:
            self.fit()
        else:
            self._changed()

    def clear_after(self) -> None:
        if self._before is None or self._after is None:
            return
        ratio = self._before.size.width() / self._width
        self._after = None
        self._before.scale = 1.0
        self._width, self._height = float(self._before.size.width()), float(self._before.size.height())
        self._center = QPointF(self._center.x() * ratio, self._center.y() * ratio)
        self._zoom /= ratio
        self.fit() if self._fit else self._changed()

    def has_before(self) -> bool:
        return self._before is not None

    def has_after(self) -> bool:
        return self._after is not None

    def before_size(self):
        return self._before.size if self._before else None

    def after_size(self):
        return self._after.size if self._after else None

    # ----- view state
    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in ("slider", "side"):
            raise ValueError(f"unknown compare mode {mode!r}")
        self._mode = mode
        if self._fit:
            self.fit()
        self.update()

    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def center(self) -> QPointF:
        return QPointF(self._center)

    @property
    def split(self) -> float:
        return self._split

    def set_split(self, fraction: float) -> None:
        self._split = min(1.0, max(0.0, fraction))
        self.update()

    def fit(self) -> None:
        self._fit = True
        if self._width and self._height:
            pane = self._panes()[0]
            scale = min(pane.width() / self._width, pane.height() / self._height)
            self._zoom = self._clamp_zoom(scale * self.devicePixelRatioF())
            self._center = QPointF(self._width / 2, self._height / 2)
        self._changed()

    def actual_size(self) -> None:
        self._set_zoom(1.0, None)

    def zoom_in(self) -> None:
        self._set_zoom(self._zoom * ZOOM_STEP, None)

    def zoom_out(self) -> None:
        self._set_zoom(self._zoom / ZOOM_STEP, None)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) widget pixels."""
        scale = self._scale()
        self._fit = False
        self._center = QPointF(self._center.x() - dx / scale, self._center.y() - dy / scale)
        self._changed()

    # ----- geometry helpers
    def _scale(self) -> float:
        """Logical widget pixels per image pixel."""
        return self._zoom / self.devicePixelRatioF()

    def _clamp_zoom(self, zoom: float) -> float:
        return min(MAX_ZOOM, max(MIN_ZOOM, zoom))

    def _panes(self) -> list[QRectF]:
        full = QRectF(self.rect())
        if self._mode == "side" and self._after is not None:
            half = (full.width() - 2) / 2
            return [QRectF(0, 0, half, full.height()), QRectF(half + 2, 0, half, full.height())]
        return [full]

    def _pane_at(self, pos: QPointF) -> QRectF:
        panes = self._panes()
        return next((p for p in panes if p.contains(pos)), panes[0])

    def _to_image(self, pane: QRectF, pos: QPointF) -> QPointF:
        scale = self._scale()
        return QPointF(
            self._center.x() + (pos.x() - pane.center().x()) / scale,
            self._center.y() + (pos.y() - pane.center().y()) / scale,
        )

    def _set_zoom(self, zoom: float, anchor: QPointF | None) -> None:
        """Zoom keeping the image point under `anchor` (widget coordinates; None: the centre) where it is."""
        zoom = self._clamp_zoom(zoom)
        if anchor is not None:
            pane = self._pane_at(anchor)
            under = self._to_image(pane, anchor)
            self._zoom = zoom
            scale = self._scale()
            self._center = QPointF(
                under.x() - (anchor.x() - pane.center().x()) / scale,
                under.y() - (anchor.y() - pane.center().y()) / scale,
            )
        else:
            self._zoom = zoom
        self._fit = False
        self._changed()

    def _changed(self) -> None:
        # Keep the image centre inside the image so it can never be panned out of sight.
        self._center = QPointF(min(max(self._center.x(), 0.0), self._width), min(max(self._center.y(), 0.0), self._height))
        self.update()
        self.zoomChanged.emit(self._zoom)

    def _split_x(self) -> float:
        return self.width() * self._split

    # ----- painting
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Window).darker(115))
        if self._before is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        if self._after is None:
            self._paint_layer(painter, self._panes()[0], self._before, self.rect())
            return
        if self._mode == "side":
            left, right = self._panes()
            self._paint_layer(painter, left, self._before, left)
            self._paint_layer(painter, right, self._after, right)
            self._paint_label(painter, left, "Before", Qt.AlignmentFlag.AlignLeft)
            self._paint_label(painter, right, "After", Qt.AlignmentFlag.AlignRight)
            return
        pane = self._panes()[0]
        split = self._split_x()
        self._paint_layer(painter, pane, self._before, QRectF(0, 0, split, self.height()))
        self._paint_layer(painter, pane, self._after, QRectF(split, 0, self.width() - split, self.height()))
        self._paint_label(painter, pane, "Before", Qt.AlignmentFlag.AlignLeft)
        self._paint_label(painter, pane, "After", Qt.AlignmentFlag.AlignRight)
        self._paint_handle(painter, split)

    def _paint_layer(self, painter: QPainter, pane: QRectF, layer: _Layer, clip: QRectF) -> None:
        scale = self._scale()
        # The part of the image that is visible in this clip, in image coordinates.
        top_left = self._to_image(pane, clip.topLeft())
        bottom_right = self._to_image(pane, clip.bottomRight())
        visible = QRectF(top_left, bottom_right).intersected(QRectF(0, 0, self._width, self._height))
        if visible.isEmpty():
            return
        target = QRectF(
            pane.center().x() + (visible.left() - self._center.x()) * scale,
            pane.center().y() + (visible.top() - self._center.y()) * scale,
            visible.width() * scale,
            visible.height() * scale,
        )
        device_px_per_pixel = self._zoom / layer.scale  # device pixels per full-size pixmap pixel
        pixmap, ratio = layer.pick(device_px_per_pixel)
        source_scale = layer.scale * ratio
        source = QRectF(
            visible.left() * source_scale,
            visible.top() * source_scale,
            visible.width() * source_scale,
            visible.height() * source_scale,
        )
        # "Before" is always interpolated smoothly so it lines up with "after"; "after" is shown with its real pixels
        # once zoomed in far enough to see them.
        smooth = layer is self._before or device_px_per_pixel < 2.0
        painter.save()
        painter.setClipRect(clip)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawPixmap(target, pixmap, source)
        painter.restore()

    def _image_rect(self, pane: QRectF) -> QRectF:
        """Where the whole image lies in this pane, in widget coordinates."""
        scale = self._scale()
        return QRectF(
            pane.center().x() - self._center.x() * scale,
            pane.center().y() - self._center.y() * scale,
            self._width * scale,
            self._height * scale,
        )

    def _paint_label(self, painter: QPainter, pane: QRectF, text: str, align: Qt.AlignmentFlag) -> None:
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 16
        height = metrics.height() + 8
        # On the picture's corner when the picture is smaller than the pane, so the label says what it labels.
        shown = self._image_rect(pane).intersected(pane)
        if shown.width() > 2 * width + 40 and shown.height() > height + 20:
            pane = shown
        x = pane.left() + 10 if align == Qt.AlignmentFlag.AlignLeft else pane.right() - 10 - width
        box = QRectF(x, pane.top() + 10, width, height)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _paint_handle(self, painter: QPainter, x: float) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        centre = QPointF(x, self.height() / 2)
        painter.setBrush(self.palette().color(QPalette.ColorRole.Highlight))
        painter.drawEllipse(centre, 14, 14)
        painter.setPen(QPen(QColor("white"), 2))
        for direction in (-1, 1):  # two small arrows: "drag me sideways"
            tip = QPointF(x + direction * 9, centre.y())
            painter.drawLine(tip, QPointF(tip.x() - direction * 5, centre.y() - 5))
            painter.drawLine(tip, QPointF(tip.x() - direction * 5, centre.y() + 5))
        painter.restore()

    # ----- input
    def _near_split(self, pos: QPointF) -> bool:
        return self._after is not None and self._mode == "slider" and abs(pos.x() - self._split_x()) <= HANDLE_GRAB_PX

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._before is None:
            return super().mousePressEvent(event)
        pos = event.position()
        self._drag = "split" if self._near_split(pos) else "pan"
        self._last_pos = pos
        self.setCursor(Qt.CursorShape.SplitHCursor if self._drag == "split" else Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag == "split":
            self.set_split(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self._last_pos = pos
            self.pan_by(delta.x(), delta.y())
        else:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_split(pos) else Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None
        self.unsetCursor()

    def wheelEvent(self, event) -> None:
        if self._before is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self._set_zoom(self._zoom * math.pow(ZOOM_STEP, steps), event.position())

    def resizeEvent(self, event) -> None:
        if self._fit:
            self.fit()
        super().resizeEvent(event)
