"""Draws the application icon source image (`resources/icon.png`): a photo split into a blocky "before" half and a
smooth "after" half by the compare slider. Run `python -m ui.icon_art` to redraw it."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QLinearGradient, QPainter, QPainterPath, QPen

ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icon.png"


def _scene(painter: QPainter, box: QRectF) -> None:
    """A sky, a sun and two mountains filling `box`."""
    sky = QLinearGradient(box.topLeft(), box.bottomLeft())
    sky.setColorAt(0.0, QColor("#3b82f6"))
    sky.setColorAt(1.0, QColor("#a5d8ff"))
    painter.fillRect(box, sky)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#fde047"))
    painter.drawEllipse(QPointF(box.left() + box.width() * 0.70, box.top() + box.height() * 0.30), box.width() * 0.11, box.width() * 0.11)
    for colour, peaks in (
        ("#4c6ef5", [(0.0, 0.78), (0.30, 0.42), (0.62, 0.80)]),
        ("#2b8a3e", [(0.22, 1.0), (0.62, 0.52), (1.0, 0.86)]),
    ):
        path = QPainterPath(QPointF(box.left(), box.bottom()))
        for fx, fy in peaks:
            path.lineTo(box.left() + fx * box.width(), box.top() + fy * box.height())
        path.lineTo(box.right(), box.bottom())
        path.closeSubpath()
        painter.setBrush(QColor(colour))
        painter.drawPath(path)


def draw_icon(size: int = 1024) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    margin = size * 0.06
    tile = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    radius = size * 0.2

    # The photo, drawn smooth at full size and blocky from a tiny copy: "after" and "before".
    photo = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    photo.fill(Qt.GlobalColor.transparent)
    with _painting(photo) as p:
        _scene(p, tile)
    blocky = photo.scaled(size // 48, size // 48).scaled(size, size)  # nearest neighbour both ways: big pixels

    clip = QPainterPath()
    clip.addRoundedRect(tile, radius, radius)
    split = size * 0.5
    with _painting(image) as p:
        p.setClipPath(clip)
        p.drawImage(QRectF(0, 0, split, size), blocky, QRectF(0, 0, split, size))
        p.drawImage(QRectF(split, 0, size - split, size), photo, QRectF(split, 0, size - split, size))
        p.setClipping(False)
        p.setPen(QPen(QColor("white"), size * 0.022))
        p.drawLine(QPointF(split, tile.top()), QPointF(split, tile.bottom()))
        p.setBrush(QColor("#7048e8"))
        p.drawEllipse(QPointF(split, size / 2), size * 0.085, size * 0.085)
        p.setPen(QPen(QColor("white"), size * 0.018, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        arrow = size * 0.035
        for direction in (-1, 1):
            tip = QPointF(split + direction * size * 0.05, size / 2)
            p.drawLine(tip, QPointF(tip.x() - direction * arrow, tip.y() - arrow))
            p.drawLine(tip, QPointF(tip.x() - direction * arrow, tip.y() + arrow))
        p.setPen(QPen(QColor(0, 0, 0, 60), size * 0.008))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(clip)
    return image


class _painting:
    def __init__(self, image: QImage):
        self.painter = QPainter(image)
        self.painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)

    def __enter__(self) -> QPainter:
        return self.painter

    def __exit__(self, *exc) -> None:
        self.painter.end()


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv)  # noqa: F841  (QPainter on QImage needs fonts/app)
    ICON_PATH.parent.mkdir(parents=True, exist_ok=True)
    if not draw_icon().save(str(ICON_PATH)):
        print(f"could not write {ICON_PATH}", file=sys.stderr)
        return 1
    print(f"wrote {ICON_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
