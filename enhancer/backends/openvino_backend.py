"""OpenVINO: the plain network's ONNX graph compiled for the CPU (or an Intel GPU, device "GPU").

Precision is set explicitly: OpenVINO would otherwise run bf16 on any CPU with AVX512-BF16/AMX. Its own cache of
compiled blobs (CACHE_DIR) sits beside the exported graphs, so a later process compiles faster.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .compiled import CompiledRunner
from .export import graphs_dir

_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


@functools.lru_cache(maxsize=1)
def core():
    import openvino

    ov_core = openvino.Core()
    cache = graphs_dir() / "openvino"
    cache.mkdir(parents=True, exist_ok=True)
    ov_core.set_property({"CACHE_DIR": str(cache)})
    return ov_core


def runs_natively(precision: str, device: str = "CPU") -> bool:
    """Whether OpenVINO says the device computes in `precision` (bf16: AVX512-BF16 or AMX)."""
    if precision == "fp32":
        return True
    return precision.replace("fp", "FP").upper() in core().get_property(device, "OPTIMIZATION_CAPABILITIES")


class OpenVinoRunner(CompiledRunner):
    name = "openvino"

    def __init__(self, model: Any, precision: str, device: str = "CPU") -> None:
        if device not in core().available_devices:
            from ..errors import DeviceError

            raise DeviceError(f"OpenVINO finds no {device} device here (it has: {', '.join(core().available_devices)})")
        super().__init__(model, precision if runs_natively(precision, device) else "fp32", device)

    def compile(self, onnx_path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _HINTS[self.precision], "PERFORMANCE_HINT": "LATENCY"}
        if self.target == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core().compile_model(onnx_path, self.target, config)
        request = compiled.create_infer_request()
        return lambda x: request.infer([x])[0]
