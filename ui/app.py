"""`enhancer-gui [PHOTO]`: start the desktop app (or `--self-test`, which checks the install and exits)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_path(name: str) -> Path:
    """A bundled resource, also inside a frozen app (PyInstaller puts data next to sys._MEIPASS)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root and (Path(frozen_root) / "resources" / name).exists():
        return Path(frozen_root) / "resources" / name
    return RESOURCES / name


def apply_style(app) -> None:
    """Fusion everywhere, with the platform's light or dark palette (Qt 6.5+ reports the colour scheme)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    hints = app.styleHints()
    scheme = getattr(hints, "colorScheme", lambda: None)()
    if scheme == Qt.ColorScheme.Dark:
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
        ):
            palette.setColor(role, colour)
        palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
        palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 120))
        app.setPalette(palette)
    else:
        app.setPalette(app.style().standardPalette())


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
    apply_style(app)

    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if args.photo:
        window.open_photo(args.photo)
    file_opens.attach(window)  # a photo from Finder's "Open With" that came in before the window existed
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
