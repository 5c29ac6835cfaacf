"""The model catalog: every official release file, configs that build the right networks, the model store, import."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from conftest import GOLDEN, MOBILESR_WEIGHTS, need_shared
from enhancer import ModelError, catalog, load_model, paths, store
from enhancer.archs import arch_ids
from enhancer.checkpoints import build_network
from enhancer.download import config_differences

SWINIR_BASE = "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/"
RESTORMER_BASE = "https://github.com/swz30/Restormer/releases/download/v1.0/"

# The official release files, written out from the issue and the SwinIR/Restormer READMEs.
SWINIR_FILES = (
    [f"001_classicalSR_DIV2K_s48w8_SwinIR-M_x{s}.pth" for s in (2, 3, 4, 8)]
    + [f"001_classicalSR_DF2K_s64w8_SwinIR-M_x{s}.pth" for s in (2, 3, 4, 8)]
    + [f"002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}.pth" for s in (2, 3, 4)]
    + [f"003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x{s}_{k}.pth" for s in (2, 4) for k in ("GAN", "PSNR")]
    + [f"003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_{k}.pth" for k in ("GAN", "PSNR")]
    + [f"004_grayDN_DFWB_s128w8_SwinIR-M_noise{n}.pth" for n in (15, 25, 50)]
    + [f"005_colorDN_DFWB_s128w8_SwinIR-M_noise{n}.pth" for n in (15, 25, 50)]
    + [f"006_CAR_DFWB_s126w7_SwinIR-M_jpeg{q}.pth" for q in (10, 20, 30, 40)]
    + [f"006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg{q}.pth" for q in (10, 20, 30, 40)]
)
RESTORMER_FILES = [
    "motion_deblurring.pth",
    "single_image_defocus_deblurring.pth",
    "dual_pixel_defocus_deblurring.pth",
    "deraining.pth",
    "real_denoising.pth",
] + [f"gaussian_{c}_denoising_{l}.pth" for c in ("color", "gray") for l in ("blind", "sigma15", "sigma25", "sigma50")]
MOBILESR_URL = "https://github.com/sunny2109/MobileSR-NTIRE2022/raw/main/model_zoo/mobilesr_x4.pth"


def official_entries() -> list[catalog.CatalogEntry]:
    # The catalog file alone: this also runs at collection time, before the test's own data dir is set.
    return [e for e in catalog.read_catalog_file(catalog.catalog_path()) if not e.is_bundled]


def manifests() -> dict[str, dict]:
    folder = need_shared(GOLDEN / "manifests")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def same_config(a: dict, b: dict) -> bool:
    norm = lambda v: [norm(x) for x in v] if isinstance(v, (list, tuple)) else (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)  # noqa: E731
    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


def zero_state(shapes: dict[str, tuple[list[int], torch.dtype]]) -> dict[str, torch.Tensor]:
    """A state dict of the given shapes that costs no memory: one zero expanded to every shape."""
    return {k: torch.zeros((), dtype=dtype).expand(shape) for k, (shape, dtype) in shapes.items()}


# --------------------------------------------------------------------------------------------------------------------
# The catalog file


def test_catalog_lists_every_official_release_file():
    entries = official_entries()
    urls = {e.url for e in entries}
    for name in SWINIR_FILES:
        assert SWINIR_BASE + name in urls, name
    for name in RESTORMER_FILES:
        assert RESTORMER_BASE + name in urls, name
    assert MOBILESR_URL in urls
    assert len(entries) == len(SWINIR_FILES) + len(RESTORMER_FILES) + 1 == 45
    print(f"catalog: {len(entries)} official entries")


def test_entries_are_consistent_and_stay_inside_the_store():
    entries = store.load_catalog()
    assert len({e.id for e in entries}) == len(entries)
    assert len({e.filename.lower() for e in entries}) == len(entries)
    for e in official_entries():
        assert e.filename == e.url.rsplit("/", 1)[-1], e.id  # the store keeps the official file name
        assert catalog.check_filename(e.filename) == e.filename
        assert store.store_file(e.filename).parent == store.model_store()
        assert e.task in catalog.TASKS and e.arch in arch_ids()
        assert (e.scale == 1) == (e.task != "sr"), e.id
        assert e.license_notice, e.id
        if e.arch == "swinir":
            assert e.license == "Apache-2.0" and not e.requires_license_acceptance
            assert e.config["upscale"] == e.scale
        if e.arch == "restormer":
            assert e.requires_license_acceptance and "non-commercial" in e.license_notice.lower()
    motion = store.get_entry("restormer-motion-deblur")
    assert motion.size == 104_700_429
    assert motion.sha256 == "194e38fb5b607c9dc5a5b3e08e65b2e79ee2bf0ef5048e0612f6b2ff2f79da31"


def test_mobilesr_checksum_in_the_catalog_matches_the_official_weights():
    weights = need_shared(MOBILESR_WEIGHTS)
    entry = store.get_entry("mobilesr-x4")
    assert entry.size == weights.stat().st_size == 2_205_835
    assert entry.sha256 == store.sha256_of(weights) == "5fb0e02130258bc5af2e470d3e62f95e162320d1260a09a12d61218af33215fe"


def test_catalog_configs_agree_with_the_official_manifests():
    """Every released variant in golden/manifests has catalog entries with exactly its constructor arguments."""
    entries = official_entries()
    for name, manifest in manifests().items():
        matching = [e.id for e in entries if e.arch == manifest["arch"] and same_config(e.config, manifest["official_kwargs"])]
        assert matching, f"no catalog entry has the config of manifest {name}"
        print(f"{name}: {', '.join(matching)}")


@pytest.mark.parametrize("entry", official_entries(), ids=lambda e: e.id)
def test_each_entry_config_builds_its_network(entry):
    with torch.device("meta"):  # full-size networks, built without allocating their weights
        net = build_network(entry.arch, entry.config)
    params = {k: list(v.shape) for k, v in net.named_parameters()}
    assert params
    for manifest in manifests().values():
        if manifest["arch"] == entry.arch and same_config(entry.config, manifest["official_kwargs"]):
            official = {k: v["shape"] for k, v in manifest["state_dict"].items() if v["kind"] == "parameter"}
            assert params == official, f"{entry.id}: parameters differ from the official release"
            assert sum(torch.Size(s).numel() for s in params.values()) == manifest["params"]


@pytest.mark.parametrize("entry", official_entries(), ids=lambda e: e.id)
def test_detection_of_each_entry_returns_its_config(entry):
    """A zero checkpoint shaped like the entry (official keys where a manifest exists) is detected as that entry."""
    from enhancer.archs import detect

    official = [
        m for m in manifests().values() if m["arch"] == entry.arch and same_config(entry.config, m["official_kwargs"])
    ]
    if official:
        shapes = {k: (v["shape"], getattr(torch, v["dtype"])) for k, v in official[0]["state_dict"].items()}
    else:
        with torch.device("meta"):
            state = build_network(entry.arch, entry.config).state_dict()
        shapes = {k: (list(v.shape), v.dtype) for k, v in state.items()}
    found = detect(zero_state(shapes), entry.id)
    assert config_differences(entry, found.arch, found.config) == []
    assert (found.arch, found.scale) == (entry.arch, entry.scale)


def test_bad_catalog_files_are_refused(tmp_path):
    def write(body: str) -> Path:
        path = tmp_path / "catalog.toml"
        path.write_text(body)
        return path

    good = 'id = "x"\nname = "X"\ntask = "sr"\nscale = 2\narch = "mobilesr"\nconfig = { upscaling_factor = 2 }\n'
    assert catalog.read_catalog_file(write(f'[[model]]\n{good}url = "https://e.org/a/x.pth"\n'))[0].filename == "x.pth"
    for bad_name in ("../evil.pth", "sub/evil.pth", "..\\\\evil.pth", ".hidden.pth", "evil.txt", "evil.pth.part"):
        with pytest.raises(ModelError, match="not allowed"):
            catalog.read_catalog_file(write(f'[[model]]\n{good}url = "https://e.org/x.pth"\nfilename = "{bad_name}"\n'))
    with pytest.raises(ModelError, match="not allowed"):
        catalog.read_catalog_file(write(f'[[model]]\n{good}url = "https://e.org/a/..%2F..%2Fx.pth"\n'))
    bad_task = good.replace('task = "sr"', 'task = "paint"')
    with pytest.raises(ModelError, match="task"):
        catalog.read_catalog_file(write(f'[[model]]\n{bad_task}url = "https://e.org/x.pth"\n'))
    with pytest.raises(ModelError, match="sha256"):
        catalog.read_catalog_file(write(f'[[model]]\n{good}url = "https://e.org/x.pth"\nsha256 = "abc"\n'))
    with pytest.raises(ModelError, match="twice"):
        entry = f'[[model]]\n{good}url = "https://e.org/x.pth"\n'
        catalog.read_catalog_file(write(entry + entry))
    with pytest.raises(ModelError, match="not valid TOML"):
        catalog.read_catalog_file(write("[[model]\n"))
    with pytest.raises(ModelError, match="expects 'paintings' is not one of"):
        catalog.read_catalog_file(write(f'[[model]]\n{good}url = "https://e.org/x.pth"\nexpects = "paintings"\n'))


def test_each_entry_says_which_input_it_expects():
    entries = {entry.id: entry for entry in catalog.read_catalog_file(catalog.catalog_path())}
    assert all(entry.expects in catalog.INPUT_KINDS for entry in entries.values())
    assert entries["swinir-real-m-x4-psnr"].expects == "real-photo"
    assert entries["swinir-classical-div2k-x4"].expects == "clean"  # sr without a word: clean bicubic inputs
    assert entries["restormer-derain"].expects == "rainy" and entries["swinir-jpeg-color-q10"].expects == "jpeg"


# --------------------------------------------------------------------------------------------------------------------
# Ids, installed files and the default


def test_unknown_id_suggests_close_matches():
    with pytest.raises(ModelError, match="swinir-classical-df2k-x4"):
        store.get_entry("swinir-clasical-df2k-x4")


def test_a_model_that_is_not_installed_says_how_to_download_it():
    with pytest.raises(ModelError, match=r"enhancer --download mobilesr-x4"):
        store.resolve_model("mobilesr-x4")
    with pytest.raises(ModelError, match=r"enhancer --download restormer-derain"):
        load_model("restormer-derain", device="cpu")  # through the engine's own entry point


def write_catalog_without_default(target):
    """Copy the shipped catalog minus its bundled default entry."""
    blocks = catalog.catalog_path().read_text().split("[[model]]")
    target.write_text("[[model]]".join(block for block in blocks if "default = true" not in block))


def test_default_model_without_any_installed_model_is_a_clear_error(tmp_path, monkeypatch):
    # An app folder whose catalog has no bundled default, and an empty model store.
    app_models = tmp_path / "app-models"
    app_models.mkdir()
    write_catalog_without_default(app_models / "catalog.toml")
    monkeypatch.setattr(paths, "app_models_dir", lambda: app_models)
    assert not any(entry.default for entry in store.load_catalog())
    with pytest.raises(ModelError, match="--download"):
        store.default_model_id()


def test_default_is_the_bundled_entry_when_present(tmp_path, monkeypatch):
    weights = need_shared(MOBILESR_WEIGHTS)
    app_models = tmp_path / "app-models"
    app_models.mkdir()
    write_catalog_without_default(app_models / "catalog.toml")
    with open(app_models / "catalog.toml", "a") as fh:
        fh.write(
            '\n[[model]]\nid = "our-default-x4"\nname = "Ours x4"\ntask = "sr"\nscale = 4\narch = "mobilesr"\n'
            'license = "Apache-2.0"\ndefault = true\nbundled = "our_default_x4.pth"\n'
            "config = { n_feats = 40, n_heads = 8, ratios = [4, 2, 2, 2, 4], upscaling_factor = 4 }\n"
        )
    monkeypatch.setattr(paths, "app_models_dir", lambda: app_models)
    with pytest.raises(ModelError, match="no super-resolution model"):
        store.default_model_id()  # the entry exists but its file is not shipped
    shutil.copy(weights, app_models / "our_default_x4.pth")
    assert store.default_model_id() == "our-default-x4"
    path, entry = store.resolve_model("our-default-x4")
    assert path == app_models / "our_default_x4.pth" and entry.default
    with pytest.raises(ModelError, match="cannot be deleted"):
        store.delete_model("our-default-x4")
    model = load_model("our-default-x4", device="cpu")
    assert (model.arch, model.scale, model.name) == ("mobilesr", 4, "our-default-x4")


# --------------------------------------------------------------------------------------------------------------------
# Import


def test_import_a_golden_swinir_checkpoint_then_use_it_by_id(tmp_path):
    golden = need_shared(GOLDEN / "swinir_classical_x4.pth")
    cases = {c["name"]: c for c in json.loads((GOLDEN / "cases.json").read_text())}
    source = tmp_path / "My Model (v2)!.pth"
    shutil.copy(golden, source)

    entry = store.import_model(source)
    assert entry.id == "my-model-v2" and entry.imported
    assert (entry.arch, entry.task, entry.scale) == ("swinir", "sr", 4)
    official = cases["swinir_classical_x4"]["official_kwargs"]
    assert same_config({k: entry.config[k] for k in official}, official)  # detection may add defaults (qkv_bias...)
    stored = store.installed_path(entry)
    assert stored == store.model_store() / "my-model-v2.pth"
    assert store.sha256_of(stored) == store.sha256_of(golden) == entry.sha256

    assert store.get_entry("my-model-v2") == entry  # recorded, so usable by id from now on
    assert store.default_model_id() == "own-real-x4"  # the bundled default stays the default
    model = load_model("my-model-v2", device="cpu")
    io = torch.load(GOLDEN / "swinir_classical_x4.io.pt", weights_only=True)
    with torch.no_grad():
        out = model.net(io["input"][:1])
    assert out.shape == io["output"][:1].shape
    assert torch.allclose(out, io["output"][:1], atol=1e-4)

    # The same file again is the same model; another file with the same name gets its own id.
    assert store.import_model(source).id == "my-model-v2"
    other = tmp_path / "other" / "My Model (v2)!.pth"
    other.parent.mkdir()
    shutil.copy(need_shared(GOLDEN / "swinir_lightweight_x2.pth"), other)
    second = store.import_model(other)
    assert second.id == "my-model-v2-2" and second.scale == 2

    store.delete_model("my-model-v2")
    assert not stored.exists()
    assert "my-model-v2" not in {e.id for e in store.load_catalog()}
    with pytest.raises(ModelError, match="not installed"):
        store.delete_model("mobilesr-x4")


def test_import_refuses_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n" * 100)
    with pytest.raises(ModelError, match="notes.pth"):
        store.import_model(text)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    code = tmp_path / "trojan.pth"
    with open(code, "wb") as fh:
        pickle.dump({"params": Payload()}, fh)
    with pytest.raises(ModelError, match="trojan.pth"):
        store.import_model(code)

    unknown = tmp_path / "unknown_net.pth"
    torch.save({"encoder.weight": torch.zeros(4, 4)}, unknown)
    with pytest.raises(ModelError, match="unknown model"):
        store.import_model(unknown)

    assert [p.name for p in store.model_store().iterdir()] == []  # nothing copied, nothing recorded
    assert not any(e.imported for e in store.load_catalog())


def test_a_tampered_store_index_cannot_point_outside_the_store(tmp_path):
    outside = tmp_path / "outside.pth"
    shutil.copy(need_shared(GOLDEN / "mobilesr_x2.pth"), outside)
    index = store.model_store() / store.STORE_INDEX
    evil = {
        "id": "evil", "name": "evil", "task": "sr", "scale": 2, "arch": "mobilesr",
        "config": {"upscaling_factor": 2}, "filename": "../../outside.pth",
    }
    index.write_text(json.dumps({"imported": {"evil": evil}}))
    assert "evil" not in {e.id for e in store.load_catalog()}
    with pytest.raises(ModelError, match="not allowed"):
        store.store_file("../../outside.pth")
    index.write_text("{ damaged")
    from enhancer.catalog import catalog_path, read_catalog_file

    # a damaged index never hides the catalog (45 official entries and our bundled ones)
    assert len(store.load_catalog()) == len(read_catalog_file(catalog_path())) >= 46
