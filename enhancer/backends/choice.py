"""`backend="auto"` on the CPU: the faster of eager torch and OpenVINO for this network and precision on this machine.

Measured once on the job's tile for a compiled backend (a warm-up and the best of three runs of each) and remembered
in the backend cache, keyed by what changes the answer: the CPU, torch's kernel level, the thread count, the backend
versions, the architecture, its config, the precision and the tile shape. OpenVINO has to be at least `MARGIN` faster: torch is the reference,
so a tie keeps it. Measured on a 2-core Xeon with AMX (bf16 native), MobileSR x4 at 128/256 pixels: torch 527/2107
ms, OpenVINO 545/2710 ms in fp32; on a 2-core AVX2-only EPYC OpenVINO ran the same graph 1.5-3x faster than torch."""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
from typing import Any

import torch

from ..atomic import TEMP_PREFIX, AtomicFile
from ..devices import cpu_capabilities
from .export import graphs_dir

log = logging.getLogger(__name__)

CHOICES_FILE = "choices.json"
TIMED_RUNS = 3
MEASURE_SIDE = 96
MARGIN = 1.1
_lock = threading.Lock()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(model: Any, precision: str, shape: tuple[int, ...]) -> str:
    import openvino

    return json.dumps(
        [_cpu_name(), cpu_capabilities().isa, torch.get_num_threads(), torch.__version__, openvino.__version__,
         model.arch, model.config, precision, list(shape)],
        sort_keys=True, default=str,
    )


def _load() -> dict[str, dict[str, Any]]:
    try:
        return json.loads((graphs_dir() / CHOICES_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save(choices: dict[str, dict[str, Any]]) -> None:
    path = graphs_dir() / CHOICES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, "w", encoding="utf-8", prefix=f"{TEMP_PREFIX}choices-", suffix=".json.tmp") as out:
        json.dump(choices, out, indent=1, sort_keys=True)


def _best_seconds(runner: Any, x: torch.Tensor) -> float:
    runner(x)  # warm-up: the first run compiles, allocates and packs weights
    best = float("inf")
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        runner(x)
        best = min(best, time.perf_counter() - start)
    return best


def fastest_cpu_backend(model: Any, precision: str, shape: tuple[int, ...] | None = None) -> str:
    """"torch" or "openvino" for this network; torch when OpenVINO is not installed, the network does not export
    (its spec says so) or OpenVINO cannot run it."""
    from . import installed

    if not getattr(model.spec, "exports", True) or not installed("openvino"):
        return "torch"
    if shape is None:
        pad = max(1, int(model.pad_multiple))
        side = -(-MEASURE_SIDE // pad) * pad
        shape = (1, int(model.in_channels), side, side)
    shape = (1, *shape[1:])
    key = _key(model, precision, shape)
    with _lock:
        known = _load().get(key)
        if known is not None:
            return known["backend"]
        from .openvino_backend import OpenVinoRunner
        from .torch_backend import TorchRunner

        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        seconds: dict[str, float] = {"torch": _best_seconds(TorchRunner(model, torch.device("cpu"), precision), x)}
        try:
            seconds["openvino"] = _best_seconds(OpenVinoRunner(model, precision), x)
        except Exception as exc:  # noqa: BLE001 - an export or compile failure: torch it is, remembered
            log.warning("OpenVINO cannot run %s here (%s); using torch", model.arch, str(exc).splitlines()[0])
        chosen = "openvino" if seconds.get("openvino", float("inf")) * MARGIN <= seconds["torch"] else "torch"
        log.info("backend auto for %s %s: %s (%s)", model.arch, precision, chosen,
                 ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in seconds.items()))
        choices = _load()
        choices[key] = {"backend": chosen, "ms": {k: round(v * 1000, 2) for k, v in seconds.items()}}
        _save(choices)
        return chosen
