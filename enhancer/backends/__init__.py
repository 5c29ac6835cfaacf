"""What runs the network on a tile: eager torch, or the plain network compiled by OpenVINO or ONNX Runtime.

One small interface, `Runner`: `runner(x)` takes an N×C×H×W float32 tensor (on the model's device, padded as the
network needs) and returns the network's output for it. A runner prepares itself for each new input shape once
(compiled graphs are cached on disk, see `export.py`), so the tiler gives compiled backends uniform tile shapes
(`Runner.uniform_tiles`) and one graph serves a whole job.

`backend="auto"`: CUDA or MPS -> torch; DirectML or an Intel GPU as the device -> the backend that drives it;
on the CPU the faster of torch and OpenVINO for this network, tile shape and precision on this machine, measured
once and remembered (see `choice.py`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any, Protocol

import torch

from ..errors import DeviceError
from ..options import BACKENDS

log = logging.getLogger(__name__)

# Pins what `auto` picks on the CPU (torch, openvino or onnxruntime) instead of measuring: for reproducible runs and
# for the test suite, where a measured choice would make results depend on the machine's load.
AUTO_ENV = "ENHANCER_AUTO_BACKEND"


class Runner(Protocol):
    name: str  # "torch", "openvino" or "onnxruntime"
    precision: str  # the precision it really runs in
    uniform_tiles: bool  # True: every tile of a job should have one shape (one compiled graph)

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def installed(backend: str) -> bool:
    """Whether `backend`'s package is installed (torch always is)."""
    if backend == "torch":
        return True
    return importlib.util.find_spec(backend) is not None


def available() -> tuple[str, ...]:
    return tuple(name for name in BACKENDS if name != "auto" and installed(name))


def check(backend: str) -> str:
    """`backend` lower-cased, or a `DeviceError` that says what to install."""
    name = str(backend or "auto").strip().lower()
    if name not in BACKENDS:
        raise DeviceError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if name != "auto" and not installed(name):
        raise DeviceError(f"the {name} backend is not installed: pip install {name}")
    return name


def make_runner(model: Any, device: torch.device, precision: str, backend: str = "auto", compile: bool = False,
                accelerator: str | None = None, shape: tuple[int, ...] | None = None) -> Runner:
    """The runner for `model` on `device` in `precision` ("fp32", "bf16", "fp16", already resolved); `shape` is the
    job's tile input shape, for the automatic choice."""
    name = check(backend)
    if accelerator in ("dml", "intel-gpu"):
        wanted = "onnxruntime" if accelerator == "dml" else "openvino"
        if name not in ("auto", wanted):
            raise DeviceError(f"device {accelerator} runs through the {wanted} backend, not {name}")
        name = wanted
    elif name == "auto":
        pinned = os.environ.get(AUTO_ENV, "").strip().lower()
        if device.type != "cpu" or compile:
            name = "torch"
        elif pinned in BACKENDS and pinned != "auto":
            name = check(pinned)
        else:
            from .choice import fastest_cpu_backend

            name = fastest_cpu_backend(model, precision, shape)
    if name == "torch":
        from .torch_backend import TorchRunner

        return TorchRunner(model, device, precision, compile)
    if device.type != "cpu":
        raise DeviceError(f"the {name} backend runs on the CPU, DirectML or an Intel GPU, not on {device.type}")
    if name == "openvino":
        from .openvino_backend import OpenVinoRunner

        return OpenVinoRunner(model, precision, "GPU" if accelerator == "intel-gpu" else "CPU")
    from .onnxruntime_backend import OnnxRuntimeRunner

    return OnnxRuntimeRunner(model, precision, "dml" if accelerator == "dml" else "cpu")
