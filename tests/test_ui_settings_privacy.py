"""Privacy in the app: the Settings choice of what metadata the outputs keep reaches every Job the app makes, and the
files written through the main window and the batch dialog carry no GPS unless "Keep all" is chosen (offscreen Qt,
the real engine, the bundled tiny ESPCN x2, real JPEGs with GPS in tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from test_ui_main import open_photo  # noqa: E402
from ui.batch_dialog import BatchDialog  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402
from ui.settings_dialog import SettingsDialog  # noqa: E402

MODEL = "own-espcn-x2"
GPS_IFD, EXIF_IFD, MAKE = 0x8825, 0x8769, 0x010F


def jpeg_with_location(path: Path) -> Path:
    """A small JPEG with a camera make, an exposure time and GPS coordinates."""
    exif = Image.Exif()
    exif[MAKE] = "TestCam"
    exif.get_ifd(EXIF_IFD)[0x829A] = (1, 125)  # ExposureTime
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (59.0, 19.0, 45.0), "E", (18.0, 4.0, 7.0)
    ys, xs = np.mgrid[0:24, 0:32]
    pixels = np.stack([xs * 8, ys * 10, (xs + ys) * 4], -1).astype(np.uint8)
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def metadata(path: Path) -> tuple[dict, dict, object]:
    with Image.open(path) as image:
        exif = image.getexif()
        return dict(exif.get_ifd(GPS_IFD)), dict(exif.get_ifd(EXIF_IFD)), exif.get(MAKE)


def test_the_settings_dialog_offers_the_three_choices_and_they_are_remembered(qtbot, isolated_data_dir):
    settings = Settings.load()
    assert settings.strip_metadata == "location"  # the default removes the location
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    labels = [dialog.metadata_combo.itemText(i) for i in range(dialog.metadata_combo.count())]
    assert labels == ["Keep all", "Remove location (default)", "Remove all metadata"]
    assert dialog.metadata_combo.currentData() == "location"
    dialog.metadata_combo.setCurrentIndex(2)
    dialog.apply(settings)
    assert settings.strip_metadata == "all"
    settings.save()
    assert Settings.load().strip_metadata == "all"


def test_a_hand_edited_choice_falls_back_to_the_default(isolated_data_dir):
    settings = Settings.load()
    settings.strip_metadata = "everything"
    settings.save()
    assert Settings.load().strip_metadata == "location"


@pytest.mark.parametrize("choice", ["none", "location", "all"])
def test_every_job_the_app_makes_carries_the_choice(qtbot, tmp_path, choice):
    settings = Settings.load()
    settings.strip_metadata = choice
    window = MainWindow(settings)
    qtbot.addWidget(window)
    assert window.make_job([str(tmp_path / "a.jpg")], [MODEL]).strip_metadata == choice
    batch = BatchDialog(settings, folder=str(tmp_path), model_id=MODEL)
    qtbot.addWidget(batch)
    assert batch.make_job().strip_metadata == choice
    window.close()


def test_enhance_in_the_main_window_removes_the_location_by_default(qtbot, tmp_path):
    photo = jpeg_with_location(tmp_path / "trip.jpg")
    assert metadata(photo)[0]  # the original has GPS
    window = MainWindow(Settings.load())
    qtbot.addWidget(window)
    window.show()
    open_photo(qtbot, window, photo)
    assert window.select_model(MODEL)
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance()
    assert ended.args == ["ok"], window.last_error
    gps, camera, make = metadata(window.last_output)
    assert gps == {}  # no GPS block
    assert make == "TestCam" and camera.get(0x829A)  # the camera data stays
    assert metadata(photo)[0]  # the original is untouched
    window.close()


@pytest.mark.parametrize("choice", ["none", "location", "all"])
def test_a_batch_writes_what_the_choice_says(qtbot, tmp_path, choice):
    photos = tmp_path / "photos"
    photos.mkdir()
    jpeg_with_location(photos / "a.jpg")
    settings = Settings.load()
    settings.strip_metadata = choice
    dialog = BatchDialog(settings, folder=str(photos), model_id=MODEL)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.batchEnded, timeout=120000) as ended:
        dialog.start_button.click()
    assert ended.args == ["done"]
    [output] = [p for p in photos.iterdir() if p.name != "a.jpg"]
    gps, camera, make = metadata(output)
    if choice == "none":
        assert gps and make == "TestCam"
    elif choice == "location":
        assert not gps and make == "TestCam" and camera.get(0x829A)
    else:
        assert not gps and make is None and not camera
