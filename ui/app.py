"""`enhancer-gui [PHOTO]`: start the desktop app (or `--self-test`, which checks the install and exits)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
# "system", "light" or "dark": overrides the Settings' theme (for tests and screenshots of either palette).
THEME_ENV = "ENHANCER_THEME"
# After the window closed, how long the process waits for workers that were still stopping (one model load or tile)
# before it exits anyway; they write nothing after the cancel, so nothing is lost by not waiting longer.
BACKGROUND_EXIT_WAIT_S = 30.0


def resource_path(name: str) -> Path:
    """A bundled resource, also inside a frozen app (PyInstaller puts data next to sys._MEIPASS)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root and (Path(frozen_root) / "resources" / name).exists():
        return Path(frozen_root) / "resources" / name
    return RESOURCES / name


def chosen_theme(setting: str = "system") -> str:
    """The theme to use: `ENHANCER_THEME` when set to a known one, else the setting ("system", "light" or "dark")."""
    from .settings import THEMES

    override = os.environ.get(THEME_ENV, "").strip().lower()
    if override in THEMES:
        return override
    return setting if setting in THEMES else "system"


def system_is_dark(app) -> bool:
    """Whether the desktop asks for a dark scheme (Qt 6.5+ reports it; older Qt: judged by the platform palette)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette

    scheme = getattr(app.styleHints(), "colorScheme", lambda: None)()
    if scheme is not None and scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    window = app.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def apply_style(app, theme: str = "system") -> bool:
    """Fusion everywhere, with a light or a dark palette: the desktop's choice for "system". True when dark."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    dark = theme == "dark" or (theme == "system" and system_is_dark(app))
    if dark:
        palette = QPalette()
        base, window, text = QColor(30, 30, 30), QColor(45, 45, 45), QColor(230, 230, 230)
        for role, colour in (
            (QPalette.ColorRole.Window, window),
            (QPalette.ColorRole.WindowText, text),
            (QPalette.ColorRole.Base, base),
            (QPalette.ColorRole.AlternateBase, window),
            (QPalette.ColorRole.Text, text),
            (QPalette.ColorRole.Button, window),
            (QPalette.ColorRole.ButtonText, text),
            (QPalette.ColorRole.ToolTipBase, window),
            (QPalette.ColorRole.ToolTipText, text),
            (QPalette.ColorRole.Highlight, QColor(42, 130, 218)),
            (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
            (QPalette.ColorRole.PlaceholderText, QColor(150, 150, 150)),
            (QPalette.ColorRole.Light, QColor(70, 70, 70)),
            (QPalette.ColorRole.Midlight, QColor(58, 58, 58)),
            (QPalette.ColorRole.Mid, QColor(40, 40, 40)),
            (QPalette.ColorRole.Dark, QColor(25, 25, 25)),
            (QPalette.ColorRole.Shadow, QColor(0, 0, 0)),
            (QPalette.ColorRole.Link, QColor(90, 160, 240)),
            (QPalette.ColorRole.BrightText, QColor(255, 80, 80)),
        ):
            palette.setColor(role, colour)
        for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
        app.setPalette(palette)
    else:
        app.setPalette(app.style().standardPalette())
    return dark


def make_file_open_handler(app):
    """Open the photos macOS sends as QEvent.FileOpen ("Open With" and drops on the Dock icon) in the main window.

    Finder does not pass the file on the command line: it starts the app, then sends the event, often before the main
    window exists. The handler keeps such files and opens the last one when `attach(window)` is called. It is an event
    filter on the application object, so it works with any QApplication, also the one pytest-qt makes.
    """
    from PySide6.QtCore import QEvent, QObject

    class FileOpenHandler(QObject):
        def __init__(self, parent):
            super().__init__(parent)
            self.window = None
            self.pending: list[str] = []

        def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.FileOpen:  # only ever sent to the application object
                path = event.file() or event.url().toLocalFile()
                if path:
                    self.open(path)
                    return True
            return False

        def open(self, path: str) -> None:
            if self.window is None:
                self.pending.append(path)
                return
            self.window.open_photo(path)
            self.window.raise_()
            self.window.activateWindow()

        def attach(self, window) -> None:
            self.window = window
            pending, self.pending = self.pending, []
            if pending:  # one photo at a time: the last one asked for wins
                self.open(pending[-1])

    handler = FileOpenHandler(app)
    app.installEventFilter(handler)
    return handler


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="enhancer-gui", description="Enhance photos with AI models, on your computer.")
    parser.add_argument("photo", nargs="?", help="a photo to open")
    parser.add_argument("--self-test", action="store_true", help="check the installation and exit (0 = OK)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        from enhancer.selftest import run_self_test

        return run_self_test()

    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    # Qt 6 scales for HiDPI by default; pass fractional factors through so 150 % screens are not rounded to 200 %.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    file_opens = make_file_open_handler(app)  # before anything can spin the event loop: Finder's file comes early
    app.setApplicationName("Photo Enhancer")
    app.setOrganizationName("photo-enhancer")
    app.setWindowIcon(QIcon(str(resource_path("icon.png"))))

    from .main_window import MainWindow
    from .settings import Settings
    from .workers import wait_for_background

    settings = Settings.load()
    apply_style(app, chosen_theme(settings.theme))
    # Temp files a killed run left in the app's own folders (older than a day); a listing, so off the UI thread.
    from enhancer.atomic import sweep_app_folders

    threading.Thread(target=sweep_app_folders, name="sweep-temp", daemon=True).start()
    window = MainWindow(settings)
    window.show()
    if args.photo:
        window.open_photo(args.photo)
    file_opens.attach(window)  # a photo from Finder's "Open With" that came in before the window existed
    code = app.exec()
    if not wait_for_background(BACKGROUND_EXIT_WAIT_S):
        # A worker stuck past its cancel (it writes nothing after it): do not keep a windowless process alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
