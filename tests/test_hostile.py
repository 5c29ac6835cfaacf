"""Hostile and unlucky inputs (issue 18): model and image files that lie about their size, damaged files, two writers
racing for one output name, and the privacy of what is copied into an output. The hostile files come from
tests/hostile_corpus.py; the CLI runs under a 4 GiB address-space limit, so a guard that fails is an exit, not a
machine brought to its knees."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from enhancer import ModelError
from enhancer.archs import get_spec
from enhancer.archs.mobilesr import MobileSR
from enhancer.checkpoints import check_declared_parameters, load_model, model_from_state_dict, read_state_dict
from enhancer.errors import ImageError
from enhancer.imageio import read_photo
from hostile_corpus import damaged_png, gray_alpha_tiff, huge_png16, stride0_mobilesr, write_corpus, zip_deflated_zeros

MEMORY_LIMIT = 4 << 30


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def enhancer(*args: str, timeout: float = 300, limit: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "enhancer", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=os.environ.copy(), preexec_fn=_limit_memory if limit else None,
    )


def _one_line_error(run: subprocess.CompletedProcess, path: Path) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    assert errors and all(str(path) in line for line in errors if path.name in line), run.stderr
    assert any(str(path) in line for line in errors), run.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("hostile"))


# ------------------------------------------------------------------------------------------------------ model files


def test_stride0_checkpoint_is_refused_before_the_network_is_built(corpus):
    path = corpus["stride0-mobilesr.pth"]
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(ModelError) as info:
        load_model(path, device="cpu")
    assert str(path) in str(info.value) and "refused" in str(info.value)


def test_zip_deflated_checkpoint_is_refused_before_it_inflates(corpus):
    path = corpus["zip-deflated-zeros.pth"]
    with pytest.raises(ModelError) as info:
        read_state_dict(path)
    assert str(path) in str(info.value) and "zip bomb" in str(info.value)


def test_a_real_zip_checkpoint_still_loads(tmp_path):
    import torch

    path = tmp_path / "small.pth"
    state = MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict()
    torch.save(state, path)
    model = load_model(path, device="cpu")
    assert model.arch == "mobilesr" and model.scale == 2


def test_more_weights_than_the_network_may_have_are_refused_before_building():
    state = MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict()
    spec = dataclasses.replace(get_spec("mobilesr"), max_parameters=1000)
    with pytest.raises(ModelError) as info:
        check_declared_parameters(state, spec, "tiny.pth")
    assert "tiny.pth" in str(info.value) and "1,000" in str(info.value)
    assert get_spec("mobilesr").max_parameters >= 10_000_000  # the released models pass


def test_stride0_state_dict_in_memory_is_refused_too():
    import torch

    state = {k: torch.zeros(1).expand(*v.shape) if v.ndim else v
             for k, v in MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict().items()}
    with pytest.raises(ModelError, match="declares"):
        model_from_state_dict(state, name="in-memory")


@pytest.mark.parametrize("name", ["stride0-mobilesr.pth", "zip-deflated-zeros.pth"])
def test_cli_import_of_a_hostile_model_is_one_line_and_exit_1(corpus, name):
    path = corpus[name]
    run = enhancer("--import", path)
    assert run.returncode == 1, run.stderr
    _one_line_error(run, path)


def test_cli_model_of_a_hostile_file_is_one_line_and_exit_1_or_2(corpus, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    path = corpus["stride0-mobilesr.pth"]
    run = enhancer(photo, "--model", path, "--output-dir", tmp_path / "out")
    assert run.returncode in (1, 2), run.stderr
    _one_line_error(run, path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------------------------ images


def test_tifffile_path_applies_the_size_guard(tmp_path):
    path = gray_alpha_tiff(tmp_path / "bomb.tif")
    assert path.stat().st_size < 7 * 1024 * 1024
    with pytest.raises(ImageError) as info:
        read_photo(path)
    assert str(path) in str(info.value) and "too large" in str(info.value)


def test_pypng_path_applies_the_size_guard(tmp_path, monkeypatch):
    from enhancer import imageio

    path = huge_png16(tmp_path / "bomb.png", side=20000)
    with pytest.raises(ImageError, match="too large"):
        imageio._read_png16(path)  # the decoder path itself, not only Pillow's guard in front of it


def test_size_guard_follows_pillows_limit(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ImageError, match="too large"):
        read_photo(path)


def test_damaged_png_is_an_error_not_an_output(tmp_path):
    path = damaged_png(tmp_path / "damaged.png")
    with pytest.raises(ImageError) as info:
        read_photo(path)
    assert str(path) in str(info.value) and "damaged" in str(info.value)


def test_cli_batch_survives_every_hostile_image_and_goes_on(corpus, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("gray-alpha-16bit-40000.tif", "png16-huge.png", "damaged-idat.png"):
        (inputs / name).write_bytes(corpus[name].read_bytes())
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(inputs / "valid.png")
    before = sorted(p.name for p in inputs.iterdir())
    out = tmp_path / "out"
    run = enhancer(inputs, "--model", "own-espcn-x2", "--output-dir", out)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    assert len(errors) == 3, run.stderr
    assert sorted(p.name for p in inputs.iterdir()) == before
    assert [p.name for p in out.iterdir()] == ["valid_own-espcn-x2_x2.png"]
