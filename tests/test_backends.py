"""The compiled backends against eager torch: every golden network through OpenVINO and ONNX Runtime on the CPU,
a real photo end to end, the CLI with each backend, the export cache (no second export, a damaged file rebuilt), the
automatic choice (measured once, remembered) and the errors for what is not installed or not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA, GOLDEN, ROOT, need_shared
from enhancer import enhance, load_model
from enhancer.backends import choice, compiled, export, make_runner
from enhancer.errors import DeviceError

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

COMPILED = ("openvino", "onnxruntime")
TOLERANCE = 1e-4
CPU = torch.device("cpu")


def _golden_cases() -> list[tuple[str, str, str]]:
    """(name, checkpoint, io file) of every golden network, ESPCN's included."""
    cases = []
    for folder in (GOLDEN, GOLDEN / "espcn"):
        path = folder / "cases.json"
        if path.is_file():
            cases += [(c["name"], str(folder / c["checkpoint"]), str(folder / c["io"])) for c in json.loads(path.read_text())]
    return cases


@pytest.fixture(autouse=True)
def own_backend_cache(tmp_path, monkeypatch):
    """A fresh export cache for each test, no compiled graph carried over from another test, and auto unpinned."""
    monkeypatch.setenv("ENHANCER_BACKEND_CACHE", str(tmp_path / "backends"))
    monkeypatch.delenv("ENHANCER_AUTO_BACKEND", raising=False)
    compiled.forget_compiled()
    yield
    compiled.forget_compiled()


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("case", _golden_cases() or [pytest.param(None, marks=pytest.mark.skip("needs ../shared"))],
                         ids=lambda c: c[0] if c else "absent")
def test_every_golden_network_runs_through_the_compiled_backends_like_torch(case, backend):
    name, checkpoint, io_file = case
    model = load_model(checkpoint, device="cpu")
    io = torch.load(io_file, map_location="cpu", weights_only=True)
    runner = make_runner(model, CPU, "fp32", backend)
    for key in [k for k in io if k.startswith("input")]:  # "input", or ESPCN's "input0", "input1"
        inputs = io[key]
        with torch.inference_mode():
            reference = model.net(inputs)
        got = runner(inputs)
        diff = float((got - reference).abs().max())
        print(f"\n{name} {tuple(inputs.shape)} through {backend}: max |diff| vs torch {diff:.2e}")
        assert got.shape == reference.shape and diff <= TOLERANCE


def _real_photo() -> np.ndarray:
    folder = need_shared(DATA / "denoise" / "Kodak24")
    first = sorted(folder.iterdir())[0]
    return np.asarray(Image.open(first).convert("RGB"), np.float32)[:150, :230] / 255.0


@pytest.mark.parametrize("backend", COMPILED)
def test_a_real_photo_through_each_backend_is_within_one_level_of_torch(backend):
    model = load_model("own-mobilesr-x4", device="cpu")
    photo = _real_photo()
    reference = enhance(photo, model, tile=64, precision="fp32", backend="torch")
    seen: list[str] = []
    got = enhance(photo, model, tile=64, precision="fp32", backend=backend, report=seen.append)
    worst = float(np.abs(got - reference).max()) * 255
    print(f"\nown-mobilesr-x4 {photo.shape[1]}x{photo.shape[0]} tile 64 through {backend}: max {worst:.4f}/255")
    assert seen == [backend] and worst <= 1.0


@pytest.mark.parametrize("backend", ("torch", *COMPILED))
def test_the_cli_runs_each_backend_and_says_which_ran(tmp_path, backend):
    photo = tmp_path / "street.png"
    Image.fromarray((_real_photo()[:40, :56] * 255).astype(np.uint8)).save(photo)
    env = {**os.environ, "ENHANCER_BACKEND_CACHE": str(tmp_path / "cache")}
    env.pop("ENHANCER_AUTO_BACKEND", None)
    run = subprocess.run(
        [sys.executable, "-m", "enhancer", "--model", "own-mobilesr-x4", "--backend", backend, "--json", str(photo)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    [result] = summary["results"]
    assert result["backend"] == backend and summary["backends"] == [backend]
    with Image.open(result["output"]) as out:
        assert out.size == (224, 160)


def test_a_second_run_does_not_export_again_and_a_damaged_graph_is_rebuilt(monkeypatch, caplog):
    model = load_model("own-mobilesr-x4", device="cpu")
    exports: list[tuple] = []
    real_export = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (exports.append(a[1][0].shape), real_export(*a, **k)))
    photo = _real_photo()[:48, :48]

    first = enhance(photo, model, tile=None, precision="fp32", backend="openvino")
    assert len(exports) == 1
    compiled.forget_compiled()  # as a new process would start
    again = enhance(photo, model, tile=None, precision="fp32", backend="openvino")
    assert len(exports) == 1, "the cached graph was exported again"
    np.testing.assert_array_equal(first, again)

    [graph] = export.graphs_dir().glob("*.onnx")
    graph.write_bytes(b"\x08\x07 not a graph any more")
    compiled.forget_compiled()
    rebuilt = enhance(photo, model, tile=None, precision="fp32", backend="openvino")
    assert len(exports) == 2 and "did not load" in caplog.text
    np.testing.assert_array_equal(first, rebuilt)


def test_auto_measures_once_per_network_and_remembers(monkeypatch):
    model = load_model("own-mobilesr-x4", device="cpu")
    measured: list[str] = []
    real = choice._best_seconds
    monkeypatch.setattr(choice, "_best_seconds", lambda runner, x: (measured.append(runner.name), real(runner, x))[1])
    first = make_runner(model, CPU, "fp32", "auto").name
    assert sorted(measured) == ["openvino", "torch"] and first in ("torch", "openvino")
    saved = json.loads((export.graphs_dir() / choice.CHOICES_FILE).read_text())
    [entry] = saved.values()
    assert entry["backend"] == first and set(entry["ms"]) == {"torch", "openvino"}
    print(f"\nauto on this CPU for own-mobilesr-x4 fp32: {first} ({entry['ms']} ms at 96x96)")
    assert make_runner(model, CPU, "fp32", "auto").name == first and len(measured) == 2  # remembered


def test_the_automatic_choice_can_be_pinned(monkeypatch):
    model = load_model("own-mobilesr-x4", device="cpu")
    monkeypatch.setenv("ENHANCER_AUTO_BACKEND", "onnxruntime")
    assert make_runner(model, CPU, "fp32", "auto").name == "onnxruntime"
    assert make_runner(model, CPU, "fp32", "torch").name == "torch"  # an explicit backend wins


def test_a_network_from_outside_the_registry_stays_on_torch():
    from enhancer import Model

    model = Model(net=torch.nn.Conv2d(3, 3, 3, padding=1).eval(), arch="custom", task="sr", scale=1, in_channels=3,
                  out_channels=3, config={}, name="mine")
    assert make_runner(model, CPU, "fp32", "auto").name == "torch"


def test_devices_and_backends_that_are_not_there_are_clear_errors(monkeypatch):
    from enhancer import devices

    with pytest.raises(DeviceError, match="DirectML needs Windows and the onnxruntime-directml package"):
        devices.resolve_device("dml")
    model = load_model("own-mobilesr-x4", device="cpu")
    with pytest.raises(DeviceError, match="unknown backend"):
        make_runner(model, CPU, "fp32", "tensorrt")
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "openvino" else object())
    with pytest.raises(DeviceError, match="pip install openvino"):
        make_runner(model, CPU, "fp32", "openvino")
    assert make_runner(model, CPU, "fp32", "auto").name == "torch"  # auto without OpenVINO: torch
