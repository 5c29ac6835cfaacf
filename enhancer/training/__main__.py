"""`python -m enhancer.training`: train (or resume) a model. See `--help` and models/README.md for the recipe."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .train import DEFAULT_TRAIN_FOLDERS, SCALE_ARGUMENTS, TrainConfig, run, trains_on_luma, with_scale

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train"


def parse_deadline(text: str) -> float:
    """'HH:MM' (UTC, today) or seconds from now."""
    if ":" in text:
        now = datetime.now(timezone.utc)
        hour, minute = (int(v) for v in text.split(":"))
        target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return target.timestamp()
    return time.time() + float(text)


def _stored_config(checkpoint: str) -> TrainConfig | None:
    """The recipe a resume checkpoint holds (its network and scale), or None when there is none yet."""
    import torch

    from .train import config_from_json

    if not Path(checkpoint).is_file():
        return None
    try:
        return config_from_json(torch.load(checkpoint, map_location="cpu", weights_only=True)["config"])
    except Exception:  # noqa: BLE001 - a damaged file is reported by the training run itself
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enhancer.training", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="resume state file (created, or resumed when it exists)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    parser.add_argument("--train-dir", action="append", default=None,
                        help=f"HR image folder (repeatable); default: {DEFAULT_DATA}/{{{','.join(DEFAULT_TRAIN_FOLDERS)}}}")
    parser.add_argument("--cache", default=None, help="dataset cache dir (default: the user cache dir)")
    parser.add_argument("--log", default=None, help="JSON-lines log of loss and PSNR")
    parser.add_argument("--arch", default="mobilesr")
    parser.add_argument("--net", default=None, help='network kwargs as JSON, e.g. \'{"n_feats": 40, ...}\'')
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--degradation", choices=("bicubic", "real"), default="bicubic")
    parser.add_argument("--lr-patch", type=int, default=None, help="LR patch side (default 48; may change on resume)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8; may change on resume)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="total steps (default 10000); on resume, a new total (the cosine is re-aimed to it)")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--min-learning-rate", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--loss", choices=("l1", "charbonnier", "mse"), default="l1")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true",
                        help="bf16 autocast where the CPU has native bf16 (slower for MobileSR on CPU; see models/README.md)")
    parser.add_argument("--no-bf16", action="store_true", help=argparse.SUPPRESS)  # the default; kept for old command lines
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (the checkpoint moves freely between them)")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate the EMA on Set5 every N steps (0: only at the end)")
    parser.add_argument("--eval-sets", default="Set5", help="comma-separated benchmark sets for the in-run evaluation")
    parser.add_argument("--stop-at", default=None,
                        help="deadline, 'HH:MM' UTC or seconds: stop then, and aim the cosine schedule to end there")
    parser.add_argument("--init-from", default=None,
                        help="a fresh run starts from the same-named, same-shaped weights of this model file")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    net = json.loads(args.net) if args.net else None
    train_dirs = args.train_dir or [str(DEFAULT_DATA / name) for name in DEFAULT_TRAIN_FOLDERS]
    config = TrainConfig(arch=args.arch, scale=args.scale, degradation=args.degradation, train_dirs=train_dirs,
                         lr_patch=args.lr_patch or 48, batch=args.batch or 8, iterations=args.iterations or 10000,
                         learning_rate=args.learning_rate, warmup=args.warmup,
                         min_learning_rate=args.min_learning_rate, weight_decay=args.weight_decay, loss=args.loss,
                         ema_decay=args.ema_decay, seed=args.seed, bf16=args.bf16 and not args.no_bf16, threads=args.threads,
                         checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
                         init_from=args.init_from)
    if net is not None:
        config.net = net
    elif args.arch != TrainConfig.arch:
        config.net = {}  # the network's own defaults, apart from the scale
    else:  # the default MobileSR, at the asked scale
        config.net = {k: v for k, v in config.net.items() if k not in SCALE_ARGUMENTS}
    config.net = with_scale(config.arch, config.net, args.scale)
    evaluate = None
    if args.eval_every or args.log:
        from .evaluate import benchmark_callback

        scored = _stored_config(args.checkpoint) if not args.fresh else None  # on resume the stored recipe wins
        scored = scored or config
        evaluate = benchmark_callback(args.eval_sets.split(","), scored.scale, luma=trains_on_luma(scored))
    stop_at = parse_deadline(args.stop_at) if args.stop_at else None
    # On resume the stored recipe wins; only these may change between sessions.
    overrides = {"threads": args.threads, "eval_every": args.eval_every, "checkpoint_every": args.checkpoint_every}
    for key in ("iterations", "lr_patch", "batch"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    state = run(config, args.checkpoint, resume=not args.fresh, cache_dir=args.cache, log_path=args.log,
                stop_at=stop_at, evaluate=evaluate, progress=not args.no_progress, overrides=overrides,
                device=args.device)
    print(f"stopped at step {state.step} of {state.config.iterations} after {state.seconds:.0f} s of training",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
