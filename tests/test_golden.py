"""The networks against the official code: golden outputs of small seeded networks, and every released configuration.

- Each case in ../shared/golden/cases.json is a small network saved in the official format, with an input and the
  official forward pass's output. The inputs are batch 2 at sizes that are not a multiple of the window.
- Each manifest in ../shared/golden/manifests lists the keys, shapes and dtypes of a full-size released file. A file of
  zeros with those keys, in the official container, must be detected as the manifest's configuration and load strictly.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from enhancer import load_model
from enhancer.archs.swinir.detect import IGNORED_SUFFIXES as SWINIR_BUFFERS

from conftest import GOLDEN, require_bf16

TOLERANCE = 1e-4


def _cases() -> list[dict]:
    path = GOLDEN / "cases.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _manifests() -> list:
    folder = GOLDEN / "manifests"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _official_container(manifest_name: str, arch: str) -> str:
    """The key the official release files keep their weights under."""
    if arch == "mobilesr":
        return "net"
    if arch == "swinir" and "realSR" in manifest_name:
        return "params_ema"
    return "params"


def test_shared_golden_data_is_complete(golden_dir):
    cases = _cases()
    assert len(cases) == 17, f"expected 17 golden cases, found {len(cases)}"
    assert {c["arch"] for c in cases} == {"swinir", "restormer", "mobilesr"}
    assert len(_manifests()) >= 16


@pytest.mark.parametrize("case", _cases() or [pytest.param(None, marks=pytest.mark.skip("needs ../shared/golden"))],
                         ids=lambda c: c["name"] if c else "absent")
def test_golden_case_matches_official_output(case, golden_dir):
    model = load_model(golden_dir / case["checkpoint"], device="cpu")
    io = torch.load(golden_dir / case["io"], map_location="cpu", weights_only=True)
    inputs, expected = io["input"], io["output"]
    assert list(inputs.shape) == case["input_shape"] and inputs.shape[0] == 2

    assert model.arch == case["arch"]
    assert sum(p.numel() for p in model.net.parameters()) == case["params"]
    for name, value in case["official_kwargs"].items():
        assert _same(model.config.get(name), value), f"{case['name']}: {name} detected {model.config.get(name)!r}, official {value!r}"
    assert model.scale * inputs.shape[-1] == expected.shape[-1]
    assert model.in_channels == inputs.shape[1] and model.out_channels == expected.shape[1]

    # The network as published, and the module the tiler runs on this CPU (its fast path, where one is registered).
    for kind, net in (("plain", model.net), ("cpu inference", model.spec.for_inference(model.net, torch.device("cpu")))):
        with torch.no_grad():
            out = net(inputs)
            single = net(inputs[1:])
        assert out.shape == expected.shape and out.dtype == torch.float32
        diff = (out - expected).abs().max().item()
        print(f"{case['name']} ({kind}, {type(net).__name__}): max abs diff {diff:.2e} (input {tuple(inputs.shape)})")
        assert diff <= TOLERANCE, f"{case['name']} ({kind}): max abs diff {diff:.3e} > {TOLERANCE}"
        # The second image alone gives what it gave inside the batch: no mixing across the batch.
        assert (single - expected[1:]).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("manifest_path", _manifests() or [pytest.param(None, marks=pytest.mark.skip("needs ../shared/golden"))],
                         ids=lambda p: p.stem if p else "absent")
def test_released_configuration_is_detected_and_loads_strictly(manifest_path, tmp_path):
    manifest = json.loads(manifest_path.read_text())
    arch = manifest["arch"]
    entries = manifest["state_dict"]
    state = {key: torch.zeros(spec["shape"], dtype=getattr(torch, spec["dtype"])) for key, spec in entries.items()}
    container = _official_container(manifest_path.stem, arch)
    checkpoint = tmp_path / f"{manifest_path.stem}.pth"
    torch.save({container: state}, checkpoint)
    del state

    model = load_model(checkpoint, device="cpu")
    assert model.arch == arch
    for name, value in manifest["official_kwargs"].items():
        assert _same(model.config.get(name), value), f"{name}: detected {model.config.get(name)!r}, official {value!r}"

    parameters = {k: spec for k, spec in entries.items() if spec["kind"] == "parameter"}
    ours = model.net.state_dict()
    assert set(ours) == set(parameters), (
        f"missing {sorted(set(parameters) - set(ours))[:5]}, extra {sorted(set(ours) - set(parameters))[:5]}"
    )
    for key, spec in parameters.items():
        assert list(ours[key].shape) == spec["shape"], key
    count = sum(p.numel() for p in model.net.parameters())
    assert count == manifest["params"] == sum(math.prod(s["shape"]) for s in parameters.values())
    buffers = [k for k, s in entries.items() if s["kind"] == "buffer"]
    if arch == "swinir":
        assert buffers and all(k.endswith(SWINIR_BUFFERS) for k in buffers)
    print(f"{manifest_path.stem}: {count} parameters, container {container!r}, config {model.config}")


def _same(detected, official) -> bool:
    if isinstance(official, (list, tuple)):
        return detected is not None and list(detected) == list(official)
    if isinstance(official, float) or isinstance(detected, float):
        return detected is not None and math.isclose(float(detected), float(official))
    return detected == official


def test_swinir_masks_are_built_once_per_size_and_stay_correct(monkeypatch):
    """Shift masks are cached per input size by the CPU inference module: a repeated size builds nothing, and
    switching sizes stays exact (and equal, bit for bit, to the plain network, which builds them on every call)."""
    from enhancer.archs.swinir import SPEC, SwinIRFastCPU
    from enhancer.archs.swinir import fast_cpu as swinir_fast
    from enhancer.archs.swinir import network as swinir_module

    kwargs = dict(upscale=2, in_chans=3, img_size=32, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=12,
                  num_heads=[2, 3], mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv")
    torch.manual_seed(1)
    net = swinir_module.SwinIR(**kwargs).eval()
    fast = SPEC.for_inference(net, torch.device("cpu"))
    assert isinstance(fast, SwinIRFastCPU)
    builds = []
    original = swinir_fast.border_shift_mask
    monkeypatch.setattr(swinir_fast, "border_shift_mask", lambda *a: builds.append(a) or original(*a))
    small, large = torch.rand(1, 3, 17, 26), torch.rand(1, 3, 33, 40)
    with torch.no_grad():
        first = fast(small)
        built = len(builds)
        assert built == 2  # one per shifted block (two layers of two blocks)
        assert torch.equal(fast(small), first)
        assert len(builds) == built
        fast(large)
        again = fast(small)
        fresh = swinir_module.SwinIR(**kwargs).eval()
        fresh.load_state_dict(net.state_dict())
        reference = SPEC.for_inference(fresh, torch.device("cpu"))(small)
        plain = net(small)
    assert torch.equal(again, first) and torch.equal(reference, first) and torch.equal(plain, first)
    assert len(builds) == 3 * built  # the large size, the fresh net; the small size came back from the cache


def test_swinir_window_attention_official_signature_matches_plain_math():
    """WindowAttention(windows, mask) computes softmax(q·kᵀ·scale + bias + mask)·v like the official module."""
    from enhancer.archs.swinir.network import WindowAttention, relative_position_index

    torch.manual_seed(2)
    attention = WindowAttention(dim=12, window_size=4, num_heads=3).eval()
    windows = torch.rand(2 * 5, 16, 12)  # batch 2, 5 windows of 4x4 tokens
    mask = torch.zeros(5, 16, 16).masked_fill_(torch.rand(5, 16, 16) > 0.7, -100.0)
    with torch.no_grad():
        ours = attention(windows, mask)
        q, k, v = attention.qkv(windows).view(10, 16, 3, 3, 4).permute(2, 0, 3, 1, 4)
        bias = attention.relative_position_bias_table[relative_position_index(4).view(-1)].view(16, 16, 3).permute(2, 0, 1)
        scores = (q * attention.scale) @ k.transpose(-2, -1) + bias[None]
        scores = scores.view(2, 5, 3, 16, 16) + mask[None, :, None]
        plain = attention.proj((scores.view(10, 3, 16, 16).softmax(-1) @ v).transpose(1, 2).reshape(10, 16, 12))
    assert (ours - plain).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    "upsampler,upscale,shape",
    [("pixelshuffle", 2, (1, 3, 8, 24)), ("pixelshuffledirect", 3, (2, 3, 29, 8)), ("", 1, (1, 3, 20, 35)),
     ("nearest+conv", 4, (1, 3, 16, 16))],
)
def test_swinir_cpu_inference_module_matches_the_plain_network(upsampler, upscale, shape):
    """The CPU inference module only caches the attention biases: the same numbers bit for bit, in fp32 and under
    bf16 autocast, at sizes of one window row or column too."""
    from enhancer.archs.swinir import SPEC, SwinIR, SwinIRFastCPU

    torch.manual_seed(4)
    net = SwinIR(upscale=upscale, img_size=32, window_size=8, img_range=1.0, depths=[2, 2], embed_dim=12,
                 num_heads=[2, 3], mlp_ratio=2.0, upsampler=upsampler).eval()
    fast = SPEC.for_inference(net, torch.device("cpu"))
    assert isinstance(fast, SwinIRFastCPU) and fast.net is net
    x = torch.rand(shape)
    with torch.inference_mode():
        plain, got = net(x), fast(x)
        require_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain_bf16, got_bf16 = net(x), fast(x)
    assert got.shape == (shape[0], 3, shape[2] * upscale, shape[3] * upscale)
    assert torch.equal(got, plain) and torch.equal(got_bf16, plain_bf16)
    assert (got_bf16.float() - plain).abs().max().item() <= 0.05 * max(1.0, plain.abs().max().item())
