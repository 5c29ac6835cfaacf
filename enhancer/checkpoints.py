"""Read model files safely, detect their network from key names and shapes, and build the network.

Only `weights_only=True` unpickling and safetensors are used, so a file that carries code can never run it.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .archs import ArchSpec, detect, get_spec, specs
from .errors import ModelError

# Containers used by the official training codes, in the order they are preferred.
CONTAINER_KEYS = ("params_ema", "params", "net", "state_dict", "model")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")

# Bounds on what a torch zip checkpoint may inflate to, checked from its directory before anything is read: the
# tensor entries together at most this many times the file's size, or this many bytes in all, and no entry
# compressed more than MAX_ENTRY_RATIO to one (torch writes its entries stored, so a real file has 1).
MAX_INFLATION = 64
MAX_INFLATED_BYTES = 4 << 30
MAX_ENTRY_RATIO = 200


@dataclass
class Model:
    """A ready-to-run network and what is known about it."""

    net: nn.Module
    arch: str
    task: str
    scale: int
    in_channels: int
    out_channels: int
    config: dict[str, Any]
    name: str = "model"
    source: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    spec: ArchSpec | None = None  # the network family's spec; looked up from `arch` when not given

    def __post_init__(self) -> None:
        if self.spec is None:
            self.spec = specs().get(self.arch, UNKNOWN_NETWORK)

    @property
    def window(self) -> int:
        """The grid that tile origins snap to: the attention window of the network."""
        return int(self.spec.window(self.config))

    @property
    def pad_multiple(self) -> int:
        """Input H and W are reflect-padded to a multiple of this before the forward pass (1: none needed)."""
        return int(self.spec.pad_multiple(self.config))


# A network built outside the registry (a test's, or a caller's own module): tiles on an 8-pixel grid, no padding.
UNKNOWN_NETWORK = ArchSpec(
    id="custom", title="a custom network", build=lambda config: nn.Identity(), detect=lambda state: None,
    signature_keys=(), tasks=(), window=lambda config: 8, exports=False,
)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat state dict of tensors, unwrapping the usual containers."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{path}: the file is empty (0 bytes); it is not a model")
    if path.suffix.lower() == ".safetensors":
        raw = _read_safetensors(path)
    else:
        _check_zip_inflation(path, size)
        raw = _read_torch_pickle(path)
    state = unwrap_state_dict(raw, path)
    check_stored_sizes(state, path)
    return state


def _check_zip_inflation(path: Path, size: int) -> None:
    """Refuse a torch zip checkpoint whose entries inflate far beyond the file (a zip bomb), from its directory."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load says what is wrong with it
    inflated = 0
    for info in entries:
        if info.file_size > MAX_ENTRY_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
            raise ModelError(
                f"{path}: refused: the entry {info.filename} inflates from {info.compress_size:,} to "
                f"{info.file_size:,} bytes ({info.file_size // max(info.compress_size, 1):,}x); a model file does "
                "not compress like that (a possible zip bomb)"
            )
        if "/data/" in info.filename or info.filename.startswith("data/"):
            inflated += info.file_size
    if inflated > MAX_INFLATED_BYTES or inflated > MAX_INFLATION * size:
        raise ModelError(
            f"{path}: refused: its tensors inflate to {inflated:,} bytes from a {size:,}-byte file "
            f"(more than {MAX_INFLATION}x or {MAX_INFLATED_BYTES >> 30} GiB; a possible zip bomb)"
        )


def check_stored_sizes(state: Mapping[str, torch.Tensor], where: str | os.PathLike) -> None:
    """Refuse tensors that declare more values than their storage holds (stride-0 or overlapping views): such a file
    is a few KB that becomes gigabytes once a network is built from its shapes."""
    for key, tensor in state.items():
        declared = tensor.numel() * tensor.element_size()
        try:
            stored = tensor.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):  # a tensor without storage (meta, sparse): nothing to compare
            continue
        if declared > stored:
            raise ModelError(
                f"{where}: refused: the tensor {key} declares {tuple(tensor.shape)} ({declared:,} bytes) but the "
                f"file stores {stored:,} bytes for it (a hostile or broken model file)"
            )


def check_declared_parameters(state: Mapping[str, torch.Tensor], spec: ArchSpec, where: str) -> None:
    """Refuse a state dict that declares more weights than its network family can sanely have, before building it."""
    total = sum(int(t.numel()) for t in state.values())
    if total > spec.max_parameters:
        raise ModelError(
            f"{where}: refused: the file declares {total:,} weights, more than a {spec.title} network may have "
            f"({spec.max_parameters:,}); it is hostile or broken, and no network was built from it"
        )


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a readable safetensors model file ({_first_line(exc)})") from None


def _read_torch_pickle(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch prefixes every weights-only failure with the same banner; only a refused global means code.
        text = str(exc)
        if ("GLOBAL" in text or "Unsupported global" in text) and _holds_whole_module(path, text):
            raise ModelError(
                f"{path}: refused to load: the file holds a whole pickled network (what `torch.save(model)` writes), "
                "which carries Python code; it was not executed. Save the weights instead, with "
                "`torch.save(model.state_dict(), path)`, and use that file."
            ) from None
        if "GLOBAL" in text or "Unsupported global" in text:
            raise ModelError(
                f"{path}: refused to load: the file contains Python code or objects, not only weights. "
                "It was not executed. Only plain weight files can be used."
            ) from None
        raise ModelError(f"{path}: not a PyTorch model file (its contents are not a weights pickle)") from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: the file is truncated or damaged ({_first_line(exc) or 'unexpected end of file'})") from None
    except RuntimeError as exc:
        text = str(exc)
        if "PytorchStreamReader" in text or "zip archive" in text or "central directory" in text:
            raise ModelError(f"{path}: the file is truncated or damaged (its archive cannot be read)") from None
        raise ModelError(f"{path}: not a PyTorch model file ({_first_line(exc)})") from None
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ModelError(f"{path}: not a PyTorch model file ({_first_line(exc)})") from None


_TORCH_MODULES = "torch.nn.modules"


def _holds_whole_module(path: Path, refusal: str) -> bool:
    """True when a file refused by the weights-only unpickler is a pickled `nn.Module`: the refused global is a
    torch.nn module class, or (for a subclass of the user's own) the pickle names torch.nn.modules classes. The
    pickle's bytes are only searched, never unpickled."""
    if _TORCH_MODULES in refusal:
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return any(_TORCH_MODULES.encode() in archive.read(n) for n in names[:1])
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return False


def unwrap_state_dict(raw: Any, path: str | os.PathLike = "<memory>") -> dict[str, torch.Tensor]:
    """Find the weights inside a training container and strip DataParallel's `module.` prefix."""
    state = raw
    for _ in range(3):  # containers may nest, e.g. {"state_dict": {"params": ...}}
        if not isinstance(state, Mapping):
            break
        inner = next((state[k] for k in CONTAINER_KEYS if k in state and isinstance(state[k], Mapping)), None)
        if inner is None or _is_tensor_dict(state):
            break
        state = inner
    if not isinstance(state, Mapping) or not state:
        raise ModelError(f"{path}: no weights found in the file (expected a state dict of tensors)")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"{path}: no weights found in the file (expected a state dict of tensors)")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in tensors.items()}


def _is_tensor_dict(state: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in state.values())


def build_network(arch: str, config: Mapping[str, Any]) -> nn.Module:
    """Construct a network from its official constructor arguments."""
    return get_spec(arch).build(config)


def model_from_state_dict(
    state: dict[str, torch.Tensor],
    *,
    name: str = "model",
    source: Path | None = None,
    task: str | None = None,
    device: torch.device | str = "cpu",
) -> Model:
    """Detect the architecture of a state dict, build its network, load it strictly and move it to `device`."""
    where = str(source) if source else name
    check_stored_sizes(state, where)
    found = detect(state, where)
    spec = get_spec(found.arch)
    check_declared_parameters(state, spec, where)
    net = spec.build(found.config)
    wanted = set(net.state_dict().keys())
    weights = {k: v for k, v in state.items() if k in wanted or not k.endswith(spec.ignored_buffer_suffixes)}
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{where}: weights do not fit the detected {found.arch} network ({_first_line(exc)})") from None
    net.eval().requires_grad_(False)
    device = torch.device(device)
    net.to(device)
    return Model(
        net=net,
        arch=found.arch,
        task=task or found.task,
        scale=found.scale,
        in_channels=found.in_channels,
        out_channels=found.out_channels,
        config=dict(found.config),
        name=name,
        source=source,
        device=device,
        spec=spec,
    )


def load_model(source: str | os.PathLike, device: str | torch.device = "auto") -> Model:
    """Load a model from a file path or a catalog id, on `device` ("auto", "cpu", "cuda", "mps")."""
    from .devices import resolve_device

    task = None
    path = Path(source)
    name = path.stem
    if not path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES or os.sep in str(source):
            raise ModelError(f"{source}: model file not found")
        from .store import resolve_model

        path, entry = resolve_model(str(source))
        name, task = entry.id, entry.task
    state = read_state_dict(path)
    return model_from_state_dict(state, name=name, source=path, task=task, device=resolve_device(device))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
