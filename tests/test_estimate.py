"""The time estimate on the bundled models (real networks through the real tiler) and real files in tmp dirs."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from enhancer import estimate
from enhancer.cli import main
from enhancer.errors import Cancelled, ImageError
from enhancer.estimate import Estimate, estimate_job, estimate_photo, format_duration, lighter_alternative
from enhancer.pipeline import FileStarted, Job, ModelCache, TileProgress, run_job
from photo_corpus import ORIENTATION, smooth_rgb

MOBILESR = "own-mobilesr-x4"  # bundled with the app: always installed
ESPCN_X2 = "own-espcn-x2"
ESPCN_X4 = "own-espcn-x4"


@pytest.fixture(scope="module")
def cache():
    return ModelCache()


def photo(path, width, height, seed=0, **save):
    Image.fromarray(smooth_rgb(width, height, seed)).save(path, **save)
    return path


def tile_totals(events) -> dict[int, int]:
    """The last tile total each file reported: what the run really computed."""
    totals: dict[int, int] = {}
    for event in events:
        if isinstance(event, TileProgress):
            totals[event.index] = event.total
    return totals


def test_estimate_is_within_a_factor_of_two_of_the_real_run(tmp_path, cache):
    # MobileSR x4 on 256×192 in 64-pixel tiles, on one thread (the thread count follows the machine's load
    # otherwise, which would compare two different runs): 20 tiles, a few seconds.
    job = Job(inputs=[photo(tmp_path / "a.png", 256, 192)], models=[MOBILESR], output_dir=tmp_path / "out", tile=64,
              threads=1, estimate=True)
    events = []
    [result] = run_job(job, events=events.append, cache=cache)

    assert result.status == "ok", result.error
    [started] = [e for e in events if isinstance(e, FileStarted)]
    assert started.estimate_seconds is not None and result.estimate_seconds == started.estimate_seconds
    ratio = started.estimate_seconds / result.seconds
    assert 0.5 <= ratio <= 2.0, (started.estimate_seconds, result.seconds)
    # The whole-job estimate counts the tiles the run computed, and is now cheap (the tile time is remembered).
    whole = estimate_job(job, cache)
    assert whole.tiles == tile_totals(events)[1] == 20
    assert whole.device == "the CPU" and whole.text.endswith(" on the CPU")
    assert 0.5 <= whole.seconds / result.seconds <= 2.0


def test_tile_counts_of_a_chain_over_a_batch_match_the_run(tmp_path, cache):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "wide.png", 72, 40)
    # Stored 40 wide and 64 high, shown turned a quarter (orientation 6): the run tiles 64×40.
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    photo(folder / "turned.jpg", 40, 64, seed=1, exif=exif.tobytes(), quality=92)
    Image.fromarray(smooth_rgb(30, 50, 2)[..., 0]).save(folder / "gray.png")
    (folder / "broken.jpg").write_text("not an image")
    job = Job(inputs=[folder], models=[ESPCN_X2, MOBILESR], output_dir=tmp_path / "out", tile=32, threads=1)

    predicted = estimate_job(job, cache)
    events = []
    results = run_job(job, events=events.append, cache=cache)

    assert sorted(r.status for r in results) == ["failed", "ok", "ok", "ok"]
    totals = tile_totals(events)
    assert len(totals) == 3
    assert predicted.tiles == sum(totals.values())
    # The later model sees the enlarged image: far more tiles than the first model's.
    first_only = estimate_job(Job(inputs=[folder], models=[ESPCN_X2], tile=32, threads=1), cache)
    assert first_only.tiles < predicted.tiles / 3
    assert predicted.seconds > first_only.seconds > 0


def test_one_photo_by_its_size(cache):
    job = Job(inputs=["unused"], models=[MOBILESR], tile=64, threads=1)
    small = estimate_photo(job, 64, 64, cache)
    large = estimate_photo(job, 512, 384, cache)

    assert small.tiles == 1 and large.tiles > 20
    assert large.seconds > 5 * small.seconds
    with pytest.raises(ValueError, match="positive"):
        estimate_photo(job, 0, 10, cache)


def test_cancel_stops_the_estimate(tmp_path, cache):
    stop = threading.Event()
    stop.set()
    job = Job(inputs=[photo(tmp_path / "a.png", 64, 48)], models=[MOBILESR])
    with pytest.raises(Cancelled):
        estimate_job(job, cache, cancel=stop)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.2, "under 1 s"),
        (4.4, "about 4 s"),
        (12, "about 10 s"),
        (40, "about 40 s"),
        (43, "about 45 s"),
        (58, "about 1 min"),
        (100, "about 2 min"),
        (360, "about 6 min"),
        (3540, "about 59 min"),
        (3600, "about 1 h"),
        (4200, "about 1 h 10 min"),
        (2 * 3600 + 61 * 60, "about 3 h"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_refuses_what_is_not_a_duration():
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            format_duration(bad)


def test_estimate_text_names_the_device():
    assert Estimate(400, "the CPU", 12).text == "about 7 min on the CPU"
    assert Estimate(4200, "an NVIDIA H200", 12).text == "about 1 h 10 min on an NVIDIA H200"
    assert estimate._article("NVIDIA H200") == "an" and estimate._article("GeForce RTX 4090") == "a"


def test_a_long_job_is_offered_the_lighter_model_of_its_task(tmp_path, cache):
    job = Job(inputs=[photo(tmp_path / "a.png", 128, 96)], models=[MOBILESR], tile=64, threads=1)
    current = estimate_job(job, cache)

    # "Long" made tiny, so that this small photo counts as a long job.
    offer = lighter_alternative(job, cache, long_seconds=0.01)

    assert offer is not None
    model_id, lighter = offer
    assert model_id == ESPCN_X4  # the same task (sr) and scale (x4), installed (bundled)
    assert lighter.seconds < current.seconds and lighter.device == "the CPU"
    # The offer is what the job would estimate with that model.
    again = estimate_job(Job(inputs=job.inputs, models=[ESPCN_X4], tile=64, threads=1), cache)
    assert lighter.tiles == again.tiles
    assert 0.5 <= lighter.seconds / again.seconds <= 2.0


def test_no_offer_when_the_job_is_short_or_nothing_is_lighter(tmp_path, cache):
    image = photo(tmp_path / "a.png", 128, 96)
    assert lighter_alternative(Job(inputs=[image], models=[MOBILESR], threads=1), cache, long_seconds=1e6) is None
    # The lightest installed x4 model: nothing of its task and scale is lighter.
    assert lighter_alternative(Job(inputs=[image], models=[ESPCN_X4], threads=1), cache, long_seconds=0.0) is None


def test_the_cli_prints_the_estimate_of_each_photo(tmp_path, capsys):
    photo(tmp_path / "one.png", 48, 32)
    photo(tmp_path / "two.png", 40, 40, seed=1)

    code = main([str(tmp_path / "one.png"), str(tmp_path / "two.png"), "--model", ESPCN_X2, "--output-dir",
                 str(tmp_path / "out"), "--threads", "1"])

    assert code == 0
    err = capsys.readouterr().err
    assert "[1/2] one.png: " in err and "[2/2] two.png: " in err
    line = next(line for line in err.splitlines() if "[1/2] one.png:" in line)
    assert line.rstrip().endswith(" on the CPU") and ("about" in line or "under 1 s" in line)


def test_the_cli_json_has_the_estimate_and_no_estimate_leaves_it_out(tmp_path, capsys):
    photo(tmp_path / "one.png", 48, 32)

    assert main([str(tmp_path / "one.png"), "--model", ESPCN_X2, "--output-dir", str(tmp_path / "a"), "--json"]) == 0
    captured = capsys.readouterr()
    [entry] = json.loads(captured.out)["results"]
    assert isinstance(entry["estimate_seconds"], float) and entry["estimate_seconds"] > 0
    assert "[1/1] one.png: " in captured.err

    assert main([str(tmp_path / "one.png"), "--model", ESPCN_X2, "--output-dir", str(tmp_path / "b"), "--json",
                 "--no-estimate"]) == 0
    captured = capsys.readouterr()
    [entry] = json.loads(captured.out)["results"]
    assert entry["estimate_seconds"] is None and "[1/1]" not in captured.err


def test_reading_a_header_gives_the_shown_size_and_channels(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    photo(tmp_path / "turned.jpg", 30, 20, exif=exif.tobytes())
    Image.fromarray(np.zeros((5, 7, 4), np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "gray.png")
    (tmp_path / "text.png").write_text("hello")

    assert estimate.read_header(tmp_path / "turned.jpg") == (20, 30, 3, "JPEG")
    assert estimate.read_header(tmp_path / "rgba.png") == (7, 5, 4, "PNG")
    assert estimate.read_header(tmp_path / "gray.png") == (7, 5, 1, "PNG")
    assert estimate.read_header(tmp_path / "text.png") is None


def test_a_heavy_tile_is_timed_on_a_probe_and_a_light_one_itself(monkeypatch):
    timed = []
    real = estimate._pass_runner

    def recording(model, runner, device, plan, shape, channels):
        timed.append(shape)
        return real(model, runner, device, plan, shape, channels)

    monkeypatch.setattr(estimate, "_pass_runner", recording)
    monkeypatch.setattr(estimate, "_pass_seconds", {})
    cache = ModelCache()  # a fresh model: nothing timed before
    job = Job(inputs=["unused"], models=[MOBILESR], tile="auto", threads=1)

    # One 300×400 tile. With no time allowed for a rung, only the first probe (128²) is timed and scaled by area.
    monkeypatch.setattr(estimate, "RUNG_LIMIT_S", 0.0)
    heavy = estimate_photo(job, 400, 300, cache)
    assert timed == [(128, 128)] and heavy.tiles == 1 and heavy.seconds > 0

    # A tile within the limit is timed itself (after the probe that says so).
    timed.clear()
    monkeypatch.setattr(estimate, "_pass_seconds", {})
    monkeypatch.setattr(estimate, "RUNG_LIMIT_S", 1e6)
    light = estimate_photo(job, 400, 300, cache)
    assert timed == [(128, 128), (300, 400)]
    # The probe's time per pixel is higher than a large tile's, never far off.
    assert 0.5 <= heavy.seconds / light.seconds <= 4.0


def test_the_memory_plan_bounds_the_tiles_as_in_the_run(tmp_path, monkeypatch, cache):
    image = photo(tmp_path / "a.png", 256, 192)
    job = Job(inputs=[image], models=[MOBILESR], output_dir=tmp_path / "out", threads=1)
    # Plenty of memory: the automatic tile is the whole photo.
    assert estimate_job(job, cache).tiles == 1

    monkeypatch.setenv("ENHANCER_MEMORY_BUDGET", "100M")  # read by enhancer.memory_budget at each photo
    predicted = estimate_job(job, cache)
    events = []
    [result] = run_job(job, events=events.append, cache=cache)
    assert result.status == "ok", result.error
    assert predicted.tiles == tile_totals(events)[1] > 1

    # Too little for even the smallest tile: the run refuses the photo, the estimate counts nothing for it.
    monkeypatch.setenv("ENHANCER_MEMORY_BUDGET", "1M")
    assert estimate_job(job, cache).tiles == 0
    with pytest.raises(ImageError, match="memory"):
        estimate_photo(job, 256, 192, cache)
