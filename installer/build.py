"""Build the app for the platform this runs on, then its installer or archive.

    python installer/build.py [--icon-source PNG] [--clean] [--no-archive]

- Linux:   dist/photo-enhancer/ (onedir) and dist/photo-enhancer-VERSION-linux-ARCH.tar.gz
- Windows: dist/photo-enhancer/ and dist/PhotoEnhancer-VERSION-setup.exe (Inno Setup 6; per-user, no admin)
- macOS:   dist/Photo Enhancer.app and dist/PhotoEnhancer-VERSION-macos-ARCH.dmg, signed and notarized when configured

Signing is optional and configured through environment variables; see installer/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
ICONS = ROOT / "build" / "icons"
BUNDLE_DIR = "photo-enhancer"  # must match BUNDLE_DIR in enhancer.spec
APP_NAME = "Photo Enhancer"


class BuildError(Exception):
    pass


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("pyproject.toml: no `version = \"...\"` line")
    return match.group(1)


def machine() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)


def run(cmd: list[str], **kwargs) -> None:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{Path(str(cmd[0])).name} failed with exit code {result.returncode}")


def run_with_retries(cmd: list, attempts: int = 5, delay_s: float = 10.0, runner=None, sleep=time.sleep) -> int:
    """Run `cmd` until it succeeds, at most `attempts` times, waiting longer each time; return the attempts used.

    For `hdiutil create`, which fails now and then on CI Macs with "Resource busy" while Spotlight or XProtect still
    holds the freshly written files.
    """
    runner = runner or run
    for attempt in range(1, attempts + 1):
        try:
            runner(cmd)
            return attempt
        except BuildError as exc:
            if attempt == attempts:
                raise BuildError(f"{exc} ({attempts} attempts)") from None
            print(f"{exc}; retrying in {delay_s * attempt:.0f} s (attempt {attempt + 1} of {attempts})", flush=True)
            sleep(delay_s * attempt)
    raise AssertionError("unreachable")


def torch_build() -> tuple[str, str | None]:
    """(torch's version, its CUDA version or None for a CPU build) of the environment being bundled."""
    import torch

    return torch.__version__, torch.version.cuda


def check_variant(variant: str, torch_version: str, cuda: str | None) -> None:
    """The default build must hold the CPU torch (a CUDA build adds about 3 GB); `--variant nvidia` the CUDA one."""
    if variant == "cpu" and cuda:
        raise BuildError(f"torch {torch_version} is a CUDA {cuda} build: it would add about 3 GB to the bundle. Install "
                         "the CPU build (pip install --force-reinstall torch==X.Y.Z --index-url "
                         "https://download.pytorch.org/whl/cpu), or build the NVIDIA variant with --variant nvidia")
    if variant == "nvidia" and not cuda:
        raise BuildError(f"--variant nvidia, but torch {torch_version} is a CPU build: install a CUDA build first "
                         "(pip install --force-reinstall torch==X.Y.Z --index-url https://download.pytorch.org/whl/cu128)")


def variant_suffix(variant: str) -> str:
    return "" if variant == "cpu" else f"-{variant}"


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path`, symlinks not followed (what unpacking the archive takes)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            file = Path(dirpath) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def size_text(n: int) -> str:
    return f"{n / 1e6:.0f} MB ({n / 2**20:.0f} MiB)"


def make_icons(source: Path | None) -> None:
    sys.path.insert(0, str(INSTALLER))
    from make_icons import DEFAULT_SOURCE, IconError
    from make_icons import make_icons as write_icons

    try:
        write_icons(source or DEFAULT_SOURCE, ICONS)
    except IconError as exc:
        raise BuildError(str(exc)) from None


def pyinstaller(clean: bool) -> Path:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError(f"PyInstaller is not installed in {sys.executable}: pip install -e '.[installer]'") from None
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN"]
    cmd += ["--distpath", DIST, "--workpath", WORK, INSTALLER / "enhancer.spec"]
    if clean:
        cmd.insert(3, "--clean")
    run(cmd, cwd=ROOT, env={**os.environ, "ENHANCER_ICON_DIR": str(ICONS)})
    bundle = DIST / BUNDLE_DIR
    if not bundle.is_dir():
        raise BuildError(f"PyInstaller finished but {bundle} is missing")
    return bundle


# ---------------------------------------------------------------------------------------------------------- Linux
def linux_archive(bundle: Path, version: str, suffix: str = "") -> Path:
    # A desktop entry and its icon travel in the archive; install-desktop-entry.sh points them at the unpacked folder.
    shutil.copy2(ICONS / "enhancer-512.png", bundle / "photo-enhancer.png")
    for name in ("photo-enhancer.desktop", "install-desktop-entry.sh"):
        shutil.copy2(INSTALLER / "linux" / name, bundle / name)
    (bundle / "install-desktop-entry.sh").chmod(0o755)
    archive = DIST / f"{BUNDLE_DIR}-{version}-linux-{machine()}{suffix}.tar.gz"
    partial = archive.with_name(archive.name + ".part")
    print(f"+ tar czf {archive.name}", flush=True)
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=f"{BUNDLE_DIR}-{version}")
    os.replace(partial, archive)
    return archive


# -------------------------------------------------------------------------------------------------------- Windows
def find_iscc() -> Path:
    candidates = [os.environ.get("ISCC"), shutil.which("iscc"), shutil.which("ISCC"),
                  r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe", r"C:\Program Files\Inno Setup 6\ISCC.exe"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("Inno Setup 6 (ISCC.exe) not found: install it (choco install innosetup) or set ISCC to its path")


def numeric_version(version: str) -> str:
    """X.Y.Z.W for Windows' version resource (Inno's VersionInfoVersion), which refuses "1.2.0rc1" or "0.1.0.dev3".

    The numeric part of the version is kept and padded with zeros; pre-release and local labels are dropped (the
    full version stays in AppVersion, the file name and the Apps list).
    """
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    if not match:
        raise BuildError(f"version {version!r} does not start with a number")
    parts = [int(p) for p in match.group(1).split(".")][:4]
    if any(p > 65535 for p in parts):
        raise BuildError(f"version {version!r}: Windows version fields must be at most 65535")
    return ".".join(str(p) for p in parts + [0] * (4 - len(parts)))


def _quote_for_shell(path: str, windows: bool) -> str:
    if windows:
        return '"' + path.replace('"', '') + '"'  # cmd.exe: no quotes inside Windows paths anyway
    import shlex

    return shlex.quote(path)


def expand_sign_command(template: str, files: list[Path], windows: bool | None = None) -> str:
    r"""ENHANCER_SIGN_COMMAND with the files put in: at `{files}` (all at once), or appended when it has no `{files}`.

    e.g. Azure Trusted Signing (Artifact Signing):
      signtool sign /v /fd SHA256 /tr http://timestamp.acs.microsoft.com /td SHA256
        /dlib C:\tools\Azure.CodeSigning.Dlib.dll /dmdf C:\tools\metadata.json {files}
    or a hardware token: signtool sign /sha1 THUMBPRINT /fd SHA256 /tr http://timestamp.digicert.com /td SHA256
    """
    windows = (sys.platform == "win32") if windows is None else windows
    quoted = " ".join(_quote_for_shell(str(f), windows) for f in files)
    if "{files}" in template:
        return template.replace("{files}", quoted)
    return f"{template.rstrip()} {quoted}"


def windows_sign(files: list[Path]) -> None:
    """Authenticode-sign the files, or leave them unsigned when nothing is configured.

    ENHANCER_SIGN_COMMAND (a command line, see expand_sign_command) signs through whatever the certificate lives in:
    a cloud signing service (Azure Trusted Signing through signtool's /dlib), a hardware token or an HSM. Without it,
    WINDOWS_CERT_FILE (an exportable .pfx, which certificate authorities no longer issue for new certificates) is
    used with signtool.
    """
    template = os.environ.get("ENHANCER_SIGN_COMMAND", "").strip()
    if template:
        command = expand_sign_command(template, files)
        print(f"+ {command}", flush=True)
        done = subprocess.run(command, shell=True)
        if done.returncode != 0:
            raise BuildError(f"ENHANCER_SIGN_COMMAND failed with exit code {done.returncode}")
        return
    cert = os.environ.get("WINDOWS_CERT_FILE")
    if not cert:
        print("neither ENHANCER_SIGN_COMMAND nor WINDOWS_CERT_FILE is set: the Windows files are left unsigned")
        return
    signtool = os.environ.get("SIGNTOOL") or shutil.which("signtool")
    if not signtool:
        raise BuildError("WINDOWS_CERT_FILE is set but signtool.exe is not on PATH (it comes with the Windows SDK)")
    timestamp_url = os.environ.get("WINDOWS_TIMESTAMP_URL", "http://timestamp.digicert.com")
    cmd = [signtool, "sign", "/f", cert, "/fd", "sha256", "/td", "sha256", "/tr", timestamp_url]
    if os.environ.get("WINDOWS_CERT_PASSWORD"):
        cmd += ["/p", os.environ["WINDOWS_CERT_PASSWORD"]]
    run(cmd + [str(f) for f in files])


def windows_installer(bundle: Path, version: str, suffix: str = "") -> Path:
    windows_sign([bundle / "enhancer-gui.exe", bundle / "enhancer.exe"])
    run([find_iscc(), f"/DAppVersion={version}", f"/DNumericVersion={numeric_version(version)}",
         f"/DVariantSuffix={suffix}", f"/DSourceDir={bundle}", f"/DOutputDir={DIST}",
         f"/DIconFile={ICONS / 'enhancer.ico'}", INSTALLER / "windows" / "enhancer.iss"])
    setup = DIST / f"PhotoEnhancer-{version}{suffix}-setup.exe"
    if not setup.is_file():
        raise BuildError(f"Inno Setup finished but {setup} is missing")
    windows_sign([setup])
    return setup


# ---------------------------------------------------------------------------------------------------------- macOS
def macos_signing_plan(app: Path) -> list[tuple[list[Path], bool]]:
    """The codesign calls for `app`, inside out: [(paths, with_entitlements), ...].

    1. every loose Mach-O library (.dylib, .so, and Qt's and Python's other binaries) outside a .framework, no
       entitlements: entitlements belong to executables, and on a library they make the signature invalid for
       notarization's checks;
    2. every .framework (Qt's QtCore.framework, ...) as a bundle, at its real version folder (Versions/A, or what
       Versions/Current points to), innermost first, no entitlements: signing the Mach-O inside alone leaves the
       framework's Info.plist and resources unsealed;
    3. the executables in Contents/MacOS, with the entitlements;
    4. the .app, with the entitlements (the app's signature covers its main executable again).
    """
    frameworks = sorted({p for p in app.rglob("*.framework") if p.is_dir() and not p.is_symlink()},
                        key=lambda p: (-len(p.parts), str(p)))
    framework_versions = [_framework_version(f) for f in frameworks]
    macos = app / "Contents" / "MacOS"
    libraries, executables = [], []
    for path in sorted(app.rglob("*")):
        if path.is_symlink() or not path.is_file() or not _is_macho(path):
            continue
        if path.parent == macos:
            executables.append(path)
        elif not any(f in path.parents for f in frameworks):
            libraries.append(path)
    plan: list[tuple[list[Path], bool]] = [(chunk, False) for chunk in _chunks(libraries, 100)]
    plan += [([version], False) for version in framework_versions]
    if executables:
        plan.append((executables, True))
    plan.append(([app], True))
    return plan


def _framework_version(framework: Path) -> Path:
    current = framework / "Versions" / "Current"
    if current.exists():
        return framework / "Versions" / current.resolve().name
    versions = sorted(p for p in (framework / "Versions").glob("*") if p.is_dir() and not p.is_symlink())
    return versions[-1] if versions else framework  # a shallow framework (iOS style) is signed as it is


def macos_sign(app: Path) -> bool:
    """Sign inside out with the hardened runtime when MACOS_SIGN_IDENTITY is set (a "Developer ID Application" cert)."""
    identity = os.environ.get("MACOS_SIGN_IDENTITY")
    if not identity:
        print("MACOS_SIGN_IDENTITY not set: the app is left unsigned (Gatekeeper will refuse it on other Macs)")
        return False
    entitlements = INSTALLER / "macos" / "entitlements.plist"
    base = ["codesign", "--force", "--timestamp", "--options", "runtime", "--sign", identity]
    # --deep is not used: it signs nested code with the outer call's entitlements and misses frameworks' structure.
    for paths, with_entitlements in macos_signing_plan(app):
        run(base + (["--entitlements", entitlements] if with_entitlements else []) + paths)
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
    return True


def _is_macho(path: Path) -> bool:
    with path.open("rb") as f:
        magic = f.read(4)
    return magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xcf")


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def macos_dmg(app: Path, version: str, signed: bool, suffix: str = "") -> Path:
    dmg = DIST / f"PhotoEnhancer-{version}-macos-{machine()}{suffix}.dmg"
    dmg.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        stage = Path(staging)
        # ditto keeps the symlinks and extended attributes that the signature covers
        run(["ditto", app, stage / app.name])
        (stage / "Applications").symlink_to("/Applications")
        run_with_retries(["hdiutil", "create", "-volname", f"{APP_NAME} {version}", "-srcfolder", stage, "-ov",
                          "-format", "UDZO", "-fs", "HFS+", dmg])
    if signed:
        run(["codesign", "--force", "--timestamp", "--sign", os.environ["MACOS_SIGN_IDENTITY"], dmg])
        macos_notarize(dmg)
    return dmg


@dataclass(frozen=True)
class NotaryResult:
    id: str
    status: str  # "Accepted", "Invalid", "Rejected", "In Progress"
    message: str

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


def parse_notary_result(output: str) -> NotaryResult:
    """The result of `notarytool submit --wait --output-format json`: its last JSON object on stdout.

    notarytool exits 0 also when the submission is Invalid, and when --wait gives up while it is still In Progress, so
    the status is what counts. Anything that is not JSON with a status is an error (BuildError).
    """
    decoder = json.JSONDecoder()
    found = None
    for start in [i for i, c in enumerate(output) if c == "{"]:
        try:
            value, _end = decoder.raw_decode(output, start)
        except ValueError:
            continue
        if isinstance(value, dict) and "status" in value:
            found = value
    if found is None:
        tail = output.strip()[-500:] or "(nothing)"
        raise BuildError(f"notarytool printed no JSON result with a status: {tail}")
    return NotaryResult(str(found.get("id", "")), str(found["status"]), str(found.get("message", "")))


def notary_credentials() -> list[str] | None:
    profile = os.environ.get("MACOS_NOTARY_PROFILE")
    apple_id, team, password = (os.environ.get(k) for k in ("APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD"))
    if profile:
        return ["--keychain-profile", profile]
    if apple_id and team and password:
        return ["--apple-id", apple_id, "--team-id", team, "--password", password]
    return None


def macos_notarize(dmg: Path, runner=subprocess.run) -> None:
    """Notarize with notarytool, from a stored keychain profile or an Apple ID with an app-specific password; staple.

    On any status but Accepted, the notary log (which names each file that failed and why) is fetched and printed,
    and the build fails.
    """
    credentials = notary_credentials()
    if credentials is None:
        print("No notarization credentials (MACOS_NOTARY_PROFILE, or APPLE_ID + APPLE_TEAM_ID + APPLE_APP_PASSWORD): "
              "the disk image is signed but not notarized")
        return
    print(f"+ xcrun notarytool submit {dmg.name} --wait --output-format json", flush=True)
    done = runner(["xcrun", "notarytool", "submit", str(dmg), *credentials, "--wait", "--timeout", "2h",
                   "--output-format", "json"], capture_output=True, text=True)
    if done.stderr:
        print(done.stderr.strip(), file=sys.stderr, flush=True)
    result = parse_notary_result(done.stdout)
    print(f"notarization {result.id}: {result.status} ({result.message})", flush=True)
    if not result.accepted:
        if result.id:
            log = runner(["xcrun", "notarytool", "log", result.id, *credentials], capture_output=True, text=True)
            print(f"notarytool log {result.id}:\n{log.stdout.strip()}{log.stderr.strip()}", flush=True)
        raise BuildError(f"notarization of {dmg.name} ended {result.status!r}, not Accepted: see the log above")
    run(["xcrun", "stapler", "staple", dmg])
    run(["xcrun", "stapler", "validate", dmg])


def macos_app(version: str) -> Path:
    app = DIST / f"{APP_NAME}.app"
    if not app.is_dir():
        raise BuildError(f"PyInstaller finished but {app} is missing")
    return app


# ----------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the app bundle and the installer for this platform.")
    parser.add_argument("--icon-source", type=Path, help="the icon's source image (default: resources/icon.png)")
    parser.add_argument("--clean", action="store_true", help="drop PyInstaller's cache and build from scratch")
    parser.add_argument("--no-archive", action="store_true", help="stop after the onedir bundle")
    parser.add_argument("--variant", choices=("cpu", "nvidia"), default=os.environ.get("ENHANCER_VARIANT", "cpu"),
                        help="cpu (default): needs the CPU torch; nvidia: needs a CUDA torch, names end in -nvidia")
    args = parser.parse_args(argv)
    try:
        version = project_version()
        torch_version, cuda = torch_build()
        check_variant(args.variant, torch_version, cuda)
        print(f"torch {torch_version} ({f'CUDA {cuda}' if cuda else 'CPU'} build), variant {args.variant}", flush=True)
        suffix = variant_suffix(args.variant)
        make_icons(args.icon_source)
        bundle = pyinstaller(args.clean)
        print(f"bundle: {bundle}: {size_text(tree_bytes(bundle))} unpacked", flush=True)
        if args.no_archive:
            return 0
        if sys.platform.startswith("linux"):
            product = linux_archive(bundle, version, suffix)
        elif sys.platform == "win32":
            product = windows_installer(bundle, version, suffix)
        elif sys.platform == "darwin":
            app = macos_app(version)
            product = macos_dmg(app, version, signed=macos_sign(app), suffix=suffix)
        else:
            raise BuildError(f"no installer recipe for platform {sys.platform}")
        print(f"installer: {product}: {size_text(product.stat().st_size)}", flush=True)
    except BuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
