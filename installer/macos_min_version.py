"""The oldest macOS the bundle runs on: the highest minimum among the macOS wheels that go into it.

A wheel tagged `macosx_14_0_arm64` contains libraries built for macOS 14, which do not load on macOS 13, so the app's
LSMinimumSystemVersion must be at least 14.0. The tags come from each installed distribution's `*.dist-info/WHEEL`
file (`Tag: cp311-none-macosx_14_0_arm64`); enhancer.spec calls bundled_minimum() at build time.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

# The distributions with compiled code in the bundle; torch and Qt set the bar, the others are checked too.
BUNDLED_DISTRIBUTIONS = ("torch", "PySide6_Essentials", "PySide6", "shiboken6", "numpy", "pillow", "pillow_heif",
                         "safetensors")
FALLBACK = "11.0"  # the oldest macOS on Apple silicon; used when no bundled wheel names one
TAG = re.compile(r"macosx_(\d+)_(\d+)_(\w+)$")
ARCHES = {"arm64": {"arm64", "universal2", "universal"}, "x86_64": {"x86_64", "intel", "universal2", "universal"}}


def wheel_minimum(wheel_text: str, arch: str) -> tuple[int, int] | None:
    """The macOS version one wheel needs on `arch`, from its WHEEL file's Tag lines (None: no macOS tag).

    A wheel with several macOS tags installs wherever any of them applies, so it needs the lowest one for this arch.
    """
    versions = []
    for line in wheel_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() != "tag":
            continue
        platform_tag = value.strip().rsplit("-", 1)[-1]
        for single in platform_tag.split("."):  # compressed tag sets: macosx_10_9_x86_64.macosx_11_0_arm64
            match = TAG.match(single)
            if match and match.group(3) in ARCHES.get(arch, {arch}):
                versions.append((int(match.group(1)), int(match.group(2))))
    return min(versions) if versions else None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def minimum_from(paths: Iterable[str | Path] | None = None, names: Iterable[str] = BUNDLED_DISTRIBUTIONS,
                 arch: str = "arm64") -> tuple[str, dict[str, str]]:
    """("14.0", {"torch 2.13.0": "14.0", ...}): the highest minimum of the named distributions found on `paths`
    (sys.path by default), and what each one needs. FALLBACK when none of them names a macOS version."""
    wanted = {_normal(n) for n in names}
    found: dict[str, tuple[int, int]] = {}
    search = None if paths is None else [str(p) for p in paths]
    seen = set()
    for dist in metadata.distributions(path=search) if search is not None else metadata.distributions():
        name = dist.metadata["Name"] or ""
        if _normal(name) not in wanted or _normal(name) in seen:
            continue
        seen.add(_normal(name))  # the first on the path is the one that is imported (and bundled)
        text = dist.read_text("WHEEL")
        needed = wheel_minimum(text or "", arch)
        if needed:
            found[f"{name} {dist.version}"] = needed
    if not found:
        return FALLBACK, {}
    highest = max(found.values())
    return f"{highest[0]}.{highest[1]}", {k: f"{v[0]}.{v[1]}" for k, v in found.items()}


def bundled_minimum(arch: str | None = None) -> str:
    """LSMinimumSystemVersion for the app built from this Python environment, with a line saying where it came from."""
    import platform

    arch = arch or {"aarch64": "arm64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    version, per_wheel = minimum_from(arch=arch)
    details = ", ".join(f"{k} needs {v}" for k, v in sorted(per_wheel.items())) or f"no macOS wheel tags, {FALLBACK}"
    print(f"LSMinimumSystemVersion {version} ({details})", file=sys.stderr, flush=True)
    return version


if __name__ == "__main__":
    print(bundled_minimum(sys.argv[1] if len(sys.argv) > 1 else None))
