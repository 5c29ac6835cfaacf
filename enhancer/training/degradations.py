"""How LR training inputs are made from HR patches.

- `bicubic_pairs`: MATLAB-exact bicubic, quantised to uint8 like the benchmark LR files. The HR patch carries a margin
  so the LR pixels kept never see the patch edge (the resize kernel is 4 * scale HR pixels wide), which makes them equal
  to the LR of the whole image.
- `real_photo_pairs` / `degrade`: random (an)isotropic blur, downscaling by a random kernel through a random
  intermediate size, Gaussian / Poisson / gray noise and JPEG, in a random order, sometimes twice, for the models
  meant for camera and phone photos.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class RealPhotoRecipe:
    """How a camera or phone photo is made worse before it reaches the app: blur, downscaling by an unknown kernel,
    sensor noise and JPEG, in a random order, sometimes twice (the second pass is the web re-sharing a photo, as in
    Real-ESRGAN's second-order model). Ranges are per pass: (first, second)."""

    blur_probability: tuple[float, float] = (0.8, 0.4)
    blur_sigma: tuple[tuple[float, float], tuple[float, float]] = ((0.2, 2.5), (0.2, 1.2))
    anisotropic_probability: float = 0.4
    resize_modes: tuple[str, ...] = ("bicubic", "bilinear", "area")
    noise_probability: tuple[float, float] = (0.8, 0.5)
    gaussian_sigma: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 15.0), (1.0, 8.0))
    poisson_scale: tuple[tuple[float, float], tuple[float, float]] = ((0.05, 1.5), (0.05, 0.8))
    poisson_probability: float = 0.4
    gray_noise_probability: float = 0.4
    jpeg_quality: tuple[tuple[int, int], tuple[int, int]] = ((40, 95), (50, 95))
    second_pass_probability: float = 0.4


REAL_PHOTO = RealPhotoRecipe()
# Kernel radius ceiling in HR pixels (3 sigma of the widest blur), and the LR margin that keeps it off the kept pixels.
MAX_BLUR_RADIUS = 8
REAL_MARGIN_HR = 16


def real_hr_size(lr_size: int, scale: int) -> int:
    """HR patch side to sample for `real_photo_pairs` (an HR margin wider than any blur kernel on each side)."""
    return (lr_size + 2 * real_margin(scale)) * scale


def real_margin(scale: int) -> int:
    """LR pixels of margin cut from each side of a real-photo pair."""
    return math.ceil(REAL_MARGIN_HR / scale)


class _Draw:
    """Random numbers for one image from the batch's generator (so a resumed run degrades exactly the same)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def chance(self, probability: float) -> bool:
        return float(torch.rand((), generator=self.generator)) < probability

    def pick(self, options: Sequence):
        return options[int(torch.randint(0, len(options), (1,), generator=self.generator))]

    def order(self, n: int) -> list[int]:
        return torch.randperm(n, generator=self.generator).tolist()


def gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, radius: int) -> torch.Tensor:
    """A normalised 2-D Gaussian, stretched along the angle `theta` (radians) when the sigmas differ."""
    axis = torch.arange(-radius, radius + 1, dtype=torch.float32)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    cos, sin = math.cos(theta), math.sin(theta)
    u, v = cos * x + sin * y, -sin * x + cos * y
    kernel = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of a C x H x W tensor with a 2-D kernel (reflect padding)."""
    radius = kernel.shape[-1] // 2
    c = image.shape[0]
    padded = F.pad(image[None], (radius,) * 4, mode="reflect")
    return F.conv2d(padded, kernel.to(image.dtype)[None, None].expand(c, 1, -1, -1), groups=c)[0]


def resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a C x H x W tensor with an antialiased torch kernel (`area` averages; no antialias flag there)."""
    if mode == "area":
        return F.interpolate(image[None], size=size, mode="area")[0]
    return F.interpolate(image[None], size=size, mode=mode, align_corners=False, antialias=True)[0]


def add_noise(image: torch.Tensor, draw: _Draw, sigma_range: tuple[float, float],
              poisson_range: tuple[float, float], recipe: RealPhotoRecipe) -> torch.Tensor:
    """Gaussian (read noise) or Poisson (shot noise, stronger in bright areas) noise, per channel or gray, in levels."""
    gray = draw.chance(recipe.gray_noise_probability)
    if draw.chance(recipe.poisson_probability):
        scale = draw.uniform(*poisson_range)
        source = to_luma(image[None])[0] if gray else image
        clean = source.clamp(0, 255)
        noise = (torch.poisson(clean, generator=draw.generator) - clean) * scale
    else:
        sigma = draw.uniform(*sigma_range)
        shape = (1, *image.shape[-2:]) if gray else image.shape
        noise = sigma * torch.randn(shape, generator=draw.generator, dtype=image.dtype)
    return image + noise.expand_as(image)


def degrade(hr_levels: torch.Tensor, scale: int, generator: torch.Generator,
            recipe: RealPhotoRecipe = REAL_PHOTO) -> torch.Tensor:
    """One C x H x W HR image in 0..255 levels -> its real-photo LR (H/scale x W/scale), rounded to uint8 levels.

    Each pass blurs, resizes, adds noise and JPEG-compresses, the four in a random order; the first of two passes
    resizes to a random size between HR and LR, the last one to the LR size."""
    draw = _Draw(generator)
    h, w = hr_levels.shape[-2:]
    lr_size = (h // scale, w // scale)
    passes = 2 if draw.chance(recipe.second_pass_probability) else 1
    image = hr_levels.float()
    for index in range(passes):
        stage = 0 if index == 0 else 1
        if index == passes - 1:
            target = lr_size
        else:
            factor = draw.uniform(1.0, float(scale))
            target = (max(lr_size[0], round(h / factor)), max(lr_size[1], round(w / factor)))

        def blur_step(x: torch.Tensor) -> torch.Tensor:
            if not draw.chance(recipe.blur_probability[stage]):
                return x
            sigma_x = draw.uniform(*recipe.blur_sigma[stage])
            sigma_y = draw.uniform(*recipe.blur_sigma[stage]) if draw.chance(recipe.anisotropic_probability) else sigma_x
            radius = min(MAX_BLUR_RADIUS, max(1, math.ceil(3 * max(sigma_x, sigma_y))))
            return blur(x, gaussian_kernel(sigma_x, sigma_y, draw.uniform(0, math.pi), radius))

        def resize_step(x: torch.Tensor) -> torch.Tensor:
            return resize(x, target, draw.pick(recipe.resize_modes))

        def noise_step(x: torch.Tensor) -> torch.Tensor:
            if not draw.chance(recipe.noise_probability[stage]):
                return x
            return add_noise(x, draw, recipe.gaussian_sigma[stage], recipe.poisson_scale[stage], recipe)

        def jpeg_step(x: torch.Tensor) -> torch.Tensor:
            return jpeg_roundtrip(x, round(draw.uniform(*recipe.jpeg_quality[stage])))

        steps = (blur_step, resize_step, noise_step, jpeg_step)
        for position in draw.order(len(steps)):
            image = steps[position](image)
    return image.clamp(0, 255).round()


def real_photo_pairs(hr_levels: torch.Tensor, scale: int, generator: torch.Generator,
                     recipe: RealPhotoRecipe = REAL_PHOTO) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) in [0, 1] from N x C x H x W HR patches sampled with `real_hr_size`: each degraded by `degrade`,
    then the margin (where blur and resize saw the patch edge) cut from both."""
    lr = torch.stack([degrade(image, scale, generator, recipe) for image in hr_levels])
    m = real_margin(scale)
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


def hr_patch_size(kind: str, lr_size: int, scale: int) -> int:
    """HR patch side that `make_pairs(kind, ...)` needs for LR patches of `lr_size`."""
    return real_hr_size(lr_size, scale) if kind == "real" else bicubic_hr_size(lr_size, scale)


def make_pairs(kind: str, hr_levels: torch.Tensor, scale: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch on the degradation name used on the command line."""
    if kind == "bicubic":
        return bicubic_pairs(hr_levels, scale)
    if kind == "real":
        return real_photo_pairs(hr_levels, scale, generator)
    raise ValueError(f"unknown degradation {kind!r} (choose from: {', '.join(DEGRADATIONS)})")


__all__ = ["bicubic_hr_size", "bicubic_pairs", "to_luma", "real_photo_pairs", "make_pairs", "gaussian_blur",
           "jpeg_roundtrip", "round_half_up", "RealPhotoRecipe", "REAL_PHOTO", "degrade", "real_hr_size",
           "hr_patch_size", "gaussian_kernel"]
