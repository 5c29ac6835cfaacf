"""The same job on a real local Ray (2 CPUs): the same files and summary as a local run, a worker killed mid-run,
--skip-existing, Ctrl-C, flat driver memory, and the message when Ray is missing."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from photo_corpus import smooth_rgb

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed: pip install -e '.[cluster]'")

from enhancer import cluster  # noqa: E402
from enhancer.pipeline import FileFinished, Job  # noqa: E402

MODEL = "own-mobilesr-x4"  # bundled, so these tests need nothing from ../shared
QUICK_MODEL = "own-espcn-x2"  # bundled and tiny: for the test of 2,000 photos, which measures the driver


def write_photos(folder: Path, count: int, size: tuple[int, int] = (16, 12), broken: bool = True) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"photo{i:04d}.png"
        Image.fromarray(smooth_rgb(*size, seed=i)).save(folder / name)
        names.append(name)
    if broken:
        (folder / "notes.jpg").write_text("this is not a photo\n")
        data = (folder / names[0]).read_bytes()
        (folder / "cut.png").write_bytes(data[: len(data) // 2])
    return names


def enhancer(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enhancer", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def outputs(folder: Path, inputs: list[str]) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.name not in inputs and p.name not in ("notes.jpg", "cut.png")}


def summary_shape(summary: dict) -> tuple:
    by_name = sorted((Path(r["input"]).name, r["status"], Path(r["output"]).name if r["output"] else None)
                     for r in summary["results"])
    return summary["ok"], summary["failed"], summary["skipped"], summary["exit_code"], by_name


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the in-process tests (the CLI tests start their own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_cluster_local_writes_the_same_files_and_summary_as_a_local_run(tmp_path):
    names = write_photos(tmp_path / "here", 30)
    shutil.copytree(tmp_path / "here", tmp_path / "there")

    local = enhancer("--model", MODEL, "--json", tmp_path / "here")
    distributed = enhancer("--model", MODEL, "--json", "--cluster", "local", "--cpus-per-worker", "1",
                           tmp_path / "there")

    assert local.returncode == 1 and distributed.returncode == 1, distributed.stderr
    ours, theirs = json.loads(local.stdout), json.loads(distributed.stdout)
    assert summary_shape(theirs) == summary_shape(ours)
    assert (theirs["ok"], theirs["failed"]) == (30, 2)
    here, there = outputs(tmp_path / "here", names), outputs(tmp_path / "there", names)
    assert sorted(here) == sorted(there) and len(here) == 30
    for name in here:
        a = np.asarray(Image.open(here[name]), np.int16)
        b = np.asarray(Image.open(there[name]), np.int16)
        assert np.abs(a - b).max() <= 1, name
    assert "(Ray: 2 worker(s), 1 CPU(s) each)" in distributed.stderr  # the model line says where it runs
    for line in ("notes.jpg", "cut.png"):
        assert sum(line in x and "error" in x for x in distributed.stderr.splitlines()) == 1, distributed.stderr

    again = enhancer("--model", MODEL, "--cluster", "local", "--skip-existing", tmp_path / "there")
    assert again.returncode == 1 and "0 written, 30 skipped, 2 failed" in again.stderr, again.stderr
    assert sorted(outputs(tmp_path / "there", names)) == sorted(there)  # nothing new


def test_a_worker_killed_mid_run_leaves_every_photo_written_exactly_once(tmp_path, local_ray):
    folder = tmp_path / "photos"
    names = write_photos(folder, 24, size=(48, 40), broken=False)
    actors: list = []
    finished: list = []
    killed = threading.Event()

    def events(event) -> None:
        if isinstance(event, FileFinished):
            finished.append(event.result)
            if len(finished) == 3 and not killed.is_set():
                killed.set()
                ray.kill(actors[0])  # mid-run: it has photos in flight

    job = Job(inputs=[str(folder)], models=[MODEL], threads=1)
    results = cluster.run_job_on_cluster(job, "local", events=events, cpus_per_worker=1,
                                         on_workers=actors.extend)

    assert killed.is_set() and len(actors) == 2
    assert [r.status for r in results] == ["ok"] * len(names), [r.error for r in results if r.status != "ok"]
    written = outputs(folder, names)
    assert len(written) == len(names), sorted(written)  # one per photo: none lost, none twice
    assert sorted(r.output.name for r in results) == sorted(written)
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left
    for path in written.values():
        with Image.open(path) as image:
            assert image.size == (192, 160)


def test_a_retry_reports_the_output_an_earlier_attempt_wrote_instead_of_writing_another(tmp_path):
    """The worker died after naming its output but before reporting: the retry finds it through the hidden file."""
    Image.fromarray(smooth_rgb(8, 8)).save(tmp_path / "a_x4.png")  # a file of someone else's: never replaced
    hidden = cluster.hidden_name(tmp_path, "job1", 7, 0, ".png")
    Image.fromarray(smooth_rgb(32, 32)).save(hidden)
    claimed = cluster.claim_output(hidden, tmp_path / "a_x4.png")
    assert claimed.name == "a_x4-1.png" and hidden.stat().st_nlink == 2

    assert cluster.finished_earlier(tmp_path, "job1", 7, tmp_path / "a_x4.png") == claimed
    assert not hidden.exists() and claimed.stat().st_nlink == 1
    assert Image.open(tmp_path / "a_x4.png").size == (8, 8)

    unfinished = cluster.hidden_name(tmp_path, "job1", 8, 0, ".png")
    unfinished.write_bytes(b"half a PNG")
    assert cluster.finished_earlier(tmp_path, "job1", 8, tmp_path / "b_x4.png") is None
    assert not unfinished.exists()


def test_ctrl_c_on_the_driver_cancels_and_leaves_no_partial_file(tmp_path):
    folder = tmp_path / "photos"
    names = write_photos(folder, 40, size=(96, 80), broken=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "enhancer", "--model", MODEL, "--cluster", "local", "--cpus-per-worker", "1", folder],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(outputs(folder, names)) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], err
    for path in outputs(folder, names).values():  # whatever was written is whole
        with Image.open(path) as image:
            image.load()
    assert len(outputs(folder, names)) < len(names)


def test_driver_memory_stays_flat_over_2000_tiny_inputs(tmp_path, local_ray):
    folder = tmp_path / "many"
    write_photos(folder, 2000, size=(8, 8), broken=False)
    rss: list[float] = []

    def events(event) -> None:
        if isinstance(event, FileFinished):
            rss.append(_rss_mb())

    job = Job(inputs=[str(folder)], models=[QUICK_MODEL], threads=1, backend="torch")
    results = cluster.run_job_on_cluster(job, "local", events=events, cpus_per_worker=1)
    assert sum(r.status == "ok" for r in results) == 2000
    after_100, at_end = rss[99], rss[-1]
    print(f"\ndriver RSS: {after_100:.1f} MB after 100 photos, {at_end:.1f} MB after 2000 "
          f"(+{at_end - after_100:.1f} MB)")
    assert at_end - after_100 <= 50


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_without_ray_the_cluster_option_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra looks like to `import ray`
    with pytest.raises(cluster.ClusterError, match=r"pip install 'photo-enhancer\[cluster\]'"):
        cluster.connect("local")


def test_a_bad_address_is_a_clear_error():
    with pytest.raises(cluster.ClusterError, match="use local, auto or ray://HOST:PORT"):
        cluster.connect("tcp://nowhere")
