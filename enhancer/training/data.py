"""Training data: HR images from folders, cached once as uint8, served as random augmented patches.

The cache is one flat uint8 `.npy` (memory-mapped) plus an index of shapes, so start-up after the first run is instant
and a batch costs only a few slices. LR patches are made on the fly from the HR patches (see `degradations`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def default_cache_dir() -> Path:
    """Where prepared datasets live: outside the repository, in the user cache dir (override with ENHANCER_CACHE_DIR)."""
    env = os.environ.get("ENHANCER_CACHE_DIR")
    if env:
        return Path(env)
    from ..paths import cache_dir

    return cache_dir() / "training"


def list_images(folders: Sequence[str | os.PathLike]) -> list[Path]:
    """All image files in the given folders (not recursive), sorted so the order never depends on the file system."""
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: training image folder not found")
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"{folder}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
        files.extend(found)
    return files


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read this training image ({exc})") from None


@dataclass
class ImageCache:
    """All HR images of a dataset in one flat uint8 array."""

    pixels: np.ndarray  # flat uint8
    offsets: np.ndarray  # start of each image in `pixels`
    shapes: np.ndarray  # (N, 3): H, W, C

    def __len__(self) -> int:
        return len(self.shapes)

    def image(self, index: int) -> np.ndarray:
        h, w, c = (int(v) for v in self.shapes[index])
        start = int(self.offsets[index])
        return self.pixels[start : start + h * w * c].reshape(h, w, c)


def prepare_cache(folders: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None,
                  min_size: int = 0) -> ImageCache:
    """Read the images once into `cache_dir`, keyed by the file list, sizes and dates; reuse the cache afterwards."""
    files = list_images(folders)
    key_source = json.dumps([(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    pixels_path = cache_dir / f"hr-{key}.npy"
    index_path = cache_dir / f"hr-{key}.json"
    if not (pixels_path.is_file() and index_path.is_file()):
        images = [_read_rgb(p) for p in files]
        images = [im for im in images if min(im.shape[:2]) >= min_size]
        if not images:
            raise ValueError(f"no training image is at least {min_size} pixels on its short side in {list(folders)}")
        shapes = np.array([im.shape for im in images], dtype=np.int64)
        flat = np.concatenate([im.reshape(-1) for im in images])
        tmp = pixels_path.with_suffix(".tmp.npy")
        np.save(tmp, flat)
        os.replace(tmp, pixels_path)
        index_tmp = index_path.with_suffix(".tmp")
        index_tmp.write_text(json.dumps({"files": [str(p) for p in files], "shapes": shapes.tolist()}))
        os.replace(index_tmp, index_path)
    index = json.loads(index_path.read_text())
    shapes = np.array(index["shapes"], dtype=np.int64).reshape(-1, 3)
    sizes = shapes.prod(axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pixels = np.load(pixels_path, mmap_mode="r")
    return ImageCache(pixels=pixels, offsets=offsets, shapes=shapes)


def augment(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/90-degree rotations of an H x W x C patch (code 0..7; 0 is the identity)."""
    if code & 1:
        patch = patch[:, ::-1]
    if code & 2:
        patch = patch[::-1, :]
    if code & 4:
        patch = patch.transpose(1, 0, 2)
    return patch


def sample_hr_patches(cache: ImageCache, batch: int, hr_size: int, generator: torch.Generator) -> torch.Tensor:
    """A batch of random, augmented HR patches as float32 N x 3 x hr_size x hr_size in [0, 255] levels."""
    eligible = np.flatnonzero((cache.shapes[:, 0] >= hr_size) & (cache.shapes[:, 1] >= hr_size))
    if len(eligible) == 0:
        raise ValueError(f"no training image is large enough for {hr_size}x{hr_size} patches")
    # Pick images in proportion to their area, so big images are not under-sampled.
    areas = torch.from_numpy((cache.shapes[eligible, 0] * cache.shapes[eligible, 1]).astype(np.float64))
    choice = torch.multinomial(areas, batch, replacement=True, generator=generator)
    out = np.empty((batch, hr_size, hr_size, 3), dtype=np.uint8)
    for slot, pick in enumerate(choice.tolist()):
        image = cache.image(int(eligible[pick]))
        h, w = image.shape[:2]
        top = int(torch.randint(0, h - hr_size + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - hr_size + 1, (1,), generator=generator))
        code = int(torch.randint(0, 8, (1,), generator=generator))
        out[slot] = augment(image[top : top + hr_size, left : left + hr_size], code)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float()
