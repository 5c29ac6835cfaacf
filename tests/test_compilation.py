"""The optional torch.compile path: same pixels as the eager networks, and a failing compiler costs nothing."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from enhancer import compilation, enhance
from enhancer.archs.swinir import SwinIR
from enhancer.checkpoints import model_from_state_dict

HAS_CXX = any(shutil.which(name) for name in ("g++", "c++", "clang++"))


def tiny_swinir():
    torch.manual_seed(0)
    net = SwinIR(upscale=2, img_size=32, window_size=8, img_range=1.0, depths=[2], embed_dim=16, num_heads=[2],
                 mlp_ratio=2, upsampler="pixelshuffledirect")
    return model_from_state_dict(net.state_dict(), name="tiny-swinir")


def photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = np.stack([0.5 + 0.4 * np.sin(xx / (5 + c) + yy / (9 + c)) for c in range(3)], -1)
    return np.clip(smooth + 0.05 * rng.standard_normal((height, width, 3)), 0, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CXX, reason="torch.compile on the CPU needs a C++ compiler, and none is installed")
def test_compiled_tiles_match_the_eager_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # not the user's cache
    model = tiny_swinir()
    img = photo(24, 32)  # one tile: every new tile shape costs a compile of its own
    eager = enhance(img, model, tile=None, precision="fp32")
    compiled = enhance(img, model, tile=None, precision="fp32", compile=True)
    assert compilation.is_compiled(model.net)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)
    assert any((tmp_path / "inductor").iterdir())  # kernels cached for the next run


def test_a_failing_compiler_falls_back_to_the_eager_network_once(monkeypatch, caplog):
    model = tiny_swinir()
    calls = []

    def broken_compile(net, **kwargs):
        def run(x):
            calls.append(x.shape)
            raise RuntimeError("InductorError: no working C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    img = photo(40, 48)
    eager = enhance(img, model, tile=32, overlap=8, precision="fp32")
    with caplog.at_level(logging.WARNING, logger="enhancer.compilation"):
        fallback = enhance(img, model, tile=32, overlap=8, precision="fp32", compile=True)
    np.testing.assert_array_equal(fallback, eager)
    assert len(calls) == 1  # tried once, then every tile ran uncompiled
    assert "torch.compile failed for SwinIR" in caplog.text and "no working C++ compiler" in caplog.text
    assert not compilation.is_compiled(model.net)


def test_out_of_memory_inside_a_compiled_network_reaches_the_tiling(monkeypatch):
    model = tiny_swinir()

    def compile_that_runs_out_of_memory(net, **kwargs):
        def run(x):
            raise MemoryError()

        return run

    monkeypatch.setattr(torch, "compile", compile_that_runs_out_of_memory)
    with pytest.raises(MemoryError):
        compilation.run_network(model.net, torch.rand(1, 3, 16, 16), compile=True)
