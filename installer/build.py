"""Build the app for the platform this runs on, then its installer or archive.

    python installer/build.py [--icon-source PNG] [--clean] [--no-archive]

- Linux:   dist/photo-enhancer/ (onedir) and dist/photo-enhancer-VERSION-linux-ARCH.tar.gz
- Windows: dist/photo-enhancer/ and dist/PhotoEnhancer-VERSION-setup.exe (Inno Setup 6; per-user, no admin)
- macOS:   dist/Photo Enhancer.app and dist/PhotoEnhancer-VERSION-macos-ARCH.dmg, signed and notarized when configured

Signing is optional and configured through environment variables; see installer/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
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
def linux_archive(bundle: Path, version: str) -> Path:
    # A desktop entry and its icon travel in the archive; install-desktop-entry.sh points them at the unpacked folder.
    shutil.copy2(ICONS / "enhancer-512.png", bundle / "photo-enhancer.png")
    for name in ("photo-enhancer.desktop", "install-desktop-entry.sh"):
        shutil.copy2(INSTALLER / "linux" / name, bundle / name)
    (bundle / "install-desktop-entry.sh").chmod(0o755)
    archive = DIST / f"{BUNDLE_DIR}-{version}-linux-{machine()}.tar.gz"
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


def windows_sign(files: list[Path]) -> None:
    """Authenticode-sign with signtool when WINDOWS_CERT_FILE (a .pfx) is set; otherwise leave the files unsigned."""
    cert = os.environ.get("WINDOWS_CERT_FILE")
    if not cert:
        return
    signtool = os.environ.get("SIGNTOOL") or shutil.which("signtool")
    if not signtool:
        raise BuildError("WINDOWS_CERT_FILE is set but signtool.exe is not on PATH (it comes with the Windows SDK)")
    timestamp_url = os.environ.get("WINDOWS_TIMESTAMP_URL", "http://timestamp.digicert.com")
    cmd = [signtool, "sign", "/f", cert, "/fd", "sha256", "/td", "sha256", "/tr", timestamp_url]
    if os.environ.get("WINDOWS_CERT_PASSWORD"):
        cmd += ["/p", os.environ["WINDOWS_CERT_PASSWORD"]]
    run(cmd + [str(f) for f in files])


def windows_installer(bundle: Path, version: str) -> Path:
    windows_sign([bundle / "enhancer-gui.exe", bundle / "enhancer.exe"])
    run([find_iscc(), f"/DAppVersion={version}", f"/DSourceDir={bundle}", f"/DOutputDir={DIST}",
         f"/DIconFile={ICONS / 'enhancer.ico'}", INSTALLER / "windows" / "enhancer.iss"])
    setup = DIST / f"PhotoEnhancer-{version}-setup.exe"
    if not setup.is_file():
        raise BuildError(f"Inno Setup finished but {setup} is missing")
    windows_sign([setup])
    return setup


# ---------------------------------------------------------------------------------------------------------- macOS
def macos_sign(app: Path) -> bool:
    """Sign inside out with the hardened runtime when MACOS_SIGN_IDENTITY is set (a "Developer ID Application" cert)."""
    identity = os.environ.get("MACOS_SIGN_IDENTITY")
    if not identity:
        print("MACOS_SIGN_IDENTITY not set: the app is left unsigned (Gatekeeper will refuse it on other Macs)")
        return False
    entitlements = INSTALLER / "macos" / "entitlements.plist"
    base = ["codesign", "--force", "--timestamp", "--options", "runtime", "--entitlements", entitlements,
            "--sign", identity]
    # Nested code first (libraries, then the executables), the bundle last: --deep is not reliable for this.
    nested = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink() and _is_macho(p)]
    libraries = [p for p in nested if p.parent.name != "MacOS"]
    executables = [p for p in nested if p.parent.name == "MacOS"]
    for chunk in _chunks(libraries, 100):
        run(base + chunk)
    run(base + executables)
    run(base + [app])
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
    return True


def _is_macho(path: Path) -> bool:
    with path.open("rb") as f:
        magic = f.read(4)
    return magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xcf")


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def macos_dmg(app: Path, version: str, signed: bool) -> Path:
    dmg = DIST / f"PhotoEnhancer-{version}-macos-{machine()}.dmg"
    dmg.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        stage = Path(staging)
        # ditto keeps the symlinks and extended attributes that the signature covers
        run(["ditto", app, stage / app.name])
        (stage / "Applications").symlink_to("/Applications")
        run(["hdiutil", "create", "-volname", f"{APP_NAME} {version}", "-srcfolder", stage, "-ov",
             "-format", "UDZO", "-fs", "HFS+", dmg])
    if signed:
        run(["codesign", "--force", "--timestamp", "--sign", os.environ["MACOS_SIGN_IDENTITY"], dmg])
        macos_notarize(dmg)
    return dmg


def macos_notarize(dmg: Path) -> None:
    """Notarize with notarytool, from a stored keychain profile or an Apple ID with an app-specific password."""
    profile = os.environ.get("MACOS_NOTARY_PROFILE")
    apple_id, team, password = (os.environ.get(k) for k in ("APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD"))
    if profile:
        credentials = ["--keychain-profile", profile]
    elif apple_id and team and password:
        credentials = ["--apple-id", apple_id, "--team-id", team, "--password", password]
    else:
        print("No notarization credentials (MACOS_NOTARY_PROFILE, or APPLE_ID + APPLE_TEAM_ID + APPLE_APP_PASSWORD): "
              "the disk image is signed but not notarized")
        return
    run(["xcrun", "notarytool", "submit", dmg, *credentials, "--wait"])
    run(["xcrun", "stapler", "staple", dmg])


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
    args = parser.parse_args(argv)
    try:
        version = project_version()
        make_icons(args.icon_source)
        bundle = pyinstaller(args.clean)
        print(f"bundle: {bundle}: {size_text(tree_bytes(bundle))} unpacked", flush=True)
        if args.no_archive:
            return 0
        if sys.platform.startswith("linux"):
            product = linux_archive(bundle, version)
        elif sys.platform == "win32":
            product = windows_installer(bundle, version)
        elif sys.platform == "darwin":
            app = macos_app(version)
            product = macos_dmg(app, version, signed=macos_sign(app))
        else:
            raise BuildError(f"no installer recipe for platform {sys.platform}")
        print(f"installer: {product}: {size_text(product.stat().st_size)}", flush=True)
    except BuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
