"""The `enhancer` command's model management: --download, --import, --list-models.

The download-then-upscale case runs the command as its own process; the others call the same `main()` in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, GOLDEN, MOBILESR_WEIGHTS, ROOT, need_shared
from enhancer import store
from http_model_server import Behaviour, ModelServer, free_port

MOBILESR_SHA256 = "5fb0e02130258bc5af2e470d3e62f95e162320d1260a09a12d61218af33215fe"


def enhancer(*args: str, mirror: str | None = None) -> subprocess.CompletedProcess:
    """The `enhancer` command as its own process, as a user runs it."""
    env = dict(os.environ)  # carries ENHANCER_DATA_DIR, set per test by conftest
    env.pop("ENHANCER_MODEL_MIRROR", None)
    if mirror:
        env["ENHANCER_MODEL_MIRROR"] = mirror
    result = subprocess.run(
        [sys.executable, "-m", "enhancer", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )
    print(f"$ enhancer {' '.join(args)}  -> {result.returncode}\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture
def cli(capsys, monkeypatch):
    """The same command's main() in this process (saves starting Python and torch for each call)."""
    from enhancer.cli import main

    def run(*args: str, mirror: str | None = None) -> subprocess.CompletedProcess:
        if mirror:
            monkeypatch.setenv("ENHANCER_MODEL_MIRROR", mirror)
        else:
            monkeypatch.delenv("ENHANCER_MODEL_MIRROR", raising=False)
        code = main(list(args))
        out, err = capsys.readouterr()
        print(f"$ enhancer {' '.join(args)}  -> {code}\n{out}{err}")
        return subprocess.CompletedProcess(["enhancer", *args], code, out, err)

    return run


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_download_then_upscale_a_set5_image(tmp_path):
    weights = need_shared(MOBILESR_WEIGHTS)
    lr = need_shared(DATA / "benchmarks" / "Set5" / "LR_bicubic" / "X4" / "birdx4.png")
    official = need_shared(GOLDEN / "mobilesr_x4_official_Set5" / "bird.png")

    with ModelServer({"mobilesr_x4.pth": weights}) as server:
        result = enhancer("--download", "mobilesr-x4", mirror=server.base_url)
    assert result.returncode == 0
    installed = store.model_store() / "mobilesr_x4.pth"
    assert store.sha256_of(installed) == MOBILESR_SHA256
    assert str(installed) in result.stdout

    out_dir = tmp_path / "out"
    result = enhancer("--model", "mobilesr-x4", "--device", "cpu", "--precision", "fp32", "--output-dir", str(out_dir), str(lr))
    assert result.returncode == 0
    (output,) = list(out_dir.iterdir())
    sr, ref = read_rgb(output), read_rgb(official)
    assert sr.shape == ref.shape == (288, 288, 3)
    diff = np.abs(sr - ref)
    print(f"{output.name}: max |ours - official| = {diff.max()}/255, mean {diff.mean():.4f}")
    assert diff.max() <= 2  # the official code's own output, up to rounding


def test_download_resumes_after_a_dropped_connection(cli):
    weights = need_shared(MOBILESR_WEIGHTS)
    half = weights.stat().st_size // 2
    with ModelServer({"mobilesr_x4.pth": weights}, {"mobilesr_x4.pth": Behaviour(drop_after=half)}) as server:
        result = cli("--download", "mobilesr-x4", mirror=server.base_url)
    assert result.returncode == 0
    assert ("mobilesr_x4.pth", f"bytes={half}-", 206) in server.requests
    assert store.sha256_of(store.model_store() / "mobilesr_x4.pth") == MOBILESR_SHA256


def test_download_of_wrong_bytes_fails_and_installs_nothing(cli):
    weights = need_shared(MOBILESR_WEIGHTS)
    with ModelServer({"mobilesr_x4.pth": weights}, {"mobilesr_x4.pth": Behaviour(corrupt=True)}) as server:
        result = cli("--download", "mobilesr-x4", mirror=server.base_url)
    assert result.returncode == 1
    assert "wrong checksum" in result.stderr and MOBILESR_SHA256 in result.stderr
    assert not any(store.model_store().iterdir())


def test_download_404_and_refused_connection_are_clear_errors(cli):
    with ModelServer({}) as server:
        result = cli("--download", "mobilesr-x4", mirror=server.base_url)
    assert result.returncode == 1 and "HTTP 404" in result.stderr and "mobilesr_x4.pth" in result.stderr

    result = cli("--download", "mobilesr-x4", mirror=f"http://127.0.0.1:{free_port()}/")
    assert result.returncode == 1 and "connection refused" in result.stderr
    assert not any(store.model_store().iterdir())


def test_download_of_restormer_without_accepting_its_licence_is_refused(cli):
    with ModelServer({}) as server:
        result = cli("--download", "restormer-derain", mirror=server.base_url)
    assert result.returncode == 1
    assert "licence" in result.stderr and "--accept-license" in result.stderr
    assert server.requests == []


def test_import_a_golden_swinir_checkpoint_then_run_it(tmp_path, cli):
    checkpoint = need_shared(GOLDEN / "swinir_classical_x4.pth")
    lr = need_shared(DATA / "benchmarks" / "Set5" / "LR_bicubic" / "X4" / "birdx4.png")
    result = cli("--import", str(checkpoint))
    assert result.returncode == 0
    assert "swinir-classical-x4" in result.stdout
    assert (store.model_store() / "swinir-classical-x4.pth").is_file()

    out_dir = tmp_path / "out"
    result = cli("--model", "swinir-classical-x4", "--device", "cpu", "--output-dir", str(out_dir), str(lr))
    assert result.returncode == 0
    (output,) = list(out_dir.iterdir())
    assert read_rgb(output).shape == (288, 288, 3)


def test_import_of_a_file_that_is_not_a_model_is_refused(tmp_path, cli):
    fake = tmp_path / "holiday.pth"
    fake.write_bytes(need_shared(DATA / "benchmarks" / "Set5" / "LR_bicubic" / "X4" / "birdx4.png").read_bytes())
    result = cli("--import", str(fake))
    assert result.returncode == 1
    assert "holiday.pth" in result.stderr
    assert not any(store.model_store().iterdir())


def test_list_models_shows_every_entry(cli):
    checkpoint = need_shared(GOLDEN / "mobilesr_x2.pth")
    assert cli("--import", str(checkpoint)).returncode == 0
    result = cli("--list-models")
    assert result.returncode == 0
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    for entry in store.load_catalog():
        assert entry.id in rows, entry.id
    from enhancer.catalog import catalog_path, read_catalog_file

    # the catalog file (45 official files and our bundled models) and the imported one
    assert len(store.load_catalog()) == len(read_catalog_file(catalog_path())) + 1
    mobilesr = rows["mobilesr-x4"]
    assert mobilesr[1:4] == ["sr", "x4", "no"] and "2.2" in mobilesr[4] and "unknown" in mobilesr[-1]
    assert rows["restormer-derain"][1:4] == ["derain", "x1", "no"]
    assert "Restormer Academic Public License" in " ".join(rows["restormer-derain"])
    imported = rows["mobilesr-x2"] if "mobilesr-x2" in rows else rows["mobilesr-x2 *"]
    assert "yes" in imported
