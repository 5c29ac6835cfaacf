"""What the OpenVINO and ONNX Runtime runners share: one compiled graph per input shape, made from the cached ONNX
export, kept for the process (a few at most: they hold a copy of the weights), rebuilt once from a fresh export
when the cached file does not load."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

from .export import export_onnx, weights_digest

log = logging.getLogger(__name__)

KEEP_COMPILED = 6  # graphs kept per process: the full tile, halved tiles after out-of-memory, a second model
_cache: "OrderedDict[tuple, Any]" = OrderedDict()
_lock = threading.Lock()


class CompiledRunner:
    """Runs `model.net` through a compiled graph per input shape (batch 1; a batch runs tile by tile)."""

    name = "compiled"
    uniform_tiles = True

    def __init__(self, model: Any, precision: str, target: str) -> None:
        self.model = model
        self.precision = precision
        self.target = target

    def compile(self, onnx_path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        """A function input -> output for the graph in `onnx_path`; raises when the file does not load."""
        raise NotImplementedError

    def _graph(self, shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
        threads = torch.get_num_threads()
        key = (self.name, weights_digest(self.model.net), shape, self.precision, self.target, threads)
        with _lock:
            graph = _cache.get(key)
            if graph is not None:
                _cache.move_to_end(key)
                return graph
            path = export_onnx(self.model, shape)
            try:
                graph = self.compile(str(path), threads)
            except Exception as exc:  # noqa: BLE001 - a damaged or stale cache file: export it again, once
                log.warning("the prepared %s graph %s did not load (%s); preparing it again",
                            self.name, path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                graph = self.compile(str(export_onnx(self.model, shape, rebuild=True)), threads)
            _cache[key] = graph
            while len(_cache) > KEEP_COMPILED:
                _cache.popitem(last=False)
            return graph

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to("cpu", torch.float32).contiguous()
        graph = self._graph((1, *x.shape[1:]))
        outputs = [torch.from_numpy(np.ascontiguousarray(graph(x[i : i + 1].numpy()))) for i in range(x.shape[0])]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def forget_compiled() -> None:
    """Drop every compiled graph of this process (tests; a model deleted from the store)."""
    with _lock:
        _cache.clear()
