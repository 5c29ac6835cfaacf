"""The output size control of the main window: it changes the Job, the written file and Settings (offscreen Qt, the
real engine with the bundled models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from enhancer.sizing import OutputSize  # noqa: E402
from test_ui_main import write_photo  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402


@pytest.fixture
def window(qtbot):
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def open_photo(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.photoLoaded, timeout=20000):
        window.open_photo(path)


def enhance(qtbot, window: MainWindow) -> Path:
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance_action.trigger()
    assert ended.args == ["ok"], window.last_error
    assert window.last_output is not None and window.last_output.exists()
    return window.last_output


def test_a_width_below_the_model_changes_the_job_the_file_and_says_so(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "street.png", 64, 48)
    open_photo(qtbot, window, photo)
    assert window.select_model("own-espcn-x4")
    picker = window.size_picker
    assert picker.result_text() == "Result: 256×192 px"  # the model's own size by default
    assert not picker.width_spin.isVisible()

    picker.mode_combo.setCurrentIndex(picker.mode_combo.findData("width"))
    assert picker.width_spin.isVisible() and not picker.scale_spin.isVisible()
    picker.width_spin.setValue(100)
    assert window.settings.output_size == "w100"
    job = window.make_job([str(photo)], ["own-espcn-x4"])
    assert job.output_size == OutputSize("width", width=100)
    assert picker.result_text() == "Result: 100×75 px (below the model's 256×192: its result is made smaller)"

    output = enhance(qtbot, window)
    with Image.open(output) as result:
        assert result.size == (100, 75)
    assert window.compare.after_size().width() == 100  # the slider shows what was written


def test_a_factor_with_an_x4_model_gives_exactly_that_factor(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "x2.png", 50, 30)
    open_photo(qtbot, window, photo)
    assert window.select_model("own-espcn-x4")
    picker = window.size_picker
    picker.mode_combo.setCurrentIndex(picker.mode_combo.findData("scale"))
    picker.scale_spin.setValue(2.0)
    assert window.make_job([str(photo)], ["own-espcn-x4"]).output_size == OutputSize("scale", scale=2.0)
    assert "Result: 100×60 px (below the model's 200×120" in picker.result_text()
    with Image.open(enhance(qtbot, window)) as result:
        assert result.size == (100, 60)


def test_fit_and_height_and_above_the_model(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "wide.png", 80, 40)
    open_photo(qtbot, window, photo)
    assert window.select_model("own-espcn-x2")
    window.set_output_size("fit100x100")
    assert window.size_picker.fit_width_spin.isVisible() and window.size_picker.fit_height_spin.isVisible()
    assert window.size_picker.result_text().startswith("Result: 100×50 px (below the model's 160×80")
    window.set_output_size(OutputSize("height", height=120))
    assert window.size_picker.result_text() == (
        "Result: 240×120 px (above the model's 160×80: the extra size adds no detail)")
    with Image.open(enhance(qtbot, window)) as result:
        assert result.size == (240, 120)
    # Another model changes what the same choice means for the photo.
    assert window.select_model("own-espcn-x4")
    assert window.size_picker.result_text() == "Result: 240×120 px (below the model's 320×160: its result is made smaller)"


def test_the_choice_is_remembered_and_a_bad_saved_value_falls_back(qtbot, tmp_path):
    first = MainWindow(Settings.load())
    qtbot.addWidget(first)
    first.set_output_size("fit1920x1080")
    first.close()
    second = MainWindow(Settings.load())
    qtbot.addWidget(second)
    assert second.output_size() == OutputSize("fit", width=1920, height=1080)
    assert second.size_picker.mode_combo.currentData() == "fit"
    assert second.make_job(["x.png"], ["own-espcn-x2"]).output_size == OutputSize("fit", width=1920, height=1080)
    assert second.size_picker.result_text() == "Open a photo to see the size of the result"
    second.close()

    settings = Settings.load()
    settings.output_size = "x0"  # a hand-edited INI
    settings.save()
    third = MainWindow(Settings.load())
    qtbot.addWidget(third)
    assert third.output_size() == OutputSize()
    third.close()
