"""Turn the engine's float pixels into QImages. Runs in worker threads (QImage, unlike QPixmap, is thread-safe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage


def to_qimage(pixels: np.ndarray) -> QImage:
    """float32 H×W×C in [0,1] (C = 1, 3 or 4) → an 8-bit QImage that owns its memory."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    data = np.ascontiguousarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8))
    formats = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}
    if channels not in formats:
        raise ValueError(f"cannot show an image with {channels} channels")
    image = QImage(data.data, width, height, width * channels, formats[channels])
    return image.copy()  # detach from the numpy buffer, which dies with this frame


def read_image(path: str | Path) -> QImage:
    """Decode a photo the way the engine sees it (EXIF orientation applied, CMYK/palette converted)."""
    from enhancer.imageio import read_photo

    return to_qimage(read_photo(Path(path)).pixels)


def pyramid(image: QImage, smallest: int = 256) -> list[QImage]:
    """The image and smooth half-size copies down to `smallest` pixels, so zoomed-out views never alias or
    resample the full image. Made once per image, in a worker thread."""
    levels = [image]
    while min(levels[-1].width(), levels[-1].height()) // 2 >= smallest:
        last = levels[-1]
        levels.append(last.scaled(last.width() // 2, last.height() // 2, mode=Qt.TransformationMode.SmoothTransformation))
    return levels
