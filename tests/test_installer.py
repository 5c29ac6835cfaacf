"""The installer's own pieces that run without building a bundle: the icons, the self-test, the frozen entry points.

The bundle itself is built and checked by `.ci/run` (make bundle, then installer/check_bundle.py).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import MOBILESR_WEIGHTS, ROOT, need_shared

sys.path.insert(0, str(ROOT / "installer"))
import make_icons  # noqa: E402

from enhancer import selftest  # noqa: E402


def _draw_source(path: Path, size: tuple[int, int]) -> Path:
    pixels = np.zeros((size[1], size[0], 4), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    pixels[..., 2] = 200
    pixels[..., 3] = 255
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def test_icons_for_every_platform_from_one_source(tmp_path):
    source = _draw_source(tmp_path / "icon.png", (600, 400))  # not square: centred on a transparent square
    written = make_icons.make_icons(source, tmp_path / "icons")
    assert sorted(p.name for p in written) == ["enhancer-512.png", "enhancer.icns", "enhancer.ico", "enhancer.png"]

    with Image.open(tmp_path / "icons" / "enhancer.ico") as ico:
        assert ico.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(tmp_path / "icons" / "enhancer.icns") as icns:
        assert icns.format == "ICNS"
        assert max(icns.info["sizes"]) >= (512, 512, 2)  # the Retina 1024 px version is there
    with Image.open(tmp_path / "icons" / "enhancer.png") as png:
        assert png.size == (256, 256)
        png = png.convert("RGBA")
        assert png.getpixel((128, 5))[3] == 0  # the padding of the non-square source is transparent
        assert png.getpixel((128, 128))[3] == 255


def test_icon_source_problems_are_named(tmp_path):
    with pytest.raises(make_icons.IconError, match="missing.png: icon source image not found"):
        make_icons.make_icons(tmp_path / "missing.png", tmp_path / "icons")
    small = _draw_source(tmp_path / "small.png", (64, 64))
    with pytest.raises(make_icons.IconError, match="small.png: 64x64 is too small"):
        make_icons.make_icons(small, tmp_path / "icons")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    assert make_icons.main(["--source", str(text), "--out", str(tmp_path / "icons")]) == 1


def test_the_real_project_icon_makes_icons(tmp_path):
    source = ROOT / "resources" / "icon.png"
    if not source.is_file():
        pytest.skip("resources/icon.png is not drawn yet")
    assert len(make_icons.make_icons(source, tmp_path)) == 4


def _save(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_self_test_checks_accept_an_upscale_and_refuse_bad_results(tmp_path):
    picture = selftest.make_test_picture()
    assert picture.shape == (selftest.TEST_HEIGHT, selftest.TEST_WIDTH, 3)
    assert picture.std() > 0.1  # edges, gradients and colour: a real test picture
    scale = 4
    size = (selftest.TEST_WIDTH * scale, selftest.TEST_HEIGHT * scale)
    upscale = Image.fromarray((picture * 255 + 0.5).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    good = tmp_path / "good.png"
    upscale.save(good)
    assert "correlation" in selftest._check_output(picture, good, scale)

    with pytest.raises(selftest.SelfTestFailure, match="size 52x36, expected 208x144"):
        selftest._check_output(picture, _save(picture, tmp_path / "small.png"), scale)
    with pytest.raises(selftest.SelfTestFailure, match="blank"):
        selftest._check_output(picture, _save(np.full((size[1], size[0], 3), 0.5), tmp_path / "gray.png"), scale)
    upscaled = np.asarray(upscale, dtype=np.float32) / 255
    with pytest.raises(selftest.SelfTestFailure, match="does not look like the input"):
        selftest._check_output(picture, _save(upscaled[::-1, ::-1], tmp_path / "rotated.png"), scale)
    with pytest.raises(selftest.SelfTestFailure, match="does not look like the input"):
        selftest._check_output(picture, _save(upscaled[..., ::-1], tmp_path / "bgr.png"), scale)


def test_self_test_without_a_default_model_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv(selftest.MODEL_OVERRIDE_ENV, raising=False)
    # An app folder whose catalog lists no default: what a build without the trained model looks like.
    app = tmp_path / "app" / "models"
    app.mkdir(parents=True)
    (app / "catalog.toml").write_text("")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "app"), raising=False)
    out = io.StringIO()
    assert selftest.run_self_test(out) == 1
    line = out.getvalue().strip()
    assert line.startswith("self-test: FAILED: no bundled default model")
    assert selftest.MODEL_OVERRIDE_ENV in line


def test_self_test_with_a_broken_model_file_names_it(monkeypatch, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    monkeypatch.setenv(selftest.MODEL_OVERRIDE_ENV, str(broken))
    out = io.StringIO()
    assert selftest.run_self_test(out) == 1
    assert out.getvalue().startswith(f"self-test: FAILED: cannot load model '{broken}'")


def test_frozen_entry_point_runs_the_self_test_through_the_cli(tmp_path):
    """launch_cli.py is what the frozen `enhancer` runs; with real MobileSR weights the whole path must pass."""
    weights = need_shared(MOBILESR_WEIGHTS)
    env = {**os.environ, selftest.MODEL_OVERRIDE_ENV: str(weights), "ENHANCER_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "installer" / "launch_cli.py"), "--self-test"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test: OK: model mobilesr_x4 (mobilesr x4" in done.stdout
    assert "52x36 -> 208x144" in done.stdout
