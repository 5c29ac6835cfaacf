"""Screenshots of the app as a real window (run under Xvfb): the main window before and after a run in slider mode,
side by side, mid-run with the progress bar, the batch dialog after a batch with a failure, and the model manager.

    xvfb-run -a -s "-screen 0 1400x950x24" .venv/bin/python tests/screenshots.py /work/screens

Needs ../shared/weights/mobilesr_x4.pth (imported into a throw-away model store). Not collected by pytest.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="enhancer-screens-"))
    os.environ["ENHANCER_DATA_DIR"] = str(work / "data")
    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: run this under Xvfb (xvfb-run) for real-window screenshots", file=sys.stderr)
        return 2
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # a real X window (tests/conftest.py would otherwise default to offscreen)

    from conftest import MOBILESR_WEIGHTS
    from test_ui_main import write_photo

    if not MOBILESR_WEIGHTS.exists():
        print(f"needs {MOBILESR_WEIGHTS}", file=sys.stderr)
        return 2

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    from enhancer import store
    from ui.app import apply_style, resource_path

    app = QApplication(sys.argv[:1])
    app.setWindowIcon(QIcon(str(resource_path("icon.png"))))
    apply_style(app)
    model_id = store.import_model(MOBILESR_WEIGHTS).id

    def wait(signal=None, ms: int = 300000) -> list:
        loop = QEventLoop()
        got: list = []
        if signal is not None:
            signal.connect(lambda *args: (got.extend(args), loop.quit()))
        QTimer.singleShot(ms, loop.quit)
        loop.exec()
        return got

    def settle(ms: int = 400) -> None:
        wait(None, ms)

    def shoot(widget, name: str, settle_first: bool = True) -> Path:
        if settle_first:
            settle()
        else:
            QApplication.processEvents()
        frame = widget.frameGeometry()
        screen = widget.screen() or QGuiApplication.primaryScreen()
        # The real window on the X screen, not a widget render.
        image = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        path = out / name
        image.save(str(path))
        print(f"{path}: {image.width()}x{image.height()}")
        return path

    from ui.main_window import MainWindow
    from ui.settings import Settings

    photo = work / "astronaut.png"
    shutil.copy(resource_path("sample_astronaut.png"), photo)
    window = MainWindow(Settings.load())
    window.resize(1200, 800)
    window.move(20, 20)
    window.show()
    window.select_model(model_id)
    window.open_photo(photo)
    wait(window.photoLoaded, 60000)
    shoot(window, "main_before.png")

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

    from ui.batch_dialog import BatchDialog

    folder = work / "holiday"
    (folder / "day2").mkdir(parents=True)
    for name, size in (("beach.png", (48, 32)), ("day2/hills.png", (40, 40)), ("day2/town.png", (32, 48))):
        write_photo(folder / name, *size)
    (folder / "day2" / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    batch = BatchDialog(window.settings, window.cache, window, folder=str(folder), model_id=model_id)
    batch.recursive_check.setChecked(True)
    batch.output.folder_radio.setChecked(True)
    batch.output.folder_edit.setText(str(work / "enhanced"))
    batch.move(60, 40)
    batch.show()
    batch.start()
    wait(batch.batchEnded)
    shoot(batch, "batch_dialog.png")
    batch.close()

    from ui.model_manager import ModelManagerDialog

    manager = ModelManagerDialog(window, select=model_id)
    manager.move(60, 40)
    manager.show()
    shoot(manager, "model_manager.png")
    manager.close()
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/work/screens"))
