"""Tiled inference: geometry, exactness on a local network, out-of-memory retry, channels, progress and cancel,
and the quality figures against whole-image passes with the official MobileSR weights and the golden networks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import enhancer
from enhancer import Cancelled, EnhancerError, Model, enhance
from enhancer.devices import cpu_capabilities
from enhancer.metrics import psnr_y
from enhancer.tiling import plan_axis, plan_tiles

from conftest import DATA, GOLDEN, MOBILESR_WEIGHTS, need_shared


# ------------------------------------------------------------------------------------------------ helpers


class SmallSR(nn.Module):
    """A local x2 network (receptive field 4 input pixels), so tiling with context must reproduce it exactly."""

    def __init__(self, in_channels: int = 3, scale: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.2)
        )
        self.up = nn.Sequential(nn.Conv2d(16, in_channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x)) * 0.2 + nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")


class SizeLimited(nn.Module):
    """Wraps a network and raises a real out-of-memory error for inputs above `max_pixels`."""

    def __init__(self, inner: nn.Module, max_pixels: int, error: type[BaseException] | None = None, message: str = ""):
        super().__init__()
        self.inner = inner
        self.max_pixels = max_pixels
        self.error = error or torch.cuda.OutOfMemoryError
        self.message = message or "CUDA out of memory. Tried to allocate 2.00 GiB"
        self.largest_seen = 0
        self.refused = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        if pixels > self.max_pixels:
            self.refused += 1
            raise self.error(self.message)
        self.largest_seen = max(self.largest_seen, pixels)
        return self.inner(x)


def small_model(in_channels: int = 3, scale: int = 2, net: nn.Module | None = None) -> Model:
    net = (net or SmallSR(in_channels, scale)).eval()
    return Model(net=net, arch="custom", task="sr", scale=scale, in_channels=in_channels, out_channels=in_channels,
                 config={}, name="small")


def photo(height: int, width: int, channels: int = 3, seed: int = 1) -> np.ndarray:
    """Smooth shapes plus fine texture, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = [0.5 + 0.4 * np.sin(xx / (7 + 3 * c) + yy / (11 + c)) for c in range(channels)]
    img = np.stack(base, -1) + 0.08 * rng.standard_normal((height, width, channels)).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("length,tile,overlap,grid", [(100, 48, 16, 8), (301, 64, 16, 8), (150, 63, 14, 7), (40, 48, 16, 8)])
def test_plan_axis_on_grid_covering_and_overlapping(length, tile, overlap, grid):
    spans = plan_axis(length, tile, overlap, grid)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for a, b in spans:
        assert a % grid == 0, f"origin {a} not on the {grid}-pixel grid"
        assert b - a <= max(tile + grid - 1, length)
    for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
        assert a0 < a1 and b1 >= b0
        assert b0 - a1 >= overlap, f"neighbours share {b0 - a1} < {overlap} pixels"


def test_blend_weights_are_a_partition_of_unity_and_skip_the_context():
    tiles = plan_tiles(0, 203, 48, 16, 16, 8, 3)
    total = np.zeros(203 * 3)
    for t in tiles:
        total[t.weight_start : t.weight_start + t.weights.size] += t.weights
        # the weighted part lies inside the blended span, away from the network input's inner edges
        assert t.weight_start >= (t.start + (16 if t.start > 0 else 0)) * 3
        assert t.weight_start + t.weights.size <= (t.stop - (16 if t.stop < 203 else 0)) * 3
        assert np.all(np.diff(t.weights[: t.weights.size // 2]) >= -1e-6), "ramps must rise smoothly"
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


# ------------------------------------------------------------------------------------------------ exactness and channels


@pytest.mark.parametrize("tile", [16, 24, 40, "auto"])
def test_tiles_reproduce_a_whole_image_pass_of_a_local_network(tile):
    model = small_model()
    img = photo(70, 93)
    # fp32: this measures the tiling, not bf16 rounding (which "auto" picks on CPUs with AVX512-BF16/AMX)
    whole = enhance(img, model, tile=None, precision="fp32")
    tiled = enhance(img, model, tile=tile, overlap=8, precision="fp32")
    assert tiled.shape == (140, 186, 3) and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=2e-6)


def test_gray_photo_through_colour_network_stays_gray():
    model = small_model(3)
    gray = photo(40, 30, channels=1) * 0.6 + 0.2  # away from 0 and 1, so clamping plays no part
    out = enhance(gray, model, tile=16)
    assert out.shape == (80, 60, 1)
    rgb = enhance(np.repeat(gray, 3, axis=2), model, tile=None)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(out[..., 0], luma, atol=2e-6)
    assert enhance(gray[..., 0], model).shape == (80, 60)  # a 2-D array comes back 2-D


def test_colour_photo_through_gray_network_is_run_per_channel():
    model = small_model(1)
    img = photo(36, 44)
    out = enhance(img, model, tile=16)
    assert out.shape == (72, 88, 3)
    for c in range(3):
        single = enhance(img[..., c : c + 1], model, tile=None)
        np.testing.assert_allclose(out[..., c], single[..., 0], atol=2e-6)


def test_alpha_is_upscaled_smoothly_and_never_fed_to_the_network():
    seen_channels = []

    class Recorder(SmallSR):
        def forward(self, x):
            seen_channels.append(x.shape[1])
            return super().forward(x)

    model = small_model(net=Recorder())
    img = photo(40, 52, channels=4)
    yy, xx = np.mgrid[0:40, 0:52]
    img[..., 3] = np.clip(xx / 51.0, 0, 1)  # a horizontal alpha ramp
    out = enhance(img, model, tile=16)
    assert out.shape == (80, 104, 4) and set(seen_channels) == {3}
    np.testing.assert_allclose(out[..., :3], enhance(img[..., :3], model, tile=None), atol=2e-6)
    alpha = out[..., 3]
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert np.all(np.diff(alpha, axis=1) >= -1e-6), "an alpha ramp stays monotonic"
    assert np.abs(np.diff(alpha, axis=0)).max() < 1e-6, "constant rows stay constant"


def test_dual_pixel_model_is_refused_for_a_single_photo():
    model = small_model()
    model.in_channels = 6
    with pytest.raises(EnhancerError, match="dual-pixel"):
        enhance(photo(16, 16), model)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 5), np.float32), np.zeros((0, 4, 3), np.float32),
                                 np.zeros((4, 4, 3), np.uint8), [[0.0]]])
def test_bad_pixels_get_a_clear_error(bad):
    with pytest.raises(EnhancerError):
        enhance(bad, small_model())


# ------------------------------------------------------------------------------------------------ progress, cancel, OOM


def test_progress_counts_tiles_and_cancel_stops_between_tiles():
    model = small_model()
    img = photo(64, 64)
    calls = []
    enhance(img, model, tile=16, overlap=8, progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total > 4 and calls == [(k, total) for k in range(1, total + 1)]

    cancel = threading.Event()
    seen = []

    def stop_after_two(done, _total):
        seen.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        enhance(img, model, tile=16, overlap=8, progress=stop_after_two, cancel=cancel)
    assert seen == [1, 2]


def test_cpu_threads_apply_while_tiles_run_and_are_restored_after():
    model = small_model()
    before = torch.get_num_threads()
    during = []
    out = enhance(photo(32, 32), model, tile=16, overlap=4, threads=1,
                  progress=lambda done, total: during.append(torch.get_num_threads()))
    assert during and set(during) == {1}
    assert torch.get_num_threads() == before
    same = enhance(photo(32, 32), model, tile=16, overlap=4)  # automatic thread count: the same pixels
    np.testing.assert_allclose(out, same, atol=1e-5)


@pytest.mark.parametrize(
    "error,message",
    [
        (torch.cuda.OutOfMemoryError, "CUDA out of memory. Tried to allocate 1.50 GiB"),
        (MemoryError, ""),
        (RuntimeError, "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 bytes"),
    ],
)
def test_out_of_memory_halves_the_tile_and_matches_an_untiled_run(error, message):
    inner = SmallSR().eval()
    img = photo(90, 75)
    untiled = enhance(img, small_model(net=inner), tile=None)
    limited = SizeLimited(inner, max_pixels=40 * 40, error=error, message=message or "out of memory")
    calls = []
    out = enhance(img, small_model(net=limited), tile=None, progress=lambda d, t: calls.append((d, t)))
    assert limited.refused >= 1 and 0 < limited.largest_seen <= 40 * 40
    assert calls[-1] == (1, 1)  # the job did not fail; the one planned tile finished
    np.testing.assert_allclose(out, untiled, atol=2e-6)


def test_errors_that_are_not_out_of_memory_are_not_swallowed():
    limited = SizeLimited(SmallSR().eval(), max_pixels=10, error=ValueError, message="a bug")
    with pytest.raises(ValueError, match="a bug"):
        enhance(photo(20, 20), small_model(net=limited), tile=None)


# ------------------------------------------------------------------------------------------------ real networks


@pytest.fixture(scope="module")
def mobilesr_official():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return enhancer.load_model(need_shared(MOBILESR_WEIGHTS), device="cpu")


@pytest.mark.slow
def test_mobilesr_official_tile48_matches_whole_image_on_set14_and_bsd100(mobilesr_official):
    bench = need_shared(DATA / "benchmarks")
    worst = 0.0
    for dataset in ("Set14", "BSD100"):
        lr_files = sorted((bench / dataset / "LR_bicubic" / "X4").glob("*.png"))
        assert lr_files, f"no LR images in {bench / dataset}"
        psnr_whole, psnr_tiled, max_diffs = [], [], []
        for lr_path in lr_files:
            hr = np.asarray(Image.open(bench / dataset / "HR" / lr_path.name.replace("x4", "")).convert("RGB"))
            lr = load_rgb(lr_path)
            whole = enhance(lr, mobilesr_official, tile=None, precision="fp32")
            tiled = enhance(lr, mobilesr_official, tile=48, precision="fp32")
            max_diffs.append(float(np.abs(whole - tiled).max()) * 255)
            hr = hr[: whole.shape[0], : whole.shape[1]]
            psnr_whole.append(psnr_y(to_uint8(whole), hr, crop=4))
            psnr_tiled.append(psnr_y(to_uint8(tiled), hr, crop=4))
        gap = abs(np.mean(psnr_whole) - np.mean(psnr_tiled))
        worst = max(worst, max(max_diffs))
        print(f"\n{dataset}: {len(lr_files)} images, tile 48: max |tiled - whole| = {max(max_diffs):.3f}/255, "
              f"Y-PSNR whole {np.mean(psnr_whole):.4f} dB, tiled {np.mean(psnr_tiled):.4f} dB (gap {gap:.4f})")
        assert gap <= 0.01
    assert worst <= 2.0


@pytest.mark.slow
def test_bf16_on_cpu_stays_within_002_db_of_fp32(mobilesr_official):
    bench = need_shared(DATA / "benchmarks")
    for dataset in ("Set5", "Set14"):
        fp32, bf16 = [], []
        for lr_path in sorted((bench / dataset / "LR_bicubic" / "X4").glob("*.png")):
            hr = np.asarray(Image.open(bench / dataset / "HR" / lr_path.name.replace("x4", "")).convert("RGB"))
            lr = load_rgb(lr_path)
            for precision, scores in (("fp32", fp32), ("bf16", bf16)):
                out = to_uint8(enhance(lr, mobilesr_official, tile=None, precision=precision))
                scores.append(psnr_y(out, hr[: out.shape[0], : out.shape[1]], crop=4))
        gap = abs(np.mean(fp32) - np.mean(bf16))
        runs = cpu_capabilities().bf16_runs
        path = "bf16" if runs else f"bf16 falls back to fp32 here ({cpu_capabilities().bf16_why_not})"
        print(f"\n{dataset}: Y-PSNR fp32 {np.mean(fp32):.4f} dB, {path} {np.mean(bf16):.4f} dB (gap {gap:.4f})")
        assert gap <= 0.02
        if not runs:
            assert fp32 == bf16, "the fp32 fallback must give the fp32 result exactly"


def official_equal_weight_tiling(model: Model, img: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The tiling of the official SwinIR/Restormer test scripts: fixed stride, last tile flush with the border,
    overlapping outputs averaged with equal weight."""
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
    _, channels, height, width = x.shape
    s = model.scale
    tile = min(tile, height, width)
    stride = tile - overlap
    rows = list(range(0, height - tile, stride)) + [height - tile]
    cols = list(range(0, width - tile, stride)) + [width - tile]
    acc = torch.zeros(1, channels, height * s, width * s)
    count = torch.zeros_like(acc)
    with torch.inference_mode():
        for y in rows:
            for x0 in cols:
                patch = model.net(x[..., y : y + tile, x0 : x0 + tile])
                acc[..., y * s : (y + tile) * s, x0 * s : (x0 + tile) * s] += patch
                count[..., y * s : (y + tile) * s, x0 * s : (x0 + tile) * s] += 1
    return (acc / count).clamp(0, 1)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name", ["swinir_classical_x4", "swinir_jpeg_color_w7", "restormer_withbias"])
def test_golden_networks_tile_better_than_the_official_equal_weight_tiling(name):
    model = enhancer.load_model(need_shared(GOLDEN / f"{name}.pth"), device="cpu")
    hr = load_rgb(need_shared(DATA / "benchmarks" / "Set14" / "HR" / "barbara.png"))
    img = np.ascontiguousarray(hr[200:350, 100:300])  # 200×150
    tile, overlap = 64, 32
    if model.window == 7:
        tile, overlap = 63, 28  # the official script needs a multiple of the window
    whole = enhance(img, model, tile=None)
    ours = enhance(img, model, tile=tile, overlap=overlap)
    official = official_equal_weight_tiling(model, img, tile, overlap)
    ours_max, official_max = np.abs(ours - whole).max() * 255, np.abs(official - whole).max() * 255
    ours_mse, official_mse = np.mean((ours - whole) ** 2), np.mean((official - whole) ** 2)
    print(f"\n{name} 200×150 tile {tile} overlap {overlap}: max |Δ| ours {ours_max:.3f}/255 vs official "
          f"{official_max:.3f}/255; MSE ours {ours_mse:.3e} vs official {official_mse:.3e}")
    assert ours_max < official_max
    assert ours_mse < official_mse
