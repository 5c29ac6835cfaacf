"""The networks as published export: `torch.onnx.export` on a fixed-size input gives a graph that onnxruntime runs on
the CPU with the torch output (to 1e-4), and `torch.export.export` captures them. The CPU fast modules
(`archs/<name>/fast_cpu.py`) are for eager inference only and are not exported."""

from __future__ import annotations

import importlib.util
import io

import pytest
import torch

from enhancer.archs import mobilesr, restormer, swinir

TOLERANCE = 1e-4
OPSET = 17


def _randomise(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial weights, so that every path contributes to the output (norm scales stay near 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + centre)
    return net.eval()


def _espcn():
    if importlib.util.find_spec("enhancer.archs.espcn") is None:
        pytest.skip("enhancer/archs/espcn/ does not exist in this tree (yet): nothing to export")
    from enhancer.archs.espcn import SPEC

    return _espcn_from_spec(SPEC)


def _espcn_from_spec(spec):
    """ESPCN built from its spec with its default (published) configuration."""
    return spec.build({})


CASES = {
    # name: (build, input shape: fixed, deliberately not a multiple of the attention window where one pads itself)
    "swinir-small": (
        lambda: swinir.SwinIR(upscale=2, img_size=32, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=12,
                              num_heads=[2, 3], mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv"),
        (1, 3, 20, 28),
    ),
    "swinir-small-denoise": (
        lambda: swinir.SwinIR(upscale=1, img_size=32, window_size=8, img_range=1.0, depths=[2], embed_dim=12,
                              num_heads=[2], mlp_ratio=2.0, upsampler="", resi_connection="1conv"),
        (1, 3, 24, 16),
    ),
    "restormer-small": (
        lambda: restormer.Restormer(dim=8, num_blocks=[1, 2, 1, 1], num_refinement_blocks=1, heads=[1, 2, 2, 4]),
        (1, 3, 24, 32),
    ),
    "mobilesr-small-x4": (
        lambda: mobilesr.MobileSR(n_feats=16, n_heads=4, ratios=[4, 2], upscaling_factor=4),
        (1, 3, 19, 27),
    ),
    "mobilesr-small-x3": (
        lambda: mobilesr.MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=3),
        (1, 3, 16, 24),
    ),
    "espcn": (_espcn, None),
}


def _build(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    build, shape = CASES[name]
    net = _randomise(build(), seed=len(name))
    if shape is None:  # ESPCN: a 1-channel (luma) or RGB network, whatever its published configuration takes
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        shape = (1, first.in_channels, 17, 23)
    return net, torch.rand(shape, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_export_runs_in_onnxruntime_like_torch(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net, x = _build(name)
    with torch.no_grad():
        expected = net(x)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(net, (x,), str(path), opset_version=OPSET, input_names=["input"], output_names=["output"],
                      dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    assert got.shape == tuple(expected.shape)
    diff = float(abs(torch.from_numpy(got) - expected).max())
    print(f"{name}: onnxruntime vs torch max abs diff {diff:.2e} (input {tuple(x.shape)}, |output| max "
          f"{expected.abs().max().item():.2f})")
    assert diff <= TOLERANCE, f"{name}: max abs diff {diff:.3e} > {TOLERANCE}"


@pytest.mark.parametrize("name", list(CASES))
def test_torch_export_captures_the_network(name):
    net, x = _build(name)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        expected = net(x)
        got = exported.module()(x)
    assert (got - expected).abs().max().item() <= TOLERANCE
