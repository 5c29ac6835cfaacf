"""The batch dialog's output size (the same control as the main window, remembered in Settings) and its estimate for
the whole batch, computed in the dialog's pool (offscreen Qt, the real engine, the bundled tiny ESPCN x2)."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from enhancer.sizing import OutputSize  # noqa: E402
from test_ui_main import write_photo  # noqa: E402
from ui.batch_dialog import BatchDialog  # noqa: E402
from ui.settings import Settings  # noqa: E402

MODEL = "own-espcn-x2"


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, size in (("a.png", (40, 30)), ("b.png", (60, 20)), ("c.png", (30, 30))):
        write_photo(folder / name, *size)
    return folder


def test_the_batch_writes_the_chosen_size_and_remembers_it(qtbot, photos, tmp_path, isolated_data_dir):
    settings = Settings.load()
    dialog = BatchDialog(settings, folder=str(photos), model_id=MODEL)
    qtbot.addWidget(dialog)
    assert dialog.size_picker.output_size() == OutputSize()  # the model's own size by default
    dialog.size_picker.set_output_size(OutputSize("width", width=100))
    out = tmp_path / "out"
    dialog.output.folder_radio.setChecked(True)
    dialog.output.folder_edit.setText(str(out))
    with qtbot.waitSignal(dialog.batchEnded, timeout=120000) as ended:
        dialog.start_button.click()
    assert ended.args == ["done"]
    sizes = {}
    for path in sorted(out.iterdir()):
        with Image.open(path) as image:
            sizes[path.name.split("_")[0]] = image.size
    assert sizes == {"a": (100, 75), "b": (100, 33), "c": (100, 100)}
    assert settings.output_size == "w100"

    settings.save()
    again = BatchDialog(Settings.load(), folder=str(photos), model_id=MODEL)
    qtbot.addWidget(again)
    assert again.size_picker.output_size() == OutputSize("width", width=100)
    assert again.make_job().output_size == OutputSize("width", width=100)


def test_the_whole_batch_is_estimated_off_the_ui_thread(qtbot, photos):
    dialog = BatchDialog(Settings.load(), folder=str(photos), model_id=MODEL)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.estimateShown, timeout=120000) as shown:
        dialog.refresh_estimate()
        # It returned at once: the estimate is computed in the pool and arrives by a signal.
        assert dialog.estimate_label.text() == "Estimating…"
    text = shown.args[0]
    assert text.startswith(("about ", "under ")) and text.endswith("on the CPU"), text
    assert dialog.estimate_label.text() == text

    # A change of the options asks again (after a short pause); no models checked: no estimate.
    dialog.set_models([])
    with qtbot.waitSignal(dialog.estimateShown, timeout=120000) as shown:
        pass
    assert shown.args == [""]


def test_start_drops_an_estimate_in_flight_and_the_batch_still_runs(qtbot, photos):
    dialog = BatchDialog(Settings.load(), folder=str(photos), model_id=MODEL)
    qtbot.addWidget(dialog)
    dialog.refresh_estimate()
    with qtbot.waitSignal(dialog.batchEnded, timeout=120000) as ended:
        dialog.start_button.click()
    assert ended.args == ["done"]
    assert dialog.summary_label.text() == "Done: 3 enhanced, 0 failed"
    assert dialog.estimate_label.text() != "Estimating…"  # the dropped estimate does not linger
