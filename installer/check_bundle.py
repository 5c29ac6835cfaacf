"""Check the built Linux archive as a user would get it: unpack it, run the self-test, and start the GUI.

    python installer/check_bundle.py [ARCHIVE] [--gui-seconds 8] [--max-mb 800]

1. Unpacks the archive into a temporary folder (so nothing of the source tree or the venv can be used).
2. Runs `enhancer --self-test` and `enhancer-gui --self-test` headless; both must print `self-test: OK` and exit 0.
   ENHANCER_SELFTEST_MODEL is removed, so this checks the bundled default model.
3. Checks with `ldd` that every Qt platform plugin in the bundle (xcb, wayland, offscreen, ...) finds all its
   libraries, from the bundle or the system (Qt's xcb plugin needs libxcb-cursor0 and friends, which a desktop has
   and a bare CI image lacks), and that certifi's cacert.pem is in the bundle (HTTPS model downloads need it).
4. Starts `enhancer-gui` on a sample photo under QT_QPA_PLATFORM=offscreen, checks it is still running after a few
   seconds with no traceback, then stops it.
5. Starts it again on a real X server (Xvfb) with QT_QPA_PLATFORM=xcb, as on a Linux desktop, and checks the same,
   plus (with xdotool) that its window is mapped. Xvfb is required: the check fails with the apt line when it is
   missing.
6. Prints the archive's and the unpacked bundle's sizes, and fails if the unpacked bundle exceeds --max-mb.

Needs (Debian/Ubuntu): apt-get install -y xvfb xdotool libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
libxcb-xinerama0 libxkbcommon-x11-0 libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1
libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3 libwayland-client0 libwayland-cursor0 libwayland-egl1
"""

from __future__ import annotations

import argparse
import os
import re
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
APT_PACKAGES = ("xvfb xdotool libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 "
                "libxkbcommon-x11-0 libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 "
                "libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3 libwayland-client0 libwayland-cursor0 "
                "libwayland-egl1")
# The Debian/Ubuntu package of a library a Qt plugin may miss, for the failure message.
PACKAGE_OF = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1":
    "libxcb-keysyms1", "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-randr.so.0": "libxcb-randr0", "libxcb-xfixes.so.0":
    "libxcb-xfixes0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xkb.so.1": "libxcb-xkb1", "libxkbcommon.so.0":
    "libxkbcommon0", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1", "libdbus-1.so.3": "libdbus-1-3", "libwayland-client.so.0":
    "libwayland-client0", "libwayland-cursor.so.0": "libwayland-cursor0", "libwayland-egl.so.1": "libwayland-egl1",
    "libX11-xcb.so.1": "libx11-xcb1", "libxcb.so.1": "libxcb1",
}


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


def unresolved_libraries(ldd_output: str) -> list[str]:
    """The libraries `ldd` reports as "not found" (`libxcb-cursor.so.0 => not found`)."""
    return [m.group(1) for m in re.finditer(r"^\s*(\S+)\s*=>\s*not found", ldd_output, re.MULTILINE)]


def qt_platform_plugins(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("plugins/platforms/*.so") if p.is_file())


def plugins_resolve(bundle: Path) -> str:
    """Every Qt platform plugin's libraries resolve, with the search path the frozen app has (PyInstaller's
    bootloader puts the bundle's _internal folder on LD_LIBRARY_PATH)."""
    ldd = shutil.which("ldd")
    if not ldd:
        raise CheckFailed("ldd not found (it comes with glibc: apt-get install -y libc-bin)")
    plugins = qt_platform_plugins(bundle)
    if not any(p.name == "libqxcb.so" for p in plugins):
        raise CheckFailed(f"no Qt xcb platform plugin (libqxcb.so) in the bundle; found {[p.name for p in plugins]}")
    internal = bundle / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal if internal.is_dir() else bundle)}
    missing: dict[str, list[str]] = {}
    for plugin in plugins:
        done = subprocess.run([ldd, str(plugin)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CheckFailed(f"ldd {plugin.name} exited {done.returncode}: {done.stderr.strip()}")
        if unresolved_libraries(done.stdout):
            missing[plugin.name] = list(dict.fromkeys(unresolved_libraries(done.stdout)))
    if missing:
        libraries = sorted({lib for libs in missing.values() for lib in libs})
        packages = " ".join(sorted({PACKAGE_OF[lib] for lib in libraries if lib in PACKAGE_OF}))
        qt = sorted(lib for lib in libraries if lib.startswith("libQt6"))
        advice = [f"install: apt-get install -y {packages}"] if packages else []
        if qt:
            advice.append(f"{', '.join(qt)}: Qt libraries that enhancer.spec drops; keep them or drop the plugin too")
        raise CheckFailed("Qt platform plugins with libraries ldd cannot find: "
                          + "; ".join(f"{name}: {', '.join(libs)}" for name, libs in missing.items())
                          + f" ({'; '.join(advice) or 'unknown libraries'})")
    return (f"Qt platform plugins: all {len(plugins)} resolve with ldd, no \"not found\" "
            f"({', '.join(p.name for p in plugins)})")


def certifi_bundled(bundle: Path) -> str:
    pems = sorted(bundle.rglob("certifi/cacert.pem"))
    if not pems:
        raise CheckFailed("certifi/cacert.pem is not in the bundle: HTTPS model downloads would have no CA certificates")
    count = pems[0].read_text(encoding="ascii", errors="replace").count("BEGIN CERTIFICATE")
    return f"CA certificates: {pems[0].relative_to(bundle)} with {count} certificates"


def self_test(executable: Path, env: dict[str, str], cwd: Path, options: tuple[str, ...] = ()) -> str:
    started = time.perf_counter()
    try:
        done = subprocess.run([str(executable), "--self-test", *options], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{executable.name} --self-test did not finish in 600 s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("self-test:")]
    if done.returncode != 0 or not lines or not lines[-1].startswith("self-test: OK"):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} --self-test exited {done.returncode}:\n{tail}")
    return f"{lines[-1]} [{executable.name}, {time.perf_counter() - started:.1f} s with start-up]"


def gui_stays_up(executable: Path, photo: Path, env: dict[str, str], cwd: Path, seconds: float,
                 label: str = "offscreen", probe=None) -> str:
    """Start the GUI, check it is still running after `seconds`, call `probe()` (more checks; its text is added to
    the result), and stop it."""
    log = cwd / f"gui-{re.sub(r'[^A-Za-z0-9]+', '-', label)}.log"
    probed = ""
    with log.open("w") as output:
        process = subprocess.Popen([str(executable), str(photo)], env=env, cwd=cwd, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.25)
        alive = process.poll() is None
        probe_error = None
        if alive and probe is not None:
            try:
                probed = probe()
            except CheckFailed as exc:
                probe_error = exc
        if alive:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    if probe_error is not None:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} ({label}) is running, but {probe_error}\n{tail}")
    if not alive:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} {photo.name} ({label}) exited with code {process.returncode} within "
                          f"{seconds:.0f} s:\n{tail}")
    if "Traceback (most recent call last)" in text:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise CheckFailed(f"{executable.name} stayed up but printed a traceback:\n{tail}")
    return (f"{executable.name} {photo.name}: still running after {seconds:.0f} s ({label}), no traceback"
            f"{'; ' + probed if probed else ''}; stopped")


class Xvfb:
    """A private X server for the xcb start: `with Xvfb() as display:` gives ":N"."""

    def __init__(self, size: str = "1280x800x24"):
        self.size = size
        self.process = None

    def __enter__(self) -> str:
        xvfb = shutil.which("Xvfb")
        if not xvfb:
            raise CheckFailed("Xvfb is not installed, so the GUI cannot be started with QT_QPA_PLATFORM=xcb as on a "
                              f"desktop. Install it (Debian/Ubuntu): apt-get install -y {APT_PACKAGES}")
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", self.size,
                                         "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        os.close(write_end)
        number = b""
        deadline = time.monotonic() + 20
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            while time.monotonic() < deadline and not number.endswith(b"\n"):
                chunk = reader.read(16)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            self.__exit__(None, None, None)
            raise CheckFailed("Xvfb did not start (no display number)")
        return f":{int(number)}"

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def window_mapped(env: dict[str, str], title: str = "Photo Enhancer") -> str:
    """The app's top-level window exists on the X server and is visible (xdotool), or CheckFailed."""
    xdotool = shutil.which("xdotool")
    if not xdotool:
        return "window not looked up (xdotool not installed)"
    deadline = time.monotonic() + 10
    while True:
        done = subprocess.run([xdotool, "search", "--onlyvisible", "--name", title], env=env, capture_output=True,
                              text=True)
        windows = done.stdout.split()
        if windows or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not windows:
        raise CheckFailed(f"no visible X window named {title!r} (xdotool search)")
    names = [subprocess.run([xdotool, "getwindowname", w], env=env, capture_output=True, text=True).stdout.strip()
             for w in windows]
    geometry = subprocess.run([xdotool, "getwindowgeometry", windows[0]], env=env, capture_output=True,
                              text=True).stdout.split("Geometry:")[-1].strip()
    return f"X window {windows[0]} {names[0]!r} mapped, {geometry}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Unpack the Linux archive, self-test it and start its GUI (offscreen "
                                                 "and under Xvfb with xcb).")
    parser.add_argument("archive", nargs="?", type=Path)
    parser.add_argument("--gui-seconds", type=float, default=8.0)
    parser.add_argument("--max-mb", type=float, default=800.0, help="largest allowed unpacked size, in MB (10^6 bytes)")
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
            print("check: " + certifi_bundled(bundle), flush=True)
            print("check: " + plugins_resolve(bundle), flush=True)
            for name in ("enhancer", "enhancer-gui"):
                print("check: " + self_test(bundle / name, env, work), flush=True)
            # the compiled CPU backend the bundle carries: export, OpenVINO's CPU plugin and ONNX frontend
            print("check: " + self_test(bundle / "enhancer", env, work, ("--backend", "openvino")), flush=True)
            photo = work / samples[0].name
            shutil.copy2(samples[0], photo)
            print("check: " + gui_stays_up(bundle / "enhancer-gui", photo, env, work, args.gui_seconds), flush=True)
            with Xvfb() as display:
                xenv = {**env, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
                xenv.pop("WAYLAND_DISPLAY", None)
                print("check: " + gui_stays_up(bundle / "enhancer-gui", photo, xenv, work, args.gui_seconds,
                                               label=f"xcb on Xvfb {display}", probe=lambda: window_mapped(xenv)),
                      flush=True)
            if unpacked > args.max_mb * 1e6:
                raise CheckFailed(f"the unpacked bundle is {unpacked / 1e6:.0f} MB, over the {args.max_mb:.0f} MB budget")
    except CheckFailed as exc:
        print(f"check: FAILED: {exc}", file=sys.stderr)
        return 1
    print("check: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
