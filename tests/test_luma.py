"""The luma path for one-channel networks trained on Y (ESPCN as published): colour conversion as Pillow does it,
Y through the tiled network, Cb and Cr by Pillow's bicubic; training and evaluation on Y; and the refusal of a
whole pickled network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from enhancer.checkpoints import UNKNOWN_NETWORK, Model, read_state_dict
from enhancer.errors import ModelError
from enhancer.tiling import _bicubic_pil, enhance, rgb_to_ycbcr, runs_on_luma, ycbcr_to_rgb_into

LUMA_SPEC = dataclasses.replace(UNKNOWN_NETWORK, id="luma-test", window=lambda config: 1,
                                default_overlap=lambda config: 4, runs_on_luma=lambda config: True)


class CountingUpsampler(nn.Module):
    """A local one-channel ×s network (nearest neighbour, brightened a little) that records its input shapes."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.ones(()))
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest") * 0.9 + 0.05


def _model(net: nn.Module, scale: int, spec=LUMA_SPEC) -> Model:
    return Model(net=net, arch="luma-test", task="sr", scale=scale, in_channels=1, out_channels=1, config={},
                 name="luma-test", spec=spec)


def _photo(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    coarse = torch.from_numpy(rng.random((1, channels, h // 6 + 2, w // 6 + 2)))
    smooth = nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return np.clip(smooth.transpose(1, 2, 0) + 0.03 * rng.standard_normal((h, w, channels)), 0, 1).astype(np.float32)


def test_ycbcr_is_pillows_full_range_bt601_and_inverts_exactly():
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ours = np.stack(rgb_to_ycbcr(rgb8.astype(np.float32) / 255.0), axis=-1) * 255.0
    pil = np.asarray(Image.fromarray(rgb8).convert("YCbCr"), dtype=np.float64)
    # Pillow works in fixed point and stores uint8; ours is the exact value of the same formula.
    assert np.abs(ours - pil).max() <= 1.01 and np.abs(ours - pil).mean() < 0.6
    back = np.zeros((40, 50, 3), dtype=np.float32)
    y, cb, cr = rgb_to_ycbcr(rgb8.astype(np.float32) / 255.0)
    ycbcr_to_rgb_into(y, cb, cr, back)
    np.testing.assert_allclose(back * 255.0, rgb8, atol=2e-3)
    # and the inverse of Pillow's own YCbCr gives Pillow's RGB within its 8-bit rounding
    ycc = np.asarray(Image.fromarray(rgb8).convert("YCbCr"), dtype=np.float32) / 255.0
    ycbcr_to_rgb_into(ycc[..., 0], ycc[..., 1], ycc[..., 2], back)
    pil_rgb = np.asarray(Image.fromarray(np.asarray(Image.fromarray(rgb8).convert("YCbCr")), "YCbCr").convert("RGB"))
    assert np.abs(np.clip(back, 0, 1) * 255.0 - pil_rgb).max() <= 1.01


def test_bicubic_in_float_mode_keeps_precision_and_matches_pillow_8bit():
    # A smooth plane: Pillow's 8-bit bicubic rounds and clips between its two passes, which only matters on overshoot.
    plane8 = (_photo(np.random.default_rng(2), 20, 30, channels=1)[..., 0] * 255).round().astype(np.uint8)
    up = _bicubic_pil(plane8.astype(np.float32) / 255.0, 3)
    assert up.shape == (60, 90) and up.dtype == np.float32
    pil8 = np.asarray(Image.fromarray(plane8).resize((90, 60), Image.Resampling.BICUBIC), dtype=np.float64)
    assert np.abs(np.clip(up, 0, 1) * 255.0 - pil8).max() <= 1.01
    assert np.abs(up * 255.0 - np.round(up * 255.0)).max() > 0.05  # not quantised to 8 bits


@pytest.mark.parametrize("tile", [None, 24])
def test_colour_photo_runs_y_through_the_network_and_chroma_by_bicubic(tile):
    rng = np.random.default_rng(3)
    photo = _photo(rng, 300, 37)  # more rows than one chroma strip (256)
    net = CountingUpsampler(2)
    model = _model(net, 2)
    assert runs_on_luma(model)
    out = enhance(photo, model, tile=tile, precision="fp32")
    assert out.shape == (600, 74, 3)
    assert all(shape[1] == 1 for shape in net.seen)  # only Y, never each colour channel
    y, cb, cr = rgb_to_ycbcr(photo)
    y_up = np.clip(np.repeat(np.repeat(y, 2, 0), 2, 1) * 0.9 + 0.05, 0, 1)
    expected = np.zeros_like(out)
    ycbcr_to_rgb_into(y_up, _bicubic_pil(cb, 2), _bicubic_pil(cr, 2), expected)
    np.testing.assert_allclose(out, np.clip(expected, 0, 1), atol=2e-6)
    # the result's luma is the network's Y
    out_y = rgb_to_ycbcr(out)[0]
    inside = (expected.min(-1) > 0) & (expected.max(-1) < 1)
    np.testing.assert_allclose(out_y[inside], y_up[inside], atol=1e-5)


def test_gray_photo_goes_straight_through_and_alpha_is_kept():
    rng = np.random.default_rng(4)
    gray = _photo(rng, 30, 40, channels=1)
    net = CountingUpsampler(3)
    out = enhance(gray, _model(net, 3), tile=None, precision="fp32")
    np.testing.assert_allclose(out[..., 0], np.repeat(np.repeat(gray[..., 0], 3, 0), 3, 1) * 0.9 + 0.05, atol=1e-6)

    rgba = np.concatenate([_photo(rng, 30, 40), np.full((30, 40, 1), 0.25, np.float32)], axis=-1)
    net = CountingUpsampler(2)
    out = enhance(rgba, _model(net, 2), tile=None, precision="fp32")
    assert out.shape == (60, 80, 4)
    np.testing.assert_allclose(out[..., 3], 0.25, atol=1e-6)
    assert all(shape[1] == 1 for shape in net.seen)
    colour_only = enhance(rgba[..., :3], _model(CountingUpsampler(2), 2), tile=None, precision="fp32")
    np.testing.assert_allclose(out[..., :3], colour_only, atol=1e-6)


def test_a_gray_network_not_on_luma_still_runs_each_channel():
    net = CountingUpsampler(2)
    spec = dataclasses.replace(LUMA_SPEC, runs_on_luma=lambda config: False)
    enhance(_photo(np.random.default_rng(5), 16, 16), _model(net, 2, spec), tile=None, precision="fp32")
    assert net.seen == [(3, 1, 16, 16)]


# --------------------------------------------------------------------------------------------------------------------
# Training and evaluation on Y


class TinyLumaSR(nn.Module):
    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.seen: list[int] = []

    def forward(self, x):
        self.seen.append(x.shape[1])
        return self.shuffle(self.conv(x))


def test_to_luma_is_pillows_y():
    from enhancer.training.degradations import to_luma

    rgb8 = np.random.default_rng(6).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    y = to_luma(torch.from_numpy(rgb8).permute(2, 0, 1)[None].double())[0, 0].numpy()
    assert y.shape == (8, 9)
    assert np.abs(y - np.asarray(Image.fromarray(rgb8).convert("L"), dtype=np.float64)).max() <= 0.51


def test_a_luma_network_trains_on_y_and_mobilesr_stays_on_rgb(tmp_path, monkeypatch):
    import enhancer.training.train as train

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(2):
        Image.fromarray((_photo(rng, 64, 64) * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    built: list[TinyLumaSR] = []

    def build(arch, config):
        built.append(TinyLumaSR(int(config["upscale_factor"])))
        return built[-1]

    monkeypatch.setattr(train, "build_network", build)
    monkeypatch.setattr(train, "get_spec", lambda arch: LUMA_SPEC)
    config = train.TrainConfig(arch="luma-test", net={"upscale_factor": 2}, scale=2, train_dirs=[str(folder)],
                               lr_patch=8, batch=2, iterations=3, warmup=1, checkpoint_every=100, eval_every=0,
                               threads=1, ema_decay=0.9)
    assert train.trains_on_luma(config)
    state = train.run(config, tmp_path / "ckpt.pt", cache_dir=str(tmp_path / "cache"), progress=False)
    assert state.step == 3
    assert built[0].seen == [1, 1, 1]  # Y patches, not RGB
    monkeypatch.undo()
    assert not train.trains_on_luma(train.TrainConfig())  # MobileSR: RGB as before


def test_evaluation_of_a_luma_network_is_the_apps_luma_path():
    from enhancer.training.evaluate import super_resolve

    rng = np.random.default_rng(8)
    lr8 = (_photo(rng, 20, 24) * 255).round().astype(np.uint8)
    net = CountingUpsampler(2).eval()
    ours = super_resolve(net, lr8, luma=True)
    app = enhance(lr8.astype(np.float32) / 255.0, _model(CountingUpsampler(2), 2), tile=None, precision="fp32")
    assert ours.shape == (40, 48, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(np.float64) - np.round(app * 255.0)).max() <= 1


# --------------------------------------------------------------------------------------------------------------------
# A whole pickled network


class UsersOwnNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)


@pytest.mark.parametrize("make", [lambda: nn.Sequential(nn.Conv2d(1, 4, 3)), UsersOwnNetwork])
def test_a_whole_pickled_module_is_refused_with_the_state_dict_advice(tmp_path, make, monkeypatch):
    path = tmp_path / "whole.pth"
    torch.save(make(), path)
    ran = []
    monkeypatch.setattr(UsersOwnNetwork, "__setstate__", lambda self, state: ran.append(1), raising=False)
    with pytest.raises(ModelError) as caught:
        read_state_dict(path)
    assert "model.state_dict()" in str(caught.value) and "not executed" in str(caught.value)
    assert not ran
    torch.save(make().state_dict(), tmp_path / "weights.pth")
    assert "conv1.weight" in read_state_dict(tmp_path / "weights.pth") or read_state_dict(tmp_path / "weights.pth")
