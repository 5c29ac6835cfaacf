"""The installer's own pieces that run without building a bundle: the icons, the self-test, the frozen entry points.

The bundle itself is built and checked by `.ci/run` (make bundle, then installer/check_bundle.py).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import MOBILESR_WEIGHTS, ROOT, need_shared

sys.path.insert(0, str(ROOT / "installer"))
import make_icons  # noqa: E402

from enhancer import selftest  # noqa: E402


def _draw_source(path: Path, size: tuple[int, int]) -> Path:
    pixels = np.zeros((size[1], size[0], 4), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    pixels[..., 2] = 200
    pixels[..., 3] = 255
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def test_icons_for_every_platform_from_one_source(tmp_path):
    source = _draw_source(tmp_path / "icon.png", (600, 400))  # not square: centred on a transparent square
    written = make_icons.make_icons(source, tmp_path / "icons")
    assert sorted(p.name for p in written) == ["enhancer-512.png", "enhancer.icns", "enhancer.ico", "enhancer.png"]

    with Image.open(tmp_path / "icons" / "enhancer.ico") as ico:
        assert ico.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(tmp_path / "icons" / "enhancer.icns") as icns:
        assert icns.format == "ICNS"
        assert max(icns.info["sizes"]) >= (512, 512, 2)  # the Retina 1024 px version is there
    with Image.open(tmp_path / "icons" / "enhancer.png") as png:
        assert png.size == (256, 256)
        png = png.convert("RGBA")
        assert png.getpixel((128, 5))[3] == 0  # the padding of the non-square source is transparent
        assert png.getpixel((128, 128))[3] == 255


def test_icon_source_problems_are_named(tmp_path):
    with pytest.raises(make_icons.IconError, match="missing.png: icon source image not found"):
        make_icons.make_icons(tmp_path / "missing.png", tmp_path / "icons")
    small = _draw_source(tmp_path / "small.png", (64, 64))
    with pytest.raises(make_icons.IconError, match="small.png: 64x64 is too small"):
        make_icons.make_icons(small, tmp_path / "icons")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    assert make_icons.main(["--source", str(text), "--out", str(tmp_path / "icons")]) == 1


def test_the_real_project_icon_makes_icons(tmp_path):
    source = ROOT / "resources" / "icon.png"
    if not source.is_file():
        pytest.skip("resources/icon.png is not drawn yet")
    assert len(make_icons.make_icons(source, tmp_path)) == 4


def _save(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_self_test_checks_accept_an_upscale_and_refuse_bad_results(tmp_path):
    picture = selftest.make_test_picture()
    assert picture.shape == (selftest.TEST_HEIGHT, selftest.TEST_WIDTH, 3)
    assert picture.std() > 0.1  # edges, gradients and colour: a real test picture
    scale = 4
    size = (selftest.TEST_WIDTH * scale, selftest.TEST_HEIGHT * scale)
    upscale = Image.fromarray((picture * 255 + 0.5).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    good = tmp_path / "good.png"
    upscale.save(good)
    assert "correlation" in selftest._check_output(picture, good, scale)

    with pytest.raises(selftest.SelfTestFailure, match="size 52x36, expected 208x144"):
        selftest._check_output(picture, _save(picture, tmp_path / "small.png"), scale)
    with pytest.raises(selftest.SelfTestFailure, match="blank"):
        selftest._check_output(picture, _save(np.full((size[1], size[0], 3), 0.5), tmp_path / "gray.png"), scale)
    upscaled = np.asarray(upscale, dtype=np.float32) / 255
    with pytest.raises(selftest.SelfTestFailure, match="does not look like the input"):
        selftest._check_output(picture, _save(upscaled[::-1, ::-1], tmp_path / "rotated.png"), scale)
    with pytest.raises(selftest.SelfTestFailure, match="does not look like the input"):
        selftest._check_output(picture, _save(upscaled[..., ::-1], tmp_path / "bgr.png"), scale)


def test_self_test_without_a_default_model_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv(selftest.MODEL_OVERRIDE_ENV, raising=False)
    # An app folder whose catalog lists no default: what a build without the trained model looks like.
    app = tmp_path / "app" / "models"
    app.mkdir(parents=True)
    (app / "catalog.toml").write_text("")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "app"), raising=False)
    out = io.StringIO()
    assert selftest.run_self_test(out) == 1
    line = out.getvalue().strip()
    assert line.startswith("self-test: FAILED: no bundled default model")
    assert selftest.MODEL_OVERRIDE_ENV in line


def test_self_test_with_a_broken_model_file_names_it(monkeypatch, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    monkeypatch.setenv(selftest.MODEL_OVERRIDE_ENV, str(broken))
    out = io.StringIO()
    assert selftest.run_self_test(out) == 1
    assert out.getvalue().startswith(f"self-test: FAILED: cannot load model '{broken}'")


def test_frozen_entry_point_runs_the_self_test_through_the_cli(tmp_path):
    """launch_cli.py is what the frozen `enhancer` runs; with real MobileSR weights the whole path must pass."""
    weights = need_shared(MOBILESR_WEIGHTS)
    env = {**os.environ, selftest.MODEL_OVERRIDE_ENV: str(weights), "ENHANCER_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "installer" / "launch_cli.py"), "--self-test"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test: OK: model mobilesr_x4 (mobilesr x4" in done.stdout
    assert "52x36 -> 208x144" in done.stdout


# ------------------------------------------------------------------------------------------ the build script's logic
import build  # noqa: E402
import check_bundle  # noqa: E402
import macos_min_version  # noqa: E402


def _dist_info(site: Path, name: str, version: str, *tags: str) -> Path:
    folder = site / f"{name}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / "WHEEL").write_text("Wheel-Version: 1.0\nGenerator: bdist_wheel (0.43.0)\nRoot-Is-Purelib: false\n"
                                  + "".join(f"Tag: {tag}\n" for tag in tags))
    return folder


def test_the_minimum_macos_is_the_highest_among_the_bundled_wheels(tmp_path):
    site = tmp_path / "site-packages"
    _dist_info(site, "torch", "2.13.0", "cp311-none-macosx_14_0_arm64")
    _dist_info(site, "PySide6_Essentials", "6.12.0", "cp39-abi3-macosx_13_0_universal2")
    _dist_info(site, "shiboken6", "6.12.0", "cp39-abi3-macosx_13_0_universal2")
    # several tags: on arm64 it installs from 11.0 on, on x86_64 from 10.13
    _dist_info(site, "numpy", "2.3.0", "cp311-cp311-macosx_10_13_x86_64", "cp311-cp311-macosx_11_0_arm64")
    _dist_info(site, "onnxruntime", "1.22.0", "cp311-cp311-macosx_15_0_arm64")  # a dev tool, never bundled
    _dist_info(site, "einops", "0.8.0", "py3-none-any")
    version, per_wheel = macos_min_version.minimum_from([site], arch="arm64")
    assert version == "14.0"
    assert per_wheel == {"torch 2.13.0": "14.0", "PySide6_Essentials 6.12.0": "13.0", "shiboken6 6.12.0": "13.0",
                         "numpy 2.3.0": "11.0"}
    assert macos_min_version.minimum_from([site], names=["numpy", "PySide6_Essentials"], arch="x86_64")[0] == "13.0"


def test_the_minimum_macos_reads_compressed_tags_and_falls_back_without_macos_wheels(tmp_path):
    text = "Tag: cp311-cp311-macosx_10_9_x86_64.macosx_12_3_arm64\n"
    assert macos_min_version.wheel_minimum(text, "arm64") == (12, 3)
    assert macos_min_version.wheel_minimum(text, "x86_64") == (10, 9)
    assert macos_min_version.wheel_minimum("Tag: cp311-cp311-manylinux_2_28_x86_64\n", "arm64") is None
    site = tmp_path / "linux-site"
    _dist_info(site, "torch", "2.13.0+cpu", "cp311-cp311-manylinux_2_28_x86_64")
    assert macos_min_version.minimum_from([site]) == (macos_min_version.FALLBACK, {})


def test_the_spec_takes_the_minimum_macos_from_the_wheels():
    spec = (ROOT / "installer" / "enhancer.spec").read_text(encoding="utf-8")
    assert '"LSMinimumSystemVersion": MINIMUM_MACOS' in spec
    assert "MINIMUM_MACOS = bundled_minimum()" in spec


NOTARY_ACCEPTED = """Conducting pre-submission checks for PhotoEnhancer-0.1.0-macos-arm64.dmg and initiating connection to \
the Apple notary service...
{"id":"2efe2717-52ef-43a5-96dc-0797e4ca1041","message":"Processing complete","status":"Accepted"}
"""
NOTARY_INVALID = '{"status":"Invalid","message":"Processing complete","id":"8d1e3b5a-7c7f-4f3e-9a4b-1f2e3d4c5b6a"}\n'
NOTARY_IN_PROGRESS = ('Current status: In Progress....\n'
                      '{"id":"5c9e0c6d-3d0b-4b5e-8a71-0a1b2c3d4e5f","status":"In Progress",'
                      '"message":"Timeout of 7200 seconds reached while waiting"}')


def test_the_notarization_result_is_read_from_notarytools_json():
    accepted = build.parse_notary_result(NOTARY_ACCEPTED)
    assert (accepted.id, accepted.status, accepted.accepted) == ("2efe2717-52ef-43a5-96dc-0797e4ca1041", "Accepted", True)
    invalid = build.parse_notary_result(NOTARY_INVALID)
    assert (invalid.status, invalid.accepted) == ("Invalid", False)
    waiting = build.parse_notary_result(NOTARY_IN_PROGRESS)
    assert (waiting.status, waiting.accepted) == ("In Progress", False)
    assert waiting.id == "5c9e0c6d-3d0b-4b5e-8a71-0a1b2c3d4e5f"
    with pytest.raises(build.BuildError, match="no JSON result"):
        build.parse_notary_result("Error: HTTP status code: 401. Unable to authenticate.")


class _Done:
    def __init__(self, stdout: str, returncode: int = 0):
        self.stdout, self.stderr, self.returncode = stdout, "", returncode


@pytest.mark.parametrize("output", [NOTARY_INVALID, NOTARY_IN_PROGRESS])
def test_a_rejected_notarization_prints_the_log_and_fails(monkeypatch, tmp_path, capsys, output):
    monkeypatch.setenv("MACOS_NOTARY_PROFILE", "ci")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        if cmd[2] == "submit":
            return _Done(output)  # notarytool exits 0 on Invalid too
        return _Done('{"issues":[{"path":"Photo Enhancer.app/Contents/Frameworks/libtorch_cpu.dylib",'
                     '"message":"The signature does not include a secure timestamp."}]}')

    monkeypatch.setattr(build, "run", lambda cmd, **k: calls.append(cmd))
    with pytest.raises(build.BuildError, match="not Accepted"):
        build.macos_notarize(tmp_path / "app.dmg", runner=fake_run)
    assert calls[0][:3] == ["xcrun", "notarytool", "submit"] and "--output-format" in calls[0]
    assert calls[1][:3] == ["xcrun", "notarytool", "log"]
    assert not any("stapler" in map(str, cmd) for cmd in calls)
    assert "does not include a secure timestamp" in capsys.readouterr().out


def test_an_accepted_notarization_is_stapled(monkeypatch, tmp_path):
    monkeypatch.setenv("MACOS_NOTARY_PROFILE", "ci")
    ran = []
    monkeypatch.setattr(build, "run", lambda cmd, **k: ran.append([str(c) for c in cmd]))
    build.macos_notarize(tmp_path / "app.dmg", runner=lambda cmd, **k: _Done(NOTARY_ACCEPTED))
    assert [cmd[:3] for cmd in ran] == [["xcrun", "stapler", "staple"], ["xcrun", "stapler", "validate"]]


MACHO = b"\xcf\xfa\xed\xfe" + b"\0" * 28


def _fake_app(root: Path) -> Path:
    app = root / "Photo Enhancer.app"
    contents = app / "Contents"
    for path in ("MacOS/enhancer-gui", "MacOS/enhancer", "Frameworks/libpython3.11.dylib",
                 "Frameworks/torch/lib/libtorch_cpu.dylib", "Frameworks/numpy/_core/_multiarray_umath.cpython-311-darwin.so",
                 "Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/QtCore",
                 "Frameworks/PySide6/Qt/lib/QtGui.framework/Versions/A/QtGui"):
        (contents / path).parent.mkdir(parents=True, exist_ok=True)
        (contents / path).write_bytes(MACHO)
    for name in ("QtCore", "QtGui"):
        framework = contents / "Frameworks/PySide6/Qt/lib" / f"{name}.framework"
        (framework / "Versions/A/Resources").mkdir(parents=True)
        (framework / "Versions/A/Resources/Info.plist").write_text("<plist/>")
        (framework / "Versions/Current").symlink_to("A")
        (framework / name).symlink_to(f"Versions/Current/{name}")
    (contents / "Resources").mkdir()
    (contents / "Resources/base_library.zip").write_bytes(b"PK")
    (contents / "Info.plist").write_text("<plist/>")
    return app


def test_macos_signing_goes_inside_out_with_entitlements_only_on_the_executables(tmp_path):
    app = _fake_app(tmp_path)
    plan = build.macos_signing_plan(app)
    rel = [([str(p.relative_to(app.parent)) for p in paths], entitled) for paths, entitled in plan]
    libraries, entitled = rel[0]
    assert not entitled
    assert sorted(libraries) == sorted(f"Photo Enhancer.app/Contents/Frameworks/{p}" for p in (
        "libpython3.11.dylib", "torch/lib/libtorch_cpu.dylib", "numpy/_core/_multiarray_umath.cpython-311-darwin.so"))
    frameworks = [paths for paths, entitled in rel[1:3]]
    assert sorted(frameworks) == [[f"Photo Enhancer.app/Contents/Frameworks/PySide6/Qt/lib/{n}.framework/Versions/A"]
                                  for n in ("QtCore", "QtGui")]
    assert not any(entitled for _paths, entitled in rel[1:3])
    assert rel[3] == (["Photo Enhancer.app/Contents/MacOS/enhancer", "Photo Enhancer.app/Contents/MacOS/enhancer-gui"],
                      True)
    assert rel[4] == (["Photo Enhancer.app"], True)
    assert len(rel) == 5


def test_signing_sends_entitlements_only_with_the_executables(tmp_path, monkeypatch):
    app = _fake_app(tmp_path)
    ran = []
    monkeypatch.setenv("MACOS_SIGN_IDENTITY", "Developer ID Application: Test (TEAM)")
    monkeypatch.setattr(build, "run", lambda cmd, **k: ran.append([str(c) for c in cmd]))
    assert build.macos_sign(app)
    signs = [cmd for cmd in ran if "--sign" in cmd]
    with_entitlements = [cmd for cmd in signs if "--entitlements" in cmd]
    assert len(with_entitlements) == 2 and all("--deep" not in cmd for cmd in signs)
    assert with_entitlements[-1][-1] == str(app)
    assert all(not cmd[-1].endswith((".dylib", ".so", "/A")) for cmd in with_entitlements)
    assert ran[-1][:2] == ["codesign", "--verify"]


def test_hdiutil_is_retried_until_it_succeeds_and_then_gives_up(monkeypatch):
    failures = iter([True, True, False])
    slept = []

    def flaky(cmd):
        if next(failures):
            raise build.BuildError("hdiutil failed with exit code 16")

    assert build.run_with_retries(["hdiutil", "create"], attempts=5, delay_s=1, runner=flaky, sleep=slept.append) == 3
    assert slept == [1, 2]

    def always(cmd):
        raise build.BuildError("hdiutil failed with exit code 16")

    with pytest.raises(build.BuildError, match=r"\(3 attempts\)"):
        build.run_with_retries(["hdiutil"], attempts=3, delay_s=0, runner=always, sleep=lambda s: None)
    source = (ROOT / "installer" / "build.py").read_text(encoding="utf-8")
    assert 'run_with_retries(["hdiutil", "create"' in source


@pytest.mark.parametrize("version, numeric", [("0.1.0", "0.1.0.0"), ("1.2.0rc1", "1.2.0.0"), ("2.0.dev3", "2.0.0.0"),
                                              ("1.4.2.post1", "1.4.2.0"), ("3", "3.0.0.0"), ("1.2.3.4.5", "1.2.3.4")])
def test_windows_gets_a_numeric_four_part_version(version, numeric):
    assert build.numeric_version(version) == numeric


def test_the_inno_script_uses_the_numeric_version_and_registers_open_with():
    from enhancer.imageio import IMAGE_EXTENSIONS

    iss = (ROOT / "installer" / "windows" / "enhancer.iss").read_text(encoding="utf-8")
    assert "VersionInfoVersion={#NumericVersion}" in iss
    assert "ChangesAssociations=yes" in iss
    # JPEG XL comes with the opt-in jxl extra (GPL), which the installers leave out: the installed app cannot open it.
    assert ".jxl" not in iss
    for ext in sorted(IMAGE_EXTENSIONS - {".jxl"}):
        assert f'Subkey: "Software\\Classes\\{ext}\\OpenWithProgids"; ValueType: string; ValueName: "{{#ProgId}}"' in iss
        assert f'SupportedTypes"; ValueType: string; ValueName: "{ext}"' in iss
    assert 'shell\\open\\command"; ValueType: string; ValueName: ""; ValueData: """{app}\\{#AppExe}"" ""%1"""' in iss


def test_windows_signing_through_a_configured_command(monkeypatch, tmp_path):
    files = [tmp_path / "enhancer gui.exe", tmp_path / "enhancer.exe"]
    template = r'signtool sign /fd SHA256 /dlib "C:\ts\Azure.CodeSigning.Dlib.dll" /dmdf C:\ts\metadata.json {files}'
    command = build.expand_sign_command(template, files, windows=True)
    assert command.endswith(f'/dmdf C:\\ts\\metadata.json "{files[0]}" "{files[1]}"')
    assert build.expand_sign_command("sign-tool --profile x", files[:1], windows=False) == \
        f"sign-tool --profile x '{files[0]}'"
    ran = []
    monkeypatch.setenv("ENHANCER_SIGN_COMMAND", "my-signer")
    monkeypatch.setenv("WINDOWS_CERT_FILE", str(tmp_path / "unused.pfx"))
    monkeypatch.setattr(build.subprocess, "run", lambda cmd, shell=False: ran.append((cmd, shell)) or _Done(""))
    build.windows_sign(files[1:])
    assert ran == [(f"my-signer {build._quote_for_shell(str(files[1]), sys.platform == 'win32')}", True)]
    monkeypatch.setattr(build.subprocess, "run", lambda cmd, shell=False: _Done("", returncode=3))
    with pytest.raises(build.BuildError, match="ENHANCER_SIGN_COMMAND failed with exit code 3"):
        build.windows_sign(files[1:])


def test_the_default_build_refuses_a_cuda_torch():
    build.check_variant("cpu", "2.13.0+cpu", None)
    build.check_variant("nvidia", "2.13.0+cu128", "12.8")
    with pytest.raises(build.BuildError, match="CUDA 12.8 build"):
        build.check_variant("cpu", "2.13.0", "12.8")
    with pytest.raises(build.BuildError, match="is a CPU build"):
        build.check_variant("nvidia", "2.13.0+cpu", None)
    assert build.variant_suffix("cpu") == "" and build.variant_suffix("nvidia") == "-nvidia"


def test_check_bundle_reads_ldd_and_names_the_packages():
    output = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibQt6XcbQpa.so.6 => /b/_internal/PySide6/Qt/lib/libQt6XcbQpa.so.6\n"
              "\tlibxcb-cursor.so.0 => not found\n\tlibxcb-icccm.so.4 => not found\n")
    assert check_bundle.unresolved_libraries(output) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert check_bundle.PACKAGE_OF["libxcb-cursor.so.0"] == "libxcb-cursor0"
    assert "libxcb-cursor0" in check_bundle.APT_PACKAGES and "xvfb" in check_bundle.APT_PACKAGES


def test_check_bundle_without_xvfb_says_what_to_install(monkeypatch):
    monkeypatch.setattr(check_bundle.shutil, "which", lambda name: None)
    with pytest.raises(check_bundle.CheckFailed, match="Xvfb is not installed.*apt-get install -y xvfb"):
        with check_bundle.Xvfb():
            pass


# --------------------------------------------------------------------- the NVIDIA hint of the CPU-only installer
from enhancer import devices  # noqa: E402


class _Smi:
    def __init__(self, stdout="", returncode=0, error=None):
        self.stdout, self.returncode, self.error, self.calls = stdout, returncode, error, []

    def __call__(self, cmd, **kwargs):
        self.calls.append(cmd)
        if self.error:
            raise self.error
        return _Done(self.stdout, self.returncode)


def test_nvidia_gpus_come_from_nvidia_smi_then_the_registry_or_the_pci_bus():
    smi = _Smi("NVIDIA GeForce RTX 4070\n")
    assert devices.nvidia_gpus(which=lambda n: r"C:\Windows\System32\nvidia-smi.exe", run=smi,
                               platform="win32") == ["NVIDIA GeForce RTX 4070"]
    assert smi.calls[0][1:] == ["--query-gpu=name", "--format=csv,noheader"]
    # no nvidia-smi (or it fails): Windows' display adapters
    adapters = lambda: ["Intel(R) UHD Graphics 770", "NVIDIA GeForce RTX 3060 Laptop GPU"]  # noqa: E731
    assert devices.nvidia_gpus(which=lambda n: None, platform="win32", adapters=adapters) == \
        ["NVIDIA GeForce RTX 3060 Laptop GPU"]
    assert devices.nvidia_gpus(which=lambda n: "nvidia-smi", run=_Smi(error=OSError("gone")), platform="win32",
                               adapters=adapters) == ["NVIDIA GeForce RTX 3060 Laptop GPU"]
    assert devices.nvidia_gpus(which=lambda n: None, platform="win32", adapters=lambda: ["AMD Radeon RX 7800"]) == []
    assert devices.nvidia_gpus(which=lambda n: None, platform="linux", pci=lambda: ["NVIDIA GPU (PCI 0000:01:00.0)"]) \
        == ["NVIDIA GPU (PCI 0000:01:00.0)"]
    assert devices.nvidia_gpus(which=lambda n: None, platform="darwin") == []


def test_the_pci_bus_shows_an_nvidia_gpu_without_its_driver(tmp_path):
    for name, vendor, klass in (("0000:00:02.0", "0x8086", "0x030000"), ("0000:01:00.0", "0x10de", "0x030000"),
                                ("0000:01:00.1", "0x10de", "0x040300")):  # the GPU's audio function is not a GPU
        (tmp_path / name).mkdir()
        (tmp_path / name / "vendor").write_text(vendor + "\n")
        (tmp_path / name / "class").write_text(klass + "\n")
    assert devices._linux_pci_nvidia(tmp_path) == ["NVIDIA GPU (PCI 0000:01:00.0)"]


def test_gpu_hint_says_when_an_nvidia_gpu_is_not_used_and_where_the_right_build_is():
    gpus = ["NVIDIA GeForce RTX 4070"]
    assert devices.gpu_hint([], cuda_built=False, cuda_usable=False, frozen=True) == ""
    assert devices.gpu_hint(gpus, cuda_built=True, cuda_usable=True, frozen=True) == ""
    installed = devices.gpu_hint(gpus, cuda_built=False, cuda_usable=False, frozen=True)
    assert installed.startswith("NVIDIA GeForce RTX 4070 found, but this build runs on the CPU only")
    assert "NVIDIA build of Photo Enhancer" in installed and "-nvidia-setup.exe" in installed
    from_pip = devices.gpu_hint(gpus, cuda_built=False, cuda_usable=False, frozen=False)
    assert "pip install torch --index-url https://download.pytorch.org/whl/cu" in from_pip
    driver = devices.gpu_hint(gpus, cuda_built=True, cuda_usable=False, frozen=True)
    assert "CUDA cannot use it" in driver and "driver" in driver


def test_found_devices_lists_an_unusable_nvidia_gpu():
    found = devices.found_devices(["NVIDIA GeForce RTX 4070"])
    assert found[0] == "CPU"
    if not devices.torch.cuda.is_available():
        assert "NVIDIA GeForce RTX 4070 (not usable by this build)" in found


def test_the_status_bar_and_the_about_box_tell_the_user(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import ui.main_window as main_window
    from ui.settings import Settings

    monkeypatch.setattr(devices, "nvidia_gpus", lambda *a, **k: ["NVIDIA GeForce RTX 4070"])
    monkeypatch.setattr(devices, "gpu_hint", lambda gpus=None, **k: devices.__dict__["NVIDIA_BUILD_HINT"] and
                        "NVIDIA GeForce RTX 4070 found, but this build runs on the CPU only. To use it, install the "
                        "NVIDIA build of Photo Enhancer.")
    win = main_window.MainWindow(Settings.load())
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: "…" not in win.device_label.text(), timeout=10000)
    assert win.device_label.text().startswith("Device: CPU")
    assert win.device_label.text().endswith("· NVIDIA GPU not used")
    assert "Found: CPU, NVIDIA GeForce RTX 4070 (not usable by this build)" in win.device_label.toolTip()
    assert "install the NVIDIA build" in win.device_label.toolTip()
    assert "install the NVIDIA build" in win.statusBar().currentMessage()
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    win.show_about()
    assert "Devices found: CPU, NVIDIA GeForce RTX 4070 (not usable by this build)" in shown[0]
    assert "Uses: CPU" in shown[0] and "install the NVIDIA build of Photo Enhancer" in shown[0]
    win.close()
