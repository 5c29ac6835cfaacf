"""The networks, one package each (the network as published, its detection and its spec), and their registry."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Mapping

import torch

from ..errors import ModelError
from .spec import ArchSpec, Detected


def _specs() -> dict[str, ArchSpec]:
    """Every package under archs/ that defines a SPEC: adding a network means adding its package, nothing else.
    Detection tries them in name order; their signature keys do not overlap."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.ispkg:
            spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
            if isinstance(spec, ArchSpec):
                found[spec.id] = spec
    return found


_REGISTRY: dict[str, ArchSpec] | None = None


def specs() -> dict[str, ArchSpec]:
    """Every known network family by id."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _specs()
    return _REGISTRY


def arch_ids() -> tuple[str, ...]:
    return tuple(specs())


def get_spec(arch: str) -> ArchSpec:
    try:
        return specs()[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(specs())}") from None


def detect(state: Mapping[str, torch.Tensor], where: str = "<memory>") -> Detected:
    """The network and its whole configuration, from the key names and shapes of a state dict."""
    for spec in specs().values():
        found = spec.detect(state)
        if found is not None:
            return found
    looked_for = "; ".join(f"{spec.id}: {', '.join(spec.signature_keys)}" for spec in specs().values())
    sample = ", ".join(list(state)[:5])
    raise ModelError(
        f"{where}: unknown model: its weights match no supported architecture. "
        f"Looked for keys of {looked_for}. The file has keys such as: {sample}"
    )


__all__ = ["ArchSpec", "Detected", "arch_ids", "detect", "get_spec", "specs"]
