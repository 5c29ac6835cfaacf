"""Check the built Linux archive as a user would get it: unpack it, run the self-test, and start the GUI.

    python installer/check_bundle.py [ARCHIVE] [--gui-seconds 8] [--max-mb 700]

1. Unpacks the archive into a temporary folder (so nothing of the source tree or the venv can be used).
2. Runs `enhancer --self-test` and `enhancer-gui --self-test` headless; both must print `self-test: OK` and exit 0.
   ENHANCER_SELFTEST_MODEL is removed, so this checks the bundled default model.
3. Starts `enhancer-gui` on a sample photo under QT_QPA_PLATFORM=offscreen, checks it is still running after a few
   seconds with no traceback, then stops it.
4. Prints the archive's and the unpacked bundle's sizes, and fails if the unpacked bundle exceeds --max-mb.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"


class CheckFailed(Exception):
    pass


def newest_archive() -> Path:
    archives = sorted(DIST.glob("photo-enhancer-*-linux-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise CheckFailed(f"no dist/photo-enhancer-*-linux-*.tar.gz; build it first: make bundle")
    return archives[-1]


def tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="tar")  # refuses absolute paths and links that leave the folder
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise CheckFailed(f"{archive.name}: expected one top folder, found {[p.name for p in tops]}")
    return tops[0]


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.pop("ENHANCER_SELFTEST_MODEL", None)  # the check is about the bundled default
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["ENHANCER_DATA_DIR"] = str(data_dir)
    env["HOME"] = str(data_dir)  # settings and caches of the frozen app land in the scratch folder
    return env


def self_test(executable: Path, env: dict[str, str], cwd: Path) -> str:
    started = time.perf_counter()
    try:
        done = subprocess.run([str(executable), "--self-test"], env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=600)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{executable.name} --self-test did not finish in 600 s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("self-test:")]
    if done.returncode != 0 or not lines or not lines[-1].startswith("self-test: OK"):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} --self-test exited {done.returncode}:\n{tail}")
    return f"{lines[-1]} [{executable.name}, {time.perf_counter() - started:.1f} s with start-up]"


def gui_stays_up(executable: Path, photo: Path, env: dict[str, str], cwd: Path, seconds: float) -> str:
    log = cwd / "gui.log"
    with log.open("w") as output:
        process = subprocess.Popen([str(executable), str(photo)], env=env, cwd=cwd, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.25)
        alive = process.poll() is None
        if alive:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    if not alive:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} {photo.name} exited with code {process.returncode} within {seconds:.0f} s:\n{tail}")
    if "Traceback (most recent call last)" in text:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} stayed up but printed a traceback:\n{tail}")
    return f"{executable.name} {photo.name}: still running after {seconds:.0f} s (offscreen), no traceback; stopped"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Unpack the Linux archive, self-test it and start its GUI.")
    parser.add_argument("archive", nargs="?", type=Path)
    parser.add_argument("--gui-seconds", type=float, default=8.0)
    parser.add_argument("--max-mb", type=float, default=700.0, help="largest allowed unpacked size, in MB (10^6 bytes)")
    args = parser.parse_args(argv)
    try:
        archive = args.archive or newest_archive()
        samples = sorted((ROOT / "resources").glob("sample_*.png"))
        if not samples:
            raise CheckFailed("no resources/sample_*.png to open in the GUI")
        with tempfile.TemporaryDirectory(prefix="enhancer-bundle-check-") as tmp:
            scratch = Path(tmp)
            bundle = unpack(archive, scratch / "unpacked")
            unpacked = tree_bytes(bundle)
            print(f"check: archive {archive.name}: {archive.stat().st_size / 1e6:.0f} MB; "
                  f"unpacked: {unpacked / 1e6:.0f} MB ({unpacked / 2**20:.0f} MiB)", flush=True)
            work = scratch / "work"
            work.mkdir()
            env = clean_env(scratch / "data")
            for name in ("enhancer", "enhancer-gui"):
                print("check: " + self_test(bundle / name, env, work), flush=True)
            photo = work / samples[0].name
            shutil.copy2(samples[0], photo)
            print("check: " + gui_stays_up(bundle / "enhancer-gui", photo, env, work, args.gui_seconds), flush=True)
            if unpacked > args.max_mb * 1e6:
                raise CheckFailed(f"the unpacked bundle is {unpacked / 1e6:.0f} MB, over the {args.max_mb:.0f} MB budget")
    except CheckFailed as exc:
        print(f"check: FAILED: {exc}", file=sys.stderr)
        return 1
    print("check: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
