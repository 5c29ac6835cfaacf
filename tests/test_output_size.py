"""Output size: `enhancer.sizing.OutputSize` and `resize_to`, and `--scale/--width/--height/--fit` through the real CLI
(`enhancer.cli.main`) with the golden MobileSR x4 model on real files in tmp dirs."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from PIL import Image

from conftest import GOLDEN, need_shared
from enhancer.cli import main
from enhancer.imageio import read_photo
from enhancer.pipeline import Job
from enhancer.sizing import OutputSize, resize_to
from photo_corpus import DATE_TAKEN, EXIF_IFD, exif_with, icc_profile, smooth_rgb

MAKE = 0x010F


@pytest.fixture(scope="module")
def x4_model() -> str:
    return str(need_shared(GOLDEN / "mobilesr_x4.pth"))


def run_cli(capsys, *args) -> tuple[int, dict | None, str]:
    """`enhancer --json ARGS...` in this process: (exit code, the JSON summary or None, stderr)."""
    code = main(["--json", *map(str, args)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def photo_with_metadata(path, width: int, height: int, **save) -> None:
    Image.fromarray(smooth_rgb(width, height)).save(path, exif=exif_with(1), icc_profile=icc_profile(), **save)


def assert_metadata_kept(path, width: int, height: int) -> None:
    with Image.open(path) as im:
        assert im.size == (width, height)
        assert im.info["icc_profile"] == icc_profile()
        exif = im.getexif()
        assert exif[MAKE] == "TestCam"
        sub = exif.get_ifd(EXIF_IFD)
        assert sub[0x9003] == DATE_TAKEN
        assert (sub[0xA002], sub[0xA003]) == (width, height)  # PixelX/YDimension follow the written size


# ------------------------------------------------------------------------------------------------ OutputSize


SIZES = [
    OutputSize(), OutputSize("scale", scale=2), OutputSize("scale", scale=1.5), OutputSize("scale", scale=0.1),
    OutputSize("scale", scale=1 / 3), OutputSize("width", width=3840), OutputSize("height", height=2160),
    OutputSize("fit", width=3840, height=2160),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: s.to_text())
def test_text_form_round_trips(size):
    assert OutputSize.from_text(size.to_text()) == size
    assert OutputSize.from_text(f"  {size.to_text().upper()} ") == size


def test_text_and_labels_are_the_documented_ones():
    assert [s.to_text() for s in SIZES] == [
        "model", "x2", "x1.5", "x0.1", f"x{1 / 3!r}", "w3840", "h2160", "fit3840x2160"]
    assert [s.label() for s in SIZES[:3] + SIZES[5:]] == [
        "model's size", "x2", "x1.5", "3840 px wide", "2160 px high", "fit in 3840×2160"]
    assert OutputSize.from_text("fit 3840 × 2160") == OutputSize("fit", width=3840, height=2160)


@pytest.mark.parametrize("text, message", [
    ("", "empty output size"), ("x0", "greater than 0"), ("x-2", "greater than 0"), ("xnan", "greater than 0"),
    ("xinf", "greater than 0"), ("xtwo", "the scale must be a number"), ("w0", "at least 1 pixel"),
    ("w1.5", "whole number of pixels"), ("h-3", "whole number of pixels"), ("fit100", "not an output size"),
    ("fit0x10", "at least 1 pixel"), ("huge", "not an output size"), ("4k", "not an output size"),
])
def test_bad_text_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message) as info:
        OutputSize.from_text(text)
    assert "model, x2, x1.5, w3840" in str(info.value) or repr(text) in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="double"), "unknown output size mode"), (dict(mode="scale"), "needs a factor"),
    (dict(mode="scale", scale=0), "greater than 0"), (dict(mode="scale", scale=math.nan), "greater than 0"),
    (dict(mode="width"), "needs a width"), (dict(mode="width", width=0), "at least 1"),
    (dict(mode="width", width=10.5), "whole number"), (dict(mode="fit", width=10), "needs a height"),
])
def test_bad_construction_is_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OutputSize(**kwargs)


def test_targets_keep_the_aspect_and_round_half_up():
    # 1600×1200 through x4 (6400×4800)
    assert OutputSize().target(1600, 1200, 4) == (6400, 4800)
    assert OutputSize("scale", scale=2).target(1600, 1200, 4) == (3200, 2400)
    assert OutputSize("scale", scale=1.5).target(301, 201, 4) == (452, 302)  # 451.5 and 301.5 round up
    assert OutputSize("width", width=1000).target(300, 200, 4) == (1000, 667)
    assert OutputSize("height", height=1000).target(300, 200, 4) == (1500, 1000)
    assert OutputSize("fit", width=3840, height=2160).target(1600, 1200, 4) == (2880, 2160)  # height-bound
    assert OutputSize("fit", width=3840, height=2160).target(4000, 1000, 4) == (3840, 960)  # width-bound
    assert OutputSize("scale", scale=0.001).target(10, 10, 4) == (1, 1)  # never below one pixel
    assert OutputSize("width", width=10).target(1000, 3, 4) == (10, 1)


def test_below_and_above_the_models_size():
    assert OutputSize("scale", scale=2).below_model(100, 80, 4)
    assert not OutputSize("scale", scale=4).below_model(100, 80, 4)
    assert not OutputSize().below_model(100, 80, 4)
    assert OutputSize("width", width=399).below_model(100, 80, 4)
    assert not OutputSize("width", width=400).below_model(100, 80, 4)
    assert OutputSize("scale", scale=8).above_model(100, 80, 4)
    assert not OutputSize("scale", scale=8).below_model(100, 80, 4)


def test_job_takes_an_output_size_as_text_or_as_the_cluster_sends_it():
    job = Job(inputs=["a.png"], output_size="w1000")
    assert job.output_size == OutputSize("width", width=1000)
    assert Job(**dataclasses.asdict(job)).output_size == job.output_size  # the cluster's asdict round trip
    with pytest.raises(ValueError, match="not an output size"):
        Job(inputs=["a.png"], output_size="wide")


# ------------------------------------------------------------------------------------------------ resize_to


def test_resize_keeps_16_bit_precision_and_the_dtype():
    ramp = np.linspace(0.0, 1.0, 4000, dtype=np.float32)[None, :, None].repeat(3, axis=0)
    small = resize_to(ramp, (1000, 3))
    assert small.dtype == np.float32 and small.shape == (3, 1000, 1)
    levels = np.unique(np.round(small * 65535))
    assert len(levels) > 900  # a 16-bit ramp stays a 16-bit ramp: far more than the 256 levels of 8 bits
    assert np.abs(small[1, :, 0] - np.linspace(0, 1, 1000)).max() < 2e-3


def test_resize_is_antialiased():
    # A one-pixel checkerboard shrunk 4x is flat mid-gray; a resize that skipped pixels would keep one colour.
    board = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)[:, :, None]
    small = resize_to(board, (16, 16))
    assert np.abs(small[2:-2, 2:-2] - 0.5).max() < 0.02


def test_resize_does_not_bleed_the_colour_of_transparent_pixels():
    pixels = np.zeros((32, 32, 4), np.float32)
    pixels[:, :16] = (1.0, 0.0, 0.0, 0.0)  # left half: red, but fully transparent
    pixels[:, 16:] = (0.0, 0.0, 1.0, 1.0)  # right half: opaque blue
    small = resize_to(pixels, (8, 8))
    visible = small[:, :, 3] > 0.05
    assert visible[:, 4:].all() and not visible[:, :3].any()
    assert small[visible][:, 0].max() < 0.02  # no red fringe where the blue meets the transparent part
    assert np.abs(small[:, 5:, 2] - 1.0).max() < 0.02


def test_resize_same_size_is_unchanged_and_bad_sizes_are_refused():
    pixels = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    assert resize_to(pixels, (7, 5)) is pixels
    with pytest.raises(ValueError, match="at least 1 pixel"):
        resize_to(pixels, (0, 5))
    with pytest.raises(ValueError, match="H×W×C"):
        resize_to(pixels[:, :, 0], (3, 3))


# ------------------------------------------------------------------------------------------------ the CLI


def test_scale_2_with_an_x4_model_gives_twice_the_input_and_keeps_metadata(tmp_path, capsys, x4_model):
    source = tmp_path / "photo.png"
    photo_with_metadata(source, 40, 30)

    code, summary, err = run_cli(capsys, "--model", x4_model, "--scale", "2", "--strip-metadata", "none", source)

    assert code == 0, err
    [result] = summary["results"]
    assert result["status"] == "ok", result
    assert result["size"] == [80, 60]
    assert result["output"].endswith("photo_mobilesr_x4_x2.png")  # named by the final factor, not the model's
    assert_metadata_kept(result["output"], 80, 60)
    assert "asked size 80×60 is below the model's x4 (160×120): enhanced at x4, then downscaled" in result["notes"]
    assert "below the model's x4" in err  # the note reaches the person at the terminal too


def test_width_1000_gives_width_1000_and_the_right_height_and_keeps_metadata(tmp_path, capsys, x4_model):
    source = tmp_path / "photo.jpg"
    photo_with_metadata(source, 300, 200, quality=95)

    code, summary, err = run_cli(capsys, "--model", x4_model, "--width", "1000", source)

    assert code == 0, err
    [result] = summary["results"]
    assert result["status"] == "ok", result
    assert result["size"] == [1000, 667]  # 200 × 1000 / 300 = 666.7
    assert result["output"].endswith("photo_mobilesr_x4_w1000.jpg")
    assert_metadata_kept(result["output"], 1000, 667)
    assert any("below the model's x4 (1200×800)" in note for note in result["notes"])


@pytest.mark.parametrize("option, value, expected", [
    ("--height", "45", (60, 45)), ("--fit", "50x50", (50, 38)), ("--scale", "1.5", (60, 45)),
    ("--scale", "6", (240, 180)),
])
def test_height_fit_and_other_factors(tmp_path, capsys, x4_model, option, value, expected):
    source = tmp_path / "photo.png"
    photo_with_metadata(source, 40, 30)
    code, summary, err = run_cli(capsys, "--model", x4_model, option, value, source)
    assert code == 0, err
    [result] = summary["results"]
    assert tuple(result["size"]) == expected
    with Image.open(result["output"]) as im:
        assert im.size == expected
    if expected[0] > 160:
        assert any("above the model's x4" in note and "adds no detail" in note for note in result["notes"])


@pytest.mark.parametrize("bits", [8, 16])
def test_scale_2_equals_the_x4_output_downscaled_by_the_same_resize(tmp_path, capsys, x4_model, bits):
    """The --scale 2 file against the x4 file read back and put through `resize_to` by this test.

    Tolerance: at most one level of the file's bit depth (1/255 or 1/65535) per sample. The two differ only in
    where rounding happens: the --scale 2 run resizes the chain's float output, this test resizes the x4 output
    after it was rounded to `bits` bits and written. That rounding (at most half a level) goes through the Lanczos
    weights (their absolute sum is below 2 here) and the result is rounded again, which moves a sample by at most
    one level. Nothing else may differ: same model, same tiles, same resize."""
    source = tmp_path / "in" / "photo.png"
    source.parent.mkdir()
    pixels = smooth_rgb(40, 30).astype(np.uint16)
    if bits == 16:
        import png  # pypng: Pillow writes colour PNGs in 8 bits only

        deep = pixels * 257 + np.arange(40, dtype=np.uint16)[None, :, None]  # use the low bits too
        with open(source, "wb") as fh:
            png.Writer(40, 30, bitdepth=16, greyscale=False).write(fh, deep.reshape(30, 40 * 3).tolist())
    else:
        Image.fromarray(pixels.astype(np.uint8)).save(source)

    code, summary, err = run_cli(capsys, "--model", x4_model, "--output-dir", tmp_path / "x4", source)
    assert code == 0, err
    code, summary2, err = run_cli(capsys, "--model", x4_model, "--scale", "2", "--output-dir", tmp_path / "x2", source)
    assert code == 0, err

    x4 = read_photo(summary["results"][0]["output"])
    x2 = read_photo(summary2["results"][0]["output"])
    assert x4.bit_depth == x2.bit_depth == bits
    assert (x4.width, x4.height, x2.width, x2.height) == (160, 120, 80, 60)
    top = 2 ** bits - 1
    expected = np.round(resize_to(x4.pixels, (80, 60)) * top).astype(np.int64)
    got = np.round(x2.pixels * top).astype(np.int64)
    difference = np.abs(got - expected)
    assert difference.max() <= 1
    # Mostly identical (about 90% here): Pillow's bicubic instead differs by up to 2 levels in 8 bits, with only
    # 70% identical, and a box filter by up to 7.
    assert (difference == 0).mean() > 0.8


@pytest.mark.parametrize("args, message", [
    (["--scale", "0"], "argument --scale: must be a number greater than 0"),
    (["--scale", "-1"], "argument --scale: must be a number greater than 0"),
    (["--scale", "two"], "argument --scale: must be a number greater than 0"),
    (["--scale", "nan"], "argument --scale: must be a number greater than 0"),
    (["--width", "0"], "argument --width: must be at least 1 pixel"),
    (["--width", "1.5"], "argument --width: must be a whole number of pixels"),
    (["--height", "tall"], "argument --height: must be a whole number of pixels"),
    (["--fit", "3840"], "argument --fit: must be WIDTHxHEIGHT in whole pixels"),
    (["--fit", "0x100"], "argument --fit: must be WIDTHxHEIGHT in whole pixels"),
    (["--scale", "2", "--width", "100"], "argument --width: not allowed with argument --scale"),
    (["--fit", "10x10", "--height", "5"], "argument --height: not allowed with argument --fit"),
])
def test_bad_size_options_exit_2_with_a_clear_message(tmp_path, capsys, x4_model, args, message):
    source = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb(8, 8)).save(source)
    code, summary, err = run_cli(capsys, "--model", x4_model, *args, source)
    assert code == 2
    assert message in err
    assert summary is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_scale_keeps_gray_and_alpha(tmp_path, capsys, x4_model, mode):
    source = tmp_path / "photo.png"
    rgb = smooth_rgb(40, 30)
    image = Image.fromarray(rgb)
    if mode != "RGBA":
        image = image.convert("L")
    if "A" in mode:
        alpha = np.full((30, 40), 255, np.uint8)
        alpha[:, :20] = 0  # the left half is transparent
        image.putalpha(Image.fromarray(alpha))
    image.save(source)

    code, summary, err = run_cli(capsys, "--model", x4_model, "--scale", "2", source)

    assert code == 0, err
    with Image.open(summary["results"][0]["output"]) as out:
        assert (out.mode, out.size) == (mode, (80, 60))
        if "A" in mode:
            alpha = np.asarray(out.getchannel("A"))
            assert alpha[:, :36].max() <= 8 and alpha[:, 44:].min() >= 247  # the edge stays where it was
