"""The tile plan a compiled backend gets: at most two input extents per axis, starts on the window grid, every
tile's own span still inside its input, and the result as a plan the network sees without extra padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enhancer import Model, enhance
from enhancer.backends import torch_backend
from enhancer.tiling import plan_tiles, uniform_extents


@pytest.mark.parametrize("size,tile,overlap,context,grid", [(150, 64, 32, 16, 8), (203, 96, 16, 16, 8),
                                                            (317, 96, 16, 16, 8), (61, 96, 16, 16, 8),
                                                            (500, 120, 14, 14, 7)])
def test_uniform_extents_keep_every_span_on_the_grid_with_two_extents_at_most(size, tile, overlap, context, grid):
    plan = plan_tiles(0, size, tile, overlap, context, grid, 2)
    widened = uniform_extents(plan, 0, size, grid)
    assert len({t.stop - t.start for t in widened}) <= 2
    assert len({t.stop - t.start for t in widened if t.stop < size}) <= 1  # one interior extent
    for before, after in zip(plan, widened):
        assert after.start <= before.start and after.stop >= before.stop  # only more context
        assert after.start % grid == 0 and 0 <= after.start and after.stop <= size
        assert after.weight_start == before.weight_start and after.weights is before.weights


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


def test_the_widened_plan_gives_the_tiled_result_of_the_plain_plan(monkeypatch):
    torch.manual_seed(0)
    model = Model(net=Tiny().eval(), arch="custom", task="sr", scale=2, in_channels=3, out_channels=3, config={},
                  name="tiny")
    photo = np.random.default_rng(1).random((75, 101, 3), dtype=np.float32)
    plain = enhance(photo, model, tile=32, backend="torch", precision="fp32")
    monkeypatch.setattr(torch_backend.TorchRunner, "uniform_tiles", True)  # the compiled backends' plan, on torch
    widened = enhance(photo, model, tile=32, backend="torch", precision="fp32")
    assert np.abs(widened - plain).max() <= 1e-6
