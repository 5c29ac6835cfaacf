"""ESPCN (Shi et al. 2016) as in PyTorch's super_resolution example: detection, the network against golden outputs,
the app's luma path end to end against the example's script, and the bundled own-espcn models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import GOLDEN, ROOT, need_shared
from enhancer import load_model
from enhancer.archs import detect, get_spec
from enhancer.archs.espcn import ESPCN
from enhancer.checkpoints import model_from_state_dict, read_state_dict
from enhancer.tiling import enhance, runs_on_luma

ESPCN_GOLDEN = GOLDEN / "espcn"


def _cases() -> list[dict]:
    path = ESPCN_GOLDEN / "cases.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())


def _case_ids() -> list[str]:
    return [case["name"] for case in _cases()] or ["absent"]


def _case(name: str) -> dict:
    need_shared(ESPCN_GOLDEN / "cases.json")
    return next(case for case in _cases() if case["name"] == name)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_detection_reads_scale_and_channels_from_the_layer_shapes(scale, channels):
    net = ESPCN(upscale_factor=scale, in_channels=channels)
    found = detect(net.state_dict())
    assert (found.arch, found.scale, found.in_channels, found.out_channels) == ("espcn", scale, channels, channels)
    assert found.config == {"upscale_factor": scale, "in_channels": channels}
    spec = get_spec("espcn")
    assert spec.runs_on_luma(found.config) is (channels == 1)
    assert spec.window(found.config) == 1 and spec.pad_multiple(found.config) == 1
    assert spec.floats_per_pixel(found.config, scale) < 300
    x = torch.rand(1, channels, 7, 9)
    assert net(x).shape == (1, channels, 7 * scale, 9 * scale)


def test_other_conv1_to_conv4_state_dicts_are_not_taken_for_espcn():
    state = ESPCN(3).state_dict()
    assert get_spec("espcn").detect({**state, "conv5.weight": torch.zeros(1)}) is None
    odd = dict(state, **{"conv4.weight": torch.zeros(8, 32, 3, 3), "conv4.bias": torch.zeros(8)})
    assert get_spec("espcn").detect(odd) is None  # 8 is no square


@pytest.mark.parametrize("name", _case_ids())
def test_golden_checkpoint_loads_detects_and_matches_the_forward_pass(name):
    case = _case(name)
    model = load_model(need_shared(ESPCN_GOLDEN / case["checkpoint"]), device="cpu")
    assert model.arch == "espcn"
    assert model.scale == case["scale"] and model.in_channels == case["in_channels"]
    assert runs_on_luma(model) is (case["in_channels"] == 1)
    io = torch.load(ESPCN_GOLDEN / case["io"], map_location="cpu", weights_only=True)
    for k in range(case["cases"]):
        with torch.no_grad():
            out = model.net(io[f"input{k}"])
        assert out.shape == io[f"output{k}"].shape
        assert float((out - io[f"output{k}"]).abs().max()) <= 1e-4


def _end_to_end() -> list[tuple[str, str, str]]:
    return [(case["name"], e2e["input"], e2e["output"]) for case in _cases() for e2e in case.get("end_to_end", [])]


# The example's script works in 8 bits (Pillow's YCbCr, Y truncated to uint8, Pillow's bicubic on uint8 chroma,
# Pillow's YCbCr -> RGB); the app does the same for an 8-bit photo, but rounds Y instead of truncating it.
MAX_LEVELS, MAX_MAD = 2, 0.75


@pytest.mark.parametrize("name,source,expected", _end_to_end() or [("absent", "", "")])
def test_end_to_end_through_the_app_matches_the_examples_script(name, source, expected):
    case = _case(name)
    model = load_model(ESPCN_GOLDEN / case["checkpoint"], device="cpu")
    with Image.open(need_shared(ESPCN_GOLDEN / source)) as image:
        rgb8 = np.asarray(image.convert("RGB"))
    photo = rgb8.astype(np.float32) / 255.0
    with Image.open(ESPCN_GOLDEN / expected) as image:
        reference = np.asarray(image.convert("RGB"), dtype=np.float64)
    whole = None
    for tile in (None, 32):  # whole image, and tiled (seams must not show)
        out = enhance(photo, model, tile=tile, precision="fp32")
        whole = out if whole is None else whole
        np.testing.assert_allclose(out, whole, atol=1e-5)
        diff = np.round(out * 255.0) - reference
        assert diff.shape == reference.shape
        print(f"{name} tile={tile}: max diff {np.abs(diff).max():.0f}, MAD {np.abs(diff).mean():.3f}, "
              f"mean {diff.mean(axis=(0, 1)).round(2)}")
        assert np.abs(diff).max() <= MAX_LEVELS
        assert np.abs(diff).mean() <= MAX_MAD

    # The same network in the script's 8-bit steps (Pillow's YCbCr, Y truncated, Pillow's bicubic on uint8 chroma)
    # gives the reference: the network and the weights are the example's.
    y8, cb8, cr8 = Image.fromarray(rgb8).convert("YCbCr").split()
    with torch.no_grad():
        y = model.net(torch.from_numpy(np.asarray(y8, dtype=np.float32) / 255.0)[None, None])[0, 0].numpy()
    y_img = Image.fromarray(np.uint8(np.clip(y * 255.0, 0, 255)), mode="L")
    merged = Image.merge("YCbCr", [y_img, cb8.resize(y_img.size, Image.Resampling.BICUBIC),
                                   cr8.resize(y_img.size, Image.Resampling.BICUBIC)]).convert("RGB")
    replay = np.abs(np.asarray(merged, dtype=np.float64) - reference)
    assert replay.max() <= 1 and replay.mean() <= 1e-3


BUNDLED = {2: "own-espcn-x2", 3: "own-espcn-x3", 4: "own-espcn-x4"}


@pytest.mark.parametrize("scale", sorted(BUNDLED))
def test_bundled_own_espcn_models_load_from_the_catalog(scale):
    path = ROOT / "models" / f"{BUNDLED[scale]}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} not trained yet")
    state = read_state_dict(path)
    model = model_from_state_dict(state, name=BUNDLED[scale])
    assert (model.arch, model.scale, model.in_channels) == ("espcn", scale, 1)
    import hashlib
    import tomllib

    entries = tomllib.loads((ROOT / "models" / "catalog.toml").read_text(encoding="utf-8"))["model"]
    entry = next(m for m in entries if m["id"] == BUNDLED[scale])
    assert (entry["arch"], entry["scale"], entry["bundled"]) == ("espcn", scale, path.name)
    assert entry["config"] == {"upscale_factor": scale, "in_channels": 1}
    assert entry["size"] == path.stat().st_size
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_model(BUNDLED[scale], device="cpu")
    photo = np.random.default_rng(scale).random((20, 24, 3)).astype(np.float32)
    assert enhance(photo, loaded, tile=None, precision="fp32").shape == (20 * scale, 24 * scale, 3)
