"""Restormer and MobileSR beyond the golden cases: fast paths against plain ones, detection round trips, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.mobilesr_baseline import MobileSRBaseline
from conftest import require_bf16
from enhancer.archs.mobilesr import fast_cpu as mobilesr_fast
from enhancer.archs.mobilesr import MobileSR, MobileSRFastCPU
from enhancer.archs.mobilesr import SPEC as MOBILESR_SPEC
from enhancer.archs.onednn import dtype_runs_fused
from enhancer.archs.restormer import Restormer, RestormerFastCPU
from enhancer.archs.restormer import SPEC as RESTORMER_SPEC
from enhancer.checkpoints import model_from_state_dict
from enhancer.archs.mobilesr import detect as detect_mobilesr
from enhancer.devices import cpu_capabilities
from enhancer.archs.restormer import detect as detect_restormer
from enhancer.metrics import psnr_rgb, psnr_y, rgb_to_y

SMALL_RESTORMER = dict(dim=8, num_blocks=[1, 2, 1, 1], num_refinement_blocks=1, heads=[1, 2, 2, 4])


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter non-trivial values, so that each path really contributes to the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + centre)
    return net.eval()


CPU = torch.device("cpu")


def _fast(net: torch.nn.Module) -> torch.nn.Module:
    """The CPU inference module the tiler runs for `net` (its fast path on this CPU)."""
    spec = MOBILESR_SPEC if isinstance(net, MobileSR) else RESTORMER_SPEC
    fast = spec.for_inference(net, CPU)
    assert isinstance(fast, (MobileSRFastCPU, RestormerFastCPU)), "this CPU has oneDNN's fused fp32 ops"
    return fast


# ---------------------------------------------------------------- MobileSR


@pytest.mark.parametrize("scale,ratios", [(2, [2, 2]), (3, [2, 4]), (4, [4, 2, 2])])
@pytest.mark.parametrize("size", [(19, 27), (16, 24)])
def test_mobilesr_fast_path_matches_frozen_baseline(scale, ratios, size):
    kwargs = dict(n_feats=16, n_heads=4, ratios=ratios, upscaling_factor=scale)
    net = _randomise(MobileSR(**kwargs), seed=scale)
    fast = _fast(net)
    plain = MobileSRBaseline(**kwargs).eval()
    plain.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = plain(x)
        got = fast(x)
        ours_plain = net(x)
    with torch.no_grad():
        got_no_grad = fast(x)
    assert got.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert got.is_contiguous()
    assert (got - expected).abs().max().item() <= 1e-4
    assert (got_no_grad - expected).abs().max().item() <= 1e-4
    assert (ours_plain - expected).abs().max().item() <= 1e-4
    # With autograd on (training) the fast module runs the plain network: the same numbers and real gradients.
    x_grad = x.clone().requires_grad_(True)
    differentiable = fast(x_grad)
    assert (differentiable.detach() - expected).abs().max().item() <= 1e-4
    differentiable.square().mean().backward()
    assert x_grad.grad is not None and x_grad.grad.abs().sum() > 0


@pytest.mark.parametrize("band_bytes,min_rows", [(1, 1), (3000, 16)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_mobilesr_row_bands_match_the_whole_tensor_pass(monkeypatch, band_bytes, min_rows, scale):
    """Large tiles run attention, MLP, ResBlock and upsampling in row bands; the result must not change."""
    module = mobilesr_fast

    kwargs = dict(n_feats=16, n_heads=4, ratios=[4, 2], upscaling_factor=scale)
    net = _randomise(MobileSR(**kwargs), seed=7)
    fast = _fast(net)
    plain = MobileSRBaseline(**kwargs).eval()
    plain.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(2, 3, 29, 37, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = plain(x)
        monkeypatch.setattr(module, "BAND_BYTES", band_bytes)  # (1, 1): one window row / one pixel row per band
        monkeypatch.setattr(module, "MIN_BAND_ROWS", min_rows)
        assert module._band_rows(16 * 64 * 4, 8) < 29  # really banded
        got = fast(x)
        # Called on their own, the banded blocks leave their input alone (only the network's own temporaries are
        # overwritten in place).
        feats = net.head(x).contiguous(memory_format=torch.channels_last)
        kept = feats.clone()
        transformer, resblock = net.body.layers[0]
        fast.run_resblock(resblock, fast.run_transformer(transformer, feats))
        assert torch.equal(feats, kept)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


def test_mobilesr_cached_constants_follow_new_weights():
    kwargs = dict(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=4)
    net = _randomise(MobileSR(**kwargs), seed=3)
    fast = _fast(net)
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        fast(x)  # fills the caches (folded pos_embed, reordered upsampling weights)
    other = _randomise(MobileSR(**kwargs), seed=4)
    net.load_state_dict(other.state_dict())
    plain = MobileSRBaseline(**kwargs).eval()
    plain.load_state_dict(other.state_dict())
    with torch.inference_mode():
        assert (fast(x) - plain(x)).abs().max().item() <= 1e-4


def _cpu_bf16_path() -> str:
    """Which path MobileSR takes under CPU bf16 autocast here, from the one capability function the network asks."""
    if dtype_runs_fused(torch.bfloat16):
        return "native bf16 through oneDNN's fused kernels"
    return f"the plain ops under autocast ({cpu_capabilities().bf16_why_not}: no oneDNN bf16 kernels)"


def test_mobilesr_under_bf16_autocast_is_as_accurate_as_the_plain_network():
    kwargs = dict(n_feats=16, n_heads=4, ratios=[2, 2], upscaling_factor=2)
    net = _randomise(MobileSR(**kwargs), seed=5)
    plain = MobileSRBaseline(**kwargs).eval()
    plain.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        reference = plain(x)
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = _fast(net)(x)
            plain_mixed = plain(x)
    path = _cpu_bf16_path()
    assert mixed.dtype == torch.float32, path  # the bilinear skip and the final sum stay fp32
    error = (mixed - reference).abs().mean().item()
    plain_error = (plain_mixed - reference).abs().mean().item()
    assert 0 < error <= 1.5 * plain_error, f"{path}: error {error:.2e}, the baseline's under autocast {plain_error:.2e}"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_mobilesr_under_a_gpu_style_autocast_keeps_the_plain_ops(scale):
    """CUDA autocast (fp16 or bf16) runs the plain ops with autocast's casts; CPU fp16 autocast takes the same path,
    so it stands in for a GPU here."""
    kwargs = dict(n_feats=16, n_heads=4, ratios=[2, 4], upscaling_factor=scale)
    net = _randomise(MobileSR(**kwargs), seed=8)
    plain = MobileSRBaseline(**kwargs).eval()
    plain.load_state_dict(net.state_dict())
    x = torch.rand(2, 3, 19, 21, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        reference = plain(x)
        with torch.autocast("cpu", dtype=torch.float16):
            mixed = _fast(net)(x)
            ours_plain = net(x)
            plain_mixed = plain(x)
    assert mixed.dtype == torch.float32 and mixed.shape == reference.shape
    for got in (mixed, ours_plain):
        assert (got - reference).abs().max().item() <= 2 * (plain_mixed - reference).abs().max().item() + 1e-4


def test_mobilesr_runs_natively_in_bf16_under_cpu_autocast_and_as_a_bf16_network():
    """Where oneDNN has bf16 kernels, CPU bf16 autocast makes the inference path convert the weights itself and turn
    autocast off; a network converted with .to(bfloat16) takes the same path. Elsewhere both take the plain ops (the
    fallback). Either way they stay close to fp32, and the caches follow the dtype."""
    kwargs = dict(n_feats=16, n_heads=4, ratios=[4, 2], upscaling_factor=4)
    net = _randomise(MobileSR(**kwargs), seed=6)
    fast = _fast(net)
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(3))
    native = cpu_capabilities().bf16_runs
    with torch.inference_mode():
        reference = fast(x)
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert (mobilesr_fast.inference_dtype(x) == torch.bfloat16) == native, _cpu_bf16_path()
            mixed = fast(x)
        net.to(torch.bfloat16)
        as_bf16 = fast(x.bfloat16())
        net.float()
        again = fast(x)  # back to fp32 (weights now rounded to bf16): no stale cached weights are used
        plain = MobileSRBaseline(**kwargs).eval()
        plain.load_state_dict(net.state_dict())
        expected_again = plain(x)
    assert mixed.dtype == torch.float32 and as_bf16.dtype == torch.bfloat16
    scale = reference.abs().max().item()
    assert 0 < (mixed - reference).abs().max().item() <= 0.03 * scale
    assert (as_bf16.float() - reference).abs().max().item() <= 0.05 * scale
    assert (again - expected_again).abs().max().item() <= 1e-4


@pytest.mark.parametrize(
    "n_feats,heads", [(40, 8), (16, 4), (24, 4), (32, 8), (12, 2), (8, 2), (4, 1)]
)
def test_mobilesr_head_rule(n_feats, heads):
    assert detect_mobilesr.infer_heads(n_feats) == heads


@pytest.mark.parametrize("scale,ratios", [(2, [2, 2]), (3, [1, 4, 2]), (4, [4, 2, 2, 2, 4])])
def test_mobilesr_detection_round_trip(scale, ratios):
    net = MobileSR(n_feats=24, n_heads=4, ratios=ratios, upscaling_factor=scale)
    found = detect_mobilesr.detect(net.state_dict())
    assert found is not None
    assert found.config == {"n_feats": 24, "n_heads": 4, "ratios": ratios, "upscaling_factor": scale}
    assert (found.arch, found.task, found.scale, found.in_channels, found.out_channels) == ("mobilesr", "sr", scale, 3, 3)
    assert detect_restormer.detect(net.state_dict()) is None


# ---------------------------------------------------------------- Restormer


def test_restormer_batch_of_one_equals_batch_of_two():
    net = _fast(_randomise(Restormer(**SMALL_RESTORMER), seed=6))
    x = torch.rand(2, 3, 16, 24)
    with torch.inference_mode():
        both = net(x)
        first = net(x[:1])
    assert both.shape == x.shape and both.is_contiguous()
    # Random weights make outputs large (~1e3): compare relative to their size (fp32 reassociation only).
    assert (both[:1] - first).abs().max().item() <= 1e-5 * max(1.0, both.abs().max().item())


@pytest.mark.parametrize("bias,norm", [(False, "WithBias"), (True, "WithBias"), (True, "BiasFree")])
def test_restormer_fused_inference_matches_the_module_path(bias, norm):
    """fp32 CPU inference runs oneDNN fused ops (split GEMMs, GELU and gating as conv post-ops, Gram-diagonal norms);
    with autograd on, the plain modules run. Both must give the same image."""
    net = _randomise(Restormer(**SMALL_RESTORMER, bias=bias, LayerNorm_type=norm), seed=8)
    x = torch.rand(1, 3, 24, 32)
    with torch.inference_mode():
        fused = _fast(net)(x)
    plain = net(x.clone().requires_grad_(True)).detach()
    assert (fused - plain).abs().max().item() <= 1e-5 * max(1.0, plain.abs().max().item())


def test_restormer_rejects_sizes_that_are_not_multiples_of_8():
    net = Restormer(**SMALL_RESTORMER).eval()
    for module in (net, _fast(net)):
        with pytest.raises(ValueError, match="multiples of 8"), torch.inference_mode():
            module(torch.rand(1, 3, 20, 24))


def test_restormer_trains_and_autocasts():
    net = _randomise(Restormer(**SMALL_RESTORMER), seed=7).train()
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    net.eval()
    with torch.inference_mode():
        reference = net(x.detach())
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net(x.detach())
            fast_mixed = _fast(net)(x.detach())
    for got in (mixed, fast_mixed):
        assert got.dtype == torch.float32  # residual sums keep fp32 under autocast
        assert (got - reference).abs().max().item() <= 0.02 * reference.abs().max().item()


@pytest.mark.parametrize("ffn", [2.66, 2.0, 1.5, 2.33, 3.0, 4.0])
@pytest.mark.parametrize("dim", [8, 48])
def test_restormer_ffn_factor_round_trips(ffn, dim):
    net = Restormer(dim=dim, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, ffn_expansion_factor=ffn)
    found = detect_restormer.detect(net.state_dict())
    assert found is not None
    rebuilt = Restormer(**found.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    if ffn == 2.66:
        assert found.config["ffn_expansion_factor"] == 2.66


@pytest.mark.parametrize(
    "kwargs,task",
    [
        (dict(), "deblur"),
        (dict(LayerNorm_type="BiasFree"), "denoise"),
        (dict(inp_channels=1, out_channels=1), "denoise"),
        (dict(inp_channels=6, dual_pixel_task=True), "defocus"),
        (dict(bias=True, num_refinement_blocks=0), "deblur"),
    ],
)
def test_restormer_detection_recovers_every_argument(kwargs, task):
    config = {
        "inp_channels": 3, "out_channels": 3, "dim": 8, "num_blocks": [1, 2, 1, 1], "num_refinement_blocks": 1,
        "heads": [1, 2, 2, 4], "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias",
        "dual_pixel_task": False,
    }
    config.update(kwargs)
    net = _randomise(Restormer(**config), seed=8)
    found = detect_restormer.detect(net.state_dict())
    assert found is not None and found.config == config and found.task == task
    assert detect_mobilesr.detect(net.state_dict()) is None
    # And the engine builds and loads it strictly, giving the same outputs.
    model = model_from_state_dict(dict(net.state_dict()), name="restormer-test")
    x = torch.rand(1, config["inp_channels"], 16, 16)
    with torch.inference_mode():
        assert torch.equal(model.net(x), net(x))


# ---------------------------------------------------------------- metrics


def test_rgb_to_y_uses_bt601_studio_range():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y[0, 0] == pytest.approx(16.0)
    assert y[0, 1] == pytest.approx(16.0 + 65.481 + 128.553 + 24.966)
    assert y[0, 2] == pytest.approx(16.0 + 65.481)


def test_psnr_values_and_crop():
    a = np.full((12, 12, 3), 100, dtype=np.uint8)
    b = a.copy()
    assert psnr_rgb(a, b) == math.inf
    b[:, :, :] = 110  # every value off by 10 -> MSE 100
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    c = a.copy()
    c[0, :, :] = 0  # only the border row differs: cropped away
    assert psnr_rgb(a, c, crop=2) == math.inf and psnr_y(a, c, crop=2) == math.inf
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / (10 * (65.481 + 128.553 + 24.966) / 255) ** 2))


def test_metrics_reject_bad_input():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        psnr_y(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="differ in size"):
        psnr_rgb(a, np.zeros((8, 9, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="cannot crop"):
        psnr_rgb(a, a, crop=4)


# ---------------------------------------------------------------- the CPU fast modules against the plain networks


@pytest.mark.parametrize("scale,ratios", [(2, [2]), (3, [4, 2]), (4, [2, 2, 4])])
@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 3, 13, 21), (1, 3, 40, 17)])
def test_mobilesr_fast_module_matches_the_plain_network(scale, ratios, shape):
    net = _randomise(MobileSR(n_feats=16, n_heads=4, ratios=ratios, upscaling_factor=scale), seed=scale + len(ratios))
    fast = _fast(net)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[2]))
    with torch.inference_mode():
        plain = net(x)
        got = fast(x)
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain_bf16 = net(x)
            got_bf16 = fast(x)
    assert got.shape == plain.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)
    assert (got - plain).abs().max().item() <= 1e-4
    # bf16: native bf16 (this CPU's oneDNN has bf16 kernels) or autocast's ops; close to fp32 either way, and no
    # further from it than the plain network under the same autocast.
    assert got_bf16.dtype == torch.float32
    size = plain.abs().max().item()
    assert (got_bf16 - plain).abs().max().item() <= 0.03 * size
    assert (got_bf16 - plain).abs().mean().item() <= 1.5 * (plain_bf16 - plain).abs().mean().item() + 1e-6


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        (dict(), (1, 3, 8, 8)),
        (dict(bias=True), (2, 3, 16, 40)),
        (dict(LayerNorm_type="BiasFree"), (1, 3, 32, 24)),
        (dict(inp_channels=6, dual_pixel_task=True), (1, 6, 16, 16)),
        (dict(inp_channels=1, out_channels=1, ffn_expansion_factor=2.0), (1, 1, 24, 16)),
    ],
)
def test_restormer_fast_module_matches_the_plain_network(kwargs, shape):
    net = _randomise(Restormer(**{**SMALL_RESTORMER, **kwargs}), seed=shape[2])
    fast = _fast(net)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[3]))
    with torch.inference_mode():
        plain = net(x)
        got = fast(x)
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain_bf16 = net(x)
            got_bf16 = fast(x)
    size = max(1.0, plain.abs().max().item())  # random weights: outputs of ~1e3, compare relative to them
    assert got.shape == plain.shape and got.is_contiguous()
    assert (got - plain).abs().max().item() <= 1e-4 * size
    assert got_bf16.dtype == plain_bf16.dtype  # fp32 with the input skip, autocast's bf16 without (dual pixel)
    assert (got_bf16.float() - plain).abs().max().item() <= 0.02 * size


def test_fast_modules_are_the_plain_network_on_other_devices_and_share_its_weights():
    mobile = MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2)
    rest = Restormer(**SMALL_RESTORMER)
    for spec, net in ((MOBILESR_SPEC, mobile), (RESTORMER_SPEC, rest)):
        assert spec.for_inference(net, torch.device("meta")) is net  # not a CPU: the plain network
        fast = spec.for_inference(net, CPU)
        assert fast.net is net
        assert all(a is b for a, b in zip(fast.net.parameters(), net.parameters()))  # no copy of the weights
