"""AVIF, HEIC and JPEG XL out (and in): through the real CLI (`enhancer.cli.main`, and `python -m enhancer` where an
installation without a plugin is needed) with the golden MobileSR x2 model, and through `write_photo`/`read_photo`,
on real files in tmp dirs. What each format keeps is the list in `enhancer.imageio`'s docstring."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import GOLDEN, ROOT, need_shared
from enhancer.cli import main
from enhancer.errors import ImageError
from enhancer.imageio import Photo, format_notes, read_photo, write_photo
from enhancer.options import OUTPUT_FORMATS, available_output_formats
from enhancer.pipeline import collect_inputs
from photo_corpus import DATE_TAKEN, EXIF_IFD, exif_with, icc_profile, smooth_rgb

NEW_FORMATS = {"avif": ("AVIF", ".avif"), "heic": ("HEIF", ".heic"), "jxl": ("JXL", ".jxl")}
MAKE = 0x010F
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Test Person"/></rdf:RDF>'
       b'</x:xmpmeta>')


@pytest.fixture(scope="module")
def x2_model() -> str:
    return str(need_shared(GOLDEN / "mobilesr_x2.pth"))


def run_cli(capsys, *args) -> tuple[int, dict | None, str]:
    code = main(["--json", *map(str, args)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def description(icc: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


def swapped_primaries_profile() -> bytes:
    """An RGB profile that is not sRGB: LittleCMS's sRGB with the red and green primaries swapped, named "Test
    built-in". Pure red in it is pure green in sRGB, which makes a conversion easy to see."""
    data = bytearray(icc_profile())
    count = struct.unpack(">I", data[128:132])[0]
    tags = {}
    for i in range(count):
        signature, offset, size = struct.unpack(">4sII", data[132 + 12 * i: 144 + 12 * i])
        tags[signature] = (offset, size)
    (red, red_size), (green, green_size) = tags[b"rXYZ"], tags[b"gXYZ"]
    red_xyz, green_xyz = bytes(data[red:red + red_size]), bytes(data[green:green + green_size])
    data[red:red + red_size], data[green:green + green_size] = green_xyz, red_xyz
    data[84:100] = bytes(16)  # the profile ID (an MD5 of the rest) is now wrong: zero means "not computed"
    return bytes(data).replace("sRGB".encode("utf-16-be"), "Test".encode("utf-16-be"))


def test_the_new_formats_are_installed_here_and_offered():
    assert {"avif", "heic", "jxl"} <= set(OUTPUT_FORMATS)
    assert available_output_formats()[0] == "same"
    assert set(available_output_formats()) == set(OUTPUT_FORMATS)  # everything is installed in this environment


@pytest.mark.parametrize("name", NEW_FORMATS)
def test_cli_writes_each_new_format_that_decodes_and_keeps_exif_icc_and_xmp(tmp_path, capsys, x2_model, name):
    pillow_name, extension = NEW_FORMATS[name]
    source = tmp_path / "photo.png"
    exif = exif_with(1)
    photo = Photo(pixels=smooth_rgb(24, 16).astype(np.float32) / 255, icc_profile=icc_profile(), exif=exif.tobytes(),
                  xmp=XMP)
    write_photo(photo, source, format="png")

    code, summary, err = run_cli(capsys, "--model", x2_model, "--format", name, source)

    assert code == 0, err
    [result] = summary["results"]
    assert result["status"] == "ok", result
    output = result["output"]
    assert output.endswith("photo_mobilesr_x2_x2" + extension)
    with Image.open(output) as im:
        im.load()  # decodes
        assert (im.format, im.size, im.mode) == (pillow_name, (48, 32), "RGB")
        assert np.asarray(im).std() > 10  # a picture, not a flat fill
        written = im.getexif()
        assert written[MAKE] == "TestCam"
        assert written.get_ifd(EXIF_IFD)[0x9003] == DATE_TAKEN
    back = read_photo(output)
    assert b'dc:creator="Test Person"' in back.xmp
    if name == "jxl":
        # The JPEG XL writer cannot embed a profile; a file without one is sRGB, which this photo is.
        assert "sRGB" in description(back.icc_profile)
        assert result["notes"] == []
    else:
        assert back.icc_profile == icc_profile()  # byte for byte


@pytest.mark.parametrize("name", NEW_FORMATS)
def test_each_new_format_reads_back_as_an_input_and_same_keeps_it(tmp_path, capsys, x2_model, name):
    pillow_name, extension = NEW_FORMATS[name]
    folder = tmp_path / "photos"
    photo = Photo(pixels=smooth_rgb(16, 12).astype(np.float32) / 255, icc_profile=icc_profile(),
                  exif=exif_with(1).tobytes())
    write_photo(photo, folder / f"shot{extension}", format=name)
    [found] = collect_inputs([folder])  # a folder scan takes the extension as an image
    assert found.path.name == f"shot{extension}"

    code, summary, err = run_cli(capsys, "--model", x2_model, folder)

    assert code == 0, err
    [result] = summary["results"]
    assert result["output"].endswith(f"shot_mobilesr_x2_x2{extension}")  # "same" writes the input's format
    back = read_photo(result["output"])
    assert (back.format, back.width, back.height) == (pillow_name, 32, 24)
    exif = Image.Exif()
    exif.load(back.exif)
    assert exif[MAKE] == "TestCam"


def ramp(width: int = 1000, height: int = 4, channels: int = 3) -> np.ndarray:
    """A 16-bit-fine ramp: thousands of levels, so that 8 bits (256 levels) shows."""
    values = np.linspace(0.0, 1.0, width, dtype=np.float32)
    rows = [np.roll(values, 37 * c) for c in range(channels)]
    return np.repeat(np.stack(rows, axis=1)[None], height, axis=0)


def levels_off_the_8_bit_grid(pixels: np.ndarray) -> float:
    """The share of samples that 8 bits could not hold."""
    return float((np.abs(pixels * 255 - np.round(pixels * 255)) > 0.05).mean())


def test_heic_keeps_16_bit_photos_in_12_bits(tmp_path):
    pixels = ramp(channels=3)
    photo = Photo(pixels=pixels, bit_depth=16, icc_profile=icc_profile(), exif=exif_with(1).tobytes())

    lossless = read_photo(write_photo(photo, tmp_path / "deep.heic", format="heic", quality=100))
    assert lossless.bit_depth == 16 and lossless.icc_profile == icc_profile() and lossless.exif
    # Quality 100 is lossless in 12 bits: every sample within half a 12-bit step, plus half a 16-bit step from the
    # reader, which puts the 12-bit values on the 16-bit scale.
    twelve_bits = 0.5 / 4095 + 0.5 / 65535 + 1e-6
    assert np.abs(lossless.pixels - pixels).max() <= twelve_bits
    assert levels_off_the_8_bit_grid(lossless.pixels) > 0.5

    lossy = read_photo(write_photo(photo, tmp_path / "deep95.heic", format="heic", quality=95))
    assert lossy.bit_depth == 16 and levels_off_the_8_bit_grid(lossy.pixels) > 0.5
    assert np.abs(lossy.pixels - pixels).max() < 0.02

    alpha = np.concatenate([pixels, pixels[:, :, :1]], axis=2)
    with_alpha = read_photo(write_photo(Photo(pixels=alpha, bit_depth=16, alpha=True), tmp_path / "a.heic",
                                        format="heic", quality=100))
    assert with_alpha.bit_depth == 16 and with_alpha.alpha
    assert np.abs(with_alpha.pixels - alpha).max() <= twelve_bits
    assert format_notes(photo, "HEIF") == ["written in 12 bits per channel, the most HEIC holds (the photo has 16)"]


def test_jpeg_xl_keeps_16_bit_gray_and_says_colour_is_8_bit(tmp_path):
    gray = ramp(channels=1)
    photo = Photo(pixels=gray, bit_depth=16, gray=True, exif=exif_with(1).tobytes())
    back = read_photo(write_photo(photo, tmp_path / "gray.jxl", format="jxl", quality=100))
    assert (back.bit_depth, back.gray, back.channels) == (16, True, 1)
    assert np.abs(back.pixels - gray).max() <= 0.5 / 65535 + 1e-6  # lossless 16 bits
    assert back.exif and format_notes(photo, "JXL") == []

    colour = Photo(pixels=ramp(channels=3), bit_depth=16)
    back = read_photo(write_photo(colour, tmp_path / "colour.jxl", format="jxl", quality=100))
    assert back.bit_depth == 8 and np.abs(back.pixels - colour.pixels).max() <= 0.5 / 255 + 1e-6
    assert format_notes(colour, "JXL") == [
        "written in 8 bits per channel: this JPEG XL writer keeps 16 bits for gray photos only"]


def test_avif_is_8_bit_and_says_so(tmp_path):
    photo = Photo(pixels=ramp(channels=3), bit_depth=16, icc_profile=icc_profile())
    back = read_photo(write_photo(photo, tmp_path / "deep.avif", format="avif", quality=100))
    assert back.bit_depth == 8 and back.icc_profile == icc_profile()
    assert np.abs(back.pixels - photo.pixels).max() < 0.02
    assert format_notes(photo, "AVIF") == [
        "written in 8 bits per channel, the most this AVIF writer holds (the photo has 16)"]


def test_16_bit_photo_through_the_cli_to_heic_stays_deep(tmp_path, capsys, x2_model):
    import png  # pypng: Pillow writes colour PNGs in 8 bits only

    source = tmp_path / "deep.png"
    data = np.round(ramp(64, 8, 3) * 65535).astype(np.uint16)
    with open(source, "wb") as fh:
        png.Writer(64, 8, bitdepth=16, greyscale=False).write(fh, data.reshape(8, 64 * 3).tolist())

    code, summary, err = run_cli(capsys, "--model", x2_model, "--format", "heic", "--quality", "100", source)

    assert code == 0, err
    [result] = summary["results"]
    back = read_photo(result["output"])
    assert (back.format, back.bit_depth, back.width, back.height) == ("HEIF", 16, 128, 16)
    assert levels_off_the_8_bit_grid(back.pixels) > 0.5
    assert "written in 12 bits per channel, the most HEIC holds (the photo has 16)" in result["notes"]


def test_jpeg_xl_converts_a_photo_with_another_profile_to_srgb_and_says_so(tmp_path, capsys, x2_model):
    source = tmp_path / "wide.png"
    red = np.zeros((8, 8, 3), np.uint8)
    red[:] = (255, 0, 0)  # red in the swapped profile is sRGB's green
    Image.fromarray(red).save(source, icc_profile=swapped_primaries_profile())

    code, summary, err = run_cli(capsys, "--model", x2_model, "--format", "jxl", "--quality", "100", source)

    assert code == 0, err
    [result] = summary["results"]
    assert result["notes"] == ["converted to sRGB: this JPEG XL writer cannot embed the photo's colour profile"]
    back = read_photo(result["output"])
    assert "sRGB" in description(back.icc_profile)
    centre = back.pixels[4:12, 4:12].reshape(-1, 3).mean(axis=0)
    assert centre[1] > 0.8 and centre[0] < 0.2 and centre[2] < 0.2, centre  # it looks as it did: green
    # The other formats keep the profile itself, and so the same pixels.
    code, summary, err = run_cli(capsys, "--model", x2_model, "--format", "heic", source)
    assert code == 0, err
    assert read_photo(summary["results"][0]["output"]).icc_profile == swapped_primaries_profile()


def test_format_that_is_not_installed_is_refused_with_exit_2(tmp_path):
    """`python -m enhancer` in an interpreter where pillow-jxl-plugin cannot be imported (as on an installation
    without it): --format jxl is a usage error naming what is missing, and nothing is written."""
    source = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb(8, 8)).save(source)
    without_jxl = (
        "import sys; sys.modules['pillow_jxl'] = None; "  # None in sys.modules: `import pillow_jxl` fails
        "from enhancer.options import available_output_formats; print(','.join(available_output_formats())); "
        "from enhancer.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", without_jxl, "--format", "jxl", str(source)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout.strip() == "same,png,jpg,webp,tiff,avif,heic"
    assert ("argument --format: jxl cannot be written by this installation (the pillow-jxl-plugin package is "
            "needed); available: same, png, jpg, webp, tiff, avif, heic") in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_a_jpeg_xl_that_declares_a_huge_size_is_refused_before_it_is_decoded(tmp_path):
    # SizeHeader, bits least significant first: not small (0), height selector 3 (30 bits) = 99,999 (+1), ratio 1:1.
    header = (0 | 3 << 1 | 99_999 << 3 | 1 << 33).to_bytes(8, "little")
    bomb = tmp_path / "bomb.jxl"
    bomb.write_bytes(b"\xff\x0a" + header + bytes(64))
    with pytest.raises(ImageError, match="too large: 100000×100000") as info:
        read_photo(bomb)
    assert str(bomb) in str(info.value)
    # A real file passes the same check (its header is found inside the container, after the Exif box).
    photo = Photo(pixels=smooth_rgb(40, 30).astype(np.float32) / 255, exif=exif_with(1).tobytes())
    assert read_photo(write_photo(photo, tmp_path / "real.jxl", format="jxl")).pixels.shape == (30, 40, 3)
