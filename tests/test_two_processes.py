"""Two `enhancer` processes on the same 20 photos with the same options, at the same time (issue 18): with
--skip-existing they write 20 files between them, each once, and every file decodes. (Without --skip-existing they
write 40 distinct files: tests/test_hostile.py, test_two_processes_on_the_same_photos_write_distinct_files_...)
Real subprocesses of the CLI, the bundled tiny ESPCN x2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import ROOT

PHOTOS = 20


def _photos(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(PHOTOS):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"photo{i:02d}.png")
    return folder


def _counts(stderr: str) -> tuple[int, int]:
    match = re.search(r"enhancer: (\d+) written, (\d+) skipped, 0 failed", stderr)
    assert match, stderr
    return int(match.group(1)), int(match.group(2))


def test_two_processes_with_skip_existing_write_each_photo_once(tmp_path):
    inputs = _photos(tmp_path / "in")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "enhancer", str(inputs), "--model", "own-espcn-x2", "--output-dir", str(out),
               "--skip-existing", "--threads", "1"]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=os.environ.copy()) for _ in range(2)]
    counts = []
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        counts.append(_counts(stderr))
    written = sorted(out.iterdir())
    print("written, skipped per process:", counts)
    assert [p.name for p in written] == [f"photo{i:02d}_own-espcn-x2_x2.png" for i in range(PHOTOS)]
    assert sum(w for w, _ in counts) == PHOTOS and sum(s for _, s in counts) == PHOTOS
    for path in written:
        with Image.open(path) as im:
            im.load()
            assert im.size == (64, 48)
