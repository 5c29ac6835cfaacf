"""Screenshots of the app as a real window (run under Xvfb), written into the folder given on the command line:

- main_first_start.png: the window at the size it opens with on this screen (at most about 80% of it)
- main_1280.png: the main window at 1280×800 with a photo open (the toolbar must fit, with no "»" overflow button)
- toolbar_estimate.png: the toolbar alone, with the time estimate next to Enhance; toolbar_estimate_lighter.png: the
  same for a 2400×2400 photo, whose long estimate on a CPU comes with a lighter model of the same task
- main_running.png: mid-run, with the progress bar and the time left
- main_after_slider.png, main_after_slider_zoomed.png, main_after_side.png: the result in both compare modes
- main_preview.png: a region drawn on the photo and its preview in the slider; main_preview_ab.png: an A/B of two
  models on the same region
- batch_dialog_estimate.png: the batch dialog with its estimate for the whole batch, before Start; batch_dialog.png:
  after the batch, with a damaged file; model_manager.png; settings_dialog.png
- main_dark.png, settings_dialog_dark.png, batch_dialog_dark.png: the same with the dark palette (forced through
  ENHANCER_THEME=dark, the override of the Settings' theme)

    xvfb-run -a -s "-screen 0 1400x950x24" .venv/bin/python tests/screenshots.py /tmp/screens

Everything runs on the bundled models (the catalog's default, and own-espcn-x4 as the second model of the A/B), in a
throw-away model store and settings folder. A shot whose feature is missing in this checkout is skipped with the reason
printed. Not collected by pytest. `--small DIR` also writes downscaled copies of the shots README.md uses (at most
900 px wide, palette PNGs under 150 KB): `--small docs` remakes the README's screenshots.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SECOND_MODEL = "own-espcn-x4"  # the B of the A/B preview: bundled, and fast
DOCS_WIDTH = 900  # the width of the copies for docs/ (README images stay small)
DOCS_MAX_BYTES = 150 * 1024
# The shots README.md shows; `--small docs` remakes exactly these.
DOCS_SHOTS = ("main_after_slider.png", "main_1280.png", "main_preview_ab.png", "main_dark.png",
              "toolbar_estimate_lighter.png", "batch_dialog.png", "settings_dialog.png")


def skip(name: str, why: str) -> None:
    print(f"SKIPPED {name}: {why}")


def write_small(source: Path, target: Path, width: int = DOCS_WIDTH, max_bytes: int = DOCS_MAX_BYTES) -> tuple[int, int]:
    """A copy at most `width` wide as a palette PNG (screenshots keep well in 256 colours), with fewer colours while it
    is over `max_bytes`."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    for colours in (256, 192, 128, 96, 64):
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        if target.stat().st_size <= max_bytes:
            break
    return image.size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", default="/work/screens", help="where the PNGs go")
    parser.add_argument("--small", metavar="DIR", help="also write small copies of the README's shots here (docs)")
    args = parser.parse_args(argv)

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: run this under Xvfb (xvfb-run) for real-window screenshots", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="enhancer-screens-"))
    os.environ["ENHANCER_DATA_DIR"] = str(work / "data")
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # a real X window (tests/conftest.py would otherwise default to offscreen)
    os.environ.setdefault("ENHANCER_AUTO_BACKEND", "torch")  # no backend measurement in the middle of the shots
    theme_env = "ENHANCER_THEME"
    os.environ[theme_env] = "light"  # the first shots in the light palette, whatever the desktop says

    from test_ui_main import write_photo

    from PySide6.QtCore import QEventLoop, QRect, QTimer
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication, QToolBar, QToolButton

    from enhancer import store
    import ui.app as app_module
    from ui.app import apply_style, resource_path

    app = QApplication(sys.argv[:1])
    app.setWindowIcon(QIcon(str(resource_path("icon.png"))))
    chosen_theme = getattr(app_module, "chosen_theme", None)
    apply_style(app, chosen_theme("system") if chosen_theme else "system")
    model_id = store.default_model_id()
    if not model_id or not store.is_installed(store.get_entry(model_id)):
        print(f"the catalog's default model ({model_id}) is not installed here", file=sys.stderr)
        return 2
    written: list[Path] = []

    def wait(signal=None, ms: int = 300000) -> list:
        loop = QEventLoop()
        got: list = []
        if signal is not None:
            signal.connect(lambda *values: (got.extend(values), loop.quit()))
        QTimer.singleShot(ms, loop.quit)
        loop.exec()
        return got

    def settle(ms: int = 400) -> None:
        wait(None, ms)

    def shoot(widget, name: str, settle_first: bool = True, rect: QRect | None = None) -> Path:
        if settle_first:
            settle()
        else:
            QApplication.processEvents()
        frame = widget.frameGeometry() if rect is None else rect
        screen = widget.screen() or QGuiApplication.primaryScreen()
        # The real window on the X screen, not a widget render.
        image = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        path = out / name
        image.save(str(path))
        written.append(path)
        print(f"{path}: {image.width()}x{image.height()}")
        return path

    def toolbar_report(window) -> None:
        """Say whether the toolbar overflows: Qt then shows its extension ("»") button."""
        for bar in window.findChildren(QToolBar):
            extension = bar.findChildren(QToolButton, "qt_toolbar_ext_button")
            overflow = any(b.isVisible() for b in extension)
            print(f"toolbar {bar.objectName() or bar.windowTitle()!r} at window width {window.width()}: "
                  f"{'OVERFLOWS (» button shown)' if overflow else 'fits'}; "
                  f"needs {bar.sizeHint().width()} px, has {bar.width()} px")

    def wait_estimate(window, ms: int = 60000) -> str:
        if not hasattr(window, "estimateShown"):
            return ""
        if getattr(window, "estimated", None) is None:
            wait(window.estimateShown, ms)
        return window.estimate_label.text() if hasattr(window, "estimate_label") else ""

    def shoot_toolbar(window, name: str) -> None:
        """The toolbar from its left end to just past the estimate (and the lighter model, when offered)."""
        bar = window.findChildren(QToolBar)[0]
        settle()
        right = bar.width()
        labels = [getattr(window, "estimate_label", None)]
        if getattr(window, "lighter_action", None) is not None and window.lighter_action.isVisible():
            labels.append(window.lighter_label)
        for label in labels:
            if label is not None and label.text():
                right = label.geometry().right() + 16
        top_left = bar.mapToGlobal(bar.rect().topLeft())
        shoot(window, name, rect=QRect(top_left.x(), top_left.y(), min(right, bar.width()), bar.height()))

    from PIL import Image

    from ui.main_window import MainWindow
    from ui.settings import Settings

    photo = work / "astronaut.png"
    big_photo = work / "astronaut-2400.png"
    shutil.copy(resource_path("sample_astronaut.png"), photo)
    settings = Settings.load()
    window = MainWindow(settings)
    window.show()
    window.select_model(model_id)
    window.open_photo(photo)
    wait(window.photoLoaded, 60000)
    first = window.frameGeometry()
    screen = window.screen().availableGeometry()
    print(f"first start: {first.width()}x{first.height()} on a {screen.width()}x{screen.height()} screen")
    shoot(window, "main_first_start.png")

    window.resize(1280, 800)
    window.move(20, 20)
    estimate = wait_estimate(window)
    settle(600)
    toolbar_report(window)
    shoot(window, "main_1280.png")
    if not estimate:
        skip("toolbar_estimate.png", "no time estimate next to Enhance in this checkout (MainWindow.estimateShown)")
    else:
        print(f"estimate shown: {estimate!r}")
        shoot_toolbar(window, "toolbar_estimate.png")
        # A photo big enough for a long estimate on a CPU: the window then offers a lighter model of the same task.
        with Image.open(photo) as small_photo:
            small_photo.resize((2400, 2400), Image.Resampling.LANCZOS).save(big_photo)
        window.open_photo(big_photo)
        wait(window.photoLoaded, 60000)
        long_estimate = wait_estimate(window, 180000)
        offered = getattr(window, "lighter", None)
        print(f"estimate for 2400x2400: {long_estimate!r}; lighter model offered: {offered and offered[0]}")
        if offered:
            toolbar_report(window)
            shoot_toolbar(window, "toolbar_estimate_lighter.png")
            shoot(window, "main_1280_lighter.png")
        else:
            skip("toolbar_estimate_lighter.png", f"no lighter model offered for {long_estimate!r}")
        window.open_photo(photo)
        wait(window.photoLoaded, 60000)
        wait_estimate(window)

    # Mid-run: small tiles so the progress bar and ETA have something to show; shot from the UI thread.
    window.settings.tile = "64"
    mid_run: list[int] = []

    def shoot_mid_run(value: int) -> None:
        if value >= 4 and not mid_run:
            mid_run.append(value)
            shoot(window, "main_running.png", settle_first=False)

    window.progress.valueChanged.connect(shoot_mid_run)
    window.enhance()
    ended = wait(window.jobEnded)
    window.progress.valueChanged.disconnect(shoot_mid_run)
    window.settings.tile = "auto"
    print("job:", ended, window.last_error)
    window.set_compare_mode("slider")
    window.compare.set_split(0.45)
    shoot(window, "main_after_slider.png")
    window.compare.zoom_in()
    window.compare.zoom_in()
    window.compare.zoom_in()
    shoot(window, "main_after_slider_zoomed.png")
    window.set_compare_mode("side")
    window.compare.fit()
    shoot(window, "main_after_side.png")
    window.set_compare_mode("slider")
    window.compare.fit()

    if not all(hasattr(window, name) for name in ("preview_region", "previewEnded")) or not hasattr(
        window.compare, "set_selection"
    ):
        skip("main_preview.png", "no region preview in this checkout (MainWindow.preview_region)")
    else:
        # The region: the astronaut's face and badge, in photo pixels.
        window.compare.set_selection(QRect(88, 40, 120, 110))
        window.preview_region()
        result = wait(window.previewEnded, 120000)
        print("preview:", result, window.preview_label.text())
        window.compare.set_split(0.5)
        shoot(window, "main_preview.png")
        if hasattr(window, "set_compare_model") and window.set_compare_model(SECOND_MODEL):
            window.preview_region()
            result = wait(window.previewEnded, 120000)
            print("A/B preview:", result, window.preview_label.text())
            shoot(window, "main_preview_ab.png")
            window.set_compare_model(None)
        else:
            skip("main_preview_ab.png", f"no second model {SECOND_MODEL} in the A/B list")

    from ui.batch_dialog import BatchDialog

    folder = work / "holiday"
    (folder / "day2").mkdir(parents=True)
    for name, size in (("beach.png", (48, 32)), ("day2/hills.png", (40, 40)), ("day2/town.png", (32, 48))):
        write_photo(folder / name, *size)
    (folder / "day2" / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")

    def batch_shot(name: str, estimate_first: bool = False) -> None:
        batch = BatchDialog(window.settings, window.cache, window, folder=str(folder), model_id=model_id)
        batch.recursive_check.setChecked(True)
        batch.output.folder_radio.setChecked(True)
        batch.output.folder_edit.setText(str(work / f"enhanced-{name}"))
        batch.move(60, 40)
        batch.show()
        if estimate_first:
            if hasattr(batch, "estimateShown"):
                got = wait(batch.estimateShown, 120000)
                print(f"batch estimate: {got}")
                shoot(batch, name.replace(".png", "_estimate.png"))
            else:
                skip(name.replace(".png", "_estimate.png"), "no estimate in the batch dialog in this checkout")
        batch.start()
        wait(batch.batchEnded)
        shoot(batch, name)
        batch.close()


    from ui.model_manager import ModelManagerDialog

    manager = ModelManagerDialog(window, select=model_id)
    manager.move(60, 40)
    manager.show()
    shoot(manager, "model_manager.png")
    manager.close()

    from ui.settings_dialog import SettingsDialog

    def settings_shot(name: str) -> None:
        dialog = SettingsDialog(window.settings, window)
        dialog.move(60, 40)
        dialog.show()
        shoot(dialog, name)
        dialog.reject()

    settings_shot("settings_dialog.png")
    batch_shot("batch_dialog.png", estimate_first=True)

    # The dark palette, the way the app picks it at start: ENHANCER_THEME overrides the Settings' theme.
    if chosen_theme is None:
        skip("main_dark.png", "no theme choice in this checkout (ui.app.chosen_theme)")
    else:
        os.environ[theme_env] = "dark"
        dark = apply_style(app, chosen_theme(window.settings.theme))
        if not dark:
            skip("main_dark.png", "apply_style did not switch to the dark palette")
        else:
            if hasattr(window, "clear_region"):
                window.clear_region()
            window.compare.fit()
            window.compare.set_split(0.5)
            shoot(window, "main_dark.png")
            settings_shot("settings_dialog_dark.png")
            batch_shot("batch_dialog_dark.png")

    window.close()
    shutil.rmtree(work, ignore_errors=True)

    if args.small:
        small = Path(args.small)
        small.mkdir(parents=True, exist_ok=True)
        for path in written:
            if path.name not in DOCS_SHOTS:
                continue
            target = small / path.name
            size = write_small(path, target)
            print(f"{target}: {size[0]}x{size[1]}, {target.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
