"""ONNX Runtime: the plain network's ONNX graph on the CPU, or on any DirectML GPU under Windows ("dml")."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import DeviceError
from .compiled import CompiledRunner

PROVIDERS = {"cpu": "CPUExecutionProvider", "dml": "DmlExecutionProvider"}


def providers_available() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


class OnnxRuntimeRunner(CompiledRunner):
    name = "onnxruntime"

    def __init__(self, model: Any, precision: str, target: str = "cpu") -> None:
        provider = PROVIDERS[target]
        if provider not in providers_available():
            raise DeviceError(
                f"ONNX Runtime has no {provider} here (it has {', '.join(providers_available())}); "
                + ("DirectML needs Windows and the onnxruntime-directml package" if target == "dml" else "")
            )
        super().__init__(model, "fp32", target)  # its CPU kernels are fp32; graphs stay fp32 on DirectML too

    def compile(self, onnx_path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(onnx_path, options, providers=[PROVIDERS[self.target]])
        return lambda x: session.run(None, {"input": x})[0]
