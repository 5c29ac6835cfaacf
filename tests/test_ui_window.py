"""The main window's shell: it opens at a size that fits the screen, remembers where it was, its toolbar fits at
1280 px without the overflow menu, and the dark palette is used when asked for (offscreen Qt, real widgets)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QRect, QSize, Qt  # noqa: E402
from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QSplitter, QToolBar, QToolButton  # noqa: E402

from ui.app import THEME_ENV, apply_style, chosen_theme  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings, settings_path  # noqa: E402
from ui.window_state import SCREEN_SHARE, first_geometry, restore_window, save_window  # noqa: E402


@pytest.fixture
def window(qtbot):
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    yield win
    win.close()


@pytest.mark.parametrize("screen", [QRect(0, 0, 1920, 1040), QRect(0, 0, 1366, 728), QRect(1920, 0, 3840, 2100),
                                    QRect(0, 24, 1280, 776)])
def test_first_geometry_is_at_most_80_percent_of_the_screen_and_centred(screen):
    rect = first_geometry(screen)
    assert rect.width() <= screen.width() * SCREEN_SHARE and rect.height() <= screen.height() * SCREEN_SHARE
    assert screen.contains(rect)
    assert abs(rect.center().x() - screen.center().x()) <= 1 and abs(rect.center().y() - screen.center().y()) <= 1
    # Never larger than the size the window asks for on a big screen.
    assert rect.width() <= 1280 and rect.height() <= 800


def test_the_window_opens_fitting_its_screen(window):
    window.show()
    available = window.screen().availableGeometry()
    frame = window.geometry()
    assert frame.width() <= available.width() * SCREEN_SHARE + 1
    assert frame.height() <= available.height() * SCREEN_SHARE + 1
    assert available.contains(frame)


def test_geometry_is_remembered_across_runs(qtbot):
    first = MainWindow(Settings.load())
    qtbot.addWidget(first)
    first.show()
    first.setGeometry(QRect(40, 50, 700, 520))
    qtbot.waitUntil(lambda: first.size() == QSize(700, 520))
    first.close()
    assert settings_path().is_file()

    second = MainWindow(Settings.load())  # a new run reads the INI file again
    qtbot.addWidget(second)
    second.show()
    assert second.size() == QSize(700, 520)
    assert second.geometry().topLeft() == first.geometry().topLeft()
    second.close()


def test_splitter_and_toolbar_state_go_back_where_they_were(qtbot, tmp_path):
    def make() -> tuple[QMainWindow, QSplitter]:
        main = QMainWindow()
        qtbot.addWidget(main)
        bar = QToolBar("Main", main)
        bar.setObjectName("main-toolbar")
        main.addToolBar(bar)
        splitter = QSplitter(Qt.Orientation.Horizontal, main)
        splitter.setObjectName("compare-split")
        splitter.addWidget(QLabel("left"))
        splitter.addWidget(QLabel("right"))
        main.setCentralWidget(splitter)
        main.resize(800, 500)
        main.show()
        return main, splitter

    main, splitter = make()
    splitter.setSizes([600, 200])
    sizes = splitter.sizes()
    main.findChild(QToolBar).hide()
    settings = Settings()
    save_window(main, settings)
    settings.save(tmp_path / "s.ini")

    again, splitter_again = make()
    assert abs(splitter_again.sizes()[0] - sizes[0]) > 100  # a new splitter starts elsewhere
    restore_window(again, Settings.load(tmp_path / "s.ini"))
    QApplication.processEvents()
    # Back to 3:1 (a pixel or two may go to the frame the restored geometry brings).
    assert all(abs(a - b) <= 3 for a, b in zip(splitter_again.sizes(), sizes)), (splitter_again.sizes(), sizes)
    assert again.findChild(QToolBar).isHidden()


def toolbar_fits(window: MainWindow) -> list[str]:
    """The actions of the main toolbar that are not shown whole inside it (empty when it fits)."""
    bar = window.findChild(QToolBar, "main-toolbar")
    problems = []
    for action in bar.actions():
        if not action.isVisible():  # hidden on purpose (e.g. a hint shown only when it applies)
            continue
        widget = bar.widgetForAction(action)
        name = action.text() or type(widget).__name__
        if widget is None or not widget.isVisible():
            problems.append(f"{name} hidden")
        elif not bar.rect().contains(widget.geometry()):
            problems.append(f"{name} outside {bar.rect()}: {widget.geometry()}")
    extension = bar.findChild(QToolButton, "qt_toolbar_ext_button")
    if extension is not None and extension.isVisible():
        problems.append("the overflow button (››) is shown")
    return problems


def test_the_toolbar_fits_at_1280_by_800(qtbot, window):
    window.show()
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    QApplication.processEvents()
    assert toolbar_fits(window) == []
    # The check itself sees an overflow: at the window's narrowest the toolbar cannot hold everything.
    window.resize(300, 800)
    qtbot.waitUntil(lambda: window.width() < 800)
    QApplication.processEvents()
    assert toolbar_fits(window)


@pytest.fixture
def restore_style():
    app = QApplication.instance()
    palette, style = QPalette(app.palette()), app.style().name()
    yield app
    app.setStyle(style)
    app.setPalette(palette)


def test_the_theme_setting_and_its_override(monkeypatch):
    monkeypatch.delenv(THEME_ENV, raising=False)
    assert chosen_theme("dark") == "dark" and chosen_theme("nonsense") == "system"
    monkeypatch.setenv(THEME_ENV, "light")
    assert chosen_theme("dark") == "light"
    monkeypatch.setenv(THEME_ENV, "DARK")
    assert chosen_theme("system") == "dark"


def test_dark_palette_when_forced_and_the_compare_view_paints_with_it(qtbot, monkeypatch, restore_style):
    app = restore_style
    monkeypatch.setenv(THEME_ENV, "dark")
    assert apply_style(app, chosen_theme("light")) is True
    assert app.style().name().lower() == "fusion"
    palette = app.palette()
    assert palette.color(QPalette.ColorRole.Window).lightness() < 80
    assert palette.color(QPalette.ColorRole.WindowText).lightness() > 180
    assert palette.color(QPalette.ColorRole.Base).lightness() < 80

    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    # The empty compare view is painted from the palette: dark behind, light placeholder text.
    dark_corner = win.compare.grab().toImage().pixelColor(3, 3)
    assert dark_corner.lightness() < 80, dark_corner.name()
    win.close()

    assert apply_style(app, "light") is False
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    assert win.compare.grab().toImage().pixelColor(3, 3).lightness() > 150
    win.close()


def test_the_settings_dialog_switches_the_theme_at_once_and_remembers_it(qtbot, monkeypatch, restore_style,
                                                                       isolated_data_dir):
    from ui.settings_dialog import SettingsDialog

    monkeypatch.delenv(THEME_ENV, raising=False)
    app = restore_style
    apply_style(app, "light")
    settings = Settings.load()
    assert settings.theme == "system"
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    dialog.apply(settings)
    assert settings.theme == "dark"
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    settings.save()
    assert Settings.load().theme == "dark"


def test_pasted_images_go_to_the_pictures_folder_unless_set(qtbot, tmp_path, isolated_data_dir):
    from PySide6.QtCore import QStandardPaths

    from ui.settings_dialog import SettingsDialog

    settings = Settings.load()
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    assert settings.paste_folder == pictures and pictures
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.paste_edit.setText(str(tmp_path / "pasted"))
    dialog.apply(settings)
    settings.save()
    assert Settings.load().paste_folder == str(tmp_path / "pasted")
