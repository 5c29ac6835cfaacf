"""The main window, offscreen with real Qt, the real engine and the MobileSR x4 weights from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")
from PySide6.QtCore import QTimer, Qt  # noqa: E402

from enhancer import store  # noqa: E402
from conftest import MOBILESR_WEIGHTS, need_shared  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.settings import Settings  # noqa: E402


def write_photo(path: Path, width: int, height: int) -> Path:
    rng = np.random.default_rng(width * 1000 + height)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), (xs + ys) % 256], -1)
    noise = rng.integers(0, 40, size=base.shape)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def mobilesr_id() -> str:
    return store.import_model(need_shared(MOBILESR_WEIGHTS)).id


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
    assert window.compare.has_before()


def test_open_enhance_saves_next_to_original_and_compares(qtbot, window, tmp_path, mobilesr_id):
    photo = write_photo(tmp_path / "garden.png", 64, 48)
    open_photo(qtbot, window, photo)
    assert window.select_model(mobilesr_id)
    assert window.enhance_action.isEnabled()
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance_action.trigger()
    assert ended.args == ["ok"], window.last_error
    output = window.last_output
    assert output is not None and output.parent == tmp_path and output.exists()
    assert output.name.startswith("garden_") and output != photo
    with Image.open(output) as result:
        assert result.size == (256, 192)
    assert window.compare.has_before() and window.compare.has_after()
    assert (window.compare.before_size().width(), window.compare.after_size().width()) == (64, 256)
    assert window.show_folder_action.isEnabled()
    assert str(photo.resolve()) in window.settings.recent_files
    print(f"\nenhanced {photo.name} -> {output.name}")


def test_cancel_mid_job_leaves_no_file(qtbot, window, tmp_path, mobilesr_id):
    photo = write_photo(tmp_path / "street.png", 96, 64)
    window.settings.tile = "16"  # many tiles, so there is a "between tiles" to stop at
    open_photo(qtbot, window, photo)
    window.select_model(mobilesr_id)
    seen: list[tuple[int, int]] = []

    def attach(runnable) -> None:
        # Runs in the worker thread at the first tile: cancel exactly mid-job, as the Esc key would.
        def on_tile(index: int, done: int, total: int) -> None:
            seen.append((done, total))
            runnable.cancel()

        runnable.signals.tile_progress.connect(on_tile, Qt.ConnectionType.DirectConnection)

    window.jobCreated.connect(attach)
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance()
    assert ended.args == ["cancelled"], window.last_error
    assert seen and seen[0][0] < seen[0][1], seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["street.png"]
    assert not window.compare.has_after() and window.last_output is None
    print(f"\ncancelled after tile {seen[0][0]} of {seen[0][1]}")


def test_escape_cancels_through_the_shortcut(qtbot, window, tmp_path, mobilesr_id):
    photo = write_photo(tmp_path / "esc.png", 96, 64)
    window.settings.tile = "16"
    open_photo(qtbot, window, photo)
    window.select_model(mobilesr_id)
    window.jobCreated.connect(lambda runnable: window.cancel_action.trigger())  # Esc's action, as soon as it runs
    with qtbot.waitSignal(window.jobEnded, timeout=120000) as ended:
        window.enhance()
    assert ended.args == ["cancelled"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esc.png"]


def test_ui_stays_responsive_during_a_job(qtbot, window, tmp_path, mobilesr_id):
    photo = write_photo(tmp_path / "big.png", 96, 64)
    window.settings.tile = "32"
    open_photo(qtbot, window, photo)
    window.select_model(mobilesr_id)
    ticks = [0]
    progress_values: list[int] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    window.progress.valueChanged.connect(progress_values.append)
    timer.start()
    with qtbot.waitSignal(window.jobEnded, timeout=180000) as ended:
        window.enhance()
    timer.stop()
    assert ended.args == ["ok"], window.last_error
    # The event loop kept running timers and delivering tile progress while the worker computed.
    assert ticks[0] >= 10, ticks
    assert len(progress_values) >= 3 and max(progress_values) == window.progress.maximum()
    print(f"\nQTimer ticks during the job: {ticks[0]}; progress updates: {len(progress_values)}")


def test_closing_mid_job_cancels_and_writes_nothing(qtbot, tmp_path, mobilesr_id):
    photo = write_photo(tmp_path / "close.png", 96, 64)
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.settings.tile = "16"
    open_photo(qtbot, win, photo)
    win.select_model(mobilesr_id)
    started: list[int] = []
    win.jobCreated.connect(
        lambda runnable: runnable.signals.tile_progress.connect(
            lambda *a: started.append(1), Qt.ConnectionType.DirectConnection
        )
    )
    win.enhance()
    qtbot.waitUntil(lambda: bool(started), timeout=60000)
    win.close()  # cancels and waits for the worker
    assert win.pool.activeThreadCount() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["close.png"]


def test_settings_survive_a_restart(qtbot, tmp_path, isolated_data_dir):
    from ui.settings_dialog import SettingsDialog

    photo = write_photo(tmp_path / "kept.png", 32, 24)
    first = MainWindow(Settings.load())
    qtbot.addWidget(first)
    dialog = SettingsDialog(first.settings, first)
    dialog.device_combo.setCurrentText("cpu")
    dialog.precision_combo.setCurrentText("fp32")
    dialog.tile_combo.setCurrentText("192")
    dialog.output.format_combo.setCurrentText("webp")
    dialog.output.quality_spin.setValue(80)
    dialog.output.suffix_edit.setText("_big")
    dialog.output.folder_radio.setChecked(True)
    dialog.output.folder_edit.setText(str(tmp_path / "out"))
    dialog.apply(first.settings)
    open_photo(qtbot, first, photo)
    first.set_compare_mode("side")
    first.close()
    assert list(isolated_data_dir.glob("*.ini")), "settings were not written under ENHANCER_DATA_DIR"

    second = MainWindow(Settings.load())
    qtbot.addWidget(second)
    s = second.settings
    assert (s.device, s.precision, s.tile, s.output_format, s.quality, s.suffix) == ("cpu", "fp32", "192", "webp", 80, "_big")
    assert s.output_dir == str(tmp_path / "out")
    assert s.recent_files == [str(photo.resolve())]
    assert second.compare.mode == "side" and second.side_action.isChecked()
    reopened = SettingsDialog(s, second)
    assert reopened.tile_combo.currentText() == "192" and reopened.output.folder_radio.isChecked()
    job = second.make_job([str(photo)], ["x"])
    assert (job.format, job.quality, job.tile, job.device, job.output_dir) == ("webp", 80, 192, "cpu", str(tmp_path / "out"))
    second.close()


def test_picker_groups_by_task_and_shows_installed_state(qtbot, window, mobilesr_id):
    model = window.model_combo.model()
    rows = [model.item(r) for r in range(model.rowCount())]
    headers = [r.text() for r in rows if not r.data(Qt.ItemDataRole.UserRole + 1)]
    assert headers[:4] == ["Photo (real-world)", "Clean image x2", "Clean image x3", "Clean image x4"]
    assert {"Denoise", "Deblur", "Fix JPEG", "Derain"} <= set(headers)
    window.refresh_models(select=mobilesr_id)
    assert window.selected_model_id() == mobilesr_id
    assert window.model_combo.currentText().endswith("(imported)")  # imported means installed; said once
    assert any(r.text().endswith("(bundled)") for r in rows)  # our bundled default
    assert any("not installed" in r.text() for r in rows)


def test_help_menu_lists_the_shortcuts(qtbot, window):
    rows = dict(window.shortcut_rows())
    assert rows["Enhance"] == "Ctrl+E" and rows["Cancel"] == "Esc"
    assert "Ctrl+O" in rows["Open"]


def test_drop_a_file_opens_it_and_it_joins_the_recent_menu(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    photo = write_photo(tmp_path / "dropped.png", 40, 30)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.photoLoaded, timeout=20000) as loaded:
        window.dropEvent(event)
    assert loaded.args == [str(photo.resolve())] or Path(loaded.args[0]) == photo
    assert window.compare.before_size().width() == 40
    window._fill_recent_menu()
    entries = [a.text() for a in window.recent_menu.actions() if a.text()]
    assert entries[0] == "dropped.png"


def test_a_file_that_is_not_a_photo_gives_a_readable_error(qtbot, window, tmp_path, monkeypatch):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    window.open_photo(bogus)
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=20000)
    assert "notes.png" in window.last_error and "Traceback" not in window.last_error
    assert not window.compare.has_before()


def test_bf16_on_a_cpu_without_bf16_kernels_runs_fp32_and_says_so(qtbot, tmp_path, monkeypatch):
    """The status bar and the settings tell the user; the photo is still enhanced. The CPU is made to report what an
    AVX2-only CPU reports (the capabilities cannot be changed in a running process otherwise)."""
    from enhancer import devices
    from ui.settings_dialog import SettingsDialog

    avx2_only = devices.CpuCapabilities("AVX2", True, False, False, "the CPU has neither AVX512BW+VL+DQ nor AVX-NE-CONVERT")
    monkeypatch.setattr(devices, "cpu_capabilities", lambda: avx2_only)
    settings = Settings.load()
    settings.precision, settings.device = "bf16", "cpu"
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    texts = [dialog.precision_combo.itemText(i) for i in range(dialog.precision_combo.count())]
    assert "bf16 (bf16 is not supported by this CPU; fp32 is used)" in texts
    assert dialog.precision_combo.currentData() == "bf16"  # still offered, and still the user's choice
    dialog.apply(settings)
    assert settings.precision == "bf16"

    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: "…" not in win.device_label.text(), timeout=10000)
    assert win.device_label.text() == "Device: CPU, fp32 (bf16 is not supported by this CPU; using fp32)"
    open_photo(qtbot, win, write_photo(tmp_path / "lake.png", 32, 24))
    assert win.select_model("own-mobilesr-x4")
    with qtbot.waitSignal(win.jobEnded, timeout=120000) as ended:
        win.enhance_action.trigger()
    assert ended.args == ["ok"], win.last_error
    saved = win.progress_label.text()
    assert "· bf16 is not supported by this CPU; using fp32" in saved
    assert saved.endswith(("· through torch", "· through openvino")), saved  # and what ran the network
    assert "Device: CPU, fp32" in win.device_label.text()
    win.close()
