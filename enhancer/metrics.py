"""Image quality figures used by the tests, the benchmarks and training: PSNR on RGB and on BT.601 luma.

The conventions follow the usual SR benchmark code: 8-bit images, the border cropped by the scale factor on each
side, and luma Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1] (so Y lies in [16, 235]).
"""

from __future__ import annotations

import math

import numpy as np

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def rgb_to_y(rgb_uint8: np.ndarray) -> np.ndarray:
    """BT.601 luma of an H×W×3 8-bit RGB image, as float64 in [16, 235] (not rounded)."""
    rgb = _as_image(rgb_uint8, "rgb_to_y")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an H×W×3 RGB image, got shape {rgb.shape}")
    return rgb.astype(np.float64) / 255.0 @ _Y_WEIGHTS + 16.0


def psnr_rgb(a_uint8: np.ndarray, b_uint8: np.ndarray, crop: int = 0) -> float:
    """PSNR in dB between two 8-bit images over all channels, with `crop` pixels removed on every side."""
    a = _as_image(a_uint8, "psnr_rgb")
    b = _as_image(b_uint8, "psnr_rgb")
    _check_same_shape(a, b, "psnr_rgb")
    return _psnr(_crop(a.astype(np.float64), crop), _crop(b.astype(np.float64), crop))


def psnr_y(a_uint8: np.ndarray, b_uint8: np.ndarray, crop: int = 0) -> float:
    """PSNR in dB between the BT.601 luma of two 8-bit RGB images, with `crop` pixels removed on every side.

    Gray (H×W or H×W×1) images are compared directly, since their values already are the luma.
    """
    a = _as_image(a_uint8, "psnr_y")
    b = _as_image(b_uint8, "psnr_y")
    _check_same_shape(a, b, "psnr_y")
    if a.ndim == 2 or a.shape[2] == 1:
        return psnr_rgb(a, b, crop)
    return _psnr(_crop(rgb_to_y(a), crop), _crop(rgb_to_y(b), crop))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _crop(img: np.ndarray, crop: int) -> np.ndarray:
    if crop <= 0:
        return img
    if img.shape[0] <= 2 * crop or img.shape[1] <= 2 * crop:
        raise ValueError(f"cannot crop {crop} pixels from each side of an image of size {img.shape[1]}×{img.shape[0]}")
    return img[crop:-crop, crop:-crop, ...]


def _as_image(img: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"{what} needs 8-bit images (dtype uint8), got {img.dtype}")
    if img.ndim not in (2, 3):
        raise ValueError(f"{what} needs an H×W or H×W×C image, got shape {img.shape}")
    return img


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: the images differ in size: {a.shape} vs {b.shape}")
