"""Write a corpus of hostile and unlucky input files into a folder: `python tests/hostile_corpus.py FOLDER`.

Every file is small (at most a few MB) but lies about its size or is damaged. `write_corpus(folder)` returns
{name: path}; the tests in tests/test_hostile.py use it, and so can a person probing the CLI by hand:

- `stride0-mobilesr.pth`: a MobileSR state dict whose tensors declare n_feats 40000 with one stored value each
  (stride-0 storages): tens of GB once built, 32 KB on disk.
- `zip-deflated-zeros.pth`: a torch zip checkpoint whose tensor entry was re-compressed with deflate: a few hundred
  KB that inflate about 1000x.
- `gray-alpha-16bit-40000.tif`: a 16-bit gray + alpha TIFF declaring 40000×40000 (6 GB of samples) in a tiny file.
- `png16-huge.png`: a 16-bit RGB PNG header declaring 30000×30000, followed by a tiny IDAT.
- `damaged-idat.png`: a real photo-sized PNG whose IDAT bytes were changed (CRC error, broken data stream).
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np


def stride0_mobilesr(path: Path, n_feats: int = 40000) -> Path:
    """A MobileSR x4 state dict with every channel count of 40 blown up to `n_feats`, each tensor one stored value."""
    import torch

    from enhancer.archs.mobilesr import MobileSR

    small = MobileSR(n_feats=40, n_heads=8, ratios=[4, 4], upscaling_factor=4).state_dict()
    factor = n_feats // 40
    hostile = {}
    for key, tensor in small.items():
        shape = [d * factor if d % 40 == 0 and d >= 40 else d for d in tensor.shape]
        hostile[key] = torch.zeros(1, dtype=tensor.dtype).expand(*shape) if shape else tensor.clone()
    torch.save(hostile, path)
    return path


def zip_deflated_zeros(path: Path, values: int = 25_000_000) -> Path:
    """`torch.save({"weight": torch.zeros(values)})` with its zip entries re-compressed by deflate: about 100 KB on
    disk for 100 MB of tensor (about 1000x)."""
    import torch

    plain = io.BytesIO()
    torch.save({"weight": torch.zeros(values)}, plain)
    plain.seek(0)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename), compress_type=zipfile.ZIP_DEFLATED,
                            compresslevel=6)
    return path


def gray_alpha_tiff(path: Path, side: int = 40000) -> Path:
    """A 16-bit gray + alpha TIFF (which Pillow does not open) declaring side×side in one small deflated strip."""
    strip = zlib.compress(bytes(side * 4 * 16), 9)  # the first 16 rows; the rest is simply missing
    entries = [
        (256, 4, 1, side),  # ImageWidth (LONG)
        (257, 4, 1, side),  # ImageLength
        (258, 3, 2, None),  # BitsPerSample 16,16 (offset filled in below)
        (259, 3, 1, 8),  # Compression: deflate
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, None),  # StripOffsets
        (277, 3, 1, 2),  # SamplesPerPixel
        (278, 4, 1, side),  # RowsPerStrip: one strip
        (279, 4, 1, len(strip)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfig: contig
        (338, 3, 1, 2),  # ExtraSamples: unassociated alpha
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = ifd_offset + ifd_size
    strip_offset = bits_offset + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_offset
            out += struct.pack("<HHII", tag, kind, count, value)
        elif tag == 273:
            out += struct.pack("<HHII", tag, kind, count, strip_offset)
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<HH", 16, 16)
    out += strip
    path.write_bytes(bytes(out))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png16(path: Path, side: int = 30000) -> Path:
    """A 16-bit RGB PNG (read by pypng) declaring side×side, with one tiny IDAT."""
    header = struct.pack(">IIBBBBB", side, side, 16, 2, 0, 0, 0)
    data = zlib.compress(bytes(1 + side * 6) * 4, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def damaged_png(path: Path) -> Path:
    """A 256×256 RGB PNG whose IDAT bytes were changed after its CRC was computed."""
    from PIL import Image

    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 4
    for i in range(start + 100, start + 400, 7):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def write_corpus(folder: str | Path) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "stride0-mobilesr.pth": stride0_mobilesr(folder / "stride0-mobilesr.pth"),
        "zip-deflated-zeros.pth": zip_deflated_zeros(folder / "zip-deflated-zeros.pth"),
        "gray-alpha-16bit-40000.tif": gray_alpha_tiff(folder / "gray-alpha-16bit-40000.tif"),
        "png16-huge.png": huge_png16(folder / "png16-huge.png"),
        "damaged-idat.png": damaged_png(folder / "damaged-idat.png"),
    }


if __name__ == "__main__":
    for name, written in write_corpus(sys.argv[1] if len(sys.argv) > 1 else "hostile").items():
        print(f"{written}  {written.stat().st_size:,} bytes")
