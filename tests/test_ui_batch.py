"""The batch dialog over a real folder tree, with one corrupt photo, on the real engine (offscreen Qt)."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from enhancer import store  # noqa: E402
from conftest import MOBILESR_WEIGHTS, need_shared  # noqa: E402
from test_ui_main import write_photo  # noqa: E402
from ui.batch_dialog import BatchDialog  # noqa: E402
from ui.settings import Settings  # noqa: E402


def test_batch_processes_the_rest_and_lists_the_corrupt_file(qtbot, tmp_path):
    model_id = store.import_model(need_shared(MOBILESR_WEIGHTS)).id
    photos = tmp_path / "photos"
    (photos / "trip" / "day2").mkdir(parents=True)
    write_photo(photos / "a.png", 24, 16)
    write_photo(photos / "trip" / "b.png", 16, 24)
    write_photo(photos / "trip" / "day2" / "c.png", 20, 20)
    (photos / "trip" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    out = tmp_path / "out"

    dialog = BatchDialog(Settings.load(), folder=str(photos), model_id=model_id)
    qtbot.addWidget(dialog)
    dialog.recursive_check.setChecked(True)
    dialog.output.folder_radio.setChecked(True)
    dialog.output.folder_edit.setText(str(out))
    dialog.output.suffix_edit.setText("_x4")
    assert dialog.chosen_models() == [model_id]
    assert not dialog.open_button.isEnabled()
    with qtbot.waitSignal(dialog.batchEnded, timeout=180000) as ended:
        dialog.start_button.click()
    assert ended.args == ["done"]

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a_x4.png", "trip/b_x4.png", "trip/day2/c_x4.png"]
    with Image.open(out / "trip" / "day2" / "c_x4.png") as image:
        assert image.size == (80, 80)
    assert dialog.failures.topLevelItemCount() == 1
    failure = dialog.failures.topLevelItem(0)
    assert failure.text(0).endswith("broken.jpg") and failure.text(1)
    assert dialog.overall_progress.value() == dialog.overall_progress.maximum() == 4
    assert dialog.summary_label.text() == "Done: 3 enhanced, 1 failed"
    assert dialog.open_button.isEnabled() and dialog.output_folder == out
    print(f"\nbatch: {written}; failure: {failure.text(1)}")

    # Again with "skip existing": nothing new is written, the three are reported as skipped.
    dialog.skip_check.setChecked(True)
    with qtbot.waitSignal(dialog.batchEnded, timeout=180000):
        dialog.start_button.click()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == written
    assert dialog.summary_label.text() == "Done: 0 enhanced, 3 skipped, 1 failed"


def test_batch_refuses_to_start_without_a_folder(qtbot, tmp_path):
    dialog = BatchDialog(Settings.load(), folder=str(tmp_path / "missing"))
    qtbot.addWidget(dialog)
    dialog.start_button.click()
    assert "is not a folder" in dialog.summary_label.text()
    assert not dialog.is_running()
