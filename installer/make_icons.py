"""Make the app icons (.ico for Windows, .icns for macOS, .png for Linux) from one source image, `resources/icon.png`.

    python installer/make_icons.py [--source resources/icon.png] [--out build/icons]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "resources" / "icon.png"
DEFAULT_OUT = ROOT / "build" / "icons"
ICO_SIZES = [16, 20, 24, 32, 40, 48, 64, 128, 256]  # Windows picks per DPI: small icons, taskbar, Explorer tiles
ICNS_SIZE = 1024  # Pillow derives every .icns size (16 to 512@2x) from the largest one
PNG_SIZES = [256, 512]  # the Linux .desktop icon, in two resolutions
MIN_SOURCE = 256


class IconError(Exception):
    pass


def load_square(source: Path) -> Image.Image:
    """The source as RGBA, centred on a transparent square if it is not one, and at least ICNS_SIZE wide."""
    if not source.is_file():
        raise IconError(f"{source}: icon source image not found (the app icon is drawn once, as a PNG, in resources/)")
    try:
        with Image.open(source) as opened:
            image = opened.convert("RGBA")
    except OSError as exc:
        raise IconError(f"{source}: not a readable image ({exc})") from None
    side = max(image.size)
    if side < MIN_SOURCE:
        raise IconError(
            f"{source}: {image.width}x{image.height} is too small for an app icon; use at least {MIN_SOURCE}x{MIN_SOURCE}"
        )
    if image.width != image.height:
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = square
    if side != ICNS_SIZE:
        image = image.resize((ICNS_SIZE, ICNS_SIZE), Image.Resampling.LANCZOS)
    return image


def make_icons(source: Path = DEFAULT_SOURCE, out: Path = DEFAULT_OUT) -> list[Path]:
    """Write enhancer.ico, enhancer.icns, enhancer.png (256) and enhancer-512.png into `out`; return their paths."""
    image = load_square(source)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    ico = out / "enhancer.ico"
    image.save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    written.append(ico)
    icns = out / "enhancer.icns"
    image.save(icns, format="ICNS")
    written.append(icns)
    for size in PNG_SIZES:
        png = out / ("enhancer.png" if size == PNG_SIZES[0] else f"enhancer-{size}.png")
        image.resize((size, size), Image.Resampling.LANCZOS).save(png, format="PNG", optimize=True)
        written.append(png)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="square PNG, at least 256 px (1024 is best)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the icons go")
    args = parser.parse_args(argv)
    try:
        paths = make_icons(args.source, args.out)
    except IconError as exc:
        print(f"make_icons: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
