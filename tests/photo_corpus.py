"""A corpus of small real image files, valid and broken, written with Pillow (16-bit RGB TIFF with tifffile, as Pillow
cannot write it) into a folder. Shared by the image I/O, pipeline and CLI tests."""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

DATE_TAKEN = "2024:05:17 10:11:12"
EXIF_IFD = 0x8769
ORIENTATION = 0x0112


@functools.lru_cache(maxsize=1)
def icc_profile() -> bytes:
    """A real ICC profile made by LittleCMS. It holds its creation time, so it is made once per test session."""
    profile = ImageCms.createProfile("sRGB")
    return ImageCms.ImageCmsProfile(profile).tobytes()


def quadrants(width: int, height: int) -> np.ndarray:
    """RGB with four flat, distinct quadrants: red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    img[:h2, :w2] = (220, 30, 30)
    img[:h2, w2:] = (30, 200, 40)
    img[h2:, :w2] = (30, 40, 210)
    img[h2:, w2:] = (235, 235, 235)
    return img


def smooth_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / max(width + height, 1)], axis=2)
    return np.clip(base * 200 + 20 + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[EXIF_IFD] = {0x9003: DATE_TAKEN, 0xA002: 0, 0xA003: 0}  # DateTimeOriginal, PixelX/YDimension
    return exif


def write_valid(folder: Path) -> dict[str, Path]:
    """The valid files of the issue. Returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def path(name: str) -> Path:
        files[name] = folder / name
        return files[name]

    # Stored 32 wide × 24 high with orientation 6: shown 24 wide × 32 high.
    exif = exif_with(6)
    exif[EXIF_IFD] = {0x9003: DATE_TAKEN, 0xA002: 32, 0xA003: 24}
    Image.fromarray(quadrants(32, 24)).save(path("rotated_icc.jpg"), quality=95, exif=exif, icc_profile=icc_profile())
    Image.fromarray(smooth_rgb(20, 12, 1)[:, :, 0]).save(path("gray.jpg"), quality=95)
    Image.fromarray(smooth_rgb(16, 16, 2)).convert("CMYK").save(path("cmyk.jpg"), quality=95)
    rgba = np.dstack([smooth_rgb(20, 14, 3), np.tile(np.linspace(0, 255, 20), (14, 1)).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(path("rgba.png"))
    palette = Image.fromarray(smooth_rgb(18, 10, 4)).quantize(16)
    palette.putpixel((0, 0), 0)
    palette.save(path("palette_transparent.png"), transparency=0)
    gray16 = (np.tile(np.linspace(0, 65535, 17), (11, 1)) + np.arange(11)[:, None] * 97).clip(0, 65535).astype(np.uint16)
    Image.fromarray(gray16).save(path("gray16.png"))
    import tifffile

    rgb16 = (smooth_rgb(15, 9, 5).astype(np.uint16) * 257 + np.arange(15, dtype=np.uint16)[None, :, None]).astype(np.uint16)
    tifffile.imwrite(path("rgb16.tif"), rgb16, photometric="rgb", metadata=None)
    webp = np.dstack([smooth_rgb(16, 12, 6), np.tile(np.linspace(255, 0, 16), (12, 1)).astype(np.uint8)])
    Image.fromarray(webp, "RGBA").save(path("alpha.webp"), lossless=True)
    Image.fromarray(smooth_rgb(13, 9, 7)).save(path("plain.bmp"))
    Image.fromarray(np.array([[[200, 100, 50]]], np.uint8)).save(path("one_pixel.png"))
    Image.fromarray(smooth_rgb(3, 7, 8)).save(path("three_by_seven.png"))
    return files


def write_bad(folder: Path) -> dict[str, Path]:
    """The broken files of the issue. Returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / name for name in ("truncated.jpg", "empty.png", "text.jpg", "huge_header.png")}
    whole = folder / "whole.tmp.jpg"
    Image.fromarray(smooth_rgb(64, 48, 9)).save(whole, quality=90)
    data = whole.read_bytes()
    whole.unlink()
    files["truncated.jpg"].write_bytes(data[: len(data) // 2])
    files["empty.png"].write_bytes(b"")
    files["text.jpg"].write_text("this is a shopping list, not a photo\n")
    files["huge_header.png"].write_bytes(png_claiming(100_000, 100_000))
    return files


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height but whose data is tiny."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


TEST_HIDDEN_FILES = (".DS_Store", "._rgba.png")  # hidden files the tests themselves make


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files anywhere below folder: *.part, or hidden files the tests did not make."""
    return [
        p for p in folder.rglob("*")
        if p.is_file() and (p.suffix == ".part" or (p.name.startswith(".") and p.name not in TEST_HIDDEN_FILES))
    ]
