"""Export the EMA weights of a training checkpoint to a safetensors model file that `enhancer.load_model` reads.

`python -m enhancer.training.export CHECKPOINT OUTPUT.safetensors` prints the file's size and sha256 for the catalog.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch


def export_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike) -> dict[str, object]:
    """Write the EMA weights (fp32) with the recipe as metadata; return size, sha256, step and config."""
    from safetensors.torch import save_file

    checkpoint, output = Path(checkpoint), Path(output)
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
        weights = payload["ema"]
        config = json.loads(payload["config"])
    except Exception as exc:
        raise ValueError(f"{checkpoint}: not a readable training checkpoint ({exc})") from None
    tensors = {k: v.detach().float().contiguous() for k, v in weights.items() if torch.is_floating_point(v)}
    metadata = {
        "arch": str(config["arch"]),
        "config": json.dumps(config["net"]),
        "scale": str(config["scale"]),
        "task": "sr",
        "degradation": str(config["degradation"]),
        "step": str(int(payload["step"])),
        "training_seconds": str(round(float(payload["seconds"]))),
        "trained_by": "enhancer.training (this project), from scratch",
    }
    if config.get("init_from"):  # a run that started from one of our own models: say which
        metadata["trained_by"] = f"enhancer.training (this project), started from {Path(config['init_from']).name}"
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, output)
    data = output.read_bytes()
    return {"path": str(output), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "step": int(payload["step"]), "config": config}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enhancer.training.export", description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("output")
    args = parser.parse_args(argv)
    info = export_checkpoint(args.checkpoint, args.output)
    print(json.dumps({k: info[k] for k in ("path", "size", "sha256", "step")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
