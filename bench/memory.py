"""Peak memory of `enhance` on a 2000×1500 photo at x4 with MobileSR, at two tile sizes, next to the output size.

Each measurement runs in a fresh subprocess and reads its peak resident set size (VmHWM / ru_maxrss), so one run
cannot inherit the other's heap. Goal: peak <= 1.25 × output + 1 GiB, and the two tile sizes within 20%.

    .venv/bin/python bench/memory.py [--weights PATH] [--size 2000x1500] [--tiles 64,512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilesr_x4.pth"
GIB = 1 << 30


def peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def measure(weights: str, width: int, height: int, tile: int, threads: int) -> dict:
    """Runs in the child: load, make a photo, enhance, report peak RSS before and after."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    import enhancer

    torch.set_num_threads(threads)
    model = enhancer.load_model(weights, device="cpu")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    photo = 0.5 + 0.3 * np.sin(xx / 17)[..., None] * np.cos(yy / 23)[..., None] * np.ones(3, np.float32)
    photo = np.clip(photo + 0.05 * rng.standard_normal(photo.shape, dtype=np.float32), 0, 1).astype(np.float32)
    del yy, xx
    before = peak_rss_bytes()
    out = enhancer.enhance(photo, model, tile=tile, precision="fp32")
    return {"tile": tile, "peak": peak_rss_bytes(), "before": before, "output": out.nbytes, "shape": list(out.shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--size", default="2000x1500", help="WIDTHxHEIGHT of the input photo")
    parser.add_argument("--tiles", default="64,512")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.child is not None:
        print(json.dumps(measure(args.weights, width, height, args.child, args.threads)))
        return
    if not Path(args.weights).is_file():
        sys.exit(f"{args.weights}: MobileSR x4 weights not found (pass --weights)")
    results = []
    for tile in (int(t) for t in args.tiles.split(",")):
        child = subprocess.run(
            [sys.executable, __file__, "--weights", args.weights, "--size", args.size, "--threads", str(args.threads),
             "--child", str(tile)],
            capture_output=True, text=True, check=False,
        )
        if child.returncode != 0:
            sys.exit(f"tile {tile}: the measurement failed:\n{child.stderr[-2000:]}")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"  (measured tile {tile}: peak RSS {results[-1]['peak'] / GIB:.3f} GiB)", flush=True)
    output = results[0]["output"]
    goal = 1.25 * output + GIB
    print(f"MobileSR x4, {width}×{height} → {results[0]['shape'][1]}×{results[0]['shape'][0]}, "
          f"float32 output {output / GIB:.3f} GiB, goal peak <= {goal / GIB:.3f} GiB")
    for r in results:
        verdict = "ok" if r["peak"] <= goal else "over the goal"
        print(f"  tile {r['tile']:4d}: peak RSS {r['peak'] / GIB:.3f} GiB = {r['peak'] / output:.2f} × output "
              f"(after loading, before enhance: {r['before'] / GIB:.3f} GiB) {verdict}")
    peaks = [r["peak"] for r in results]
    spread = max(peaks) / min(peaks) - 1
    print(f"  largest / smallest peak: {1 + spread:.2f} ({'within' if spread <= 0.2 else 'more than'} 20%)")


if __name__ == "__main__":
    main()
