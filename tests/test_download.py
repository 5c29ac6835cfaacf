"""Downloads against a real HTTP server on 127.0.0.1: verified installs, resume, and clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import GOLDEN, MOBILESR_WEIGHTS, need_shared
from enhancer import Cancelled, DownloadError, catalog, download, load_model, paths, store
from http_model_server import Behaviour, ModelServer, free_port

MOBILESR_SHA256 = "5fb0e02130258bc5af2e470d3e62f95e162320d1260a09a12d61218af33215fe"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)  # keep the retry waits short; the logic is the same


@pytest.fixture
def weights() -> Path:
    return need_shared(MOBILESR_WEIGHTS)


def serve(monkeypatch, files: dict[str, Path], **behaviours: Behaviour) -> ModelServer:
    server = ModelServer(files, {name.replace("__", "."): b for name, b in behaviours.items()})
    monkeypatch.setenv("ENHANCER_MODEL_MIRROR", server.base_url)
    return server


def store_names() -> list[str]:
    return sorted(p.name for p in store.model_store().iterdir())


def use_test_catalog(tmp_path, monkeypatch, extra_toml: str) -> None:
    """The real catalog plus test entries (for files whose checksum is not published)."""
    app_models = tmp_path / "app-models"
    app_models.mkdir()
    shutil.copy(catalog.catalog_path(), app_models / "catalog.toml")
    with open(app_models / "catalog.toml", "a") as fh:
        fh.write(extra_toml)
    monkeypatch.setattr(paths, "app_models_dir", lambda: app_models)


def test_download_installs_the_verified_file_and_it_loads_by_id(monkeypatch, weights):
    calls = []
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
        path = download.download_model("mobilesr-x4", progress=lambda *a: calls.append(a))
    assert path == store.model_store() / "mobilesr_x4.pth"
    assert store.sha256_of(path) == MOBILESR_SHA256
    assert store_names() == ["mobilesr_x4.pth"]  # no .part or temporary file left
    assert server.requests == [("mobilesr_x4.pth", None, 200)]
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (2_205_835, 2_205_835) and calls[-1][2] > 0
    print(f"progress callbacks: {len(calls)}, last {calls[-1][0]}/{calls[-1][1]} bytes at {calls[-1][2] / 1e6:.1f} MB/s")
    model = load_model("mobilesr-x4", device="cpu")
    assert (model.arch, model.task, model.scale, model.name) == ("mobilesr", "sr", 4, "mobilesr-x4")
    assert store.default_model_id() == "own-real-x4"  # a download never replaces the bundled default
    # Already installed: nothing is fetched again.
    assert download.download_model("mobilesr-x4") == path


def test_a_dropped_connection_is_resumed_with_range(monkeypatch, weights):
    half = 2_205_835 // 2
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}, mobilesr_x4__pth=Behaviour(drop_after=half, drops=2)) as server:
        path = download.download_model("mobilesr-x4")
    assert store.sha256_of(path) == MOBILESR_SHA256
    print("requests:", server.requests)
    assert server.requests[0] == ("mobilesr_x4.pth", None, 200)
    assert server.requests[1] == ("mobilesr_x4.pth", f"bytes={half}-", 206)
    assert server.requests[2] == ("mobilesr_x4.pth", f"bytes={2 * half}-", 206)
    assert store_names() == ["mobilesr_x4.pth"]


@pytest.mark.parametrize("legacy_name", [False, True], ids=["prefixed", "legacy"])
def test_a_part_file_from_an_earlier_run_is_resumed(monkeypatch, weights, legacy_name):
    target = store.model_store() / "mobilesr_x4.pth"
    part = target.with_name(target.name + ".part") if legacy_name else download.part_path(target)
    assert legacy_name or part.name == ".enhancer-mobilesr_x4.pth.part"
    part.write_bytes(weights.read_bytes()[:1_000_000])
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
        path = download.download_model("mobilesr-x4")
    assert server.requests == [("mobilesr_x4.pth", "bytes=1000000-", 206)]
    assert store.sha256_of(path) == MOBILESR_SHA256


def test_a_stale_part_file_that_does_not_verify_is_downloaded_again(monkeypatch, weights):
    download.part_path(store.model_store() / "mobilesr_x4.pth").write_bytes(b"\0" * 1_000_000)  # another file's start
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
        path = download.download_model("mobilesr-x4")
    assert [r[1] for r in server.requests] == ["bytes=1000000-", None]
    assert store.sha256_of(path) == MOBILESR_SHA256


def test_a_server_without_range_support_restarts_from_zero(monkeypatch, weights):
    behaviour = Behaviour(drop_after=700_000, no_range=True)
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}, mobilesr_x4__pth=behaviour) as server:
        path = download.download_model("mobilesr-x4")
    assert [r[2] for r in server.requests] == [200, 200]
    assert store.sha256_of(path) == MOBILESR_SHA256


def test_wrong_bytes_are_refused_and_nothing_is_installed(monkeypatch, weights):
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}, mobilesr_x4__pth=Behaviour(corrupt=True)):
        with pytest.raises(DownloadError, match="wrong checksum") as error:
            download.download_model("mobilesr-x4")
    print(error.value)
    assert MOBILESR_SHA256 in str(error.value) and "Nothing was installed" in str(error.value)
    assert store_names() == []
    assert store.installed_path(store.get_entry("mobilesr-x4")) is None


def test_a_file_of_the_wrong_size_is_refused_before_downloading(monkeypatch):
    golden = need_shared(GOLDEN / "mobilesr_x4.pth")  # a real MobileSR file, but not the released one
    with serve(monkeypatch, {"mobilesr_x4.pth": golden}):
        with pytest.raises(DownloadError, match="offers 109374 bytes but the model is 2205835 bytes"):
            download.download_model("mobilesr-x4")
    assert store_names() == []


def test_404_is_a_clear_error(monkeypatch, weights):
    with serve(monkeypatch, {"something_else.pth": weights}):
        with pytest.raises(DownloadError, match=r"mobilesr_x4\.pth: not found on the server \(HTTP 404\)") as error:
            download.download_model("mobilesr-x4")
    print(error.value)
    assert store_names() == []


def test_a_refused_connection_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ENHANCER_MODEL_MIRROR", f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(DownloadError, match="connection refused") as error:
        download.download_model("mobilesr-x4")
    print(error.value)
    assert store_names() == []


def test_a_server_that_keeps_failing_gives_up_after_bounded_retries(monkeypatch, weights):
    behaviour = Behaviour(drop_after=0, drops=100)  # headers, then nothing, every time
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}, mobilesr_x4__pth=behaviour) as server:
        with pytest.raises(DownloadError, match=r"failed after 4 attempts"):
            download.download_model("mobilesr-x4")
    assert len(server.requests) == download.MAX_FAILURES_IN_A_ROW
    assert store.installed_path(store.get_entry("mobilesr-x4")) is None


def test_cancel_stops_and_leaves_nothing(monkeypatch, weights):
    monkeypatch.setattr(download, "CHUNK_BYTES", 64 * 1024)
    seen = []
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}):
        with pytest.raises(Cancelled):
            download.download_model("mobilesr-x4", progress=lambda *a: seen.append(a), cancel=lambda: bool(seen))
    assert store_names() == []


def test_mirror_keeps_the_file_name(monkeypatch):
    entry = store.get_entry("swinir-real-l-x4-gan")
    monkeypatch.delenv("ENHANCER_MODEL_MIRROR", raising=False)
    assert download.source_url(entry) == entry.url
    monkeypatch.setenv("ENHANCER_MODEL_MIRROR", "http://127.0.0.1:9/mirror")
    assert download.source_url(entry) == "http://127.0.0.1:9/mirror/003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth"


def test_restormer_needs_its_licence_accepted_first(monkeypatch):
    golden = need_shared(GOLDEN / "restormer_withbias.pth")
    with serve(monkeypatch, {"motion_deblurring.pth": golden}) as server:
        with pytest.raises(DownloadError, match="licence must be accepted") as error:
            download.download_model("restormer-motion-deblur")
        assert "non-commercial" in str(error.value).lower()
        assert server.requests == []  # nothing is fetched before acceptance
        # Accepting records it; the download then goes on (and this small file is refused by its size).
        with pytest.raises(DownloadError, match="104700429 bytes"):
            download.download_model("restormer-motion-deblur", accept_license=True)
    entry = store.get_entry("restormer-motion-deblur")
    assert store.license_accepted(entry)
    index = json.loads((store.model_store() / store.STORE_INDEX).read_text())
    assert index["licenses_accepted"]["restormer-motion-deblur"]["license"] == entry.license
    assert store_names() == [store.STORE_INDEX]


def test_a_download_that_is_not_a_model_is_refused(tmp_path, monkeypatch):
    use_test_catalog(
        tmp_path, monkeypatch,
        '\n[[model]]\nid = "test-mobilesr-x2"\nname = "t"\ntask = "sr"\nscale = 2\narch = "mobilesr"\n'
        'url = "https://example.org/models/test_x2.pth"\n'
        "config = { n_feats = 16, n_heads = 4, ratios = [2, 2], upscaling_factor = 2 }\n",
    )
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>this is a login page, not weights</html>" * 50)
    with serve(monkeypatch, {"test_x2.pth": junk}):
        with pytest.raises(DownloadError, match="sent a web page, not a model file") as error:
            download.download_model("test-mobilesr-x2")
    print(error.value)
    junk.write_bytes(bytes(range(256)) * 40)  # bytes that are no model format at all
    with serve(monkeypatch, {"test_x2.pth": junk}):
        with pytest.raises(DownloadError, match="not a usable model") as error:
            download.download_model("test-mobilesr-x2")
    print(error.value)
    assert store_names() == []  # no file, and no checksum learnt from a bad file


def test_a_model_of_another_configuration_is_refused(tmp_path, monkeypatch):
    golden = need_shared(GOLDEN / "mobilesr_x4.pth")  # MobileSR x4 with n_feats 16: not the entry's n_feats 40
    use_test_catalog(
        tmp_path, monkeypatch,
        '\n[[model]]\nid = "test-mobilesr-wide"\nname = "t"\ntask = "sr"\nscale = 4\narch = "mobilesr"\n'
        'url = "https://example.org/wide_x4.pth"\n'
        "config = { n_feats = 40, n_heads = 8, ratios = [4, 2, 2, 2, 4], upscaling_factor = 4 }\n",
    )
    with serve(monkeypatch, {"wide_x4.pth": golden}):
        with pytest.raises(DownloadError, match="n_feats is 16, expected 40") as error:
            download.download_model("test-mobilesr-wide")
    print(error.value)
    assert store_names() == []


def test_trust_on_first_use_records_the_checksum_and_enforces_it(tmp_path, monkeypatch):
    golden = need_shared(GOLDEN / "mobilesr_x2.pth")
    use_test_catalog(
        tmp_path, monkeypatch,
        '\n[[model]]\nid = "test-mobilesr-x2"\nname = "t"\ntask = "sr"\nscale = 2\narch = "mobilesr"\n'
        'url = "https://example.org/models/test_x2.pth"\n'
        "config = { n_feats = 16, n_heads = 4, ratios = [2, 2], upscaling_factor = 2 }\n",
    )
    notices = []
    with serve(monkeypatch, {"test_x2.pth": golden}):
        path = download.download_model("test-mobilesr-x2", on_notice=notices.append)
    digest = store.sha256_of(golden)
    assert store.sha256_of(path) == digest
    assert len(notices) == 1 and digest in notices[0] and "trust on first use" in notices[0]
    print(notices[0])
    entry = store.get_entry("test-mobilesr-x2")
    assert store.recorded_checksum(entry)["sha256"] == digest
    assert store.expected_checksum(entry) == (digest, golden.stat().st_size, True)

    store.delete_model("test-mobilesr-x2")
    with serve(monkeypatch, {"test_x2.pth": golden}, test_x2__pth=Behaviour(corrupt=True)):
        with pytest.raises(DownloadError, match="recorded on its first download"):
            download.download_model("test-mobilesr-x2")
    assert store.installed_path(entry) is None
    with serve(monkeypatch, {"test_x2.pth": golden}):
        notices.clear()
        download.download_model("test-mobilesr-x2", on_notice=notices.append)
    assert notices == []  # verified against the recorded checksum, nothing new to trust


# ------------------------------------------------------------------------------------------- hostile servers, races


def test_two_downloads_of_the_same_model_at_once_give_one_good_file(monkeypatch, weights):
    import threading
    import time

    monkeypatch.setattr(download, "CHUNK_BYTES", 64 * 1024)
    results: dict[str, object] = {}
    second_started = threading.Event()

    def second() -> None:
        second_started.set()
        try:
            results["second"] = download.download_model("mobilesr-x4")
        except Exception as exc:  # noqa: BLE001 - reported by the asserts below
            results["second"] = exc

    def slow_progress(done, total, rate) -> None:
        if not second_started.is_set():  # the second download starts while the first is mid-way
            threading.Thread(target=second, daemon=True).start()
            second_started.wait()
            time.sleep(0.5)

    with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
        first = download.download_model("mobilesr-x4", progress=slow_progress)
        deadline = time.monotonic() + 60
        while "second" not in results and time.monotonic() < deadline:
            time.sleep(0.05)
    assert results["second"] == first, results
    assert store.sha256_of(first) == MOBILESR_SHA256
    assert server.requests == [("mobilesr_x4.pth", None, 200)]  # the second waited and used the first one's file
    assert store_names() == ["mobilesr_x4.pth"]  # no .part, no lock file left


def test_a_second_download_that_waits_too_long_says_already_downloading(monkeypatch, weights):
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
        with download.DownloadLock("mobilesr-x4", store.model_store()):  # another process's download, as it runs
            with pytest.raises(DownloadError, match="^mobilesr-x4: already downloading mobilesr-x4"):
                download.download_model("mobilesr-x4", lock_wait_s=0.3)
        assert server.requests == []
        assert store.sha256_of(download.download_model("mobilesr-x4")) == MOBILESR_SHA256  # free again afterwards


SIZED_ENTRY = (
    '\n[[model]]\nid = "test-endless"\nname = "t"\ntask = "sr"\nscale = 2\narch = "mobilesr"\n'
    'url = "https://example.org/models/endless.pth"\n{size}'
    "config = { n_feats = 16, n_heads = 4, ratios = [2, 2], upscaling_factor = 2 }\n"
)


@pytest.mark.parametrize("known_size", [True, False], ids=["catalog-size", "unknown-size"])
def test_an_endless_body_without_content_length_is_cut_at_the_cap(tmp_path, monkeypatch, known_size):
    cap = 300_000
    use_test_catalog(tmp_path, monkeypatch, SIZED_ENTRY.replace("{size}", f"size = {cap}\n" if known_size else ""))
    if not known_size:
        monkeypatch.setattr(download, "MAX_UNKNOWN_SIZE", cap)
    body = tmp_path / "endless.pth"
    body.write_bytes(b"")
    with serve(monkeypatch, {"endless.pth": body}, endless__pth=Behaviour(endless=True)) as server:
        with pytest.raises(DownloadError, match=f"^test-endless: .*sent more than {cap:,} bytes") as error:
            download.download_model("test-endless")
    print(error.value, f"(the server got to write {server.sent['endless.pth']:,} bytes)")
    assert "Nothing was installed" in str(error.value)
    assert store_names() == []  # nothing kept, no checksum learnt


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a certificate for the local https server")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def local_tls(tmp_path, monkeypatch):
    """An SSL context for a local https server, and the downloads trusting its certificate (instead of certifi's)."""
    import ssl

    cert, key = _self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setattr(download, "ca_bundle_path", lambda: str(cert))
    return context


def test_an_https_to_http_redirect_is_refused(monkeypatch, weights, local_tls):
    with ModelServer({"mobilesr_x4.pth": weights}) as plain:
        downgrade = Behaviour(redirect_to=plain.base_url + "mobilesr_x4.pth")
        with ModelServer({"mobilesr_x4.pth": weights}, {"mobilesr_x4.pth": downgrade}, tls=local_tls) as secure:
            monkeypatch.setenv("ENHANCER_MODEL_MIRROR", secure.base_url)
            with pytest.raises(DownloadError, match="^mobilesr-x4: .*refused a redirect .*from https to http") as error:
                download.download_model("mobilesr-x4")
    print(error.value)
    assert secure.requests == [("mobilesr_x4.pth", None, 302)]
    assert plain.requests == []  # the weaker URL was never asked
    assert store_names() == []


def test_https_works_and_an_http_to_https_redirect_is_followed(monkeypatch, weights, local_tls):
    with ModelServer({"mobilesr_x4.pth": weights}, tls=local_tls) as secure:
        upgrade = Behaviour(redirect_to=secure.base_url + "mobilesr_x4.pth")
        with ModelServer({"mobilesr_x4.pth": weights}, {"mobilesr_x4.pth": upgrade}) as plain:
            monkeypatch.setenv("ENHANCER_MODEL_MIRROR", plain.base_url)
            path = download.download_model("mobilesr-x4")
    assert store.sha256_of(path) == MOBILESR_SHA256
    assert plain.requests == [("mobilesr_x4.pth", None, 302)] and secure.requests == [("mobilesr_x4.pth", None, 200)]


def test_a_redirect_to_another_scheme_is_refused(monkeypatch, weights):
    with serve(monkeypatch, {"mobilesr_x4.pth": weights},
               mobilesr_x4__pth=Behaviour(redirect_to="ftp://127.0.0.1/mobilesr_x4.pth")):
        with pytest.raises(DownloadError, match="^mobilesr-x4: "):
            download.download_model("mobilesr-x4")
    assert store_names() == []


def test_an_unforeseen_failure_is_a_download_error_naming_the_model(monkeypatch, weights):
    def broken_install(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/somewhere/.enhancer-checking-x.pth")

    monkeypatch.setattr(download, "_check_model_and_install", broken_install)
    with serve(monkeypatch, {"mobilesr_x4.pth": weights}):
        with pytest.raises(DownloadError, match=r"^mobilesr-x4: the download failed \(/somewhere/") as error:
            download.download_model("mobilesr-x4")
    print(error.value)
    assert store_names() == []
    assert store.recorded_checksum(store.get_entry("mobilesr-x4")) is None  # nothing recorded as trusted


def test_the_download_lock_excludes_another_process(monkeypatch, weights, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, pathlib\n"
         "from enhancer import download, store\n"
         "with download.DownloadLock('mobilesr-x4', store.model_store()):\n"
         "    print('locked', flush=True)\n"
         "    while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.05)\n",
         str(release)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with serve(monkeypatch, {"mobilesr_x4.pth": weights}) as server:
            with pytest.raises(DownloadError, match="^mobilesr-x4: already downloading mobilesr-x4"):
                download.download_model("mobilesr-x4", lock_wait_s=0.5)
            assert server.requests == []
            release.touch()
            assert holder.wait(timeout=60) == 0
            path = download.download_model("mobilesr-x4", lock_wait_s=5)  # the other process is done: free
    finally:
        release.touch()
        holder.wait(timeout=60)
    assert store.sha256_of(path) == MOBILESR_SHA256
    assert store_names() == ["mobilesr_x4.pth"]
