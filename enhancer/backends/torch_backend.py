"""Eager torch: CUDA, MPS and the CPU (through the network's CPU fast path where its spec has one), with autocast
for bf16/fp16 and optionally torch.compile. The reference, and the path for every GPU torch drives."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..compilation import run_network
from ..devices import DTYPES


class TorchRunner:
    name = "torch"
    uniform_tiles = False  # eager torch runs any shape as it comes

    def __init__(self, model: Any, device: torch.device, precision: str, compile: bool = False) -> None:
        self.precision = precision
        self.device = device
        self.compile = compile
        # compile traces the plain network; eager CPU inference takes the spec's fast path for the device
        self.net = model.net if compile else model.spec.for_inference(model.net, device)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.precision])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            return run_network(self.net, x, self.compile)
