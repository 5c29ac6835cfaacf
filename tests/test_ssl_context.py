"""HTTPS downloads in the frozen app trust the CA certificates shipped in the bundle (certifi's cacert.pem), never
whatever the build machine's OpenSSL was configured to look at."""

from __future__ import annotations

import re
import ssl
import sys
from pathlib import Path

import pytest

certifi = pytest.importorskip("certifi")

from enhancer import download  # noqa: E402
from enhancer.errors import DownloadError  # noqa: E402

PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----\n", re.DOTALL)


def _certs(path: str | Path) -> list[str]:
    return PEM.findall(Path(path).read_text(encoding="ascii"))


def _subjects(context: ssl.SSLContext) -> set:
    return {cert["subject"] for cert in context.get_ca_certs()}


def _subjects_of(pems: list[str]) -> set:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata="".join(pems))
    return _subjects(context)


@pytest.fixture
def frozen_bundle(tmp_path, monkeypatch):
    """A PyInstaller-like app folder: sys.frozen set, sys._MEIPASS pointing at it, certifi/cacert.pem inside.

    The bundle's cacert.pem holds three of certifi's certificates, so that a context built from anything else (the
    venv's certifi, the system store, SSL_CERT_FILE) shows as a different set of CA certificates.
    """
    bundle = tmp_path / "_internal"
    (bundle / "certifi").mkdir(parents=True)
    chosen = _certs(certifi.where())[:3]
    (bundle / "certifi" / "cacert.pem").write_text("".join(chosen), encoding="ascii")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    # what a build machine could leak in: OpenSSL's environment pointing at its own certificates
    others = tmp_path / "build-machine-certs.pem"
    others.write_text("".join(_certs(certifi.where())[3:10]), encoding="ascii")
    monkeypatch.setenv("SSL_CERT_FILE", str(others))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "build-machine-certs"))
    return bundle, chosen


def test_the_frozen_app_loads_the_ca_certificates_from_its_bundle(frozen_bundle):
    bundle, chosen = frozen_bundle
    assert download.ca_bundle_path() == str(bundle / "certifi" / "cacert.pem")
    context = download._ssl_context()  # what _fetch uses for every https:// URL
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 3
    assert _subjects(context) == _subjects_of(chosen)


def test_the_frozen_app_never_falls_back_to_the_build_machines_paths(frozen_bundle, monkeypatch):
    """Not OpenSSL's compiled-in defaults (ssl.get_default_verify_paths() of the build machine), even when certifi
    itself cannot be imported in the bundle."""
    _bundle, chosen = frozen_bundle
    monkeypatch.setitem(sys.modules, "certifi", None)  # import certifi -> ImportError
    loaded = []
    real_default_certs = ssl.SSLContext.load_default_certs
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs",
                        lambda self, *a, **k: loaded.append(a) or real_default_certs(self, *a, **k))
    monkeypatch.setattr(ssl.SSLContext, "set_default_verify_paths",
                        lambda self: loaded.append("default paths"))
    context = download._ssl_context()
    assert loaded == []
    assert _subjects(context) == _subjects_of(chosen)


def test_outside_a_bundle_certifi_is_used(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert download.ca_bundle_path() == certifi.where()
    assert len(download._ssl_context().get_ca_certs()) == len(_certs(certifi.where()))


def test_a_missing_certifi_is_a_readable_error_not_a_silent_fallback(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setitem(sys.modules, "certifi", None)
    with pytest.raises(DownloadError, match="certifi package is missing"):
        download._ssl_context()

