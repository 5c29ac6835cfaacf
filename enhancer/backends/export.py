"""The plain network as an ONNX graph for one input shape, exported once and kept in the app's cache folder.

A graph is keyed by everything that changes it: the weights (their digest), the architecture and its config, the
input shape, the exporter (torch version, opset) and the format version of this module. A second run finds the file
and exports nothing; a file that does not load is removed and exported again (`export_onnx(..., rebuild=True)`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import weakref
from pathlib import Path
from typing import Any

import torch

from .. import paths
from ..atomic import TEMP_PREFIX, AtomicFile
from ..errors import EnhancerError

log = logging.getLogger(__name__)

OPSET = 17
FORMAT_VERSION = 1
_digests: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()


def graphs_dir() -> Path:
    """Exported graphs and the backends' own compiled-model caches (ENHANCER_BACKEND_CACHE moves them, for tests)."""
    configured = os.environ.get("ENHANCER_BACKEND_CACHE")
    return Path(configured) if configured else paths.cache_dir() / "backends"


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 over the parameters and buffers (names, dtypes, shapes, bytes); computed once per network object."""
    known = _digests.get(net)
    if known is not None:
        return known
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    _digests[net] = digest.hexdigest()
    return _digests[net]


def graph_path(model: Any, shape: tuple[int, ...]) -> Path:
    key = json.dumps(
        {
            "weights": weights_digest(model.net), "arch": model.arch, "config": model.config, "shape": list(shape),
            "torch": torch.__version__, "opset": OPSET, "format": FORMAT_VERSION,
        },
        sort_keys=True, default=str,
    )
    name = f"{model.arch}-{hashlib.sha256(key.encode()).hexdigest()[:20]}-{'x'.join(map(str, shape))}.onnx"
    return graphs_dir() / name


def export_onnx(model: Any, shape: tuple[int, ...], rebuild: bool = False) -> Path:
    """The ONNX file of `model.net` (the network as published) for input `shape`, exported when not cached yet."""
    path = graph_path(model, shape)
    if path.is_file() and not rebuild:
        return path
    path.unlink(missing_ok=True)
    log.warning("preparing %s for this computer's %s-pixel tiles (once; later runs reuse it)",
                getattr(model, "name", model.arch), "×".join(map(str, shape[-2:])))
    path.parent.mkdir(parents=True, exist_ok=True)
    net = model.net
    example = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    try:
        with AtomicFile(path, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".part") as out, torch.no_grad():
            torch.onnx.export(net, (example,), out, opset_version=OPSET, input_names=["input"],
                              output_names=["output"], dynamo=False)
    except Exception as exc:  # noqa: BLE001 - an exporter failure: the caller falls back to torch
        raise EnhancerError(f"{model.arch} could not be exported to ONNX ({type(exc).__name__}: {exc})") from exc
    return path
