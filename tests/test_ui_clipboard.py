"""Ctrl+V pastes an image (saved as a PNG in the paste folder, then opened); Ctrl+C copies the result. Offscreen Qt
(its clipboard lives in the process), the real engine with the bundled models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QRect, QUrl  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QImage, QKeySequence  # noqa: E402

from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402


def write_photo(path: Path, width: int, height: int) -> Path:
    rng = np.random.default_rng(width * 1000 + height)
    Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def window(qtbot, tmp_path):
    settings = Settings.load()
    settings.paste_folder = str(tmp_path / "Pictures" / "Pasted")  # not there yet: made on the first paste
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def clipboard_image(width: int, height: int, colour: str) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    image.setPixelColor(0, 0, QColor("white"))  # a corner that tells the orientation
    return image


def paste(qtbot, window: MainWindow) -> Path:
    with qtbot.waitSignal(window.photoLoaded, timeout=20000) as loaded:
        window.paste_action.trigger()
    return Path(loaded.args[0])


def test_ctrl_v_saves_the_image_as_a_new_png_and_opens_it(qtbot, window, tmp_path):
    assert QKeySequence(QKeySequence.StandardKey.Paste) in window.paste_action.shortcuts()
    QGuiApplication.clipboard().setImage(clipboard_image(40, 30, "#3366cc"))
    first = paste(qtbot, window)
    folder = tmp_path / "Pictures" / "Pasted"
    assert first.parent == folder and first.suffix == ".png" and first.name.startswith("Pasted ")
    assert window.photo_path == first and window.last_pasted == first
    assert window.compare.before_size().width() == 40
    with Image.open(first) as saved:
        assert saved.format == "PNG" and saved.size == (40, 30)
        rgb = saved.convert("RGB")
        assert rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((20, 15)) == (0x33, 0x66, 0xCC)
    first_bytes = first.read_bytes()

    # A second paste in the same second gets its own name; the first file is left as it was.
    QGuiApplication.clipboard().setImage(clipboard_image(20, 10, "#aa0000"))
    second = paste(qtbot, window)
    assert second != first and second.parent == folder
    assert first.read_bytes() == first_bytes
    with Image.open(second) as saved:
        assert saved.size == (20, 10)
    assert sorted(p.name for p in folder.iterdir()) == sorted([first.name, second.name])  # no temporary left


def test_pasting_text_or_nothing_says_the_clipboard_holds_no_image(qtbot, window, tmp_path):
    QGuiApplication.clipboard().setText("just some words")
    window.paste_action.trigger()
    assert "The clipboard holds text, not an image" in window.last_error
    QGuiApplication.clipboard().clear()
    window.paste_action.trigger()
    assert "holds nothing" in window.last_error
    assert window.photo_path is None
    assert not (tmp_path / "Pictures").exists()


def test_a_copied_photo_file_is_opened_where_it_is(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "copied.png", 32, 24)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    QGuiApplication.clipboard().setMimeData(mime)
    assert paste(qtbot, window) == photo
    assert not (tmp_path / "Pictures").exists()  # nothing was copied


def test_a_paste_folder_that_cannot_be_made_is_a_clear_error(qtbot, window, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    window.settings.paste_folder = str(blocker / "Pasted")
    QGuiApplication.clipboard().setImage(clipboard_image(8, 8, "green"))
    window.paste_action.trigger()
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=20000)
    assert str(blocker / "Pasted") in window.last_error and "Settings" in window.last_error
    assert window.photo_path is None


def test_ctrl_c_copies_the_enhanced_image(qtbot, window, tmp_path):
    assert QKeySequence(QKeySequence.StandardKey.Copy) in window.copy_action.shortcuts()
    window.copy_action.trigger()
    assert "Nothing to copy" not in window.last_error  # disabled: nothing happened
    window.copy_result()
    assert "There is no result yet" in window.last_error

    photo = write_photo(tmp_path / "small.png", 24, 16)
    with qtbot.waitSignal(window.photoLoaded, timeout=20000):
        window.open_photo(photo)
    assert window.select_model("own-espcn-x2")
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance_action.trigger()
    assert ended.args == ["ok"], window.last_error
    assert window.copy_action.isEnabled()
    with qtbot.waitSignal(window.copied, timeout=20000) as copied:
        window.copy_action.trigger()
    assert copied.args == [str(window.last_output)]
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (48, 32)
    with Image.open(window.last_output) as written:
        expected = written.convert("RGB")
        for x, y in ((0, 0), (17, 9), (47, 31)):
            colour = image.pixelColor(x, y)
            assert (colour.red(), colour.green(), colour.blue()) == expected.getpixel((x, y))


def test_ctrl_c_after_a_region_preview_copies_the_preview(qtbot, window, tmp_path):
    photo = write_photo(tmp_path / "region.png", 64, 48)
    with qtbot.waitSignal(window.photoLoaded, timeout=20000):
        window.open_photo(photo)
    assert window.select_model("own-espcn-x2")
    window.compare.set_selection(QRect(8, 8, 20, 12))
    with qtbot.waitSignal(window.previewEnded, timeout=60000) as ended:
        window.preview_action.trigger()
    assert ended.args == ["ok"], window.last_error
    with qtbot.waitSignal(window.copied, timeout=5000) as copied:
        window.copy_action.trigger()
    assert copied.args == ["preview"]
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (40, 24)
