"""Shared fixtures. Tests that need ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# backend="auto" measures torch against OpenVINO on this machine; the suite pins it to torch so that results do not
# depend on the load (tests of the backends and of the automatic choice name them or lift the pin).
os.environ.setdefault("ENHANCER_AUTO_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ENHANCER_SHARED_DIR", ROOT.parent / "shared"))
GOLDEN = SHARED / "golden"
DATA = SHARED / "data"
MOBILESR_WEIGHTS = SHARED / "weights" / "mobilesr_x4.pth"


def require_bf16() -> None:
    """Skip the rest of a test where bf16 inference does not run on this CPU, saying why (the engine then runs fp32;
    tests/test_devices.py and the CLI test check that fallback). E.g. an AVX2-only CPU, or torch's kernels held below
    AVX512 on an AMX CPU, where its bf16 attention fails."""
    from enhancer.devices import cpu_capabilities

    caps = cpu_capabilities()
    if not caps.bf16_runs:
        pytest.skip(f"bf16 does not run here ({caps.bf16_why_not}); the engine uses fp32 instead")


def need_shared(path: Path) -> Path:
    """Return `path`, or skip the test when ../shared (or that file in it) is not there."""
    if not path.exists():
        pytest.skip(f"needs {path} from ../shared, which is absent on this machine")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return need_shared(SHARED)


@pytest.fixture
def golden_dir() -> Path:
    return need_shared(GOLDEN)


@pytest.fixture
def mobilesr_weights() -> Path:
    return need_shared(MOBILESR_WEIGHTS)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own model store and settings so nothing leaks into the user's real data dir."""
    data = tmp_path_factory.mktemp("enhancer-data")
    monkeypatch.setenv("ENHANCER_DATA_DIR", str(data))
    return data
