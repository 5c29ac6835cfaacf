"""How LR training inputs are made from HR patches.

- `bicubic_pairs`: MATLAB-exact bicubic, quantised to uint8 like the benchmark LR files. The HR patch carries a margin
  so the LR pixels kept never see the patch edge (the resize kernel is 4 * scale HR pixels wide), which makes them equal
  to the LR of the whole image.
- `real_photo_pairs`: random blur, downscale, noise and JPEG, for a model meant for camera and phone photos.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .imresize import imresize, round_half_up

# LR pixels of margin on each side of a bicubic pair: the x4 kernel reaches 2 LR pixels, one more for safety.
BICUBIC_MARGIN = 3


def bicubic_hr_size(lr_size: int, scale: int) -> int:
    """HR patch side to sample so that `bicubic_pairs` can return `lr_size` LR patches with a clean margin."""
    return (lr_size + 2 * BICUBIC_MARGIN) * scale


def bicubic_pairs(hr_levels: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) in [0, 1] from N x C x H x W HR patches in 0..255 levels sampled with `bicubic_hr_size`."""
    lr = imresize(hr_levels, scale=1 / scale, round_between=True)
    m = BICUBIC_MARGIN
    lr = lr[..., m:-m, m:-m]
    hr = hr_levels[..., m * scale : -m * scale, m * scale : -m * scale]
    return lr / 255.0, hr / 255.0


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur a C x H x W tensor with a separable Gaussian (reflect padding)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return out[0]


def jpeg_roundtrip(image_levels: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode a C x H x W tensor in 0..255 as JPEG with Pillow at `quality` and decode it again."""
    array = image_levels.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return torch.from_numpy(np.array(decoded.convert("RGB"))).permute(2, 0, 1).to(image_levels.dtype)


def real_photo_pairs(hr_levels: torch.Tensor, scale: int, generator: torch.Generator,
                     blur_sigma: tuple[float, float] = (0.2, 2.5), noise_sigma: tuple[float, float] = (0.0, 15.0),
                     jpeg_quality: tuple[int, int] = (35, 95)) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) in [0, 1]: per image a random blur, a MATLAB bicubic downscale, Gaussian noise (in levels,
    sometimes per channel, sometimes gray) and a JPEG round-trip. HR patches must be `bicubic_hr_size` sized."""

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    lr_list = []
    for image in hr_levels:
        if float(torch.rand((), generator=generator)) < 0.8:
            image = gaussian_blur(image, uniform(*blur_sigma))
        lr = imresize(image, scale=1 / scale)
        sigma = uniform(*noise_sigma)
        if sigma > 0:
            if float(torch.rand((), generator=generator)) < 0.3:
                noise = torch.randn(lr.shape[-2:], generator=generator, dtype=lr.dtype).expand_as(lr)
            else:
                noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype)
            lr = lr + sigma * noise
        lr = jpeg_roundtrip(lr, round(uniform(*jpeg_quality)))
        lr_list.append(lr)
    lr = torch.stack(lr_list)
    m = BICUBIC_MARGIN
    lr = lr[..., m:-m, m:-m]
    hr = hr_levels[..., m * scale : -m * scale, m * scale : -m * scale]
    return lr / 255.0, hr / 255.0


# Full-range BT.601 luma as Pillow's "YCbCr" computes it (the Y that a luma network such as ESPCN sees in the app).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB -> N x 1 x H x W luma (Pillow's Y, in float: no rounding), in the same value range."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b


DEGRADATIONS = ("bicubic", "real")


def make_pairs(kind: str, hr_levels: torch.Tensor, scale: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch on the degradation name used on the command line."""
    if kind == "bicubic":
        return bicubic_pairs(hr_levels, scale)
    if kind == "real":
        return real_photo_pairs(hr_levels, scale, generator)
    raise ValueError(f"unknown degradation {kind!r} (choose from: {', '.join(DEGRADATIONS)})")


__all__ = ["bicubic_hr_size", "bicubic_pairs", "to_luma", "real_photo_pairs", "make_pairs", "gaussian_blur",
           "jpeg_roundtrip", "round_half_up"]
