"""enhancer.preview.enhance_region: one region through the chain, with the bundled models on real files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from enhancer import Cancelled, ImageError
from enhancer.imageio import read_photo
from enhancer.pipeline import Job, ModelCache, load_chain, run_chain
from enhancer.preview import enhance_region, region_margin


def busy_photo(path: Path, width: int = 200, height: int = 150) -> Path:
    """Gradients plus strong noise: every pixel's output depends on its neighbours, so a cut shows."""
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), (xs * 3 + ys * 5) % 256], -1)
    Image.fromarray(np.clip(base + rng.integers(0, 60, size=base.shape), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache()


def full_result(job: Job, path: Path, cache: ModelCache) -> np.ndarray:
    models = load_chain(job, cache)
    return run_chain(job, read_photo(path).pixels, models)


def test_a_region_matches_the_full_run_there_and_the_margin_is_what_makes_it(tmp_path, cache):
    photo = busy_photo(tmp_path / "field.png")
    job = Job(inputs=[str(photo)], models=["own-mobilesr-x4"], device="cpu")
    box = (61, 40, 141, 100)
    result = enhance_region(job, photo, box, cache)
    assert result.box == box and result.scale == 4
    assert result.before.shape == (60, 80, 3) and result.after.shape == (240, 320, 3)
    models = load_chain(job, cache)
    assert result.margin == region_margin(models) > 0
    assert result.models[0].startswith("own-mobilesr-x4") and result.backend == "torch"

    full = full_result(job, photo, cache)
    expected = full[40 * 4 : 100 * 4, 61 * 4 : 141 * 4]
    error = np.abs(result.after - expected).max() * 255
    # The same region cut without any margin: its borders see reflected padding instead of the photo.
    bare = run_chain(job, np.ascontiguousarray(read_photo(photo).pixels[40:100, 61:141]), models)
    bare_error = np.abs(bare - expected).max() * 255
    print(f"\nregion vs full run: max {error:.3f}/255 with the margin, {bare_error:.1f}/255 without")
    assert error <= 2.0  # the tiler's own goal against a whole-image pass
    assert bare_error > 10 * max(error, 0.1)
    np.testing.assert_array_equal(result.before, read_photo(photo).pixels[40:100, 61:141])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field.png"]  # a preview writes nothing


def test_a_box_past_the_edge_is_clipped_and_still_matches(tmp_path, cache):
    photo = busy_photo(tmp_path / "corner.png", 120, 90)
    job = Job(inputs=[str(photo)], models=["own-espcn-x2"], device="cpu")
    result = enhance_region(job, photo, (90, -20, 400, 30), cache)
    assert result.box == (90, 0, 120, 30)
    assert result.after.shape == (60, 60, 3)
    full = full_result(job, photo, cache)
    assert np.abs(result.after - full[0:60, 180:240]).max() * 255 <= 2.0


def test_two_models_on_one_read_photo_for_an_a_b(tmp_path, cache):
    photo_path = busy_photo(tmp_path / "ab.png", 96, 72)
    photo = read_photo(photo_path)
    box = (20, 10, 60, 50)
    a = enhance_region(Job(inputs=[str(photo_path)], models=["own-espcn-x4"], device="cpu"), photo, box, cache)
    b = enhance_region(Job(inputs=[str(photo_path)], models=["own-mobilesr-x4"], device="cpu"), photo, box, cache)
    assert a.after.shape == b.after.shape == (160, 160, 3)
    np.testing.assert_array_equal(a.before, b.before)
    assert np.abs(a.after - b.after).mean() > 1 / 255  # two different networks, two different results


def test_a_chain_runs_in_order_and_multiplies_the_scales(tmp_path, cache):
    photo = busy_photo(tmp_path / "chain.png", 64, 48)
    job = Job(inputs=[str(photo)], models=["own-espcn-x2", "own-espcn-x2"], device="cpu")
    result = enhance_region(job, photo, (16, 8, 40, 32), cache)
    assert result.scale == 4 and result.after.shape == (96, 96, 3)
    full = full_result(job, photo, cache)
    assert np.abs(result.after - full[32:128, 64:160]).max() * 255 <= 2.0


def test_progress_counts_tiles_and_cancel_stops_between_them(tmp_path, cache):
    photo = busy_photo(tmp_path / "stop.png", 160, 120)
    job = Job(inputs=[str(photo)], models=["own-mobilesr-x4"], device="cpu", tile=16)
    seen: list[tuple[int, int]] = []
    enhance_region(job, photo, (20, 20, 100, 80), cache, progress=lambda done, total: seen.append((done, total)))
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1]
    stop = threading.Event()

    def stop_at_first(done: int, total: int) -> None:
        stop.set()

    with pytest.raises(Cancelled):
        enhance_region(job, photo, (20, 20, 100, 80), cache, cancel=stop, progress=stop_at_first)


def test_bad_regions_and_files_get_errors_that_name_the_file(tmp_path, cache):
    photo = busy_photo(tmp_path / "small.png", 40, 30)
    job = Job(inputs=[str(photo)], models=["own-espcn-x2"], device="cpu")
    with pytest.raises(ValueError, match=r"small\.png.*does not overlap the 40×30 photo"):
        enhance_region(job, photo, (50, 0, 80, 20), cache)
    with pytest.raises(ValueError, match=r"small\.png.*four numbers"):
        enhance_region(job, photo, (1, 2, 3), cache)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(ImageError, match=r"broken\.png"):
        enhance_region(job, broken, (0, 0, 10, 10), cache)


def test_the_jobs_output_size_and_format_are_not_applied(tmp_path, cache):
    photo = busy_photo(tmp_path / "sized.png", 80, 60)
    job = Job(inputs=[str(photo)], models=["own-espcn-x4"], device="cpu", output_size="w100", format="jpg")
    result = enhance_region(job, photo, (10, 10, 30, 20), cache)
    assert result.scale == 4 and result.after.shape == (40, 80, 3)  # the network's own pixels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sized.png"]
