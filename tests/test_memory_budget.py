"""Peak memory of a photo's job (issue 18): estimated before the photo is enhanced, set against a budget
(`ENHANCER_MEMORY_BUDGET` here, so that small photos can stand for huge ones); a result that does not fit in memory
goes through a disk buffer with the same pixels, and a photo that does not fit even so is refused with a message
that names it and how much it needs, while the batch goes on. Real model (the bundled ESPCN x2), real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from enhancer import enhance, load_model
from enhancer.memory_budget import (
    BUDGET_ENV, DiskBuffer, MemoryBudgetError, address_space_room, memory_budget, parse_size, plan_photo,
    system_available_bytes,
)
from enhancer.pipeline import Job, ModelCache, run_job

TILE = 32  # a fixed tile, so that runs under different budgets cut the photo the same way
MODEL = "own-espcn-x2"


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL, device="cpu")


def _photo(path: Path, width: int, height: int, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC).save(path)
    return path


def _plan(path: Path, model, width: int, height: int, budget: int, folders=()):
    return plan_photo(path, [model], (height, width), 3, tile=TILE, budget=budget, buffer_folders=folders)


def _decoded(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_sizes_and_the_budget_from_the_environment(monkeypatch):
    assert parse_size("1234") == 1234 and parse_size("600M") == 600 << 20 and parse_size("1.5GiB") == 3 << 29
    with pytest.raises(ValueError):
        parse_size("lots")
    monkeypatch.setenv(BUDGET_ENV, "300M")
    assert memory_budget() == 300 << 20
    monkeypatch.delenv(BUDGET_ENV)
    assert 0 < memory_budget() <= system_available_bytes()
    room = address_space_room()
    assert room is None or room > 0


def test_the_estimate_counts_photo_result_tile_and_writing(tmp_path, model):
    plan = _plan(tmp_path / "p.png", model, 256, 192, budget=1 << 40)
    [stage] = plan.stages
    assert stage.output_bytes == 512 * 384 * 3 * 4 and plan.photo_bytes == 256 * 192 * 3 * 4
    assert stage.luma_bytes == 256 * 192 * 4  # ESPCN runs on Y
    assert stage.tile_side == TILE + 2 * 16  # the tile and its context
    floats = model.spec.floats_per_pixel(model.config, 2)
    assert stage.tile_bytes >= floats * 4 * stage.tile_side ** 2  # the network's floats per pixel, at fp32
    assert plan.in_memory_peak - plan.streamed_peak >= stage.output_bytes
    assert not plan.streamed


def test_enhance_into_a_disk_buffer_gives_the_same_pixels(tmp_path, model):
    pixels = _decoded(_photo(tmp_path / "p.png", 96, 64)).astype(np.float32) / 255.0
    in_memory = enhance(pixels, model, tile=TILE, threads=1)
    buffer = DiskBuffer(tmp_path, in_memory.shape)
    assert isinstance(buffer.array, np.memmap)
    if os.name != "nt":
        assert not buffer.path.exists()  # unlinked at once: a kill -9 leaves nothing
    streamed = enhance(pixels, model, tile=TILE, threads=1, out=buffer.array)
    assert streamed is buffer.array
    np.testing.assert_array_equal(np.asarray(streamed), in_memory)


def test_a_result_over_the_budget_goes_through_a_disk_buffer_with_the_same_pixels(tmp_path, model, monkeypatch):
    (tmp_path / "in").mkdir()
    source = _photo(tmp_path / "in" / "big.png", 256, 192)
    cache = ModelCache()
    job = dict(inputs=[source], models=[MODEL], tile=TILE, threads=1)
    [plain] = run_job(Job(**job, output_dir=tmp_path / "plain"), cache=cache)
    assert plain.status == "ok", plain.error
    assert not any("disk buffer" in note for note in plain.notes)

    plan = _plan(source, model, 256, 192, budget=1 << 40)
    between = (plan.streamed_peak + plan.in_memory_peak) // 2  # the result alone does not fit
    monkeypatch.setenv(BUDGET_ENV, str(between))
    [streamed] = run_job(Job(**job, output_dir=tmp_path / "streamed"), cache=cache)
    assert streamed.status == "ok", streamed.error
    assert any("disk buffer" in note for note in streamed.notes), streamed.notes
    np.testing.assert_array_equal(_decoded(streamed.output), _decoded(plain.output))
    assert [p.name for p in (tmp_path / "streamed").iterdir()] == [streamed.output.name]  # no buffer file left


def test_a_budget_too_small_even_for_the_tiles_is_a_clear_error_and_the_batch_goes_on(tmp_path, model, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    big = _photo(inputs / "a_big.png", 256, 192)
    small = _photo(inputs / "b_small.png", 16, 12, seed=2)
    need_big = _plan(big, model, 256, 192, budget=1 << 40).streamed_peak
    need_small = _plan(small, model, 16, 12, budget=1 << 40).in_memory_peak
    assert need_small < need_big
    monkeypatch.setenv(BUDGET_ENV, str((need_small + need_big) // 2))
    failed, written = run_job(Job(inputs=[inputs], models=[MODEL], tile=TILE, threads=1, output_dir=tmp_path / "out"))
    assert failed.status == "failed" and written.status == "ok", (failed.error, written.error)
    print(failed.error)
    assert failed.error.startswith(f"{big}: needs about ") and "is available" in failed.error
    assert [p.name for p in (tmp_path / "out").iterdir()] == [written.output.name]


def test_without_a_folder_for_the_buffer_the_photo_is_refused(tmp_path, model):
    plan = _plan(tmp_path / "p.png", model, 256, 192, budget=1 << 40)
    between = (plan.streamed_peak + plan.in_memory_peak) // 2
    with pytest.raises(MemoryBudgetError, match="disk buffer .* does not fit"):
        _plan(tmp_path / "p.png", model, 256, 192, budget=between, folders=())
    assert _plan(tmp_path / "p.png", model, 256, 192, budget=between, folders=(tmp_path,)).streamed


def test_the_cli_refuses_a_photo_over_the_budget_in_one_line_and_writes_the_rest(tmp_path, model):
    inputs = tmp_path / "in"
    inputs.mkdir()
    big = _photo(inputs / "a_big.png", 256, 192)
    small = _photo(inputs / "b_small.png", 16, 12, seed=2)
    need_big = _plan(big, model, 256, 192, budget=1 << 40).streamed_peak
    need_small = _plan(small, model, 16, 12, budget=1 << 40).in_memory_peak
    env = {**os.environ, BUDGET_ENV: str((need_small + need_big) // 2)}
    run = subprocess.run(
        [sys.executable, "-m", "enhancer", str(inputs), "--model", MODEL, "--tile", str(TILE), "--threads", "1",
         "--output-dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    assert len(errors) == 1 and str(big) in errors[0] and "needs about" in errors[0], run.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"b_small_{MODEL}_x2.png"]


def test_automatic_tiles_stay_within_the_tile_budget(model):
    from enhancer.tiling import context_for, plan_run, tile_host_bytes

    free = plan_run(model, (2000, 3000), 1, "auto")
    budget = 4 << 20
    bounded = plan_run(model, (2000, 3000), 1, "auto", host_budget=budget)
    side = bounded.side + 2 * context_for(model)
    print(f"automatic tile: {free.side} px free, {bounded.side} px within {budget >> 20} MiB")
    assert bounded.side < free.side
    assert tile_host_bytes(model, (side, side), 3, "fp32") <= budget
