"""The before/after compare view: a split slider or side by side, with zoom and pan kept in sync.

Painting maps only the visible part of the image to the screen (`drawPixmap` with a source rectangle), picks a
pre-shrunk pyramid level when zoomed out, and never converts an image per frame, so a 4000×3000 result pans smoothly.
Image coordinates are those of the "after" image; "before" is drawn scaled up by the model's factor with smooth
interpolation so both line up pixel for pixel.

Region preview: Shift+drag (or a plain drag with the region tool on, `set_select_mode`) draws a rectangle, kept in
the photo's own pixels (`selection`). A region result (`set_region_result`) is drawn over the photo inside its box: the
left image left of the split and the right one right of it (or in the two panes side by side), e.g. before/after of one
model, or model A against model B.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_ZOOM = 1 / 64
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
HANDLE_GRAB_PX = 8
MIN_SELECTION_PX = 4  # a drag shorter than this (widget pixels) is a click: it clears the selection


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


class _Region:
    """A region result: the box in photo pixels and the images shown left and right of the split inside it."""

    def __init__(self, box: QRect, left: QImage | None, right: QImage, left_label: str, right_label: str):
        self.box = QRect(box)
        self.left = QPixmap.fromImage(left) if left is not None else None
        self.right = QPixmap.fromImage(right)
        self.labels = (left_label, right_label)
        self.right_size = right.size()


class CompareView(QWidget):
    """Shows `before` alone, or `before` and `after` with a draggable split or side by side."""

    zoomChanged = Signal(float)  # 1.0 = 100 %: one image pixel per device pixel
    selectionChanged = Signal(object)  # the selected region as a QRect in photo pixels, or None

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
        self._drag: str | None = None  # "split", "pan" or "select"
        self._last_pos = QPointF()
        self._press_pos = QPointF()
        self._selection: QRectF | None = None  # photo pixels
        self._select_from = QPointF()  # where a selection drag started, in photo pixels
        self._select_mode = False  # a plain drag selects instead of panning
        self._region: _Region | None = None
        self.placeholder = "Drop a photo here, or press Ctrl+O to open one"

    # ----- content
    def set_before(self, image: QImage, levels: list[QImage] | None = None) -> None:
        """Show a new photo alone; any previous result is dropped."""
        self._before = _Layer(levels or [image], 1.0)
        self._after = None
        self._region = None
        self._selection = None
        self._width, self._height = float(image.width()), float(image.height())
        self.fit()
        self.selectionChanged.emit(None)

    def set_after(self, image: QImage, levels: list[QImage] | None = None) -> None:
        """Add the result; the view keeps showing the same part of the photo."""
        if self._before is None:
            raise ValueError("set_before must come first")
        factor = image.width() / self._before.size.width()
        old_width = self._width
        self._region = None  # the full result supersedes a region preview
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

    # ----- region selection and region results (photo pixels)
    def _photo_per_image(self) -> float:
        """Photo pixels per image coordinate (below 1 once a larger result is shown)."""
        return self._before.scale if self._before is not None else 1.0

    def _photo_bounds(self) -> QRectF:
        if self._before is None:
            return QRectF()
        return QRectF(0, 0, self._before.size.width(), self._before.size.height())

    def selection(self) -> QRect | None:
        """The rectangle the user drew, in photo pixels (clipped to the photo), or None."""
        if self._selection is None:
            return None
        return _whole_pixels(self._selection)

    def set_selection(self, rect: QRect | QRectF | None) -> None:
        if rect is None or self._before is None:
            self._selection = None
        else:
            clipped = QRectF(rect).normalized().intersected(self._photo_bounds())
            self._selection = clipped if clipped.width() >= 1 and clipped.height() >= 1 else None
        self.update()
        self.selectionChanged.emit(self.selection())

    def clear_selection(self) -> None:
        self.set_selection(None)

    @property
    def select_mode(self) -> bool:
        return self._select_mode

    def set_select_mode(self, on: bool) -> None:
        """With it on, a plain drag draws the region (Shift+drag always does)."""
        self._select_mode = bool(on)
        self.unsetCursor()

    def visible_region(self) -> QRect | None:
        """The part of the photo shown in the (first) pane, in photo pixels, or None without a photo."""
        if self._before is None:
            return None
        pane = self._panes()[0]
        top_left = self._to_image(pane, pane.topLeft())
        bottom_right = self._to_image(pane, pane.bottomRight())
        per = self._photo_per_image()
        visible = QRectF(top_left * per, bottom_right * per).intersected(self._photo_bounds())
        return _whole_pixels(visible) if not visible.isEmpty() else None

    def set_region_result(self, box: QRect, left: QImage | None, right: QImage, left_label: str = "Before",
                          right_label: str = "After") -> None:
        """Show `right` (and `left`, when given: else the photo itself) over the photo inside `box` (photo pixels), each
        on its side of the split, and zoom to the box. Both images cover the whole box, at any scale."""
        if self._before is None:
            raise ValueError("set_before must come first")
        self._region = _Region(box, left, right, left_label, right_label)
        self.fit_region(box)

    def clear_region_result(self) -> None:
        self._region = None
        if self._fit:
            self.fit()
        self.update()

    def has_region_result(self) -> bool:
        return self._region is not None

    def region_box(self) -> QRect | None:
        return QRect(self._region.box) if self._region is not None else None

    def region_labels(self) -> tuple[str, str] | None:
        return self._region.labels if self._region is not None else None

    def fit_region(self, box: QRect) -> None:
        """Zoom so that `box` (photo pixels) fills the view, with a little of the photo around it."""
        if self._before is None or box.isEmpty():
            return
        per = self._photo_per_image()
        pane = self._panes()[0]
        width, height = box.width() / per, box.height() / per
        scale = 0.9 * min(pane.width() / width, pane.height() / height)
        self._zoom = self._clamp_zoom(scale * self.devicePixelRatioF())
        centre = QRectF(box).center()
        self._center = QPointF(centre.x() / per, centre.y() / per)
        self._fit = False
        self._changed()

    def _image_box(self, photo_box: QRectF | QRect, pane: QRectF) -> QRectF:
        """A rectangle in photo pixels, in widget coordinates of `pane`."""
        per = self._photo_per_image()
        scale = self._scale()
        box = QRectF(photo_box)
        return QRectF(
            pane.center().x() + (box.left() / per - self._center.x()) * scale,
            pane.center().y() + (box.top() / per - self._center.y()) * scale,
            box.width() / per * scale,
            box.height() / per * scale,
        )

    def _to_photo(self, pane: QRectF, pos: QPointF) -> QPointF:
        point = self._to_image(pane, pos) * self._photo_per_image()
        bounds = self._photo_bounds()
        return QPointF(min(max(point.x(), 0.0), bounds.width()), min(max(point.y(), 0.0), bounds.height()))

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
        if self._mode == "side" and (self._after is not None or self._region is not None):
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
        region = self._region
        labels = region.labels if region is not None else ("Before", "After")
        after = self._after or self._before  # with only a region result, the photo is around it on both sides
        if self._after is None and region is None:
            self._paint_layer(painter, self._panes()[0], self._before, self.rect())
        elif self._mode == "side":
            left, right = self._panes()
            self._paint_layer(painter, left, self._before, left)
            self._paint_layer(painter, right, after, right)
            if region is not None:
                self._paint_region(painter, left, region.left, region, left)
                self._paint_region(painter, right, region.right, region, right)
            self._paint_label(painter, left, labels[0], Qt.AlignmentFlag.AlignLeft)
            self._paint_label(painter, right, labels[1], Qt.AlignmentFlag.AlignRight)
        else:
            pane = self._panes()[0]
            split = self._split_x()
            left_clip = QRectF(0, 0, split, self.height())
            right_clip = QRectF(split, 0, self.width() - split, self.height())
            self._paint_layer(painter, pane, self._before, left_clip)
            self._paint_layer(painter, pane, after, right_clip)
            if region is not None:
                self._paint_region(painter, pane, region.left, region, left_clip)
                self._paint_region(painter, pane, region.right, region, right_clip)
            self._paint_label(painter, pane, labels[0], Qt.AlignmentFlag.AlignLeft)
            self._paint_label(painter, pane, labels[1], Qt.AlignmentFlag.AlignRight)
            self._paint_handle(painter, split)
        for pane in self._panes():
            self._paint_selection(painter, pane)

    def _paint_region(self, painter: QPainter, pane: QRectF, pixmap: QPixmap | None, region: _Region,
                      clip: QRectF) -> None:
        target = self._image_box(region.box, pane)
        painter.save()
        painter.setClipRect(clip.intersected(pane))
        if pixmap is not None:
            device_px_per_pixel = target.width() * self.devicePixelRatioF() / max(1, pixmap.width())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, device_px_per_pixel < 2.0)
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
        painter.setPen(QPen(QColor(255, 255, 255, 200), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target.adjusted(-1, -1, 0, 0))  # so the preview's edge can be told from the photo
        painter.restore()

    def _paint_selection(self, painter: QPainter, pane: QRectF) -> None:
        if self._selection is None:
            return
        box = self._image_box(self._selection, pane)
        painter.save()
        painter.setClipRect(pane)
        painter.setBrush(Qt.BrushStyle.NoBrush)  # an outline only: the pixels inside are what is being judged
        painter.setPen(QPen(QColor(0, 0, 0, 200), 1))
        painter.drawRect(box)
        dashed = QPen(self.palette().color(QPalette.ColorRole.Highlight).lighter(130), 2, Qt.PenStyle.DashLine)
        painter.setPen(dashed)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(box)
        painter.restore()

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
        has_two = self._after is not None or self._region is not None
        return has_two and self._mode == "slider" and abs(pos.x() - self._split_x()) <= HANDLE_GRAB_PX

    def _selects(self, modifiers) -> bool:
        return self._select_mode or bool(modifiers & Qt.KeyboardModifier.ShiftModifier)

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._before is None:
            return super().mousePressEvent(event)
        pos = event.position()
        if self._near_split(pos):
            self._drag = "split"
        elif self._selects(event.modifiers()):
            self._drag = "select"
            self._select_from = self._to_photo(self._pane_at(pos), pos)
        else:
            self._drag = "pan"
        self._last_pos = pos
        self._press_pos = pos
        cursors = {"split": Qt.CursorShape.SplitHCursor, "select": Qt.CursorShape.CrossCursor}
        self.setCursor(cursors.get(self._drag, Qt.CursorShape.ClosedHandCursor))

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag == "split":
            self.set_split(pos.x() / max(1, self.width()))
        elif self._drag == "select":
            here = self._to_photo(self._pane_at(self._press_pos), pos)
            self._selection = QRectF(self._select_from, here).normalized()
            self.update()
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self._last_pos = pos
            self.pan_by(delta.x(), delta.y())
        elif self._near_split(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif self._selects(event.modifiers()):
            self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.setCursor(Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event) -> None:
        if self._drag == "select":
            moved = event.position() - self._press_pos
            if max(abs(moved.x()), abs(moved.y())) < MIN_SELECTION_PX:
                self._selection = None  # a click: no region
            self.set_selection(self._selection)
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


def _whole_pixels(rect: QRectF) -> QRect:
    """The whole pixels a rectangle in photo pixels covers (at least 1×1)."""
    left, top = math.floor(rect.left()), math.floor(rect.top())
    right, bottom = math.ceil(rect.right()), math.ceil(rect.bottom())
    return QRect(left, top, max(1, right - left), max(1, bottom - top))
