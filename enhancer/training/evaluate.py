"""Benchmark evaluation with the standard SR protocol: uint8 output, Y channel (BT.601), border cropped by the scale.

`python -m enhancer.training.evaluate MODEL [MODEL ...] [--sets Set5,Set14,BSD100] [--scale 4]` prints a table. MODEL
is a safetensors/pth file, a catalog id, or a training checkpoint (its EMA weights are used).

`--real` scores on the real-photo sets instead: Kodak24 and McMaster (test sets, never trained on) degraded by the
project's real-photo recipe (`degradations.degrade`) with a fixed seed, so every run and every model sees the same LR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..metrics import psnr_y
from .imresize import modcrop

DEFAULT_BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"
DEFAULT_REAL_SOURCES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "denoise"
STANDARD_SETS = ("Set5", "Set14", "BSD100")
REAL_SETS = ("Kodak24", "McMaster")
REAL_SEED = 20261202


def benchmark_pairs(root: Path, name: str, scale: int) -> list[tuple[Path, Path]]:
    """(HR, LR) file pairs of one benchmark set; LR files are named `<stem>x<scale>.png` in LR_bicubic/X<scale>."""
    hr_dir, lr_dir = root / name / "HR", root / name / "LR_bicubic" / f"X{scale}"
    if not hr_dir.is_dir() or not lr_dir.is_dir():
        raise FileNotFoundError(f"{root / name}: benchmark set not found (needs HR/ and LR_bicubic/X{scale}/)")
    pairs = []
    for hr in sorted(hr_dir.glob("*.png")):
        lr = lr_dir / f"{hr.stem}x{scale}.png"
        if not lr.is_file():
            raise FileNotFoundError(f"{lr}: LR image for {hr.name} is missing")
        pairs.append((hr, lr))
    return pairs


def _rgb(path: Path) -> np.ndarray:
    # Gray benchmark images (Set14 'bridge') are run and scored as RGB with three equal channels.
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


@torch.no_grad()
def super_resolve(net: nn.Module, lr_uint8: np.ndarray, luma: bool = False) -> np.ndarray:
    """The network's uint8 RGB output for an uint8 RGB image. With `luma` (a one-channel network trained on Y), as
    the app runs an 8-bit photo: Pillow's 8-bit Y through the network, Cb and Cr by Pillow's bicubic, merged by
    Pillow (as PyTorch's super_resolution example)."""
    device = next(net.parameters()).device
    rgb = np.array(lr_uint8).astype(np.float32) / 255.0
    if luma:
        from ..tiling import _merge_chroma_8bit_into, luma_input

        y_in = torch.from_numpy(luma_input(rgb, eight_bit=True)[..., 0])[None, None].to(device)
        y = net(y_in).float()[0, 0].cpu().numpy()
        scale = y.shape[0] // rgb.shape[0]
        out = np.zeros((*y.shape, 3), dtype=np.float32)
        out[..., 0] = y
        _merge_chroma_8bit_into(rgb, scale, out)
        return (np.clip(out, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device)
    y = net(x).float().clamp(0, 1)
    return (y[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).cpu().numpy()


def evaluate_set(net: nn.Module, root: Path, name: str, scale: int, luma: bool = False) -> float:
    """Mean Y-PSNR of `net` on one set (`luma`: a one-channel network run on Y; see `super_resolve`)."""
    was_training = net.training
    net.eval()
    scores = []
    for hr_path, lr_path in benchmark_pairs(root, name, scale):
        hr = modcrop(_rgb(hr_path), scale)
        sr = super_resolve(net, _rgb(lr_path), luma)
        if sr.shape != hr.shape:
            raise ValueError(f"{lr_path}: output {sr.shape} does not match the cropped HR {hr.shape}")
        scores.append(psnr_y(sr, hr, crop=scale))
    net.train(was_training)
    return float(np.mean(scores))


def real_photo_set(name: str, scale: int, root: Path = DEFAULT_REAL_SOURCES, seed: int = REAL_SEED
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(HR, LR) uint8 pairs: each HR image of `root/name` cropped to a multiple of `scale`, and its LR made by the
    real-photo recipe with a generator seeded from (seed, scale, index): the same LR in every run."""
    from .degradations import degrade

    folder = root / name
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".tif", ".tiff", ".bmp", ".jpg"))
    if not files:
        raise FileNotFoundError(f"{folder}: real-photo source set not found (no images)")
    pairs = []
    for index, path in enumerate(files):
        hr = modcrop(_rgb(path), scale)
        generator = torch.Generator().manual_seed(seed * 1000 + scale * 100 + index)
        levels = torch.from_numpy(np.array(hr)).permute(2, 0, 1).float()
        lr = degrade(levels, scale, generator).to(torch.uint8).permute(1, 2, 0).numpy()
        pairs.append((hr, lr))
    return pairs


def evaluate_pairs(net: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int,
                   luma: bool = False) -> float:
    """Mean Y-PSNR of `net` over in-memory (HR, LR) uint8 pairs."""
    was_training = net.training
    net.eval()
    scores = [psnr_y(super_resolve(net, lr, luma), hr, crop=scale) for hr, lr in pairs]
    net.train(was_training)
    return float(np.mean(scores))


def bicubic_pairs_score(pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    """The bicubic baseline (MATLAB bicubic upscaling of each LR) on in-memory pairs."""
    from .imresize import imresize_uint8

    return float(np.mean([psnr_y(imresize_uint8(lr, scale), hr, crop=scale) for hr, lr in pairs]))


def bicubic_set(root: Path, name: str, scale: int) -> float:
    """The bicubic baseline (MATLAB bicubic upscaling of the LR files) for the same protocol."""
    from .imresize import imresize_uint8

    return float(np.mean([psnr_y(imresize_uint8(_rgb(lr), scale), modcrop(_rgb(hr), scale), crop=scale)
                          for hr, lr in benchmark_pairs(root, name, scale)]))


def benchmark_callback(sets: Sequence[str], scale: int, root: Path = DEFAULT_BENCHMARKS, luma: bool = False
                       ) -> Callable[[nn.Module], dict[str, float]]:
    def evaluate(net: nn.Module) -> dict[str, float]:
        return {name: round(evaluate_set(net, root, name, scale, luma), 3) for name in sets}

    return evaluate


def load_for_eval(source: str) -> tuple[nn.Module, int, bool]:
    """A network, its scale and whether it runs on luma, from a model file/catalog id, or the EMA weights of a
    training checkpoint."""
    path = Path(source)
    if path.is_file() and path.suffix in (".pt", ".pth"):
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(payload, dict) and "ema" in payload and "config" in payload:
            from .train import build_state, config_from_json, trains_on_luma

            config = config_from_json(payload["config"])
            state = build_state(config)
            state.ema.net.load_state_dict(payload["ema"])
            return state.ema.net.eval(), config.scale, trains_on_luma(config)
    from .. import load_model
    from ..tiling import runs_on_luma

    model = load_model(source, device="cpu")
    return model.net, model.scale, runs_on_luma(model)


def format_table(rows: dict[str, dict[str, float]], sets: Sequence[str]) -> str:
    lines = ["| model | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for label, scores in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{scores[s]:.2f}" for s in sets) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enhancer.training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model files, catalog ids or training checkpoints")
    parser.add_argument("--sets", default=None, help=f"default: {','.join(STANDARD_SETS)} ({','.join(REAL_SETS)} "
                                                     "with --real)")
    parser.add_argument("--scale", type=int, default=None, help="default: the first model's scale")
    parser.add_argument("--real", action="store_true", help="score on the real-photo sets (Kodak24, McMaster degraded)")
    parser.add_argument("--benchmarks", default=str(DEFAULT_BENCHMARKS))
    parser.add_argument("--real-sources", default=str(DEFAULT_REAL_SOURCES))
    parser.add_argument("--bicubic", action="store_true", help="also print the bicubic baseline")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = [(source, *load_for_eval(source)) for source in args.models]
    scale = args.scale or loaded[0][2]
    for source, _, model_scale, _ in loaded:
        if model_scale != scale:
            raise SystemExit(f"{source}: an x{model_scale} model cannot be scored at x{scale}")
    sets = [s for s in (args.sets or ",".join(REAL_SETS if args.real else STANDARD_SETS)).split(",") if s]
    rows: dict[str, dict[str, float]] = {}
    if args.real:
        data = {name: real_photo_set(name, scale, Path(args.real_sources)) for name in sets}
        if args.bicubic:
            rows["bicubic"] = {name: bicubic_pairs_score(pairs, scale) for name, pairs in data.items()}
        for source, net, _, luma in loaded:
            rows[Path(source).name] = {name: evaluate_pairs(net, pairs, scale, luma) for name, pairs in data.items()}
        print(f"Y-PSNR (dB), x{scale}, real-photo sets (seed {REAL_SEED}), BT.601, border {scale} cropped, uint8")
    else:
        root = Path(args.benchmarks)
        if args.bicubic:
            rows["bicubic"] = {s: bicubic_set(root, s, scale) for s in sets}
        for source, net, _, luma in loaded:
            rows[Path(source).name] = {s: evaluate_set(net, root, s, scale, luma) for s in sets}
        print(f"Y-PSNR (dB), x{scale}, BT.601, border {scale} cropped, uint8")
    print(format_table(rows, sets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
