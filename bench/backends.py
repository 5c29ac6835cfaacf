"""End-to-end `enhance()` of a photo per network and backend, against the official code's forward pass over the same
pixels, measured in the same run.

    python -m bench.backends                          # MobileSR, SwinIR-M, Restormer, ESPCN; every backend
    python -m bench.backends --models mobilesr --threads 2

For each network: the photo (a Kodak24 image resized to the size below with Pillow's bicubic) through
`enhance(..., backend=B)` for B in torch, openvino, onnxruntime and auto, at precision auto (what the app runs), with
the backend's cache warm (the first, preparing run is reported apart). The peer is the official network's eager fp32
forward pass (our `network.py`, the published code key for key; MobileSR: `bench/mobilesr_baseline.py`, the frozen
first version) on the official scripts' tiles without context, timed on a few tiles and counted per input pixel.
Ratios are throughputs (input kilopixels per second), so a smaller photo for the slow networks compares the same.
Not part of `make test`: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ENHANCER_SHARED_DIR", ROOT.parent / "shared"))
MANIFESTS = SHARED / "golden" / "manifests"

# network -> (model source, photo size, peer tile)
NETWORKS = {
    "mobilesr": ("official MobileSR x4", (1600, 1200), 256),
    "swinir-m": ("SwinIR-M x4 (random weights, released config)", (400, 300), 128),
    "restormer": ("Restormer motion deblurring (random weights, released config)", (800, 600), 256),
    "espcn": ("own-espcn-x3 (bundled)", (1600, 1200), 256),
}
BACKENDS = ("torch", "openvino", "onnxruntime", "auto")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _random_model(manifest: str):
    """A model of a released configuration (from its golden manifest) with seeded random weights."""
    from enhancer.archs import get_spec
    from enhancer.checkpoints import model_from_state_dict

    spec = json.loads((MANIFESTS / manifest).read_text())
    net = get_spec(spec["arch"]).build(spec["official_kwargs"])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02 + centre)
    return model_from_state_dict(net.state_dict(), name=manifest.removesuffix(".json"))


def load(network: str):
    from enhancer import load_model

    if network == "mobilesr":
        return load_model(SHARED / "weights" / "mobilesr_x4.pth", "cpu")
    if network == "swinir-m":
        return _random_model("swinir_classicalSR_s64w8_M_x4.json")
    if network == "restormer":
        return _random_model("restormer_motion_deblurring.json")
    return load_model("own-espcn-x3", "cpu")


def peer_network(network: str, model) -> torch.nn.Module:
    if network == "mobilesr":
        sys.path.insert(0, str(ROOT))
        from bench.mobilesr_baseline import MobileSRBaseline

        peer = MobileSRBaseline(**model.config).eval()
        peer.load_state_dict(model.net.state_dict())
        return peer
    return model.net  # network.py: the published network as the official code writes it


def photo(size: tuple[int, int]) -> np.ndarray:
    folder = SHARED / "data" / "denoise" / "Kodak24"
    source = Image.open(sorted(folder.iterdir())[2]).convert("RGB")
    return np.asarray(source.resize(size, Image.Resampling.BICUBIC), np.float32) / 255.0


def peer_kpix_per_second(net: torch.nn.Module, channels: int, tile: int, pad: int, tiles: int = 3) -> float:
    """The official forward pass, fp32, eager: best time per tile over a few tiles, as input kilopixels/s."""
    side = -(-tile // pad) * pad
    x = torch.rand(1, channels, side, side, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        net(x)
        best = float("inf")
        for _ in range(tiles):
            start = time.perf_counter()
            net(x)
            best = min(best, time.perf_counter() - start)
    return tile * tile / best / 1000


def run(network: str, backends: tuple[str, ...], size: tuple[int, int] | None) -> list[dict]:
    from enhancer import enhance
    from enhancer.backends import installed

    title, default_size, peer_tile = NETWORKS[network]
    model = load(network)
    width, height = size or default_size
    image = photo((width, height))
    pixels = width * height
    channels = int(model.in_channels)
    peer = peer_kpix_per_second(peer_network(network, model), channels, peer_tile, max(1, int(model.pad_multiple)))
    rows = []
    torch_kpix = None
    for backend in backends:
        if backend not in ("torch", "auto") and not installed(backend):
            continue
        ran: list[str] = []
        start = time.perf_counter()
        enhance(image, model, backend=backend, report=ran.append)  # prepares (exports, compiles, measures) once
        first = time.perf_counter() - start
        start = time.perf_counter()
        enhance(image, model, backend=backend)
        seconds = time.perf_counter() - start
        kpix = pixels / seconds / 1000
        if backend == "torch":
            torch_kpix = kpix
        rows.append({"network": network, "model": title, "photo": f"{width}x{height}", "backend": backend,
                     "ran": ran[0] if ran else backend, "seconds": round(seconds, 2), "first_run_s": round(first, 2),
                     "kpix_s": round(kpix, 2), "peer_kpix_s": round(peer, 2), "vs_official": round(kpix / peer, 2),
                     "vs_torch": round(kpix / torch_kpix, 2) if torch_kpix else None})
        print(f"{network:9s} {width}x{height} {backend:11s} (ran {rows[-1]['ran']:11s}) {seconds:7.2f} s "
              f"{kpix:7.2f} kpix/s  x{rows[-1]['vs_official']:.2f} official  "
              + (f"x{rows[-1]['vs_torch']:.2f} torch" if rows[-1]["vs_torch"] else "") + f"  (first run {first:.1f} s)",
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(NETWORKS), help=f"comma-separated, of {', '.join(NETWORKS)}")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--size", default=None, help="WxH for every network (default: per network, see the table)")
    parser.add_argument("--threads", type=int, default=0, help="torch/OpenVINO threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from enhancer.devices import cpu_capabilities

    print(f"# {_cpu_name()}: {cpu_capabilities().summary()}; {torch.get_num_threads()} thread(s); torch "
          f"{torch.__version__}", flush=True)
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    rows = []
    for network in args.models.split(","):
        rows += run(network.strip(), tuple(args.backends.split(",")), size)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
