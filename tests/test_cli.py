"""The `enhancer` command, run as a real process (`python -m enhancer`) on files made in tmp dirs."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, GOLDEN, MOBILESR_WEIGHTS, ROOT, need_shared
from enhancer.cli import main
from photo_corpus import leftovers, sha256s, smooth_rgb, write_bad, write_valid

BAD = {"truncated.jpg": "truncated", "empty.png": "empty", "text.jpg": "not an image", "huge_header.png": "too large"}


def enhancer(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "enhancer", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )


@pytest.fixture(scope="module")
def x2_model():
    return str(need_shared(GOLDEN / "mobilesr_x2.pth"))


def test_batch_with_bad_files_exits_1_with_one_line_each_and_writes_the_rest(tmp_path, x2_model):
    folder = tmp_path / "photos"
    valid = write_valid(folder)
    write_bad(folder)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    before = sha256s(folder)

    run = enhancer("--model", x2_model, "--json", folder)

    assert run.returncode == 1, run.stderr
    error_lines = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == len(BAD), run.stderr
    for name, reason in BAD.items():
        [line] = [line for line in error_lines if name in line]
        assert reason in line
    summary = json.loads(run.stdout)
    statuses = {os.path.basename(r["input"]): r for r in summary["results"]}
    assert set(statuses) == set(valid) | set(BAD)
    for name in valid:
        entry = statuses[name]
        assert entry["status"] == "ok", entry
        assert os.path.isfile(entry["output"]) and entry["error"] is None and entry["seconds"] >= 0
    for name in BAD:
        assert statuses[name]["status"] == "failed" and statuses[name]["output"] is None
        assert name in statuses[name]["error"]
    assert (summary["ok"], summary["failed"], summary["exit_code"]) == (len(valid), len(BAD), 1)
    after = sha256s(folder)
    assert {name: after[name] for name in before} == before
    assert leftovers(folder) == []


def test_second_run_makes_dash_1_names_and_skip_existing_writes_nothing(tmp_path, x2_model):
    for name in ("a.png", "b.jpg"):
        Image.fromarray(smooth_rgb(12, 8)).save(tmp_path / name)
    first = enhancer("--model", x2_model, tmp_path)
    assert first.returncode == 0, first.stderr
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    second = enhancer("--model", x2_model, tmp_path)
    assert second.returncode == 0, second.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        "a.png", "b.jpg", "a_mobilesr_x2_x2.png", "b_mobilesr_x2_x2.jpg", "a_mobilesr_x2_x2-1.png",
        "b_mobilesr_x2_x2-1.jpg",
    ])
    assert all((tmp_path / name).stat().st_mtime_ns == mtime for name, mtime in written.items())  # nothing overwritten
    third = enhancer("--model", x2_model, "--skip-existing", "--json", tmp_path)
    assert third.returncode == 0, third.stderr
    assert [r["status"] for r in json.loads(third.stdout)["results"]] == ["skipped", "skipped"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_sigint_mid_batch_stops_cleanly(tmp_path, x2_model):
    folder = tmp_path / "batch"
    folder.mkdir()
    count = 10
    for i in range(count):
        Image.fromarray(smooth_rgb(320, 240, i)).save(folder / f"p{i:02d}.png")
    before = sha256s(folder)
    log = open(tmp_path / "stderr.txt", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "enhancer", "--model", x2_model, "--tile", "64", str(folder)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, env=os.environ.copy(),
    )
    deadline = time.monotonic() + 240
    while not list(folder.glob("*_x2.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the batch ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=120)
    log.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    outputs = sorted(folder.glob("*_x2.png"))
    print(f"interrupted after {len(outputs)} of {count} photos; exit code {code}")
    assert code == 130, stderr
    assert 1 <= len(outputs) < count
    for out in outputs:  # every output that exists is whole
        with Image.open(out) as im:
            im.load()
            assert im.size == (640, 480)
    assert leftovers(folder) == []
    after = sha256s(folder)
    assert {name: after[name] for name in before} == before
    assert "cancelled" in stderr


def test_usage_errors_exit_2(tmp_path, x2_model, capsys):
    Image.fromarray(smooth_rgb(6, 6)).save(tmp_path / "a.png")
    assert main([]) == 2
    assert main(["--quality", "0", str(tmp_path)]) == 2
    assert main(["--tile", "big", str(tmp_path)]) == 2
    assert main(["--format", "gif", str(tmp_path)]) == 2
    assert main(["--threads", "-1", str(tmp_path)]) == 2
    assert main(["--model", str(tmp_path / "missing.pth"), str(tmp_path)]) == 2
    assert main(["--model", x2_model, "--suffix", "a/b", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing.pth" in err and "quality" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    assert main(["--help"]) == 0


def test_explicit_missing_file_exits_1_and_names_it(tmp_path, x2_model, capsys):
    Image.fromarray(smooth_rgb(6, 6)).save(tmp_path / "a.png")
    code = main(["--model", x2_model, str(tmp_path / "a.png"), str(tmp_path / "nope.jpg")])
    err = capsys.readouterr().err
    assert code == 1
    assert [line for line in err.splitlines() if "error:" in line] == [
        f"enhancer: error: {tmp_path / 'nope.jpg'}: no such file or folder"
    ]
    assert (tmp_path / "a_mobilesr_x2_x2.png").is_file()


def test_options_reach_the_output(tmp_path, x2_model):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    Image.fromarray(smooth_rgb(10, 8)).save(source / "sub" / "deep.png")
    out = tmp_path / "out"
    run = enhancer("--model", x2_model, "--model", x2_model, "--output-dir", out, "--recursive", "--format", "webp",
                   "--quality", "80", "--suffix=-big", "--tile", "32", "--overlap", "8", "--device", "cpu",
                   "--precision", "fp32", "--threads", "1", source)
    assert run.returncode == 0, run.stderr
    result = out / "sub" / "deep-big.webp"
    assert result.is_file() and Image.open(result).size == (40, 32)
    assert f"-> {result}" in run.stdout


def test_list_models_and_import_refusal(tmp_path):
    listing = enhancer("--list-models")
    assert listing.returncode == 0, listing.stderr
    header = listing.stdout.splitlines()[0].split()
    assert header == ["id", "task", "scale", "installed", "size", "licence"]
    assert any(line.startswith("mobilesr") for line in listing.stdout.splitlines())
    junk = tmp_path / "junk.pth"
    junk.write_text("not a model")
    refused = enhancer("--import", junk)
    assert refused.returncode == 1
    assert "junk.pth" in refused.stderr


def test_python_dash_m_enhancer_and_version():
    run = enhancer("--version")
    assert run.returncode == 0 and run.stdout.startswith("enhancer ")


@pytest.mark.slow
def test_mobilesr_official_weights_reproduce_set14_psnr_through_the_cli(tmp_path):
    from enhancer.metrics import psnr_y

    weights = need_shared(MOBILESR_WEIGHTS)
    lr_folder = need_shared(DATA / "benchmarks" / "Set14" / "LR_bicubic" / "X4")
    hr_folder = DATA / "benchmarks" / "Set14" / "HR"
    run = enhancer("--model", weights, "--output-dir", tmp_path, "--format", "png", "--json", lr_folder, timeout=1200)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 14
    scores = {}
    for entry in results:
        lr_name = os.path.basename(entry["input"])  # e.g. baboonx4.png
        hr_name = lr_name.replace("x4.png", ".png")
        # The benchmark convention reads every image as RGB (a gray image as three equal channels), then takes Y.
        sr = np.asarray(Image.open(entry["output"]).convert("RGB"))
        hr = np.asarray(Image.open(hr_folder / hr_name).convert("RGB"))
        # HR sizes that are not a multiple of 4 are cropped to 4 × LR (the benchmarks' "modcrop").
        assert sr.shape[0] == hr.shape[0] // 4 * 4 and sr.shape[1] == hr.shape[1] // 4 * 4, lr_name
        hr = hr[: sr.shape[0], : sr.shape[1]]
        scores[hr_name] = psnr_y(sr, hr, crop=4)
    mean = float(np.mean(list(scores.values())))
    print("Set14 x4 Y-PSNR per image:", {k: round(v, 3) for k, v in scores.items()})
    print(f"Set14 x4 mean Y-PSNR through the CLI: {mean:.4f} dB (official 28.59)")
    assert abs(mean - 28.59) <= 0.01


@pytest.mark.parametrize(
    "precision,without_bf16_kernels",
    [("bf16", False), ("bf16", True), ("fp16", False)],
    ids=["bf16-this-cpu", "bf16-no-onednn-bf16", "fp16"],
)
def test_a_precision_the_cpu_cannot_run_falls_back_with_a_note_and_still_writes(
    tmp_path, precision, without_bf16_kernels
):
    """`ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN refuse bf16 as on an AVX2-only CPU (the AMD EPYC these machines often
    are), on any x86-64 CPU, so the fallback is exercised here whatever this CPU is."""
    from enhancer.devices import cpu_capabilities

    env = os.environ.copy()
    if without_bf16_kernels:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            pytest.skip("ONEDNN_MAX_CPU_ISA=AVX2 limits oneDNN on x86-64 only")
        env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb(32, 24)).save(photo)
    run = subprocess.run(
        [sys.executable, "-m", "enhancer", "--model", "own-mobilesr-x4", "--precision", precision, str(photo)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr
    [output] = [p for p in tmp_path.iterdir() if p != photo]
    assert Image.open(output).size == (128, 96)
    if precision == "fp16":
        expected_note = "fp16 is not supported for inference by this CPU; using fp32"
    elif without_bf16_kernels or not cpu_capabilities().bf16_runs:
        expected_note = "bf16 is not supported by this CPU; using fp32"
    else:
        expected_note = None  # this CPU runs bf16: no note, and bf16 is what runs
    if expected_note:
        assert run.stderr.count(expected_note) == 1, run.stderr
        assert "RuntimeError" not in run.stderr and "on CPU, fp32" in run.stderr, run.stderr
    else:
        assert "not supported" not in run.stderr and "on CPU, bf16" in run.stderr, run.stderr
