"""Hostile and unlucky inputs (issue 18): model and image files that lie about their size, damaged files, two writers
racing for one output name, and the privacy of what is copied into an output. The hostile files come from
tests/hostile_corpus.py; the CLI runs under a 4 GiB address-space limit, so a guard that fails is an exit, not a
machine brought to its knees."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from enhancer import ModelError
from enhancer.archs import get_spec
from enhancer.archs.mobilesr import MobileSR
from enhancer.checkpoints import check_declared_parameters, load_model, model_from_state_dict, read_state_dict
from enhancer.errors import ImageError
from enhancer.imageio import read_photo
from hostile_corpus import damaged_png, gray_alpha_tiff, huge_png16, stride0_mobilesr, write_corpus, zip_deflated_zeros

MEMORY_LIMIT = 4 << 30


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def enhancer(*args: str, timeout: float = 300, limit: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "enhancer", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=os.environ.copy(), preexec_fn=_limit_memory if limit else None,
    )


def _one_line_error(run: subprocess.CompletedProcess, path: Path) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    assert errors and all(str(path) in line for line in errors if path.name in line), run.stderr
    assert any(str(path) in line for line in errors), run.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("hostile"))


# ------------------------------------------------------------------------------------------------------ model files


def test_stride0_checkpoint_is_refused_before_the_network_is_built(corpus):
    path = corpus["stride0-mobilesr.pth"]
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(ModelError) as info:
        load_model(path, device="cpu")
    assert str(path) in str(info.value) and "refused" in str(info.value)


def test_zip_deflated_checkpoint_is_refused_before_it_inflates(corpus):
    path = corpus["zip-deflated-zeros.pth"]
    with pytest.raises(ModelError) as info:
        read_state_dict(path)
    assert str(path) in str(info.value) and "zip bomb" in str(info.value)


def test_a_real_zip_checkpoint_still_loads(tmp_path):
    import torch

    path = tmp_path / "small.pth"
    state = MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict()
    torch.save(state, path)
    model = load_model(path, device="cpu")
    assert model.arch == "mobilesr" and model.scale == 2


def test_more_weights_than_the_network_may_have_are_refused_before_building():
    state = MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict()
    spec = dataclasses.replace(get_spec("mobilesr"), max_parameters=1000)
    with pytest.raises(ModelError) as info:
        check_declared_parameters(state, spec, "tiny.pth")
    assert "tiny.pth" in str(info.value) and "1,000" in str(info.value)
    assert get_spec("mobilesr").max_parameters >= 10_000_000  # the released models pass


def test_stride0_state_dict_in_memory_is_refused_too():
    import torch

    state = {k: torch.zeros(1).expand(*v.shape) if v.ndim else v
             for k, v in MobileSR(n_feats=16, n_heads=4, ratios=[2], upscaling_factor=2).state_dict().items()}
    with pytest.raises(ModelError, match="declares"):
        model_from_state_dict(state, name="in-memory")


@pytest.mark.parametrize("name", ["stride0-mobilesr.pth", "zip-deflated-zeros.pth"])
def test_cli_import_of_a_hostile_model_is_one_line_and_exit_1(corpus, name):
    path = corpus[name]
    run = enhancer("--import", path)
    assert run.returncode == 1, run.stderr
    _one_line_error(run, path)


def test_cli_model_of_a_hostile_file_is_one_line_and_exit_1_or_2(corpus, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    path = corpus["stride0-mobilesr.pth"]
    run = enhancer(photo, "--model", path, "--output-dir", tmp_path / "out")
    assert run.returncode in (1, 2), run.stderr
    _one_line_error(run, path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------------------------ images


def test_tifffile_path_applies_the_size_guard(tmp_path):
    path = gray_alpha_tiff(tmp_path / "bomb.tif")
    assert path.stat().st_size < 7 * 1024 * 1024
    with pytest.raises(ImageError) as info:
        read_photo(path)
    assert str(path) in str(info.value) and "too large" in str(info.value)


def test_pypng_path_applies_the_size_guard(tmp_path, monkeypatch):
    from enhancer import imageio

    path = huge_png16(tmp_path / "bomb.png", side=20000)
    with pytest.raises(ImageError, match="too large"):
        imageio._read_png16(path)  # the decoder path itself, not only Pillow's guard in front of it


def test_size_guard_follows_pillows_limit(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ImageError, match="too large"):
        read_photo(path)


def test_damaged_png_is_an_error_not_an_output(tmp_path):
    path = damaged_png(tmp_path / "damaged.png")
    with pytest.raises(ImageError) as info:
        read_photo(path)
    assert str(path) in str(info.value) and "damaged" in str(info.value)


def test_cli_batch_survives_every_hostile_image_and_goes_on(corpus, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("gray-alpha-16bit-40000.tif", "png16-huge.png", "damaged-idat.png"):
        (inputs / name).write_bytes(corpus[name].read_bytes())
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(inputs / "valid.png")
    before = sorted(p.name for p in inputs.iterdir())
    out = tmp_path / "out"
    run = enhancer(inputs, "--model", "own-espcn-x2", "--output-dir", out)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    assert len(errors) == 3, run.stderr
    assert sorted(p.name for p in inputs.iterdir()) == before
    assert [p.name for p in out.iterdir()] == ["valid_own-espcn-x2_x2.png"]


def test_a_large_legitimate_photo_whose_job_cannot_fit_is_refused_before_decoding(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    large = inputs / "a_large.png"
    Image.new("L", (10_000, 10_000), 128).save(large)  # 100 MP: within the size guard (warned about, accepted)
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(inputs / "b_valid.png")
    out = tmp_path / "out"
    run = enhancer(inputs, "--model", "own-espcn-x2", "--output-dir", out, "--threads", "1")  # under ulimit -v 4 GiB
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
    print(errors)
    assert len(errors) == 1 and str(large) in errors[0] and "needs about" in errors[0], run.stderr
    assert [p.name for p in out.iterdir()] == ["b_valid_own-espcn-x2_x2.png"]


# ------------------------------------------------------------------------------------------------------ output names


def _photo_folder(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"photo{i:02d}.png")
    return folder


def _rendered(tmp_path: Path):
    from enhancer.imageio import Photo
    from enhancer.pipeline import InputFile, Rendered

    source = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(source)
    wanted = tmp_path / "in_x2.png"
    photo = Photo(pixels=np.full((8, 8, 3), 0.5, np.float32), source=source)
    return InputFile(path=source), Rendered(photo, wanted, ".png", 95, [])


def test_a_name_taken_by_another_writer_is_never_replaced(tmp_path):
    item, rendered = _rendered(tmp_path)
    rendered.wanted.write_bytes(b"someone else's file")  # taken after the name was chosen, before the write
    out = rendered.write(rendered.wanted, exclusive=True, item=item, taken=set())
    assert rendered.wanted.read_bytes() == b"someone else's file"
    assert out == tmp_path / "in_x2-1.png"
    assert Image.open(out).size == (8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "in_x2-1.png", "in_x2.png"]


def test_output_names_stay_within_255_bytes_and_keep_the_suffix(tmp_path):
    from enhancer.pipeline import InputFile, first_output_name, free_output_name

    stem = "é" * 120  # 240 bytes
    item = InputFile(path=tmp_path / f"{stem}.png")
    wanted = first_output_name(item, tmp_path, "_own-espcn-x2_x2", ".png")
    assert len(wanted.name.encode()) <= 255 and wanted.name.endswith("_own-espcn-x2_x2.png")
    wanted.write_bytes(b"x")
    second = free_output_name(item, wanted, set())
    assert len(second.name.encode()) <= 255 and second.name.endswith("_own-espcn-x2_x2-1.png")
    _, rendered = _rendered(tmp_path)
    rendered.write(second)  # the temporary name fits too
    assert Image.open(second).size == (8, 8)


def test_two_processes_on_the_same_photos_write_distinct_files_that_all_decode(tmp_path):
    inputs = _photo_folder(tmp_path / "in", 20)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "enhancer", str(inputs), "--model", "own-espcn-x2", "--output-dir", str(out),
               "--threads", "1"]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=os.environ.copy()) for _ in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    written = sorted(out.iterdir())
    assert len(written) == 40 and len({p.name for p in written}) == 40
    assert not [p for p in written if p.name.startswith(".")]
    for path in written:
        with Image.open(path) as im:
            im.load()
            assert im.size == (64, 48)


def test_skip_existing_run_after_run_writes_each_output_once(tmp_path):
    inputs = _photo_folder(tmp_path / "in", 20)
    out = tmp_path / "out"
    for _ in range(2):
        run = enhancer(inputs, "--model", "own-espcn-x2", "--output-dir", out, "--skip-existing", "--threads", "1",
                       limit=False)
        assert run.returncode == 0, run.stderr
    assert len(list(out.iterdir())) == 20


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_empty_suffix_in_a_recursive_batch_never_enhances_earlier_outputs(tmp_path):
    photos = _photo_folder(tmp_path / "photos", 2)
    _photo_folder(photos / "trip", 1)
    out = photos / "enhanced"  # inside the input tree: its files are outputs, whatever their names
    common = (photos, "--recursive", "--suffix", "", "--model", "own-espcn-x2", "--output-dir", out, "--threads", "1")
    first = enhancer(*common, limit=False)
    assert first.returncode == 0, first.stderr
    assert _tree(out) == ["photo00.png", "photo01.png", "trip/photo00.png"]  # the originals' names, another folder
    again = enhancer(*common, "--skip-existing", limit=False)
    assert again.returncode == 0, again.stderr
    assert "0 written, 3 skipped" in again.stderr
    third = enhancer(*common, limit=False)  # without --skip-existing: the three originals once more, nothing else
    assert third.returncode == 0, third.stderr
    assert _tree(out) == ["photo00-1.png", "photo00.png", "photo01-1.png", "photo01.png", "trip/photo00-1.png",
                          "trip/photo00.png"]
    assert _tree(photos / "trip") == ["photo00.png"]


def test_empty_suffix_next_to_the_originals_is_refused(tmp_path):
    photos = _photo_folder(tmp_path / "photos", 2)
    before = _tree(photos)
    for extra in ((), ("--output-dir", photos)):
        run = enhancer(photos, "--recursive", "--suffix", "", "--model", "own-espcn-x2", *extra, limit=False)
        assert run.returncode == 2, run.stderr
        errors = [line for line in run.stderr.splitlines() if line.startswith("enhancer: error:")]
        assert len(errors) == 1 and "empty suffix" in errors[0] and "--output-dir" in errors[0], run.stderr
    assert _tree(photos) == before


# ---------------------------------------------------------------------------------------------------------- privacy


def _jpeg_with_gps(path: Path) -> Path:
    from PIL import ImageCms

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 9"  # Model
    exif.get_ifd(0x8769)[0x829A] = (1, 250)  # ExposureTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
           b' exif:GPSLatitude="48,51.48N" photoshop:City="Paris" xmlns:dc="http://purl.org/dc/elements/1.1/">'
           b'<exif:GPSLongitude>2,17.67E</exif:GPSLongitude><dc:creator>Ann</dc:creator>'
           b'</rdf:Description></rdf:RDF></x:xmpmeta>')
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(path, exif=exif, icc_profile=icc, xmp=xmp)
    return path


def _metadata(path: Path):
    with Image.open(path) as im:
        exif = im.getexif()
        return exif, dict(exif.get_ifd(0x8825)), dict(exif.get_ifd(0x8769)), im.info.get("icc_profile"), \
            im.info.get("xmp")


@pytest.mark.parametrize("strip", ["none", "location", "all"])
def test_strip_metadata_on_write(tmp_path, strip):
    from enhancer.imageio import write_photo

    source = _jpeg_with_gps(tmp_path / "gps.jpg")
    photo = read_photo(source)
    out = write_photo(photo, tmp_path / "out.jpg", strip_metadata=strip)
    exif, gps, sub, icc, xmp = _metadata(out)
    assert icc and icc == _metadata(source)[3]  # the colour profile always stays
    if strip == "none":
        assert gps and exif.get(0x010F) == "PhoneMaker" and b"Paris" in xmp
    elif strip == "location":
        assert not gps and 0x8825 not in exif
        assert exif.get(0x010F) == "PhoneMaker" and sub.get(0x829A)  # camera data kept
        assert b"GPS" not in xmp and b"Paris" not in xmp and b"Ann" in xmp
    else:
        assert not len(exif) and not xmp


def test_cli_strips_the_location_by_default_and_keeps_it_when_asked(tmp_path):
    source = _jpeg_with_gps(_photo_folder(tmp_path / "in", 0) / "gps.jpg")
    for strip, folder in ((None, "default"), ("none", "kept")):
        extra = () if strip is None else ("--strip-metadata", strip)
        run = enhancer(source, "--model", "own-espcn-x2", "--output-dir", tmp_path / folder, *extra, limit=False)
        assert run.returncode == 0, run.stderr
    (default,) = (tmp_path / "default").iterdir()
    (kept,) = (tmp_path / "kept").iterdir()
    assert not _metadata(default)[1] and _metadata(default)[0].get(0x010F) == "PhoneMaker"
    assert _metadata(kept)[1]
