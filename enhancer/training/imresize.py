"""Bicubic resizing that matches MATLAB's `imresize` (the function that made the standard SR benchmark LR images).

MATLAB's rules, reproduced here:
- cubic kernel with a = -0.5;
- when shrinking, the kernel is stretched by 1/scale (antialiasing), so its support grows from 4 to 4/scale pixels;
- output pixel u (1-based) samples input position u/scale + 0.5 * (1 - 1/scale);
- taps that fall outside the image are mirrored with the edge pixel repeated ("symmetric");
- the dimension with the stronger reduction is resized first (height first on a tie);
- for uint8 images MATLAB rounds to uint8 after each dimension, which `round_between` reproduces.

A model trained on a different bicubic loses PSNR on those benchmarks, hence the care.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


def round_half_up(t: torch.Tensor) -> torch.Tensor:
    """MATLAB's rounding (halves away from zero) for non-negative levels; torch.round rounds halves to even."""
    return torch.floor(t + 0.5)


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """MATLAB's cubic convolution kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def _resize_matrix_np(in_size: int, out_size: int, scale: float, antialias: bool) -> np.ndarray:
    kernel_width = 4.0
    if scale < 1 and antialias:
        def kernel(x):
            return scale * cubic_kernel(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = cubic_kernel
    u = np.arange(1, out_size + 1, dtype=np.float64)
    x = u / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(x - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(x[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric boundary: 1..n, n..1, repeated.
    mirror = np.concatenate([np.arange(in_size), np.arange(in_size - 1, -1, -1)])
    zero_based = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_size)]
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.repeat(np.arange(out_size), taps)
    np.add.at(matrix, (rows, zero_based.reshape(-1)), weights.reshape(-1))
    return matrix


def resize_matrix(in_size: int, out_size: int, scale: float | None = None, antialias: bool = True,
                  dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The out_size x in_size matrix that resizes one dimension the MATLAB way."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be positive, got {in_size} -> {out_size}")
    scale = float(out_size) / in_size if scale is None else float(scale)
    return torch.from_numpy(_resize_matrix_np(in_size, out_size, scale, antialias)).to(device=device, dtype=dtype)


def imresize(image: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True, round_between: bool = False) -> torch.Tensor:
    """Resize the last two dims (H, W) of `image` like MATLAB's `imresize(image, scale, 'bicubic')`.

    `image` is float (any leading dims). Give either `scale` (output = ceil(size * scale)) or `size` = (H, W).
    With `round_between`, values are taken as 0..255 levels and rounded after each pass, as MATLAB does for uint8.
    """
    if not torch.is_floating_point(image):
        raise TypeError(f"imresize needs a float tensor, got {image.dtype}")
    if image.dim() < 2:
        raise ValueError(f"imresize needs at least 2 dims (H, W), got shape {tuple(image.shape)}")
    in_h, in_w = image.shape[-2], image.shape[-1]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs `scale` or `size`")
        out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
        scale_h = scale_w = float(scale)
    else:
        out_h, out_w = int(size[0]), int(size[1])
        scale_h, scale_w = out_h / in_h, out_w / in_w
    mat_h = resize_matrix(in_h, out_h, scale_h, antialias, image.dtype, image.device)
    mat_w = resize_matrix(in_w, out_w, scale_w, antialias, image.dtype, image.device)

    def along_h(t: torch.Tensor) -> torch.Tensor:
        return torch.matmul(mat_h, t)

    def along_w(t: torch.Tensor) -> torch.Tensor:
        return torch.matmul(t, mat_w.T)

    order = (along_h, along_w) if scale_h <= scale_w else (along_w, along_h)
    out = image
    for step in order:
        out = step(out)
        if round_between:
            out = round_half_up(out).clamp(0, 255)
    return out


def imresize_uint8(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB `imresize(uint8_image, scale, 'bicubic')` on an H x W (x C) uint8 array."""
    if image.dtype != np.uint8:
        raise TypeError(f"imresize_uint8 needs a uint8 array, got {image.dtype}")
    tensor = torch.from_numpy(image.astype(np.float64))
    chw = tensor.permute(2, 0, 1) if tensor.dim() == 3 else tensor
    out = imresize(chw, scale=scale, round_between=True)
    out = out.permute(1, 2, 0) if tensor.dim() == 3 else out
    return round_half_up(out).clamp(0, 255).to(torch.uint8).numpy()


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of `scale` (from the bottom and right), as the SR benchmarks do."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]
