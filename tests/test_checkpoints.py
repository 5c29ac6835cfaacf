"""Reading model files: bad files give a ModelError that names the file, and the usual containers unwrap."""

from __future__ import annotations

import builtins
import pickle

import pytest
import torch
from safetensors.torch import save_file

from enhancer import ModelError, load_model
from enhancer.checkpoints import read_state_dict, unwrap_state_dict
from enhancer.archs.swinir import detect as swinir_detection
from enhancer.archs.swinir import SwinIR

TINY_SWINIR = dict(upscale=2, in_chans=3, img_size=16, window_size=8, img_range=1.0, depths=[2], embed_dim=12,
                   num_heads=[2], mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv")


class _CreatesFileWhenUnpickled:
    """Unpickling this calls open(path, "w"), which would create the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def _tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return SwinIR(**TINY_SWINIR).state_dict()


@pytest.mark.parametrize("writer", ["torch.save", "raw pickle"])
def test_pickle_that_carries_code_is_refused_and_never_runs(tmp_path, writer):
    target = tmp_path / "created_by_pickle.txt"
    evil = tmp_path / "evil.pth"
    payload = {"params": {"conv_first.weight": torch.zeros(1)}, "hook": _CreatesFileWhenUnpickled(target)}
    if writer == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ModelError) as info:
        load_model(evil, device="cpu")
    assert str(evil) in str(info.value)
    assert "not executed" in str(info.value) or "not a PyTorch model" in str(info.value)
    assert not target.exists(), "unpickling ran code from the file"


def test_unknown_keys_name_the_file_and_the_keys_looked_for(tmp_path):
    path = tmp_path / "someone_elses_net.pth"
    torch.save({"state_dict": {"encoder.conv.weight": torch.zeros(4, 3, 3, 3), "decoder.fc.bias": torch.zeros(4)}}, path)
    with pytest.raises(ModelError) as info:
        load_model(path, device="cpu")
    message = str(info.value)
    assert str(path) in message and "unknown model" in message
    for key in swinir_detection.SIGNATURE_KEYS:
        assert key in message
    assert "encoder.conv.weight" in message  # what the file has instead


def test_truncated_file_is_a_model_error(tmp_path):
    whole = tmp_path / "whole.pth"
    torch.save({"params": _tiny_state()}, whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as info:
        load_model(cut, device="cpu")
    assert str(cut) in str(info.value) and ("truncated" in str(info.value) or "damaged" in str(info.value))


def test_truncated_safetensors_is_a_model_error(tmp_path):
    whole = tmp_path / "whole.safetensors"
    save_file(_tiny_state(), str(whole))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(ModelError) as info:
        load_model(cut, device="cpu")
    assert str(cut) in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_empty_file_is_a_model_error(tmp_path, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(ModelError) as info:
        load_model(empty, device="cpu")
    assert str(empty) in str(info.value) and "empty" in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".safetensors"])
def test_text_file_is_not_a_checkpoint(tmp_path, suffix):
    text = tmp_path / f"notes{suffix}"
    text.write_text("These are my holiday notes, not a neural network.\n" * 20)
    with pytest.raises(ModelError) as info:
        load_model(text, device="cpu")
    assert str(text) in str(info.value)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "nowhere.pth", device="cpu")
    assert "nowhere.pth" in str(info.value)


def test_safetensors_round_trip_gives_the_same_network(tmp_path):
    state = _tiny_state()
    path = tmp_path / "tiny.safetensors"
    save_file(state, str(path))
    model = load_model(path, device="cpu")
    assert (model.arch, model.task, model.scale, model.in_channels) == ("swinir", "sr", 2, 3)
    loaded = model.net.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    x = torch.rand(1, 3, 11, 13)
    reference = SwinIR(**TINY_SWINIR).eval()
    reference.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(model.net(x), reference(x))


def test_params_ema_is_preferred_over_params(tmp_path):
    ema = _tiny_state()
    plain = {k: torch.zeros_like(v) for k, v in ema.items()}
    path = tmp_path / "trained.pth"
    torch.save({"params": plain, "params_ema": ema, "epoch": 3}, path)
    state = read_state_dict(path)
    assert all(torch.equal(state[k], ema[k]) for k in ema)
    model = load_model(path, device="cpu")
    key = "conv_first.weight"
    assert torch.equal(model.net.state_dict()[key], ema[key])


def test_module_prefix_is_stripped_and_nested_containers_unwrap(tmp_path):
    state = _tiny_state()
    wrapped = {"state_dict": {"model": {f"module.{k}": v for k, v in state.items()}}, "optimizer": {"lr": 1e-4}}
    path = tmp_path / "data_parallel.ckpt"
    torch.save(wrapped, path)
    model = load_model(path, device="cpu")
    assert set(model.net.state_dict()) == set(state)
    assert unwrap_state_dict({"net": {"module.a": torch.ones(1)}})["a"].item() == 1.0


def test_container_without_tensors_is_a_model_error(tmp_path):
    path = tmp_path / "no_weights.pth"
    torch.save({"epoch": 7, "params": {"lr": 0.1}}, path)
    with pytest.raises(ModelError) as info:
        load_model(path, device="cpu")
    assert str(path) in str(info.value) and "no weights" in str(info.value)


def test_weights_that_do_not_fit_the_detected_network_name_the_file(tmp_path):
    state = _tiny_state()
    state["layers.0.residual_group.blocks.0.mlp.fc2.bias"] = torch.zeros(5)  # wrong shape
    path = tmp_path / "damaged_shapes.pth"
    torch.save({"params": state}, path)
    with pytest.raises(ModelError) as info:
        load_model(path, device="cpu")
    assert str(path) in str(info.value)
