"""Side-by-side crops of real photos: bicubic, the clean model and the real-photo model, one PNG per photo.

`python -m enhancer.training.compare_crops --clean own-mobilesr-x4 --real own-real-x4 --out docs/crops` runs the
models the way the app does (tiled, `enhancer.tiling.enhance`) on RealSRSet photos (low-quality photos from the web,
never trained on) and saves, for each, the same crop of the three results next to each other at 1:1 output pixels.
The crop is the most detailed window of the photo (highest local gradient energy), so the comparison shows texture
and edges rather than sky.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..checkpoints import load_model
from ..tiling import enhance

DEFAULT_PHOTOS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "RealSRSet"
DEFAULT_PHOTOS = ("0014.jpg", "dped_crop00061.png", "oldphoto2.png")
LABEL_HEIGHT = 18


def most_detailed_window(rgb: np.ndarray, size: int) -> tuple[int, int]:
    """(top, left) of the `size` x `size` window with the most gradient energy (coarse search on a grid)."""
    gray = rgb.astype(np.float32).mean(axis=2)
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1, :]
    h, w = energy.shape
    size = min(size, h, w)
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, size // 4)
    best, where = -1.0, (0, 0)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            total = (integral[top + size, left + size] - integral[top, left + size] - integral[top + size, left]
                     + integral[top, left])
            if total > best:
                best, where = total, (top, left)
    return where


def _label(tile: Image.Image, text: str) -> Image.Image:
    canvas = Image.new("RGB", (tile.width, tile.height + LABEL_HEIGHT), (24, 24, 24))
    canvas.paste(tile, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((4, 3), text, fill=(235, 235, 235))
    return canvas


def compare(photo: Path, models: list[tuple[str, object]], lr_crop: int, out_dir: Path) -> Path:
    """Write `<stem>_compare.png`: bicubic, then each model, on the same crop of `photo`."""
    with Image.open(photo) as image:
        rgb = np.asarray(image.convert("RGB"))
    scale = models[0][1].scale
    top, left = most_detailed_window(rgb, lr_crop)
    # The models run on the crop plus a margin, so their tile edges and padding never reach the kept pixels.
    margin = 16
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1, x1 = min(rgb.shape[0], top + lr_crop + margin), min(rgb.shape[1], left + lr_crop + margin)
    region = rgb[y0:y1, x0:x1]
    keep = ((top - y0) * scale, (left - x0) * scale, lr_crop * scale)

    def cut(array: np.ndarray) -> Image.Image:
        t, l, s = keep
        return Image.fromarray(array[t : t + s, l : l + s])

    tiles = []
    bicubic = Image.fromarray(region).resize((region.shape[1] * scale, region.shape[0] * scale), Image.BICUBIC)
    tiles.append(_label(cut(np.asarray(bicubic)), "bicubic"))
    for label, model in models:
        out = enhance(region.astype(np.float32) / 255.0, model)
        tiles.append(_label(cut((np.clip(out, 0, 1) * 255).round().astype(np.uint8)), label))
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), (0, 0, 0))
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 4
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{photo.stem}_compare.png"
    sheet.save(target, optimize=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enhancer.training.compare_crops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", required=True, help="the clean model (file or catalog id)")
    parser.add_argument("--real", required=True, help="the real-photo model of the same scale (file or catalog id)")
    parser.add_argument("--photos", nargs="*", default=None, help=f"photo files (default: {', '.join(DEFAULT_PHOTOS)} "
                                                                   f"from {DEFAULT_PHOTOS_DIR})")
    parser.add_argument("--crop", type=int, default=64, help="crop side in input pixels (default 64)")
    parser.add_argument("--out", default="docs/crops", help="output folder")
    args = parser.parse_args(argv)
    photos = [Path(p) for p in args.photos] if args.photos else [DEFAULT_PHOTOS_DIR / p for p in DEFAULT_PHOTOS]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        print(f"photos not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    models = [(f"clean: {args.clean}", load_model(args.clean, device="cpu")),
              (f"real: {args.real}", load_model(args.real, device="cpu"))]
    if models[0][1].scale != models[1][1].scale:
        print("the two models must have the same scale", file=sys.stderr)
        return 1
    for photo in photos:
        print(compare(photo, models, args.crop, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
