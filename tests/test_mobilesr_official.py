"""The released MobileSR x4 weights, run by our network, reproduce the official code's Set5 outputs and PSNR."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from enhancer import load_model
from enhancer.metrics import psnr_rgb, psnr_y
from conftest import DATA, GOLDEN, MOBILESR_WEIGHTS, need_shared

SCALE = 4


def _read_rgb(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


def _run_like_official(net: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    """uint8 -> float/255 -> network -> clamp to [0,1] -> round(x*255) -> uint8, as the official test script does."""
    x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1).float().div(255.0).unsqueeze(0)
    with torch.inference_mode():
        y = net(x)
    y = y.squeeze(0).float().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.uint8((y * 255.0).round())


@pytest.fixture(scope="module")
def official_model():
    need_shared(MOBILESR_WEIGHTS)
    return load_model(MOBILESR_WEIGHTS, device="cpu")


@pytest.fixture(scope="module")
def official_results() -> list[dict]:
    folder = need_shared(GOLDEN / "mobilesr_x4_official_Set5")
    return json.loads((folder / "results.json").read_text())


def test_official_weights_are_detected_as_released_config(official_model):
    assert official_model.arch == "mobilesr"
    assert official_model.task == "sr"
    assert official_model.scale == SCALE
    assert official_model.config == {"n_feats": 40, "n_heads": 8, "ratios": [4, 2, 2, 2, 4], "upscaling_factor": 4}
    assert sum(p.numel() for p in official_model.net.parameters()) == 175883


@pytest.mark.parametrize("module", ["plain", "cpu inference"])
def test_set5_x4_matches_official_outputs_and_psnr(official_model, official_results, module):
    """Both the network as published and the module the tiler runs on this CPU (its fast path)."""
    net = official_model.net
    if module == "cpu inference":
        net = official_model.spec.for_inference(net, torch.device("cpu"))
        assert net is not official_model.net, "this CPU has oneDNN's fused ops: the fast path is registered"
    lr_dir = need_shared(DATA / "benchmarks" / "Set5" / "LR_bicubic" / "X4")
    hr_dir = need_shared(DATA / "benchmarks" / "Set5" / "HR")
    golden_dir = GOLDEN / "mobilesr_x4_official_Set5"
    assert len(official_results) == 5
    total = equal = 0
    for entry in official_results:
        ours = _run_like_official(net, _read_rgb(lr_dir / entry["lr"]))
        theirs = _read_rgb(golden_dir / entry["sr"])
        assert ours.shape == theirs.shape, entry["image"]
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        total += diff.size
        equal += int((diff == 0).sum())
        assert diff.max() <= 1, f"{entry['image']}: a pixel differs by {diff.max()} levels from the official output"

        hr = _read_rgb(hr_dir / f"{entry['image']}.png")[: ours.shape[0], : ours.shape[1]]
        y, rgb = psnr_y(ours, hr, SCALE), psnr_rgb(ours, hr, SCALE)
        print(f"{module} {entry['image']}: Y-PSNR {y:.4f} (official {entry['psnr_y_crop4']:.4f}), "
              f"RGB-PSNR {rgb:.4f} (official {entry['psnr_rgb_crop4']:.4f}), equal pixels {(diff == 0).mean():.5%}")
        assert abs(y - entry["psnr_y_crop4"]) <= 0.01, entry["image"]
        assert abs(rgb - entry["psnr_rgb_crop4"]) <= 0.01, entry["image"]
    print(f"Set5 x4: {equal / total:.5%} of {total} values equal to the official PNGs")
    assert equal / total >= 0.999
