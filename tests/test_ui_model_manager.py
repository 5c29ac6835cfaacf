"""The model manager against the real catalog and a real HTTP server on 127.0.0.1 (offscreen Qt)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from conftest import MOBILESR_WEIGHTS, need_shared  # noqa: E402
from enhancer import download, store  # noqa: E402
from http_model_server import ModelServer  # noqa: E402
from ui.model_manager import ModelManagerDialog  # noqa: E402


def test_download_import_and_delete(qtbot, monkeypatch):
    weights = need_shared(MOBILESR_WEIGHTS)
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    assert dialog.state_of("mobilesr-x4") == "not installed"
    assert dialog.select("mobilesr-x4") and dialog.download_button.isEnabled()
    progress: list[tuple] = []
    with ModelServer({"mobilesr_x4.pth": weights}) as server:
        monkeypatch.setenv("ENHANCER_MODEL_MIRROR", server.base_url)
        with qtbot.waitSignal(dialog.downloadEnded, timeout=60000) as ended:
            dialog.download_selected()
            dialog._download.signals.progress.connect(lambda *a: progress.append(a))
    assert ended.args == ["ok"], dialog.last_message
    assert dialog.state_of("mobilesr-x4") == "installed"
    assert store.is_installed(store.get_entry("mobilesr-x4"))
    assert not dialog.download_button.isEnabled() and dialog.delete_button.isEnabled()

    with qtbot.waitSignal(dialog.importEnded, timeout=60000) as imported:
        dialog.import_file(str(weights))
    assert imported.args == ["ok"], dialog.last_message
    new_id = dialog.selected_id()
    assert new_id != "mobilesr-x4" and dialog.state_of(new_id) == "imported"

    dialog.select("mobilesr-x4")
    dialog.delete_selected(confirm=False)
    assert dialog.state_of("mobilesr-x4") == "not installed"
    assert not store.is_installed(store.get_entry("mobilesr-x4"))
    print(f"\nprogress reports seen by the dialog: {len(progress)}; imported as {new_id}")


def test_restormer_licence_must_be_accepted_before_downloading(qtbot, monkeypatch):
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    restormer = next(e for e in store.load_catalog() if e.requires_license_acceptance)
    dialog.select(restormer.id)
    dialog.auto_accept_license = False  # the user presses "Decline"
    dialog.download_selected()
    assert "licence was not accepted" in dialog.status.text()
    assert dialog._download is None and not store.license_accepted(restormer)
    assert "non-commercial" in download.license_text(restormer)


def test_importing_a_file_that_is_not_a_model_says_why(qtbot, tmp_path, monkeypatch):
    bogus = tmp_path / "notes.pth"
    bogus.write_bytes(b"just some text, not a checkpoint")
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    shown: list[str] = []
    monkeypatch.setattr("ui.model_manager.QMessageBox.warning", lambda parent, title, text: shown.append(text))
    with qtbot.waitSignal(dialog.importEnded, timeout=30000) as ended:
        dialog.import_file(str(bogus))
    assert ended.args == ["failed"]
    assert shown and "notes.pth" in shown[0] and "Traceback" not in shown[0]
