"""Temporary files left by a crash (issue 18): every one carries `.enhancer-`, and those over a day old are removed
when the CLI starts (model store, cache) and when a job starts writing into an output folder; nothing else is
touched. Real files, aged with os.utime."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import ROOT
from enhancer import atomic, download, store
from enhancer.atomic import TEMP_PREFIX, AtomicFile, sweep_stale_temp
from enhancer.imageio import Photo, write_photo

DAY = 86400


def _aged(path: Path, seconds: float, data: bytes = b"left by a crash") -> Path:
    path.write_bytes(data)
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_only_stale_temporary_files_of_the_app_are_removed(tmp_path):
    stale = _aged(tmp_path / ".enhancer-photo_x4.png.k2j3h4.part", 2 * DAY)
    stale_encoder = _aged(tmp_path / "..enhancer-job-3.0.part.png.abc.part", 2 * DAY)  # a cluster write's own temp
    young = _aged(tmp_path / ".enhancer-photo_x4.png.q9w8e7.part", 60)  # a job that runs now
    lock = _aged(tmp_path / ".enhancer-mobilesr-x4.lock", 2 * DAY)  # may be held by a running download
    user_hidden = _aged(tmp_path / ".photo.png.part", 2 * DAY)  # not ours
    user_file = _aged(tmp_path / "enhancer-notes.txt", 2 * DAY)
    folder = tmp_path / ".enhancer-folder"
    folder.mkdir()
    inside = _aged(folder / ".enhancer-deeper.part", 2 * DAY)  # not below the folder swept
    target = _aged(tmp_path / "target.png", 2 * DAY)
    link = tmp_path / ".enhancer-link.part"
    link.symlink_to(target)
    os.utime(link, (time.time() - 2 * DAY,) * 2, follow_symlinks=False)

    removed = sweep_stale_temp(tmp_path)

    assert sorted(p.name for p in removed) == sorted([stale.name, stale_encoder.name])
    assert not stale.exists() and not stale_encoder.exists()
    for kept in (young, lock, user_hidden, user_file, inside, target, folder):
        assert kept.exists(), kept
    assert link.is_symlink() and target.exists()


def test_the_age_is_a_parameter_and_a_missing_folder_is_no_error(tmp_path):
    hour_old = _aged(tmp_path / ".enhancer-a.tmp", 3600)
    assert sweep_stale_temp(tmp_path) == []
    assert sweep_stale_temp(tmp_path, older_than_s=1800) == [hour_old]
    assert sweep_stale_temp(tmp_path / "missing") == []


def test_every_temporary_file_the_engine_makes_carries_the_prefix(tmp_path, monkeypatch):
    seen: list[str] = []
    real_mkstemp = atomic.tempfile.mkstemp

    def recording_mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        seen.append(Path(name).name)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", recording_mkstemp)
    write_photo(Photo(pixels=np.full((4, 4, 3), 0.5, np.float32)), tmp_path / "out.png")  # an output
    with AtomicFile(tmp_path / "settings.json", "w") as fh:  # settings, the store index
        fh.write("{}")
    import torch
    from enhancer.archs.mobilesr import MobileSR

    weights = tmp_path / "tiny.pth"
    torch.save(MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict(), weights)
    store.import_model(weights)  # an import's copy, and the store index it updates
    assert len(seen) >= 3 and all(name.startswith(TEMP_PREFIX) for name in seen), seen
    target = store.model_store() / "mobilesr_x4.pth"
    assert download.part_path(target).name.startswith(TEMP_PREFIX)  # a download's bytes so far
    assert 'f"{TEMP_PREFIX}checking-{target.name}"' in Path(download.__file__).read_text()  # a download under check


def test_a_job_sweeps_its_output_folder_but_not_the_input_folder(tmp_path):
    from enhancer.pipeline import Job, run_job

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(inputs / "a.png")
    stale_out = _aged(out / ".enhancer-a_x2.png.zzzz.part", 3 * DAY)
    young_out = _aged(out / ".enhancer-b_x2.png.yyyy.part", 10)
    stale_in = _aged(inputs / ".enhancer-a.png.xxxx.part", 3 * DAY)  # the job only reads this folder
    [result] = run_job(Job(inputs=[inputs], models=["own-espcn-x2"], output_dir=out, threads=1))
    assert result.status == "ok", result.error
    assert not stale_out.exists() and young_out.exists() and stale_in.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([young_out.name, result.output.name])


def test_the_cli_sweeps_the_model_store_when_it_starts(tmp_path, isolated_data_dir):
    models = store.model_store()
    stale_part = _aged(models / ".enhancer-mobilesr_x4.pth.part", 2 * DAY)
    stale_import = _aged(models / ".enhancer-import-abcd.tmp", 2 * DAY)
    young_part = _aged(models / ".enhancer-swinir.pth.part", 5)
    run = subprocess.run([sys.executable, "-m", "enhancer", "--list-models"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    assert not stale_part.exists() and not stale_import.exists() and young_part.exists()
