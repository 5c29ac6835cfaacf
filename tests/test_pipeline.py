"""The batch pipeline on real files with a real (tiny, golden) MobileSR network through the real `enhance`."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from conftest import GOLDEN, MOBILESR_WEIGHTS, need_shared
from enhancer.errors import Cancelled, ModelError
from enhancer.pipeline import (
    FileFinished,
    FileStarted,
    Job,
    JobFinished,
    JobStarted,
    ModelCache,
    TileProgress,
    collect_inputs,
    run_job,
)
from photo_corpus import (
    DATE_TAKEN,
    EXIF_IFD,
    ORIENTATION,
    exif_with,
    icc_profile,
    leftovers,
    quadrants,
    sha256s,
    smooth_rgb,
    write_bad,
    write_valid,
)

# name -> (shown width, shown height, Pillow mode of the output)
VALID = {
    "rotated_icc.jpg": (24, 32, "RGB"),
    "gray.jpg": (20, 12, "L"),
    "cmyk.jpg": (16, 16, "RGB"),
    "rgba.png": (20, 14, "RGBA"),
    "palette_transparent.png": (18, 10, "RGBA"),
    "gray16.png": (17, 11, "I;16"),
    "rgb16.tif": (15, 9, "RGB"),  # Pillow shows 16-bit RGB as RGB; the bit depth is checked with tifffile
    "alpha.webp": (16, 12, "RGBA"),
    "plain.bmp": (13, 9, "RGB"),
    "one_pixel.png": (1, 1, "RGB"),
    "three_by_seven.png": (3, 7, "RGB"),
}
BAD = {"truncated.jpg": "truncated", "empty.png": "empty", "text.jpg": "not an image", "huge_header.png": "too large"}


@pytest.fixture(scope="module")
def x2_model():
    return str(need_shared(GOLDEN / "mobilesr_x2.pth"))


@pytest.fixture(scope="module")
def cache():
    return ModelCache()


def test_every_valid_file_is_enhanced_keeping_layout_and_metadata_and_bad_files_fail(tmp_path, x2_model, cache):
    folder = tmp_path / "photos"
    write_valid(folder)
    write_bad(folder)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "._rgba.png").write_bytes(b"\0\5\26\7")
    (folder / "notes.txt").write_text("not an image")
    before = sha256s(folder)
    events = []

    results = run_job(Job(inputs=[folder], models=[x2_model]), events=events.append, cache=cache)

    by_name = {r.input.name: r for r in results}
    assert set(by_name) == set(VALID) | set(BAD)  # hidden, system and non-image files are skipped quietly
    for name, reason in BAD.items():
        result = by_name[name]
        assert result.status == "failed" and result.output is None
        assert name in result.error and reason in result.error and "\n" not in result.error
    for name, (width, height, mode) in VALID.items():
        result = by_name[name]
        assert result.status == "ok", result.error
        assert result.output.name == f"{name.rsplit('.', 1)[0]}_mobilesr_x2_x2.{name.rsplit('.', 1)[1]}"
        with Image.open(result.output) as im:
            assert im.size == (width * 2, height * 2), name
            assert im.mode == mode, name
    assert any("CMYK" in note for note in by_name["cmyk.jpg"].notes)
    with tifffile.TiffFile(by_name["rgb16.tif"].output) as tif:
        assert tif.pages[0].dtype == np.uint16 and tif.pages[0].shape == (18, 30, 3)
    with Image.open(by_name["rotated_icc.jpg"].output) as im:
        assert im.info["icc_profile"] == icc_profile()
        exif = im.getexif()
        assert exif[ORIENTATION] == 1 and exif[0x010F] == "TestCam"
        assert exif.get_ifd(EXIF_IFD)[0x9003] == DATE_TAKEN
        assert (exif.get_ifd(EXIF_IFD)[0xA002], exif.get_ifd(EXIF_IFD)[0xA003]) == (48, 64)

    after = sha256s(folder)
    assert {name: after[name] for name in before} == before  # every original unchanged
    assert leftovers(folder) == []

    assert isinstance(events[0], JobStarted) and events[0].total == len(VALID) + len(BAD)
    assert isinstance(events[-1], JobFinished) and list(events[-1].results) == results
    finished = [e for e in events if isinstance(e, FileFinished)]
    assert [e.result for e in finished] == results
    assert [e.index for e in finished] == list(range(1, len(results) + 1))
    ticks = [e for e in events if isinstance(e, TileProgress)]
    assert ticks and all(0 < t.done <= t.total for t in ticks)
    started = [e.index for e in events if isinstance(e, FileStarted)]
    assert started == [e.index for e in finished]


def test_alpha_stays_smooth(tmp_path, x2_model, cache):
    alpha = np.tile(np.linspace(0, 255, 32), (24, 1)).astype(np.uint8)
    Image.fromarray(np.dstack([smooth_rgb(32, 24), alpha]), "RGBA").save(tmp_path / "ramp.png")
    [result] = run_job(Job(inputs=[tmp_path / "ramp.png"], models=[x2_model]), cache=cache)
    assert result.status == "ok", result.error
    out = np.asarray(Image.open(result.output), np.float32)[:, :, 3]
    assert out.shape == (48, 64)
    steps = np.diff(out, axis=1)
    print(f"alpha: max step {steps.max():.1f}/255 (input step {255 / 31:.1f}), min step {steps.min():.1f}")
    assert steps.min() >= -1 and steps.max() <= 255 / 31 + 2  # a ramp stays a ramp: no blocks, no ringing
    assert np.abs(out - out.mean(axis=0)).max() <= 1  # and stays constant down each column


def test_orientation_6_photo_comes_out_upright_with_the_real_model(tmp_path, cache):
    weights = str(need_shared(MOBILESR_WEIGHTS))
    # Stored 48×32 with orientation 6: shown 32 wide × 48 high, with the stored top-left (red) at the top right.
    Image.fromarray(quadrants(48, 32)).save(tmp_path / "phone.png", exif=exif_with(6), icc_profile=icc_profile())
    [result] = run_job(Job(inputs=[tmp_path / "phone.png"], models=[weights]), cache=cache)
    assert result.status == "ok", result.error
    with Image.open(result.output) as im:
        assert im.size == (128, 192)
        assert im.getexif()[ORIENTATION] == 1
        assert im.info["icc_profile"] == icc_profile()
        out = np.asarray(im)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "phone.png")))
    for y, x in ((20, 20), (20, 108), (172, 20), (172, 108)):  # the middle of each quadrant
        assert np.abs(out[y, x].astype(int) - expected[y // 4, x // 4].astype(int)).max() < 12, (y, x)


def test_names_never_overwrite_and_skip_existing(tmp_path, x2_model, cache):
    Image.fromarray(smooth_rgb(12, 10)).save(tmp_path / "a.png")
    job = Job(inputs=[tmp_path], models=[x2_model])
    first = run_job(job, cache=cache)
    second = run_job(job, cache=cache)  # the first run's output is not taken as an input
    third = run_job(job, cache=cache)
    assert [r.output.name for r in first + second + third] == [
        "a_mobilesr_x2_x2.png", "a_mobilesr_x2_x2-1.png", "a_mobilesr_x2_x2-2.png"
    ]
    files = sorted(p.name for p in tmp_path.iterdir())
    skipped = run_job(Job(inputs=[tmp_path], models=[x2_model], skip_existing=True), cache=cache)
    assert [r.status for r in skipped] == ["skipped"]
    assert sorted(p.name for p in tmp_path.iterdir()) == files

    # An empty suffix keeps the input's own name: only in another folder (next to it, a "-1" copy would later be
    # taken for a photo and enhanced again).
    with pytest.raises(ValueError, match="empty suffix"):
        run_job(Job(inputs=[tmp_path / "a.png"], models=[x2_model], suffix=""), cache=cache)
    [same] = run_job(Job(inputs=[tmp_path / "a.png"], models=[x2_model], suffix="", output_dir=tmp_path / "o"),
                     cache=cache)
    assert same.output == tmp_path / "o" / "a.png"
    [templated] = run_job(Job(inputs=[tmp_path / "a.png"], models=[x2_model], suffix=".{model}.x{scale}",
                              format="jpg"), cache=cache)
    assert templated.output.name == "a.mobilesr_x2.x2.jpg"


def test_two_inputs_with_the_same_stem_get_distinct_outputs(tmp_path, x2_model, cache):
    Image.fromarray(smooth_rgb(8, 8)).save(tmp_path / "b.png")
    Image.fromarray(smooth_rgb(8, 8)).save(tmp_path / "b.bmp")
    results = run_job(Job(inputs=[tmp_path], models=[x2_model], format="png", output_dir=tmp_path / "out"), cache=cache)
    assert sorted(r.output.name for r in results) == ["b_mobilesr_x2_x2-1.png", "b_mobilesr_x2_x2.png"]


def test_recursive_keeps_the_folder_tree_under_output_dir(tmp_path, x2_model, cache):
    source = tmp_path / "trip"
    (source / "day1" / "beach").mkdir(parents=True)
    (source / ".thumbnails").mkdir()
    Image.fromarray(smooth_rgb(6, 6)).save(source / "top.png")
    Image.fromarray(smooth_rgb(6, 6)).save(source / "day1" / "a.jpg")
    Image.fromarray(smooth_rgb(6, 6)).save(source / "day1" / "beach" / "b.png")
    Image.fromarray(smooth_rgb(6, 6)).save(source / ".thumbnails" / "t.png")
    out = tmp_path / "out"
    results = run_job(Job(inputs=[source], models=[x2_model], output_dir=out, recursive=True), cache=cache)
    assert all(r.status == "ok" for r in results)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["day1/a_mobilesr_x2_x2.jpg", "day1/beach/b_mobilesr_x2_x2.png", "top_mobilesr_x2_x2.png"]
    flat = run_job(Job(inputs=[source], models=[x2_model], output_dir=tmp_path / "flat"), cache=cache)
    assert [r.input.name for r in flat] == ["top.png"]


def test_explicit_inputs_are_reported(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    items = collect_inputs([tmp_path / ".DS_Store", tmp_path / "missing.jpg", tmp_path / "empty"])
    assert [(r.status, r.error.split(": ", 1)[1]) for r in items] == [
        ("skipped", "hidden or system file, skipped"),
        ("failed", "no such file or folder"),
        ("failed", "no images found in this folder (use --recursive to include sub-folders)"),
    ]


def test_chained_models_multiply_the_scale_and_join_the_names(tmp_path, x2_model, cache):
    Image.fromarray(smooth_rgb(10, 6)).save(tmp_path / "c.png")
    [result] = run_job(Job(inputs=[tmp_path / "c.png"], models=[x2_model, x2_model]), cache=cache)
    assert result.output.name == "c_mobilesr_x2+mobilesr_x2_x4.png"
    assert Image.open(result.output).size == (40, 24)


def test_cancel_stops_between_tiles_and_leaves_nothing(tmp_path, x2_model, cache):
    for name in ("p1.png", "p2.png", "p3.png"):
        Image.fromarray(smooth_rgb(64, 48)).save(tmp_path / name)
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, TileProgress) and event.index == 2:
            cancel.set()  # as a user would, during the second photo

    with pytest.raises(Cancelled) as caught:
        run_job(Job(inputs=[tmp_path], models=[x2_model], tile=32), events=on_event, cancel=cancel, cache=cache)
    done = caught.value.results
    assert [(r.input.name, r.status) for r in done] == [("p1.png", "ok")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1.png", "p1_mobilesr_x2_x2.png", "p2.png", "p3.png"]
    assert not any(isinstance(e, JobFinished) for e in events)
    second = [e for e in events if isinstance(e, TileProgress) and e.index == 2]
    assert second[-1].done < second[-1].total  # it stopped between tiles, not at the end of the photo


def test_model_cache_loads_once_per_source_and_device(x2_model):
    cache = ModelCache()
    first = cache.get(x2_model, "cpu")
    assert cache.get(x2_model, "cpu") is first
    assert len(cache) == 1
    assert first.scale == 2 and first.arch == "mobilesr"


def test_model_problems_raise_before_any_file_is_touched(tmp_path):
    Image.fromarray(smooth_rgb(6, 6)).save(tmp_path / "d.png")
    with pytest.raises(ModelError, match="not-a-model.pth"):
        run_job(Job(inputs=[tmp_path], models=[str(tmp_path / "not-a-model.pth")]))
    with pytest.raises(ValueError, match="quality"):
        run_job(Job(inputs=[tmp_path], models=["x"], quality=0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png"]


def test_same_format_that_cannot_hold_the_result_gives_png_with_a_note(tmp_path, x2_model, cache):
    Image.fromarray(smooth_rgb(8200, 2)).save(tmp_path / "panorama.webp", lossless=True)
    [result] = run_job(Job(inputs=[tmp_path / "panorama.webp"], models=[x2_model], tile=4096), cache=cache)
    assert result.status == "ok", result.error
    assert result.output.name == "panorama_mobilesr_x2_x2.png"
    assert Image.open(result.output).format == "PNG" and Image.open(result.output).size == (16400, 4)
    assert result.notes == ["written as PNG: 16400×4 is too large for WEBP"]
