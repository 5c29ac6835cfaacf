"""Optional `torch.compile` of a network, for the fixed tile shapes the tiling feeds it.

Meant for GPUs, where kernel fusion pays. On the CPU the eager fast paths of the networks are usually faster (the
compiled MobileSR attention measured 3x slower than SDPA), compiling takes minutes for the larger networks, and
inductor needs a C++ compiler. A network is compiled once per process with `dynamic=False`, so each tile shape gets
its own graph (the tiling keeps them to a handful: full tiles and the edge remainders). Inductor's on-disk cache is
kept in the app's cache folder, so a later run of the same model and tile size skips most of the work. Any failure
to compile falls back to the uncompiled network, once per network, with a warning.
"""

from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path

import torch
from torch import nn

from . import paths
from .devices import is_out_of_memory

log = logging.getLogger(__name__)

# Tile shapes per network whose graphs stay compiled: full tiles, right and bottom edges, the corner, and a
# halved tile after running out of memory.
SHAPES_PER_NETWORK = 16

_compiled: "weakref.WeakKeyDictionary[nn.Module, nn.Module | None]" = weakref.WeakKeyDictionary()


def inductor_cache_dir() -> Path:
    """Where inductor keeps compiled kernels between runs (TORCHINDUCTOR_CACHE_DIR wins when set)."""
    configured = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if configured:
        return Path(configured)
    return paths.cache_dir() / "inductor"


def _compile(net: nn.Module) -> nn.Module | None:
    try:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        import torch._dynamo

        limit = torch._dynamo.config.cache_size_limit
        torch._dynamo.config.cache_size_limit = max(limit, SHAPES_PER_NETWORK)
        return torch.compile(net, dynamic=False)
    except Exception as exc:  # noqa: BLE001 - no dynamo on this platform or Python: run uncompiled
        log.warning("torch.compile is not available here (%s: %s); running uncompiled", type(exc).__name__, exc)
        return None


def run_network(net: nn.Module, x: torch.Tensor, compile: bool = False) -> torch.Tensor:
    """net(x), through `torch.compile` when `compile` is set and compiling works for this network."""
    if not compile:
        return net(x)
    if net not in _compiled:
        _compiled[net] = _compile(net)
    compiled = _compiled[net]
    if compiled is None:
        return net(x)
    try:
        return compiled(x)
    except Exception as exc:  # noqa: BLE001 - a compiler failure must not cost the photo
        if is_out_of_memory(exc):
            raise  # the tiling halves the tile and tries again
        log.warning(
            "torch.compile failed for %s (%s: %s); running it uncompiled from now on",
            type(net).__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
        )
        _compiled[net] = None
        return net(x)


def is_compiled(net: nn.Module) -> bool:
    """True once `net` ran compiled without failing."""
    return _compiled.get(net) is not None
