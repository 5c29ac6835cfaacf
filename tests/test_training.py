"""Training recipe: data cache, degradations, a few real training steps, exact resume, export and evaluation."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA, need_shared
from enhancer.checkpoints import load_model
from enhancer.training.data import augment, prepare_cache, sample_hr_patches
from enhancer.training.degradations import (REAL_PHOTO, RealPhotoRecipe, add_noise, bicubic_hr_size, bicubic_pairs, degrade,
                                           gaussian_kernel, jpeg_roundtrip, real_hr_size, real_photo_pairs)
from enhancer.training.imresize import imresize
from enhancer.training.train import TrainConfig, learning_rate_at, load_checkpoint, run

TINY_NET = {"n_feats": 16, "n_heads": 4, "ratios": [2], "upscaling_factor": 4}
ROOT = Path(__file__).resolve().parent.parent


def _smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random image with structure at several scales, so that SR has something to learn."""
    coarse = rng.random((3, h // 8 + 1, w // 8 + 1))
    up = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None], size=(h, w), mode="bicubic",
                                         align_corners=False)[0]
    image = up.numpy() + 0.05 * rng.standard_normal((3, h, w))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(96, 120), (80, 80), (128, 100)]):
        Image.fromarray(_smooth_image(rng, h, w)).save(folder / f"img{i}.png")
    return folder


def _config(folder: Path, iterations: int) -> TrainConfig:
    return TrainConfig(net=dict(TINY_NET), train_dirs=[str(folder)], lr_patch=8, batch=2, iterations=iterations,
                       warmup=2, checkpoint_every=2, eval_every=0, threads=1, bf16=False, ema_decay=0.9)


def test_cache_is_built_once_and_patches_are_augmented(image_folder, tmp_path):
    cache_dir = tmp_path / "cache"
    cache = prepare_cache([image_folder], cache_dir)
    assert len(cache) == 3
    np.testing.assert_array_equal(cache.image(0), np.asarray(Image.open(image_folder / "img0.png")))
    written = {p: p.stat().st_mtime_ns for p in cache_dir.iterdir()}
    prepare_cache([image_folder], cache_dir)
    assert {p: p.stat().st_mtime_ns for p in cache_dir.iterdir()} == written  # reused, not rewritten

    patch = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    variants = {augment(patch, code).tobytes() + bytes(augment(patch, code).shape) for code in range(8)}
    assert len(variants) == 8  # the 8 symmetries of the square are all distinct

    batch_a = sample_hr_patches(cache, 4, 40, torch.Generator().manual_seed(3))
    batch_b = sample_hr_patches(cache, 4, 40, torch.Generator().manual_seed(3))
    assert batch_a.shape == (4, 3, 40, 40) and batch_a.max() <= 255
    torch.testing.assert_close(batch_a, batch_b)


def test_missing_or_empty_training_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_cache([tmp_path / "nowhere"], tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        prepare_cache([tmp_path / "empty"], tmp_path / "cache")


def test_bicubic_pairs_equal_the_lr_of_the_whole_image(image_folder):
    hr = torch.from_numpy(np.array(Image.open(image_folder / "img2.png"))).permute(2, 0, 1).double()
    whole_lr = imresize(hr, scale=1 / 4, round_between=True)
    size = bicubic_hr_size(8, 4)
    lr, hr_patch = bicubic_pairs(hr[None, :, 4:4 + size, 8:8 + size], 4)
    assert lr.shape == (1, 3, 8, 8) and hr_patch.shape == (1, 3, 32, 32)
    # The kept LR pixels never see the patch edge, so they equal those of the whole image.
    torch.testing.assert_close(lr[0] * 255, whole_lr[:, 1 + 3 : 1 + 3 + 8, 2 + 3 : 2 + 3 + 8])


def test_real_photo_degradation_blurs_adds_noise_and_compresses(image_folder):
    cache = prepare_cache([image_folder], image_folder.parent / "cache")
    hr = sample_hr_patches(cache, 3, real_hr_size(16, 2), torch.Generator().manual_seed(0))
    lr, hr_patch = real_photo_pairs(hr, 2, torch.Generator().manual_seed(1))
    assert lr.shape == (3, 3, 16, 16) and hr_patch.shape == (3, 3, 32, 32)
    m = (hr.shape[-1] - 32) // 2
    clean = torch.nn.functional.interpolate(hr[..., m:-m, m:-m] / 255, scale_factor=0.5, mode="area")
    assert 0 <= lr.min() and lr.max() <= 1
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit levels, like a decoded photo
    assert (lr - clean).abs().mean() > 1 / 255  # visibly degraded compared with a clean downscale
    again, _ = real_photo_pairs(hr, 2, torch.Generator().manual_seed(1))
    assert torch.equal(lr, again)  # the batch's generator decides everything: a resumed run sees the same pairs
    flat = torch.full((3, 16, 16), 128.0)
    assert torch.allclose(jpeg_roundtrip(flat, 90), flat, atol=1)


def test_anisotropic_blur_kernel_is_normalised_and_stretched_along_its_angle():
    kernel = gaussian_kernel(3.0, 0.8, 0.0, radius=8)
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-5)
    along_x, along_y = kernel[8, :], kernel[:, 8]
    assert along_x[4] > 10 * along_y[4]  # wide along x (theta 0), narrow along y
    turned = gaussian_kernel(3.0, 0.8, math.pi / 2, radius=8)
    assert torch.allclose(turned, kernel.T, atol=1e-6)


def test_poisson_noise_grows_with_brightness_and_gray_noise_is_the_same_in_every_channel():
    class Draw:  # the recipe's random choices fixed: Poisson, then gray
        def __init__(self, poisson: bool, gray: bool) -> None:
            self.generator = torch.Generator().manual_seed(3)
            self.answers = [gray, poisson]

        def chance(self, probability: float) -> bool:
            return self.answers.pop(0)

        def uniform(self, low: float, high: float) -> float:
            return low

    dark, bright = torch.full((3, 64, 64), 10.0), torch.full((3, 64, 64), 200.0)
    noisy_dark = add_noise(dark, Draw(poisson=True, gray=False), (1, 1), (1, 1), REAL_PHOTO)
    noisy_bright = add_noise(bright, Draw(poisson=True, gray=False), (1, 1), (1, 1), REAL_PHOTO)
    assert (noisy_bright - bright).std() > 3 * (noisy_dark - dark).std()  # shot noise: std ~ sqrt(level)
    gray = add_noise(bright, Draw(poisson=False, gray=True), (5, 5), (1, 1), REAL_PHOTO)
    assert torch.equal(gray[0] - bright[0], gray[2] - bright[2]) and (gray - bright).std() > 3


def test_degrade_gives_the_lr_size_with_one_or_two_passes():
    hr = torch.from_numpy(_smooth_image(np.random.default_rng(1), 96, 64)).permute(2, 0, 1).float()
    for passes_probability in (0.0, 1.0):
        recipe = RealPhotoRecipe(second_pass_probability=passes_probability)
        for seed in range(4):
            lr = degrade(hr, 4, torch.Generator().manual_seed(seed), recipe)
            assert lr.shape == (3, 24, 16) and 0 <= lr.min() and lr.max() <= 255
    one = degrade(hr, 4, torch.Generator().manual_seed(0), RealPhotoRecipe(second_pass_probability=0.0))
    two = degrade(hr, 4, torch.Generator().manual_seed(0), RealPhotoRecipe(second_pass_probability=1.0))
    assert not torch.equal(one, two)


def test_real_photo_evaluation_set_is_the_same_every_time_and_scores_models(image_folder, tmp_path, capsys):
    from enhancer.training.evaluate import main as evaluate_main
    from enhancer.training.evaluate import real_photo_set

    sources = tmp_path / "sources"
    (sources / "Mini").mkdir(parents=True)
    for path in image_folder.glob("*.png"):
        (sources / "Mini" / path.name).write_bytes(path.read_bytes())
    first, second = real_photo_set("Mini", 4, sources), real_photo_set("Mini", 4, sources)
    assert len(first) == 3 and all(np.array_equal(a[1], b[1]) for a, b in zip(first, second))
    assert all(lr.shape[0] * 4 == hr.shape[0] and lr.shape[1] * 4 == hr.shape[1] for hr, lr in first)
    checkpoint = tmp_path / "tiny.pt"
    run(_config(image_folder, 2), checkpoint, resume=False, progress=False)
    assert evaluate_main([str(checkpoint), "--real", "--sets", "Mini", "--real-sources", str(sources), "--bicubic",
                          "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "real-photo sets" in out and "| bicubic |" in out and "| tiny.pt |" in out


def test_schedule_warms_up_then_decays_to_the_floor():
    config = TrainConfig(iterations=100, warmup=10, learning_rate=1e-3, min_learning_rate=1e-5)
    assert learning_rate_at(config, 0) == pytest.approx(1e-4)
    assert learning_rate_at(config, 9) == pytest.approx(1e-3)
    assert learning_rate_at(config, 55) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert learning_rate_at(config, 100) == pytest.approx(1e-5)


def test_training_resumes_exactly_and_exports_a_loadable_model(image_folder, tmp_path):
    from enhancer import load_model
    from enhancer.training.export import export_checkpoint

    cache_dir = tmp_path / "cache"
    straight = run(_config(image_folder, 6), tmp_path / "straight.pt", cache_dir=str(cache_dir), progress=False,
                   log_path=tmp_path / "log.jsonl")
    assert straight.step == 6

    first = run(_config(image_folder, 3), tmp_path / "resumed.pt", cache_dir=str(cache_dir), progress=False)
    assert first.step == 3
    resumed = run(_config(image_folder, 3), tmp_path / "resumed.pt", cache_dir=str(cache_dir), progress=False,
                  overrides={"iterations": 6})
    assert resumed.step == 6
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    for a, b in zip(straight.ema.net.state_dict().values(), resumed.ema.net.state_dict().values()):
        assert torch.equal(a, b)
    reloaded = load_checkpoint(tmp_path / "resumed.pt")
    assert reloaded.step == 6 and reloaded.config.net == TINY_NET

    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "start" and log[0]["config"]["lr_patch"] == 8

    info = export_checkpoint(tmp_path / "straight.pt", tmp_path / "tiny.safetensors")
    assert info["sha256"] == hashlib.sha256((tmp_path / "tiny.safetensors").read_bytes()).hexdigest()
    model = load_model(tmp_path / "tiny.safetensors", device="cpu")
    assert model.arch == "mobilesr" and model.scale == 4 and model.config["n_feats"] == 16
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(model.net(x), straight.ema.net.eval()(x))


def test_training_lowers_the_loss(image_folder, tmp_path):
    config = _config(image_folder, 40)
    config.learning_rate = 3e-3
    config.lr_patch = 12
    config.checkpoint_every = 100
    config.log_every = 5
    run(config, tmp_path / "run.pt", cache_dir=str(tmp_path / "cache"), progress=False, log_path=tmp_path / "log.jsonl")
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 8, "the loss is logged every 5 steps"
    print(f"running L1 loss: step 5 {losses[0]:.4f}, step 40 {losses[-1]:.4f}")
    assert math.isfinite(losses[-1]) and losses[-1] < 0.7 * losses[0]


def test_bicubic_baseline_matches_the_published_set5_figure():
    from enhancer.training.evaluate import bicubic_set

    root = need_shared(DATA / "benchmarks")
    score = bicubic_set(root, "Set5", 4)
    print(f"bicubic Set5 x4 Y-PSNR {score:.2f} dB")
    assert 28.3 < score < 28.5  # the literature's 28.42


def test_bundled_default_is_in_the_catalog_and_loads():
    from enhancer import load_model
    from enhancer.store import load_catalog

    defaults = [entry for entry in load_catalog() if entry.default]
    if not defaults or not defaults[0].bundled:
        pytest.skip("no bundled default model is in models/catalog.toml yet")
    entry = defaults[0]
    path = ROOT / "models" / entry.bundled
    assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    model = load_model(entry.id, device="cpu")
    assert model.arch == "mobilesr" and model.scale == 4
    with torch.no_grad():
        out = model.net(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 64, 64)


def test_command_line_trains_then_resumes_with_a_longer_schedule(image_folder, tmp_path):
    from enhancer.training.__main__ import main

    common = ["--checkpoint", str(tmp_path / "cli.pt"), "--train-dir", str(image_folder), "--cache",
              str(tmp_path / "cache"), "--net", json.dumps(TINY_NET), "--lr-patch", "8", "--batch", "2",
              "--warmup", "1", "--threads", "1", "--no-progress"]
    assert main(common + ["--iterations", "2"]) == 0
    assert load_checkpoint(tmp_path / "cli.pt").step == 2
    assert main(common + ["--iterations", "3"]) == 0
    state = load_checkpoint(tmp_path / "cli.pt")
    assert state.step == 3 and state.config.iterations == 3 and state.config.net == TINY_NET


def test_mobilesr_gradients_match_the_plain_reference_network():
    """Training needs true gradients: the engine's (possibly fused, inference-tuned) MobileSR must backpropagate
    exactly like the plain reference copy kept in bench/."""
    from bench.mobilesr_baseline import MobileSRBaseline
    from enhancer.archs.mobilesr import MobileSR

    torch.manual_seed(0)
    net = MobileSR(**TINY_NET).train()
    reference = MobileSRBaseline(**TINY_NET).train()
    reference.load_state_dict(net.state_dict())
    x, target = torch.rand(2, 3, 12, 20), torch.rand(2, 3, 48, 80)
    for model in (net, reference):
        torch.nn.functional.l1_loss(model(x), target).backward()
    reference_grads = dict(reference.named_parameters())
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, reference_grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_command_line_trains_espcn_on_luma_and_exports_a_luma_model(image_folder, tmp_path):
    from enhancer import load_model
    from enhancer.tiling import runs_on_luma
    from enhancer.training.__main__ import main
    from enhancer.training.evaluate import load_for_eval
    from enhancer.training.export import export_checkpoint

    checkpoint = tmp_path / "espcn.pt"
    assert main(["--arch", "espcn", "--scale", "2", "--checkpoint", str(checkpoint), "--train-dir", str(image_folder),
                 "--cache", str(tmp_path / "cache"), "--lr-patch", "8", "--batch", "2", "--iterations", "3",
                 "--warmup", "1", "--loss", "mse", "--threads", "1", "--no-progress"]) == 0
    state = load_checkpoint(checkpoint)
    assert state.step == 3 and state.config.net == {"upscale_factor": 2}  # ESPCN's defaults: one channel
    net, scale, luma = load_for_eval(str(checkpoint))
    assert scale == 2 and luma
    export_checkpoint(checkpoint, tmp_path / "espcn.safetensors")
    model = load_model(tmp_path / "espcn.safetensors", device="cpu")
    assert (model.arch, model.scale, model.in_channels) == ("espcn", 2, 1) and runs_on_luma(model)


def test_compare_crops_puts_bicubic_and_both_models_side_by_side_on_the_most_detailed_window(tmp_path):
    from enhancer.training.compare_crops import LABEL_HEIGHT, compare, most_detailed_window

    rgb = np.full((80, 96, 3), 128, dtype=np.uint8)
    rgb[40:72, 8:40] = np.random.default_rng(0).integers(0, 255, (32, 32, 3))  # the only texture
    assert most_detailed_window(rgb, 32) == (40, 8)
    photo = tmp_path / "photo.png"
    Image.fromarray(rgb).save(photo)
    model = load_model(str(ROOT / "models" / "own-mobilesr-x4.safetensors"), device="cpu")
    sheet = compare(photo, [("clean", model), ("real", model)], 16, tmp_path / "out")
    with Image.open(sheet) as image:
        assert image.size == (3 * 64 + 2 * 4, 64 + LABEL_HEIGHT)
        pixels = np.asarray(image.convert("RGB"))
    # the two model tiles (same model) are identical; bicubic differs from them
    first, second = pixels[LABEL_HEIGHT:, 68:132], pixels[LABEL_HEIGHT:, 136:200]
    assert np.array_equal(first, second) and not np.array_equal(pixels[LABEL_HEIGHT:, :64], first)
