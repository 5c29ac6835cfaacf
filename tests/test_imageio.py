"""Reading and writing photos with their metadata: real files made with Pillow in a tmp dir."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from enhancer.errors import ImageError
from enhancer.imageio import Photo, output_extension, read_photo, write_photo
from photo_corpus import DATE_TAKEN, EXIF_IFD, ORIENTATION, exif_with, icc_profile, quadrants, smooth_rgb, write_bad, write_valid

# name -> (height, width as shown, channels, bit depth, gray, alpha)
EXPECTED = {
    "rotated_icc.jpg": (32, 24, 3, 8, False, False),
    "gray.jpg": (12, 20, 1, 8, True, False),
    "cmyk.jpg": (16, 16, 3, 8, False, False),
    "rgba.png": (14, 20, 4, 8, False, True),
    "palette_transparent.png": (10, 18, 4, 8, False, True),
    "gray16.png": (11, 17, 1, 16, True, False),
    "rgb16.tif": (9, 15, 3, 16, False, False),
    "alpha.webp": (12, 16, 4, 8, False, True),
    "plain.bmp": (9, 13, 3, 8, False, False),
    "one_pixel.png": (1, 1, 3, 8, False, False),
    "three_by_seven.png": (7, 3, 3, 8, False, False),
}


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return write_valid(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_every_valid_file_with_its_layout(valid, name):
    photo = read_photo(valid[name])
    height, width, channels, depth, gray, alpha = EXPECTED[name]
    assert photo.pixels.dtype == np.float32
    assert photo.pixels.shape == (height, width, channels)
    assert (photo.bit_depth, photo.gray, photo.alpha) == (depth, gray, alpha)
    assert 0.0 <= photo.pixels.min() and photo.pixels.max() <= 1.0
    assert photo.source == valid[name]


def test_sixteen_bit_files_keep_every_bit(valid):
    import tifffile

    rgb16 = tifffile.imread(valid["rgb16.tif"])
    photo = read_photo(valid["rgb16.tif"])
    assert np.array_equal(np.round(photo.pixels * 65535).astype(np.uint16), rgb16)
    assert len(np.unique(rgb16 & 0xFF)) > 1  # the low bytes carry information that 8 bits would lose
    gray16 = np.asarray(Image.open(valid["gray16.png"]))
    assert np.array_equal(np.round(read_photo(valid["gray16.png"]).pixels[:, :, 0] * 65535).astype(np.uint16), gray16)


def test_palette_transparency_and_cmyk_are_converted(valid):
    palette = read_photo(valid["palette_transparent.png"])
    assert palette.pixels[0, 0, 3] == 0.0  # the transparent palette index
    assert palette.pixels[:, :, 3].max() == 1.0
    cmyk = read_photo(valid["cmyk.jpg"])
    assert any("CMYK" in note for note in cmyk.notes)
    reference = np.asarray(Image.open(valid["cmyk.jpg"]).convert("RGB"), np.float32) / 255
    assert np.abs(cmyk.pixels - reference).max() < 2 / 255


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_like_exif_transpose(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(smooth_rgb(7, 5)).save(path, exif=exif_with(orientation))
    photo = read_photo(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert np.array_equal(np.round(photo.pixels * 255).astype(np.uint8), expected)
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif[ORIENTATION] == 1


def test_rotated_jpeg_keeps_icc_and_exif_with_orientation_1_and_new_size(valid, tmp_path):
    photo = read_photo(valid["rotated_icc.jpg"])
    # Orientation 6 = rotate 90° clockwise to view: the red top-left quadrant of the stored image goes top-right.
    top_right = photo.pixels[2, -3] * 255
    assert top_right[0] > 180 and top_right[1] < 80
    assert photo.icc_profile == icc_profile()
    bigger = photo.with_pixels(np.repeat(np.repeat(photo.pixels, 3, axis=0), 3, axis=1))
    out = write_photo(bigger, tmp_path / "out.jpg")
    with Image.open(out) as im:
        assert im.size == (72, 96)
        assert im.info["icc_profile"] == icc_profile()
        exif = im.getexif()
        assert exif[ORIENTATION] == 1
        assert exif[0x010F] == "TestCam"
        sub = exif.get_ifd(EXIF_IFD)
        assert sub[0x9003] == DATE_TAKEN
        assert (sub[0xA002], sub[0xA003]) == (72, 96)
        shown = np.asarray(ImageOps.exif_transpose(im))
    assert shown.shape == (96, 72, 3)
    assert shown[5, -5, 0] > 180 and shown[5, -5, 1] < 80  # still red top-right once a viewer applies orientation 1


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_round_trip_with_format_same_keeps_mode_depth_and_pixels(valid, tmp_path, name):
    photo = read_photo(valid[name])
    out = write_photo(photo, tmp_path / f"copy{output_extension(photo)}")
    assert out.suffix == valid[name].suffix
    back = read_photo(out)
    assert back.pixels.shape == photo.pixels.shape
    assert (back.bit_depth, back.gray, back.alpha) == (photo.bit_depth, photo.gray, photo.alpha)
    if out.suffix in (".jpg", ".webp"):  # lossy at quality 95; colour under full transparency is not kept
        seen = photo.pixels[:, :, 3] > 0.1 if photo.alpha else np.ones(photo.pixels.shape[:2], bool)
        assert np.abs(back.pixels - photo.pixels)[seen].mean() < 4 / 255
    else:
        assert np.abs(back.pixels - photo.pixels).max() <= 0.5 / (65535 if photo.bit_depth == 16 else 255)
    assert back.icc_profile == photo.icc_profile
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_pillow_modes_of_written_files(valid, tmp_path):
    modes = {}
    for name in ("gray.jpg", "gray16.png", "rgba.png", "palette_transparent.png", "alpha.webp", "cmyk.jpg"):
        photo = read_photo(valid[name])
        out = write_photo(photo, tmp_path / f"{name}{output_extension(photo)}")
        with Image.open(out) as im:
            modes[name] = im.mode
    assert modes == {
        "gray.jpg": "L",
        "gray16.png": "I;16",
        "rgba.png": "RGBA",
        "palette_transparent.png": "RGBA",
        "alpha.webp": "RGBA",
        "cmyk.jpg": "RGB",
    }
    import tifffile

    out = write_photo(read_photo(valid["rgb16.tif"]), tmp_path / "deep.tif")
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == (9, 15, 3)


@pytest.mark.parametrize("fmt,mode", [("png", "RGBA"), ("tiff", "RGBA")])
def test_sixteen_bit_rgba_and_gray_alpha_stay_sixteen_bit(tmp_path, fmt, mode):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 65536, (6, 9, 4), dtype=np.uint16)
    photo = Photo(pixels=rgba.astype(np.float32) / 65535, format=fmt.upper(), bit_depth=16, alpha=True)
    back = read_photo(write_photo(photo, tmp_path / f"rgba16.{fmt}", format=fmt))
    assert back.bit_depth == 16 and back.alpha and not back.gray
    assert np.array_equal(np.round(back.pixels * 65535).astype(np.uint16), rgba)
    gray_alpha = np.concatenate([np.repeat(rgba[:, :, :1], 3, axis=2), rgba[:, :, 3:]], axis=2)
    photo = Photo(pixels=gray_alpha.astype(np.float32) / 65535, format=fmt.upper(), bit_depth=16, gray=True, alpha=True)
    back = read_photo(write_photo(photo, tmp_path / f"la16.{fmt}", format=fmt))
    assert (back.bit_depth, back.gray, back.alpha) == (16, True, True)
    assert np.array_equal(np.round(back.pixels * 65535).astype(np.uint16), gray_alpha)


def test_icc_survives_every_output_format(valid, tmp_path):
    photo = read_photo(valid["rotated_icc.jpg"])
    for fmt in ("png", "jpg", "webp", "tiff"):
        back = read_photo(write_photo(photo, tmp_path / f"x.{fmt}", format=fmt))
        assert back.icc_profile == icc_profile(), fmt
        assert back.pixels.shape == photo.pixels.shape
    deep = read_photo(valid["rgb16.tif"])
    deep.icc_profile = icc_profile()
    for fmt in ("png", "tiff"):
        back = read_photo(write_photo(deep, tmp_path / f"deep.{fmt}", format=fmt))
        assert back.icc_profile == icc_profile() and back.bit_depth == 16, fmt


def test_alpha_is_composited_on_white_for_jpeg(tmp_path):
    pixels = np.zeros((4, 4, 4), np.float32)
    pixels[:, :, 0] = 1.0  # red, fully transparent
    photo = Photo(pixels=pixels, format="PNG", alpha=True)
    back = read_photo(write_photo(photo, tmp_path / "flat.jpg", format="jpg"))
    assert back.pixels.shape == (4, 4, 3) and back.pixels.min() > 0.95


def test_gif_first_frame_and_heic(tmp_path):
    first, second = smooth_rgb(8, 6, 1), smooth_rgb(8, 6, 2)[::-1]
    Image.fromarray(first).save(tmp_path / "anim.gif", save_all=True, append_images=[Image.fromarray(second)])
    photo = read_photo(tmp_path / "anim.gif")
    expected = np.asarray(Image.open(tmp_path / "anim.gif").convert("RGB"), np.float32) / 255
    assert np.array_equal(photo.pixels, expected)
    assert any("frames" in note for note in photo.notes)
    assert output_extension(photo) == ".png"  # GIF is not an output format: "same" gives PNG

    pytest.importorskip("pillow_heif")
    rgb = Photo(pixels=quadrants(32, 24).astype(np.float32) / 255, format="HEIF", icc_profile=icc_profile())
    heic = write_photo(rgb, tmp_path / "photo.heic")
    back = read_photo(heic)
    assert back.format == "HEIF" and back.pixels.shape == (24, 32, 3)
    assert back.icc_profile == icc_profile()
    assert np.abs(back.pixels - rgb.pixels).mean() < 0.03


@pytest.mark.parametrize(
    "name,reason",
    [
        ("truncated.jpg", "truncated"),
        ("empty.png", "empty"),
        ("text.jpg", "not an image"),
        ("huge_header.png", "too large"),
    ],
)
def test_bad_files_raise_a_clear_image_error(tmp_path, name, reason):
    path = write_bad(tmp_path)[name]
    with pytest.raises(ImageError) as caught:
        read_photo(path)
    message = str(caught.value)
    assert str(path) in message and reason in message and "\n" not in message
    print(message)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_photo(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        read_photo(tmp_path)


def test_decompression_bomb_guard_stays_on():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def test_write_refuses_the_original_and_leaves_it_untouched(valid):
    path = valid["rgba.png"]
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ImageError, match="original"):
        write_photo(read_photo(path), path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_failed_write_leaves_no_temporary_file_and_no_target(tmp_path):
    # Wider than WebP's 16383-pixel limit: the encoder fails after the temporary file was created.
    photo = Photo(pixels=np.full((1, 20000, 3), 0.5, np.float32), format="WEBP")
    target = tmp_path / "out" / "fails.webp"
    with pytest.raises(ImageError) as caught:
        write_photo(photo, target, format="webp")
    assert str(target) in str(caught.value)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_written_file_has_normal_permissions(tmp_path):
    import os

    out = write_photo(Photo(pixels=np.zeros((2, 2, 3), np.float32)), tmp_path / "p.png")
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_output_extension_keeps_the_source_spelling(tmp_path):
    Image.fromarray(smooth_rgb(4, 4)).save(tmp_path / "a.jpeg")
    photo = read_photo(tmp_path / "a.jpeg")
    assert output_extension(photo) == ".jpeg"
    assert output_extension(photo, "png") == ".png"
    assert output_extension(photo, "tiff") == ".tif"
    with pytest.raises(ImageError, match="unknown output format"):
        output_extension(photo, "gif")


def test_exif_survives_every_output_format(valid, tmp_path):
    photo = read_photo(valid["rotated_icc.jpg"])
    for fmt in ("png", "jpg", "webp", "tiff"):
        out = write_photo(photo, tmp_path / f"x.{fmt}", format=fmt)
        with Image.open(out) as im:
            exif = im.getexif()
            assert exif.get(0x010F) == "TestCam", fmt
            assert exif.get(ORIENTATION, 1) == 1, fmt
            if fmt != "tiff":  # a TIFF keeps the IFD0 tags only (libtiff cannot write Pillow's Exif sub-IFD)
                assert exif.get_ifd(EXIF_IFD)[0x9003] == DATE_TAKEN, fmt


def test_exif_too_large_for_jpeg_is_dropped_not_the_photo(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "M" * 70000  # over JPEG's 64 KiB segment limit
    photo = Photo(pixels=np.full((4, 4, 3), 0.5, np.float32), format="JPEG", exif=exif.tobytes())
    back = read_photo(write_photo(photo, tmp_path / "big-exif.jpg"))
    assert back.pixels.shape == (4, 4, 3) and back.exif is None


def test_empty_image_is_refused(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        write_photo(Photo(pixels=np.zeros((0, 4, 3), np.float32)), tmp_path / "e.png")
    assert list(tmp_path.iterdir()) == []


def test_same_format_falls_back_to_png_past_the_format_limits(tmp_path):
    Image.fromarray(smooth_rgb(8, 6)).save(tmp_path / "small.webp")
    photo = read_photo(tmp_path / "small.webp")
    assert output_extension(photo) == ".webp"
    assert output_extension(photo, size=(16384, 12288)) == ".png"  # a x2048 upscale would not fit WebP
    assert output_extension(photo, "webp", size=(16384, 12288)) == ".webp"  # asked for explicitly: kept (and fails)


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6" tiff:Make="TestCam"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png", "tiff"])
def test_xmp_is_kept_with_orientation_1(tmp_path, fmt):
    Image.fromarray(smooth_rgb(6, 4)).save(tmp_path / "xmp.jpg", xmp=XMP)
    photo = read_photo(tmp_path / "xmp.jpg")
    out = write_photo(photo, tmp_path / f"out.{fmt}", format=fmt)
    with Image.open(out) as im:
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    xmp = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
    assert b'tiff:Orientation="1"' in xmp and b'tiff:Make="TestCam"' in xmp


def test_dpi_is_kept(tmp_path):
    Image.fromarray(smooth_rgb(6, 4)).save(tmp_path / "print.jpg", dpi=(300, 300))
    photo = read_photo(tmp_path / "print.jpg")
    assert photo.dpi == (300.0, 300.0)
    for fmt in ("jpg", "png", "tiff", "bmp"):
        with Image.open(write_photo(photo, tmp_path / f"out.{fmt}", format=fmt)) as im:
            assert tuple(round(v) for v in im.info["dpi"]) == (300, 300), fmt
    deep = Photo(pixels=np.full((3, 5, 3), 0.25, np.float32), format="PNG", bit_depth=16, dpi=(240.0, 240.0))
    for fmt in ("png", "tiff"):
        with Image.open(write_photo(deep, tmp_path / f"deep.{fmt}", format=fmt)) as im:
            assert tuple(round(v) for v in im.info["dpi"]) == (240, 240), fmt
