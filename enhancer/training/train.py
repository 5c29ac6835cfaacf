"""The training loop: L1/Charbonnier loss, AdamW, cosine schedule with warm-up, EMA, bf16 autocast, resumable checkpoints.

Determinism: the batch of iteration `i` is drawn from a generator seeded with (seed, i), so a resumed run sees exactly
the batches an uninterrupted run would have seen, without storing any sampler state.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..archs import get_spec
from ..checkpoints import build_network
from ..devices import cpu_has_fast_bf16
from .data import ImageCache, prepare_cache, sample_hr_patches
from .degradations import hr_patch_size, make_pairs, to_luma

DEFAULT_TRAIN_FOLDERS = ("BSD200", "T91")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint so a resume continues the same recipe."""

    arch: str = "mobilesr"
    net: dict[str, Any] = field(default_factory=lambda: {"n_feats": 40, "n_heads": 8, "ratios": [4, 2, 2, 2, 4],
                                                         "upscaling_factor": 4})
    scale: int = 4
    degradation: str = "bicubic"
    train_dirs: list[str] = field(default_factory=list)
    lr_patch: int = 48
    batch: int = 8
    iterations: int = 10000
    learning_rate: float = 2e-3
    min_learning_rate: float = 1e-5
    warmup: int = 300
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    loss: str = "l1"  # or "charbonnier"
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    bf16: bool = False  # measured: bf16 autocast makes MobileSR training ~30x slower on this CPU (see models/README.md)
    threads: int = 2
    checkpoint_every: int = 200
    eval_every: int = 1000
    log_every: int = 50
    init_from: str | None = None  # a model file whose same-shaped weights start a fresh run (e.g. our clean model)


# The constructor argument that holds the scale, in the networks' own spelling (MobileSR, ESPCN, SwinIR).
SCALE_ARGUMENTS = ("upscaling_factor", "upscale_factor", "upscale")


def with_scale(arch: str, net: dict[str, Any], scale: int) -> dict[str, Any]:
    """`net` with the scale set, unless it already names one: the first spelling whose network the registry then
    detects at `scale` from its own weights."""
    from ..archs import detect

    if any(key in net for key in SCALE_ARGUMENTS):
        return dict(net)
    for key in SCALE_ARGUMENTS:
        candidate = {**net, key: scale}
        try:
            found = detect(build_network(arch, candidate).state_dict())
        except Exception:  # noqa: BLE001 - a spelling the constructor does not take
            continue
        if found.arch == arch and found.scale == scale:
            return candidate
    raise ValueError(f"cannot tell which argument of the {arch} network sets the scale (name it in --net)")


def trains_on_luma(config: TrainConfig) -> bool:
    """True for a one-channel network trained on luma (its spec says so): it sees and is scored on the Y of the
    LR and HR patches (BT.601 as Pillow computes it) instead of RGB."""
    return bool(get_spec(config.arch).runs_on_luma(config.net))


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """Linear warm-up to the peak, then a cosine decay to `min_learning_rate` at `iterations`."""
    if step < config.warmup:
        return config.learning_rate * (step + 1) / config.warmup
    span = max(1, config.iterations - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


def charbonnier(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((prediction - target) ** 2 + eps * eps).mean()


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "l1":
        return nn.functional.l1_loss
    if name == "mse":
        return nn.functional.mse_loss
    if name == "charbonnier":
        return charbonnier
    raise ValueError(f"unknown loss {name!r} (choose l1, charbonnier or mse)")


class EMA:
    """Exponential moving average of the weights (and a plain copy of buffers)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        # Warm start: a short average early on, so the EMA is useful before `decay` has had time to act.
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.net.parameters(), net.parameters()):
            ema_p.lerp_(p.detach(), 1 - decay)
        for ema_b, b in zip(self.net.buffers(), net.buffers()):
            ema_b.copy_(b)


@dataclass
class TrainState:
    config: TrainConfig
    net: nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0  # training time summed over all sessions


def build_state(config: TrainConfig, device: str | torch.device = "cpu") -> TrainState:
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    net = build_network(config.arch, config.net).to(device)
    net.train()
    ema = EMA(net, config.ema_decay)
    # No weight decay on biases and norm scales: decaying them only hurts a small network.
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate, betas=tuple(config.betas))
    return TrainState(config=config, net=net, ema=ema, optimizer=optimizer)


def initialise_from(net: nn.Module, source: str | os.PathLike) -> tuple[int, int]:
    """Copy every weight of a model file (safetensors/pth or a training checkpoint's EMA) whose name and shape match
    into `net`; the rest keeps its fresh initialisation. Returns (copied, total) tensor counts."""
    from ..checkpoints import read_state_dict

    source = Path(source)
    if source.suffix in (".pt", ".pth"):
        payload = torch.load(source, map_location="cpu", weights_only=True)
        weights = payload["ema"] if isinstance(payload, dict) and "ema" in payload else read_state_dict(source)
    else:
        weights = read_state_dict(source)
    own = net.state_dict()
    matching = {k: v for k, v in weights.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not matching:
        raise ValueError(f"{source}: no weight matches the network being trained (is it the same architecture?)")
    net.load_state_dict(matching, strict=False)
    return len(matching), len(own)


def save_checkpoint(state: TrainState, path: str | os.PathLike) -> None:
    """Write the resume state atomically (tensors and plain values only, so `weights_only` loading works)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": json.dumps(asdict(state.config)),
        "step": state.step,
        "seconds": state.seconds,
        "net": state.net.state_dict(),
        "ema": state.ema.net.state_dict(),
        "optimizer": state.optimizer.state_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def config_from_json(text: str) -> TrainConfig:
    values = json.loads(text)
    values["betas"] = tuple(values.get("betas", (0.9, 0.99)))
    known = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def load_checkpoint(path: str | os.PathLike, overrides: dict[str, Any] | None = None,
                    device: str | torch.device = "cpu") -> TrainState:
    """Rebuild the training state from a resume checkpoint. `overrides` may extend e.g. `iterations`."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = config_from_json(payload["config"])
    except Exception as exc:  # a damaged file must name itself
        raise ValueError(f"{path}: not a readable training checkpoint ({exc})") from None
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    state = build_state(config, device)
    state.net.load_state_dict(payload["net"])
    state.ema.net.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step = int(payload["step"])
    state.seconds = float(payload["seconds"])
    return state


def batch_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def train_step(state: TrainState, cache: ImageCache, loss_fn: Callable, use_bf16: bool) -> float:
    config = state.config
    generator = batch_generator(config.seed, state.step)
    hr_levels = sample_hr_patches(cache, config.batch, hr_patch_size(config.degradation, config.lr_patch, config.scale),
                                  generator)
    lr, hr = make_pairs(config.degradation, hr_levels, config.scale, generator)
    if trains_on_luma(config):
        lr, hr = to_luma(lr), to_luma(hr)  # from the uint8-rounded LR RGB, as the app converts a photo
    device = next(state.net.parameters()).device
    lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate_at(config, state.step)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        sr = state.net(lr)
    loss = loss_fn(sr.float(), hr)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        nn.utils.clip_grad_norm_(state.net.parameters(), config.grad_clip)
    state.optimizer.step()
    state.step += 1
    state.ema.update(state.net, state.step)
    return loss.item()


def run(config: TrainConfig, checkpoint: str | os.PathLike, *, resume: bool = True, cache_dir: str | None = None,
        log_path: str | os.PathLike | None = None, stop_at: float | None = None,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None, progress: bool = True,
        overrides: dict[str, Any] | None = None, device: str | torch.device = "cpu") -> TrainState:
    """Train until `config.iterations` (or the wall-clock `stop_at`, a time.time() value), checkpointing regularly.

    With `resume` and an existing `checkpoint`, the run continues from it (its stored recipe wins, except `overrides`).
    `evaluate(ema_net)` is called every `eval_every` steps and at the end; its numbers go to the log.
    """
    checkpoint = Path(checkpoint)
    if resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, overrides, device)
    else:
        state = build_state(config, device)
        if config.init_from:
            copied, total = initialise_from(state.net, config.init_from)
            state.ema.net.load_state_dict(state.net.state_dict())
            print(f"started from {config.init_from}: {copied} of {total} tensors", flush=True)
    config = state.config
    torch.set_num_threads(max(1, int(config.threads)))
    device = torch.device(device)
    # On the CPU, bf16 autocast can pay off only with native bf16 (AVX512-BF16 or AMX); even then it did not for
    # MobileSR with torch 2.13 (its depth-wise convolutions have no fast bf16 CPU kernel), so `bf16` is opt-in.
    use_bf16 = bool(config.bf16) and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    cache = prepare_cache(config.train_dirs, cache_dir, min_size=hr_patch_size(config.degradation, config.lr_patch, config.scale))
    loss_fn = loss_function(config.loss)
    log = open(log_path, "a", encoding="utf-8") if log_path else None

    def write_log(record: dict[str, Any]) -> None:
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()

    if log and state.step == 0:
        write_log({"event": "start", "config": asdict(config), "torch": torch.__version__,
                   "cpu": platform.processor() or platform.machine(), "bf16": use_bf16})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.iterations, initial=state.step, desc="train", dynamic_ncols=True, mininterval=5)
    running = None
    window_started, window_steps = time.time(), 0
    try:
        while state.step < config.iterations:
            if stop_at is not None and time.time() >= stop_at:
                break
            started = time.perf_counter()
            loss = train_step(state, cache, loss_fn, use_bf16)
            state.seconds += time.perf_counter() - started
            window_steps += 1
            if stop_at is not None and window_steps >= 25:
                if state.step >= config.warmup:
                    # Deadline mode: re-aim the cosine to end at `stop_at` at the speed the shared CPU gives us now.
                    seconds_per_step = (time.time() - window_started) / window_steps
                    config.iterations = state.step + max(1, int((stop_at - time.time()) / seconds_per_step))
                    if bar:
                        bar.total = config.iterations
                window_started, window_steps = time.time(), 0
            running = loss if running is None else 0.9 * running + 0.1 * loss
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{running:.4f}", lr=f"{learning_rate_at(config, state.step):.2e}")
            if state.step % max(1, config.log_every) == 0:
                write_log({"step": state.step, "loss": round(running, 6), "seconds": round(state.seconds, 1),
                           "lr": learning_rate_at(config, state.step)})
            if state.step % config.checkpoint_every == 0:
                save_checkpoint(state, checkpoint)
            if evaluate and config.eval_every and state.step % config.eval_every == 0:
                write_log({"step": state.step, "eval": evaluate(state.ema.net)})
    finally:
        if bar:
            bar.close()
    save_checkpoint(state, checkpoint)
    if evaluate:
        write_log({"step": state.step, "eval": evaluate(state.ema.net), "final": True})
    if log:
        log.close()
    return state
