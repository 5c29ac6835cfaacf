"""Read and write photos with their metadata, so that the output of a photo is that photo, better, with nothing lost.

A `Photo` holds float32 pixels (H×W×C in [0,1], C = 1 gray, 3 colour or 4 colour + alpha) and everything needed to
write the result back faithfully: the source format, the bit depth (8 or 16), whether it was gray and whether it had
alpha, the ICC profile (kept byte for byte), the EXIF block (orientation already applied to the pixels and reset to 1),
XMP, and the DPI.

Reading:
- Pillow decodes everything it can; 16-bit colour PNG and TIFF, which Pillow would reduce to 8 bits, are decoded by
  pypng and tifffile so that 16 bits in give 16 bits out. HEIC comes through pillow-heif (10/12-bit HEIC is read as
  16 bits), AVIF through Pillow (8 bits), JPEG XL through pillow-jxl-plugin (16 bits for gray).
- The EXIF orientation is applied (the semantics of `PIL.ImageOps.exif_transpose`), CMYK is converted to RGB (through
  its ICC profile when it has one) and palette images to RGB or RGBA. GIF and multi-page TIFF give their first frame.
- Pillow's decompression-bomb guard stays on. Every failure raises `ImageError` naming the file and the reason.

Metadata on write: the ICC profile in every format but BMP and JPEG XL (the plugin cannot embed one: a photo with a
profile other than sRGB is converted to sRGB, see `format_notes`); EXIF (orientation 1, PixelX/YDimension updated) in
JPEG, PNG, WebP, HEIC, AVIF and JPEG XL, and its IFD0 tags (camera, date, artist...) in TIFF; XMP in JPEG, PNG, WebP,
TIFF, HEIC, AVIF and JPEG XL; DPI in JPEG, PNG, TIFF and BMP.

Bit depth on write: 16 bits in PNG and TIFF; 12 bits in HEIC (the most HEVC stores); 16 bits for gray JPEG XL (the
plugin writes colour in 8 bits); 8 bits in JPEG, WebP, AVIF (Pillow's encoder) and BMP.

Writing (`write_photo`) goes to a hidden temporary file in the target folder, then into place in one step (see
`enhancer.atomic`), so that a reader never sees a partial file and nothing is left behind on failure or interruption.
An original is never opened for writing.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin, UnidentifiedImageError

from .atomic import TEMP_PREFIX, AtomicFile
from .errors import ImageError

try:  # HEIC/HEIF through pillow-heif; the rest of the module works without it
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    pillow_heif = None

try:  # JPEG XL through pillow-jxl-plugin, which registers itself with Pillow on import
    import pillow_jxl  # noqa: F401
except ImportError:  # pragma: no cover - a declared dependency; without it JPEG XL is not offered
    pillow_jxl = None

Image.init()

# Pillow format name of the input -> the format that "same" writes.
SAME_FORMAT = {
    "JPEG": "JPEG",
    "MPO": "JPEG",  # phones' JPEGs with a depth map or second frame open as MPO
    "PNG": "PNG",
    "WEBP": "WEBP",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "DIB": "BMP",
    "HEIF": "HEIF",
    "AVIF": "AVIF",
    "JXL": "JXL",
}
# Names a user may give to `format=` -> Pillow format name.
FORMAT_NAMES = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "bmp": "BMP",
    "heic": "HEIF",
    "heif": "HEIF",
    "avif": "AVIF",
    "jxl": "JXL",
}
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}  # the formats' own limits on width and height
EXTENSIONS = {
    "JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "HEIF": ".heic", "AVIF": ".avif",
    "JXL": ".jxl",
}
# File extensions taken as images when a folder is scanned.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".gif", ".heic", ".heif", ".hif",
     ".avif", ".jxl"}
)
HEIF_DEEP_BITS = 12  # what a 16-bit photo becomes in HEIC: HEVC's Main 12 profile, the most libheif's x265 writes

ORIENTATION_TAG = 0x0112
GPS_IFD = 0x8825
# What `write_photo(strip_metadata=...)` leaves out: nothing; the location (the EXIF GPS block and XMP's location
# fields; the camera data stays); or all EXIF and XMP (maker notes with them). The ICC profile is always kept.
STRIP_METADATA = ("none", "location", "all")
# XMP properties that say where a photo was taken: EXIF's GPS fields, Photoshop's and IPTC's place names.
_XMP_LOCATION = (
    r"exif:GPS\w*|photoshop:(?:City|State|Country)|Iptc4xmpCore:(?:Location|CountryCode)"
    r"|Iptc4xmpExt:(?:LocationCreated|LocationShown)"
)
_XMP_LOCATION_ATTRIBUTE = re.compile(rb'\s(?:' + _XMP_LOCATION.encode() + rb')\s*=\s*(?:"[^"]*"|\'[^\']*\')')
_XMP_LOCATION_ELEMENT = re.compile(
    rb"<(" + _XMP_LOCATION.encode() + rb")\b[^>]*?(?:/>|>.*?</\1\s*>)", re.DOTALL
)
EXIF_IFD = 0x8769
PIXEL_X_DIMENSION = 0xA002
PIXEL_Y_DIMENSION = 0xA003
ICC_TIFF_TAG = 34675
# TIFF tags that describe how the pixels of the source file were stored. Pillow reports them as EXIF for TIFF
# sources; written into another file they would describe data that is not there.
TIFF_STRUCTURE_TAGS = frozenset(
    {256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 347, 530, 532,
     700, ICC_TIFF_TAG, 33723, 34377}
)
TIFF_SUB_IFDS = frozenset({0x8769, 0x8825, 0xA005})  # Exif, GPS, Interoperability
# Descriptive IFD0 tags that a 16-bit TIFF (written by tifffile) carries over from the EXIF block.
TIFF_TEXT_TAGS = (270, 271, 272, 306, 315, 33432)


def max_pixels() -> int | None:
    """The most pixels an image may declare: Pillow's decompression-bomb error limit (twice `MAX_IMAGE_PIXELS`),
    applied by `check_declared_size` to every decoder path; None when the guard is switched off."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if not limit else 2 * int(limit)


def check_declared_size(path: Path, width: int, height: int) -> None:
    """Refuse an image whose header declares more pixels than `max_pixels()`, before any pixel array exists."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ImageError(f"{path}: the image declares an empty size ({width}×{height})")
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise ImageError(
            f"{path}: the image is too large: {width}×{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,} (refused as a possible decompression bomb)"
        )


@dataclass
class Photo:
    """Pixels plus what is needed to write them back the way they came.

    `pixels`: float32 H×W×C in [0,1]; C = 1 (gray), 3 (RGB) or 4 (RGBA; for a gray image with alpha the three colour
    channels are equal and `gray` is True). Orientation is already applied: row 0 is the top of the photo as seen.
    `format`: Pillow's name of the source format ("JPEG", "PNG", "TIFF", ...). `bit_depth`: 8 or 16 per channel.
    `icc_profile`: the embedded profile, byte for byte, or None (after a CMYK conversion the pixels are sRGB: None).
    `exif`: the EXIF block as bytes ("Exif\\0\\0" + TIFF structure) with orientation 1, or None.
    `xmp`: the XMP packet with its orientation set to 1, or None. `dpi`: (x, y) or None.
    `notes`: things a user may want to know about the reading (e.g. "converted from CMYK").
    """

    pixels: np.ndarray
    source: Path | None = None
    format: str = "PNG"
    bit_depth: int = 8
    gray: bool = False
    alpha: bool = False
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    def with_pixels(self, pixels: np.ndarray) -> "Photo":
        """The same photo (metadata and all) with new pixels, e.g. the enhanced ones."""
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
            raise ValueError(f"pixels must be H×W×C with C = 1, 3 or 4, got shape {pixels.shape}")
        return replace(self, pixels=np.asarray(pixels, dtype=np.float32), notes=list(self.notes))


# ----------------------------------------------------------------------------------------------------------- reading


def read_photo(path: str | os.PathLike) -> Photo:
    """Read an image file into a `Photo`. Raises `ImageError` naming the file and the reason on any failure."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes)")
    try:
        jxl_size = _jxl_declared_size(path)
        if jxl_size is not None:  # the JPEG XL plugin decodes the whole image on open: check the size before it
            check_declared_size(path, *jxl_size)
        with Image.open(path) as im:
            return _photo_from_image(im, path)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: {_bomb_message(exc)}") from None
    except UnidentifiedImageError:
        if _is_tiff(path):  # e.g. 16-bit gray + alpha, which Pillow does not open
            return _photo_from_tifffile(path)
        raise ImageError(f"{path}: not an image, or an image format that is not supported{_looks_like(path)}") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except MemoryError:
        raise ImageError(f"{path}: too large to fit in memory") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, struct.error, zlib.error) as exc:
        raise ImageError(f"{path}: the image data is truncated or damaged ({_first_line(exc)})") from None


def _photo_from_image(im: Image.Image, path: Path) -> Photo:
    source_format = im.format or "PNG"
    check_declared_size(path, *im.size)
    if source_format == "PNG":
        _check_png_chunks(path)
    info = dict(im.info)
    notes: list[str] = []
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
        notes.append(f"the file has {im.n_frames} frames; only the first is used")
    icc = info.get("icc_profile") or None

    # The pixels first: a decoding error is the file's, never a note (PNG's getexif decodes the image too).
    pixels16 = _read_deep_colour(im, path, source_format, notes)
    if pixels16 is None:
        im.load()
    try:
        exif = im.getexif()
    except Exception as exc:  # a damaged EXIF block must not cost the photo
        exif = Image.Exif()
        notes.append(f"the EXIF block could not be read ({_first_line(exc)})")
    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    info = {**info, **dict(im.info)}  # PNG chunks after the image data (eXIf, iTXt) are known once it is read
    if source_format == "JXL" and not info.get("xmp"):  # the JPEG XL plugin reads the Exif box but not the XMP one
        info["xmp"] = _jxl_xmp(path)

    if pixels16 is not None:
        array, bit_depth = pixels16, 16
        gray = array.shape[2] in (1, 2)
        alpha = array.shape[2] in (2, 4)
        pixels = _channels_to_layout(array.astype(np.float32) / 65535.0)
    else:
        pixels, bit_depth, gray, alpha, icc = _pixels_from_pillow(im, icc, notes)

    pixels = apply_orientation(pixels, orientation)
    return Photo(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        source=path,
        format=source_format,
        bit_depth=bit_depth,
        gray=gray,
        alpha=alpha,
        icc_profile=icc,
        exif=_clean_exif(exif, notes),
        xmp=_reset_xmp_orientation(info.get("xmp") or info.get("XML:com.adobe.xmp")),
        dpi=_dpi(info.get("dpi")),
        notes=notes,
    )


def _pixels_from_pillow(im: Image.Image, icc: bytes | None, notes: list[str]):
    """Pillow image -> (float pixels H×W×C, bit depth, gray, alpha, icc)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(im).astype(np.float32)
        return (np.clip(array, 0, 65535) / 65535.0)[:, :, None], 16, True, False, icc
    if mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0, 1)[:, :, None], 16, True, False, icc
    if mode == "CMYK":
        im = _cmyk_to_rgb(im, icc, notes)
        icc = None  # the pixels are sRGB now; a CMYK profile cannot describe them
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        try:
            im = im.convert("RGBA" if "A" in mode else "RGB")
        except ValueError:
            raise ImageError(f"{im.filename}: colour mode {mode} is not supported") from None
    array = np.asarray(im)
    gray = im.mode in ("L", "LA")
    alpha = im.mode in ("LA", "RGBA")
    if array.ndim == 2:
        array = array[:, :, None]
    return _channels_to_layout(array.astype(np.float32) / 255.0), 8, gray, alpha, icc


def _channels_to_layout(array: np.ndarray) -> np.ndarray:
    """1 -> gray, 2 (gray + alpha) -> RGBA with equal colour channels, 3 -> RGB, 4 -> RGBA."""
    if array.shape[2] == 2:
        gray, alpha = array[:, :, :1], array[:, :, 1:]
        return np.concatenate([gray, gray, gray, alpha], axis=2)
    return array


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            notes.append("converted from CMYK to sRGB through its ICC profile")
            return rgb
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    notes.append("converted from CMYK to RGB")
    return im.convert("RGB")


def _read_deep_colour(im: Image.Image, path: Path, source_format: str, notes: list[str]) -> np.ndarray | None:
    """16-bit colour (or gray + alpha) PNG and TIFF as uint16 H×W×C, which Pillow would reduce to 8 bits; else None."""
    if source_format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)
        if len(header) < 26 or header[12:16] != b"IHDR":
            return None
        bit_depth, colour_type = header[24], header[25]
        if bit_depth != 16 or colour_type not in (2, 4, 6):  # 16-bit gray (0) is read by Pillow as I;16
            return None
        return _read_png16(path)
    if source_format == "TIFF":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
        if im.mode not in ("RGB", "RGBA", "RGBX", "LA") or not bits or bits[0] != 16:
            return None
        try:
            return _read_tiff16(path)
        except ImageError:
            raise
        except Exception as exc:  # e.g. LZW needs the optional imagecodecs package
            notes.append(f"16-bit TIFF read as 8 bits per channel ({_first_line(exc)})")
            return None
    if source_format == "HEIF" and pillow_heif is not None and int(im.info.get("bit_depth") or 8) > 8:
        try:  # 10/12-bit HEIC, which pillow-heif's Pillow plugin reduces to 8 bits
            return _read_heif_deep(path)
        except Exception as exc:
            notes.append(f"{im.info.get('bit_depth')}-bit HEIC read as 8 bits per channel ({_first_line(exc)})")
            return None
    return None


def _read_heif_deep(path: Path) -> np.ndarray:
    """A 10 or 12-bit HEIC's primary image as uint16 H×W×C on the full 16-bit scale (exactly: v / (2^bits - 1))."""
    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    bits = int(heif.info.get("bit_depth") or 8)
    array = np.asarray(heif)
    if array.ndim == 2:
        array = array[:, :, None]
    scaled = np.rint(array.astype(np.float64) * (65535.0 / float((1 << bits) - 1)))
    return np.clip(scaled, 0, 65535).astype(np.uint16)


def _read_png16(path: Path) -> np.ndarray:
    import png  # pypng

    try:
        reader = png.Reader(filename=str(path))
        reader.preamble()  # the header only: the declared size is checked before any row is decoded
        check_declared_size(path, reader.width, reader.height)
        width, height, rows, info = reader.asDirect()
        planes = int(info["planes"])
        array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except png.Error as exc:
        raise ImageError(f"{path}: the image data is truncated or damaged ({_first_line(exc)})") from None
    if array.shape != (height, width * planes):
        raise ImageError(f"{path}: the image data is truncated or damaged (expected {height} rows)")
    return array.reshape(height, width, planes)


def _read_tiff16(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        page = tif.pages[0]
        check_declared_size(path, page.imagewidth, page.imagelength)
        array = page.asarray()
        planar_separate = int(page.planarconfig) == 2
        extra = tuple(int(e) for e in (page.extrasamples or ()))
    if array.ndim == 3 and planar_separate:
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype != np.uint16:
        raise ValueError(f"unexpected sample type {array.dtype}")
    colour = 1 if array.shape[2] < 3 else 3
    channels = colour + (1 if extra else 0)
    array = array[:, :, :channels]
    if extra and extra[0] == 1:  # associated (premultiplied) alpha: undo it
        alpha = array[:, :, -1:].astype(np.float64)
        colour_part = array[:, :, :-1].astype(np.float64) * 65535.0 / np.maximum(alpha, 1.0)
        array = np.concatenate([np.clip(colour_part, 0, 65535), alpha], axis=2).round().astype(np.uint16)
    return array


JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
JXL_CODESTREAM = b"\xff\x0a"
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def _jxl_boxes(fh) -> Iterator[tuple[bytes, int]]:
    """Walk a JPEG XL container's boxes from after its signature box: yields (kind, payload size) with `fh` at the
    payload (a size of -1 means "to the end of the file"); only box headers are read. A damaged file stops the walk
    (and cannot loop for ever)."""
    for _ in range(10_000):
        head = fh.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", fh.read(8))[0], 16
        if size != 0 and size < header:
            return
        payload = size - header if size else -1
        start = fh.tell()
        yield kind, payload
        if payload < 0:
            return
        fh.seek(start + payload)


def _jxl_declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a JPEG XL file's SizeHeader, read from the first bytes of the codestream (bare, or in
    the container's first jxlc/jxlp box); None when the file is not JPEG XL or the header cannot be found."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:2] == JXL_CODESTREAM:
                return _jxl_size_header(head[2:] + fh.read(16))
            if head != JXL_CONTAINER:
                return None
            for kind, _ in _jxl_boxes(fh):
                if kind in (b"jxlc", b"jxlp"):
                    data = fh.read(4 + 32)
                    data = data[4:] if kind == b"jxlp" else data  # jxlp starts with its index
                    return _jxl_size_header(data[2:]) if data[:2] == JXL_CODESTREAM else None
    except (OSError, struct.error):
        return None
    return None


def _jxl_size_header(data: bytes) -> tuple[int, int] | None:
    """Decode JPEG XL's SizeHeader (bits are read least significant first)."""
    bits = int.from_bytes(data, "little")
    available = 8 * len(data)
    position = 0

    def read(count: int) -> int:
        nonlocal position
        if position + count > available:
            raise ValueError("short")
        value = (bits >> position) & ((1 << count) - 1)
        position += count
        return value

    def u32() -> int:  # U32(Bits(9), Bits(13), Bits(18), Bits(30)) + 1
        return read((9, 13, 18, 30)[read(2)]) + 1

    try:
        small = read(1)
        height = (read(5) + 1) * 8 if small else u32()
        ratio = read(3)
        if ratio:
            numerator, denominator = _JXL_RATIOS[ratio]
            width = height * numerator // denominator
        else:
            width = (read(5) + 1) * 8 if small else u32()
    except ValueError:
        return None
    return width, height


def _jxl_xmp(path: Path) -> bytes | None:
    """The XMP packet of a JPEG XL file: the payload of its container's "xml " box (None without one, or when the
    file is a bare codestream). Only box headers are read on the way."""
    try:
        with open(path, "rb") as fh:
            if fh.read(12) != JXL_CONTAINER:
                return None
            for kind, payload in _jxl_boxes(fh):
                if kind == b"xml ":
                    return fh.read(payload if payload >= 0 else 16 << 20) or None  # XMP is kilobytes; 16 MiB at most
    except (OSError, struct.error):
        return None
    return None


def _check_png_chunks(path: Path) -> None:
    """Walk a PNG's chunks and check each CRC: a damaged chunk (most often in the image data) is an error of the
    file, not something to decode into garbage. Read in blocks; only the chunk structure is kept in memory."""
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            return
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise ImageError(f"{path}: the image data is truncated or damaged (the file ends before IEND)")
            length, kind = struct.unpack(">I4s", head)
            crc = zlib.crc32(kind)
            remaining = length
            while remaining:
                block = fh.read(min(remaining, 1 << 20))
                if not block:
                    raise ImageError(f"{path}: the image data is truncated or damaged (a {_chunk_name(kind)} chunk "
                                     "is cut short)")
                crc = zlib.crc32(block, crc)
                remaining -= len(block)
            stored = fh.read(4)
            if len(stored) < 4:
                raise ImageError(f"{path}: the image data is truncated or damaged (the file ends before IEND)")
            if struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
                raise ImageError(f"{path}: the image data is damaged (CRC error in a {_chunk_name(kind)} chunk)")
            if kind == b"IEND":
                return


def _chunk_name(kind: bytes) -> str:
    return kind.decode("latin-1") if kind.isalpha() else repr(kind)


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"II*\x00", b"MM\x00*")


def _photo_from_tifffile(path: Path) -> Photo:
    """A TIFF that Pillow cannot open, through tifffile (16-bit gray + alpha, for one)."""
    try:
        import tifffile

        array = _read_tiff16(path)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{path}: a TIFF layout that is not supported ({_first_line(exc)})") from None
    try:
        with tifffile.TiffFile(str(path)) as tif:
            tag = tif.pages[0].tags.get(ICC_TIFF_TAG)
            icc = bytes(tag.value) if tag is not None else None
    except Exception as exc:
        raise ImageError(f"{path}: a TIFF layout that is not supported ({_first_line(exc)})") from None
    return Photo(
        pixels=np.ascontiguousarray(_channels_to_layout(array.astype(np.float32) / 65535.0)),
        source=path,
        format="TIFF",
        bit_depth=16,
        gray=array.shape[2] in (1, 2),
        alpha=array.shape[2] in (2, 4),
        icc_profile=icc,
    )


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF `orientation` (1-8) upright, as `PIL.ImageOps.exif_transpose` does."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 7:
        return pixels[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels


def _clean_exif(exif: Image.Exif, notes: list[str]) -> bytes | None:
    """EXIF without the source's storage tags and with orientation 1, as bytes; None when there is none."""
    if not len(exif):
        return None
    try:
        cleaned = Image.Exif()
        cleaned.load(exif.tobytes())
        for tag in TIFF_STRUCTURE_TAGS:
            if tag in cleaned:
                del cleaned[tag]
        if ORIENTATION_TAG in cleaned:
            cleaned[ORIENTATION_TAG] = 1
        cleaned.get_ifd(EXIF_IFD)  # load the Exif sub-IFD now so that tobytes() writes it back
        if not len(cleaned):
            return None
        return cleaned.tobytes()
    except Exception as exc:  # a damaged EXIF block must not cost the photo
        notes.append(f"the EXIF block could not be kept ({_first_line(exc)})")
        return None


_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*")\d(")|(<tiff:Orientation>)\d(</tiff:Orientation>)')


def _reset_xmp_orientation(xmp) -> bytes | None:
    if not xmp:
        return None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return _XMP_ORIENTATION.sub(lambda m: (m.group(1) or m.group(3)) + b"1" + (m.group(2) or m.group(4)), bytes(xmp))


def _dpi(value) -> tuple[float, float] | None:
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _bomb_message(exc: Exception) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
    if len(numbers) >= 2:
        return (
            f"the image is too large: {numbers[0]:,} pixels, over the limit of {numbers[1]:,} "
            "(refused as a possible decompression bomb)"
        )
    return f"the image is too large to open safely ({_first_line(exc)})"


def _looks_like(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    return " (the file holds text)" if head.strip() else ""


# ----------------------------------------------------------------------------------------------------------- writing


def output_format(photo: Photo, format: str = "same", size: tuple[int, int] | None = None) -> str:
    """The Pillow format name `write_photo` uses for `format` ("same", "png", "jpg", "webp", "tiff", ...).

    `size` (width, height) is the size that will be written, the photo's own by default. "same" keeps the source
    format where it can: GIF and other formats that are not written, and images larger than the format allows (WebP:
    16383 pixels a side, JPEG: 65500), give PNG.
    """
    name = (format or "same").lower().lstrip(".")
    if name == "same":
        wanted = SAME_FORMAT.get(photo.format.upper(), "PNG")
        longest = max(size) if size else max(photo.width, photo.height)
        if not _can_write(wanted) or longest > MAX_SIDE.get(wanted, longest):
            return "PNG"
        return wanted
    if name not in FORMAT_NAMES:
        raise ImageError(f"unknown output format {format!r} (use same or one of {', '.join(writable_formats())})")
    wanted = FORMAT_NAMES[name]
    if not _can_write(wanted):
        raise ImageError(f"writing {name} is not supported by this installation ({writer_requirement(wanted)})")
    return wanted


def writable_formats() -> tuple[str, ...]:
    """The output format names (as `write_photo(format=...)` takes them) this installation can write, in the order
    of `enhancer.options.OUTPUT_FORMATS`, without "same"."""
    from .options import OUTPUT_FORMATS

    return tuple(name for name in OUTPUT_FORMATS if name != "same" and _can_write(FORMAT_NAMES[name]))


def _can_write(fmt: str) -> bool:
    if fmt not in Image.SAVE:
        return False
    if fmt == "HEIF":  # pillow-heif registers its writer even where libheif was built without an HEVC encoder
        try:
            return bool(pillow_heif.libheif_info().get("HEIF"))
        except Exception:
            return False
    return True


def writer_requirement(fmt: str) -> str:
    """What an installation needs to write `fmt` (a Pillow format name), for an error message."""
    return {
        "HEIF": "pillow-heif with an HEVC encoder is needed",
        "AVIF": "Pillow 11.3 or later built with libavif is needed",
        "JXL": "the pillow-jxl-plugin package is needed",
    }.get(fmt, "Pillow has no writer for it")


def format_notes(photo: Photo, fmt: str) -> list[str]:
    """What writing `photo` as `fmt` (a Pillow format name from `output_format`) does not keep, for the user: bit
    depth beyond what the format holds, and a colour profile that JPEG XL cannot carry."""
    notes: list[str] = []
    if photo.bit_depth == 16:
        if fmt == "HEIF":
            notes.append(f"written in {HEIF_DEEP_BITS} bits per channel, the most HEIC holds (the photo has 16)")
        elif fmt == "JXL" and _output_channels(photo, fmt) != 1:
            notes.append("written in 8 bits per channel: this JPEG XL writer keeps 16 bits for gray photos only")
        elif fmt in ("JPEG", "WEBP", "AVIF", "BMP"):
            notes.append(f"written in 8 bits per channel, the most this {fmt} writer holds (the photo has 16)")
    if fmt == "JXL" and photo.icc_profile and not _is_srgb(photo.icc_profile):
        if _output_channels(photo, fmt) >= 3:
            notes.append("converted to sRGB: this JPEG XL writer cannot embed the photo's colour profile")
        else:
            notes.append("the colour profile was left out: this JPEG XL writer cannot embed it")
    return notes


def output_extension(photo: Photo, format: str = "same", size: tuple[int, int] | None = None) -> str:
    """The file extension (with the dot) for an output: the source's own spelling when it is kept (".jpeg", ".tiff").

    `size` as for `output_format`: pass the size the output will have (e.g. the input's times the model scale)."""
    fmt = output_format(photo, format, size)
    if photo.source is not None:
        suffix = photo.source.suffix.lower()
        if FORMAT_NAMES.get(suffix.lstrip(".")) == fmt:
            return suffix
    return EXTENSIONS[fmt]


def write_photo(
    photo: Photo, path: str | os.PathLike, format: str = "same", quality: int = 95, overwrite: bool = True,
    strip_metadata: str = "none",
) -> Path:
    """Write `photo` to `path` atomically (temporary file in the same folder, then moved into place). Returns the path.

    `format`: "same" (the source format where it can be written; GIF and others give PNG), "png", "jpg", "webp",
    "tiff", "bmp", "heic" or "avif". `quality` (1-100) applies to JPEG, WebP, HEIC and AVIF; WebP at 100 is lossless.
    16-bit photos stay 16-bit in PNG and TIFF; formats without 16 bits or alpha get 8 bits / alpha composited on white.
    Raises `ImageError` naming the file when it cannot be written; the target is then untouched. With
    `overwrite=False` a file that exists at `path` by the time the photo is complete is never replaced:
    `FileExistsError` is raised instead and nothing is written. `strip_metadata`: "none" (the default here), "location"
    (the EXIF GPS block and XMP's location fields are left out) or "all" (no EXIF, no XMP); the ICC profile is
    always kept.
    """
    path = Path(path)
    photo = strip_photo_metadata(photo, strip_metadata)
    fmt = output_format(photo, format)
    if not 1 <= int(quality) <= 100:
        raise ImageError(f"quality must be between 1 and 100, got {quality}")
    if photo.pixels.ndim != 3 or 0 in photo.pixels.shape[:2]:
        raise ImageError(f"{path}: nothing to write: the image is empty (shape {photo.pixels.shape})")
    if photo.source is not None and path.exists() and _same_file(path, photo.source):
        raise ImageError(f"{path}: refusing to overwrite the original photo")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The app's temporary prefix (swept when stale), once: a cluster worker's hidden name carries it already.
        name = path.name[len(TEMP_PREFIX):] if path.name.startswith(TEMP_PREFIX) else path.name
        pending = AtomicFile(path, prefix=f"{TEMP_PREFIX}{_short_name(name, 200)}.", suffix=".part", replace=overwrite)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write to the folder ({exc.strerror or exc})") from None
    try:
        with pending as fh:  # also on KeyboardInterrupt: the temporary file is removed, never left partial
            _encode(photo, fh, fmt, int(quality))
    except BaseException as exc:
        if isinstance(exc, ImageError) or (isinstance(exc, FileExistsError) and not overwrite):
            raise
        if isinstance(exc, MemoryError):
            raise ImageError(f"{path}: out of memory while encoding the image") from None
        if isinstance(exc, OSError):
            raise ImageError(f"{path}: cannot be written ({exc.strerror or _first_line(exc)})") from None
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            raise ImageError(f"{path}: cannot be written as {fmt} ({_first_line(exc)})") from None
        raise
    return path


def strip_photo_metadata(photo: Photo, strip: str = "location") -> Photo:
    """The photo without what `strip` names ("none", "location" or "all"; see `STRIP_METADATA`)."""
    if strip not in STRIP_METADATA:
        raise ImageError(f"strip_metadata must be one of {', '.join(STRIP_METADATA)}, got {strip!r}")
    if strip == "none" or (photo.exif is None and photo.xmp is None):
        return photo
    if strip == "all":
        return replace(photo, exif=None, xmp=None, notes=list(photo.notes))
    return replace(photo, exif=_exif_without_location(photo.exif), xmp=_xmp_without_location(photo.xmp),
                   notes=list(photo.notes))


def _exif_without_location(raw: bytes | None) -> bytes | None:
    if not raw:
        return raw
    exif = Image.Exif()
    try:
        exif.load(raw)
        exif.get_ifd(EXIF_IFD)  # keep the camera data: load the Exif sub-IFD so that tobytes() writes it back
        if GPS_IFD not in exif:
            return raw
        del exif[GPS_IFD]
        return exif.tobytes() if len(exif) else None
    except Exception:  # an EXIF block that cannot be rewritten cannot be trusted to be without the location
        return None


def _xmp_without_location(xmp: bytes | None) -> bytes | None:
    if not xmp:
        return xmp
    xmp = _XMP_LOCATION_ELEMENT.sub(b"", xmp)
    return _XMP_LOCATION_ATTRIBUTE.sub(b"", xmp)


def _short_name(name: str, limit: int) -> str:
    """`name` cut to at most `limit` bytes of UTF-8 (for temporary names, which add their own bytes to it)."""
    encoded = name.encode("utf-8")
    return name if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


QUANTIZE_ROWS = 256  # rows converted at once: the float temporaries stay a strip in size, not the whole image


def _quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 65535.0 if bit_depth == 16 else 255.0
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    result = np.empty(pixels.shape, dtype=dtype)
    for start in range(0, pixels.shape[0], QUANTIZE_ROWS):
        strip = np.clip(pixels[start : start + QUANTIZE_ROWS], 0.0, 1.0)
        strip *= top
        strip += 0.5
        result[start : start + QUANTIZE_ROWS] = strip  # truncated towards zero, as astype does: rounds half up
    return result


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma, the weights Pillow uses for RGB -> L."""
    return (rgb[:, :, 0:1] * 0.299 + rgb[:, :, 1:2] * 0.587 + rgb[:, :, 2:3] * 0.114).astype(np.float32)


def _output_channels(photo: Photo, fmt: str) -> int:
    """The number of channels `_layout_for_output` gives, without computing the pixels."""
    alpha = photo.channels == 4 and fmt != "JPEG"
    gray = photo.gray or photo.channels == 1
    colour = 3 if not gray or fmt in ("WEBP", "HEIF", "AVIF") or (alpha and fmt == "BMP") else 1
    return colour + int(alpha)


def _is_srgb(icc: bytes) -> bool:
    """Whether an ICC profile is (by its description) sRGB, which JPEG XL assumes when it carries no profile."""
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False
    return "srgb" in description.lower()


def _layout_for_output(photo: Photo, fmt: str) -> np.ndarray:
    """Float pixels with the channels the output gets: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
    pixels = np.asarray(photo.pixels, dtype=np.float32)
    channels = pixels.shape[2]
    has_alpha = channels == 4
    colour = pixels[:, :, :3] if channels >= 3 else pixels
    alpha = pixels[:, :, 3:4] if has_alpha else None
    gray = photo.gray or channels == 1
    if gray and colour.shape[2] == 3:
        colour = _luma(colour)
    if alpha is not None and fmt == "JPEG":  # no alpha in JPEG: composite on white
        colour = colour * alpha + (1.0 - alpha)
        alpha = None
    if colour.shape[2] == 1 and fmt in ("WEBP", "HEIF", "AVIF"):  # no gray in these
        colour = np.repeat(colour, 3, axis=2)
    if alpha is not None and colour.shape[2] == 1 and fmt == "BMP":
        colour = np.repeat(colour, 3, axis=2)
    return colour if alpha is None else np.concatenate([colour, alpha], axis=2)


def _exif_for_output(photo: Photo, width: int, height: int) -> Image.Exif | None:
    if not photo.exif:
        return None
    exif = Image.Exif()
    try:
        exif.load(photo.exif)
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        sub = exif.get_ifd(EXIF_IFD)
        if PIXEL_X_DIMENSION in sub or PIXEL_Y_DIMENSION in sub:
            sub[PIXEL_X_DIMENSION] = width
            sub[PIXEL_Y_DIMENSION] = height
    except Exception:
        return None
    return exif


def _encode(photo: Photo, fh: BinaryIO, fmt: str, quality: int) -> None:
    pixels = _layout_for_output(photo, fmt)
    height, width, channels = pixels.shape
    deep = photo.bit_depth == 16 and fmt in ("PNG", "TIFF")
    exif = _exif_for_output(photo, width, height)
    if fmt == "HEIF" and photo.bit_depth == 16:
        _write_heif_deep(fh, pixels, photo, exif, quality)
        return
    if fmt == "JXL":
        _write_jxl(fh, pixels, photo, exif, quality)
        return
    if deep and channels > 1:
        data = _quantize(pixels, 16)
        if fmt == "PNG":
            _write_png16(fh, data, photo, exif)
        else:
            _write_tiff16(fh, data, photo, exif)
        return
    image = _pillow_image(pixels, deep)
    options: dict = {}
    if photo.icc_profile and fmt != "BMP":
        options["icc_profile"] = photo.icc_profile
    if exif is not None and fmt in ("JPEG", "PNG", "WEBP", "HEIF", "AVIF"):
        options["exif"] = exif
    if exif is not None and fmt == "TIFF":
        # libtiff cannot write the Exif/GPS sub-IFDs from Pillow: a TIFF keeps the IFD0 tags (camera, date, artist...)
        options["tiffinfo"] = {
            tag: value for tag, value in exif.items() if tag not in TIFF_SUB_IFDS and tag not in TIFF_STRUCTURE_TAGS
            and not (photo.dpi and tag in (282, 283, 296))
        }
    if photo.dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        options["dpi"] = tuple(int(round(v)) for v in photo.dpi) if fmt in ("JPEG", "BMP") else photo.dpi
    if photo.xmp and fmt in ("JPEG", "WEBP"):
        options["xmp"] = photo.xmp
    elif photo.xmp and fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_itxt("XML:com.adobe.xmp", photo.xmp.decode("utf-8", "replace"), zip=True)
        options["pnginfo"] = text
    elif photo.xmp and fmt == "TIFF":
        options.setdefault("tiffinfo", {})[700] = photo.xmp
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=False)
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100, method=4)
    elif fmt in ("HEIF", "AVIF"):
        # HEIC and AVIF keep the ICC profile, EXIF and XMP (no DPI); Pillow's AVIF writer and HEIC here are 8-bit
        # (16-bit photos go to `_write_heif_deep`). HEIC at quality 100 is lossless (pillow-heif's -1), as WebP's.
        lossless_heif = fmt == "HEIF" and quality >= 100
        options.update(quality=-1 if lossless_heif else quality, subsampling="4:4:4" if quality >= 90 else "4:2:0")
        if lossless_heif:
            options["matrix_coefficients"] = 0  # lossless means RGB planes: YCbCr would round
        if photo.xmp:
            options["xmp"] = photo.xmp
    elif fmt == "TIFF":
        options.update(compression="tiff_deflate")
    elif fmt == "PNG":
        options.update(compress_level=6)
    try:
        image.save(fh, format=fmt, **options)
    except ValueError as exc:
        if "exif" not in options or "exif" not in str(exc).lower():
            raise
        # A re-serialised EXIF block that no longer fits the format (JPEG: 64 KiB): the photo matters more.
        del options["exif"]
        fh.seek(0)
        fh.truncate()
        image.save(fh, format=fmt, **options)


def _write_heif_deep(fh: BinaryIO, pixels: np.ndarray, photo: Photo, exif: Image.Exif | None, quality: int) -> None:
    """A 16-bit photo as a 12-bit HEIC with its ICC profile, EXIF and XMP. Quantized here to 12 bits and handed
    over in the top bits of 16, so that pillow-heif's shift down to 12 bits is exact (it truncates, not rounds)."""
    height, width, channels = pixels.shape
    top = float((1 << HEIF_DEEP_BITS) - 1)
    data = (np.clip(pixels, 0.0, 1.0) * top + 0.5).astype(np.uint16) << (16 - HEIF_DEEP_BITS)
    heif = pillow_heif.from_bytes("RGBA;16" if channels == 4 else "RGB;16", (width, height),
                                  np.ascontiguousarray(data).tobytes())
    options: dict = dict(format="HEIF", quality=-1 if quality >= 100 else quality, bit_depth=HEIF_DEEP_BITS,
                         chroma=444 if quality >= 90 else 420)  # pillow-heif's quality -1: lossless
    if quality >= 100:
        options["matrix_coefficients"] = 0  # lossless means RGB planes: YCbCr would round
    if photo.icc_profile:
        options["icc_profile"] = photo.icc_profile
    if exif is not None:
        options["exif"] = exif.tobytes()
    if photo.xmp:
        options["xmp"] = photo.xmp
    heif.save(fh, **options)


def _pillow_image(pixels: np.ndarray, gray16: bool) -> Image.Image:
    """The Pillow image for float pixels: 16-bit gray ("I;16") with `gray16`, else 8 bits in L, LA, RGB or RGBA."""
    if gray16:
        image = Image.fromarray(_quantize(pixels[:, :, 0], 16))
        return image if image.mode == "I;16" else image.convert("I;16")
    data = _quantize(pixels, 8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    return Image.fromarray(data[:, :, 0] if pixels.shape[2] == 1 else data, mode=mode)


def _write_jxl(fh: BinaryIO, pixels: np.ndarray, photo: Photo, exif: Image.Exif | None, quality: int) -> None:
    """JPEG XL through pillow-jxl-plugin: EXIF and XMP kept; 16 bits for gray without alpha (the plugin's "I;16"),
    8 bits otherwise; lossless at quality 100. The plugin cannot embed an ICC profile, and a JPEG XL without one is
    sRGB: a colour photo with another profile is converted to sRGB (so that it looks the same wherever it fits in
    sRGB), a gray one's profile is left out (`format_notes` says so)."""
    channels = pixels.shape[2]
    deep = photo.bit_depth == 16 and channels == 1
    image = _pillow_image(pixels, deep)
    if not deep and photo.icc_profile and channels >= 3 and not _is_srgb(photo.icc_profile):
        image = _to_srgb(image, photo.icc_profile)
    options: dict = dict(quality=quality, lossless=quality >= 100)
    if exif is not None:
        options["exif"] = exif.tobytes()  # the plugin takes bytes, not an Image.Exif
    if photo.xmp:
        options["xmp"] = photo.xmp
    image.save(fh, format="JXL", **options)


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """An 8-bit RGB(A) image converted from its ICC profile to sRGB (alpha unchanged); as it is if the profile
    cannot be used."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def _write_png16(fh: BinaryIO, data: np.ndarray, photo: Photo, exif: Image.Exif | None) -> None:
    import png  # pypng

    height, width, channels = data.shape
    writer = png.Writer(width, height, greyscale=channels == 2, alpha=channels in (2, 4), bitdepth=16, compression=6)
    encoded = io.BytesIO()
    writer.write(encoded, data.reshape(height, width * channels))
    extra: list[tuple[bytes, bytes]] = []
    if photo.icc_profile:
        extra.append((b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(photo.icc_profile)))
    if photo.dpi:
        per_metre = [int(round(v / 0.0254)) for v in photo.dpi]
        extra.append((b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1)))
    if exif is not None:
        raw = exif.tobytes()
        extra.append((b"eXIf", raw[6:] if raw.startswith(b"Exif\x00\x00") else raw))
    chunks = list(png.Reader(bytes=encoded.getvalue()).chunks())
    # Ancillary chunks go right after IHDR: iCCP and pHYs must come before IDAT.
    png.write_chunks(fh, chunks[:1] + extra + chunks[1:])


def _write_tiff16(fh: BinaryIO, data: np.ndarray, photo: Photo, exif: Image.Exif | None) -> None:
    import tifffile

    channels = data.shape[2]
    extratags = []
    if photo.icc_profile:
        extratags.append((ICC_TIFF_TAG, "B", len(photo.icc_profile), photo.icc_profile, True))
    if exif is not None:
        for tag in TIFF_TEXT_TAGS:
            value = exif.get(tag)
            if isinstance(value, str) and value:
                extratags.append((tag, "s", 0, value, True))
    options: dict = {}
    if photo.dpi:
        options.update(resolution=photo.dpi, resolutionunit="INCH")
    if channels == 2:
        options.update(photometric="minisblack", extrasamples=("unassalpha",))
    elif channels == 4:
        options.update(photometric="rgb", extrasamples=("unassalpha",))
    else:
        options.update(photometric="rgb")
    # Encoded in memory: tifffile looks up the name of a file object, and one from os.fdopen has none.
    encoded = io.BytesIO()
    tifffile.imwrite(encoded, data, compression="zlib", metadata=None, extratags=extratags, **options)
    fh.write(encoded.getvalue())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
