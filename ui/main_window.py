"""The main window: open a photo, pick a model, Enhance, compare before and after."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QThreadPool, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from enhancer import store
from enhancer.catalog import format_size
from enhancer.imageio import IMAGE_EXTENSIONS
from enhancer.pipeline import Job, ModelCache

from .compare_view import CompareView
from .eta import EtaEstimator, format_eta
from .model_list import entry_label, grouped_catalog
from .settings import Settings
from .workers import CallRunnable, JobRunnable, describe_device, load_photo_with_levels

ENTRY_ID_ROLE = Qt.ItemDataRole.UserRole + 1
INSTALLED_ROLE = Qt.ItemDataRole.UserRole + 2


def _default_model_id() -> str | None:
    try:
        return store.default_model_id()
    except Exception:  # noqa: BLE001 - no usable default: the picker falls back to the first installed model
        return None


def device_report(device: str, precision: str) -> tuple[str, list[str], str]:
    """(the device and precision in use, every device found, the hint about an unused NVIDIA GPU or "")."""
    from enhancer import devices

    gpus = devices.nvidia_gpus()
    return describe_device(device, precision), devices.found_devices(gpus), devices.gpu_hint(gpus)


def image_filter() -> str:
    patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
    return f"Images ({patterns});;All files (*)"


class MainWindow(QMainWindow):
    photoLoaded = Signal(str)
    jobCreated = Signal(object)  # the JobRunnable, before it starts (tests attach to its signals)
    jobEnded = Signal(str)  # "ok", "failed", "cancelled"

    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.settings = settings or Settings.load()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # one job and one helper (decoding, device description) at a time
        self.cache = ModelCache()  # models stay loaded per (model, device) between runs
        self.photo_path: Path | None = None
        self.last_output: Path | None = None
        self._job: JobRunnable | None = None
        self._job_notes: tuple[str, ...] = ()  # the running job's precision fallbacks, shown again when it is saved
        self._helpers: set[CallRunnable] = set()
        self._load_token = 0
        self._eta = EtaEstimator()
        self.last_error = ""  # the text of the last error dialog, for tests and logs
        self._device_report: tuple[str, list[str], str] = ("…", [], "")  # (in use, found, NVIDIA hint)

        self.setWindowTitle("Photo Enhancer")
        self.setAcceptDrops(True)
        self.resize(1100, 760)
        self.compare = CompareView(self)
        self.compare.set_mode(self.settings.compare_mode)
        self.setCentralWidget(self.compare)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        self.refresh_models()
        self._update_enabled()
        self.refresh_device()

    # ------------------------------------------------------------------ construction
    def _action(self, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
        action = QAction(text, self)
        keys = [QKeySequence(s) if not isinstance(s, QKeySequence) else s for s in shortcuts]
        keys = [k for k in keys if not k.isEmpty()]
        if keys:
            action.setShortcuts(keys)
        if tip:
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open…", self.choose_photo, [QKeySequence.StandardKey.Open])
        self.enhance_action = self._action("&Enhance", self.enhance, ["Ctrl+E"], "Enhance the photo (Ctrl+E)")
        self.cancel_action = self._action("Cancel", self.cancel_job, ["Esc"], "Stop the running job (Esc)")
        self.show_folder_action = self._action("Show in &Folder", self.show_in_folder, ["Ctrl+Shift+F"])
        self.batch_action = self._action("&Batch a Folder…", self.open_batch, ["Ctrl+B"])
        self.settings_action = self._action(
            "&Settings…", self.open_settings, [QKeySequence.StandardKey.Preferences, "Ctrl+,"]
        )
        self.models_action = self._action("&Model Manager…", self.open_model_manager, ["Ctrl+M"])
        self.quit_action = self._action("&Quit", self.close, [QKeySequence.StandardKey.Quit])
        self.zoom_in_action = self._action("Zoom &In", self.compare.zoom_in, [QKeySequence.StandardKey.ZoomIn, "+", "="])
        self.zoom_out_action = self._action("Zoom &Out", self.compare.zoom_out, [QKeySequence.StandardKey.ZoomOut, "-"])
        self.fit_action = self._action("&Fit", self.compare.fit, ["Ctrl+0", "F"])
        self.actual_action = self._action("&100%", self.compare.actual_size, ["Ctrl+1", "1"])
        self.slider_action = self._action("&Split Slider", lambda: self.set_compare_mode("slider"), ["S"])
        self.side_action = self._action("Side by Si&de", lambda: self.set_compare_mode("side"), ["D"])
        modes = QActionGroup(self)
        for action in (self.slider_action, self.side_action):
            action.setCheckable(True)
            modes.addAction(action)
        (self.side_action if self.settings.compare_mode == "side" else self.slider_action).setChecked(True)
        self.shortcuts_action = self._action("&Keyboard Shortcuts", self.show_shortcuts, [QKeySequence.StandardKey.HelpContents])
        self.about_action = self._action("&About", self.show_about)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        bar.addAction(self.open_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Model: "))
        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(34)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        bar.addWidget(self.model_combo)
        self.enhance_button = QPushButton("Enhance", self)
        self.enhance_button.setDefault(True)
        self.enhance_button.setToolTip("Enhance the photo (Ctrl+E)")
        self.enhance_button.clicked.connect(self.enhance)
        bar.addWidget(self.enhance_button)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.cancel_button.clicked.connect(self.cancel_job)
        bar.addWidget(self.cancel_button)
        bar.addSeparator()
        for action in (self.slider_action, self.side_action, self.zoom_out_action, self.zoom_in_action,
                       self.fit_action, self.actual_action):
            bar.addAction(action)
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addAction(self.show_folder_action)

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        file_menu.addAction(self.show_folder_action)
        file_menu.addSeparator()
        file_menu.addAction(self.batch_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        enhance_menu = menus.addMenu("&Enhance")
        enhance_menu.addAction(self.enhance_action)
        enhance_menu.addAction(self.cancel_action)
        enhance_menu.addSeparator()
        enhance_menu.addAction(self.models_action)
        enhance_menu.addAction(self.settings_action)
        view_menu = menus.addMenu("&View")
        for action in (self.slider_action, self.side_action, None, self.zoom_in_action, self.zoom_out_action,
                       self.fit_action, self.actual_action):
            view_menu.addSeparator() if action is None else view_menu.addAction(action)
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.progress_label = QLabel("", self)
        self.progress = QProgressBar(self)
        self.progress.setMinimumWidth(240)
        self.progress.setMaximumWidth(320)
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.device_label = QLabel("Device: …", self)
        status.addWidget(self.progress_label, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.device_label)

    # ------------------------------------------------------------------ helpers run in the pool
    def _start_helper(self, runnable: CallRunnable, on_done, on_failed) -> None:
        self._helpers.add(runnable)

        def finish(slot, value):
            self._helpers.discard(runnable)
            slot(value)

        runnable.signals.done.connect(lambda value: finish(on_done, value))
        runnable.signals.failed.connect(lambda message: finish(on_failed, message))
        self.pool.start(runnable)

    def refresh_device(self) -> None:
        def shown(report) -> None:
            text, found, hint = report
            self._device_report = (text, found, hint)
            self.device_label.setText(f"Device: {text}" + (" · NVIDIA GPU not used" if hint else ""))
            self.device_label.setToolTip(
                "Found: " + ", ".join(found) + f"\nUses: {text}" + (f"\n\n{hint}" if hint else ""))
            if hint:
                self.statusBar().showMessage(hint, 30000)

        self._start_helper(
            CallRunnable(device_report, self.settings.device, self.settings.precision),
            shown,
            lambda message: shown((f"unavailable ({message})", [], "")),
        )

    # ------------------------------------------------------------------ models
    def refresh_models(self, select: str | None = None) -> None:
        wanted = select or self.selected_model_id() or self.settings.model_id
        model = QStandardItemModel(self)
        first_installed = None
        for group, items in grouped_catalog():
            header = QStandardItem(group)
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            font = header.font()
            font.setBold(True)
            header.setFont(font)
            model.appendRow(header)
            for entry, installed in items:
                item = QStandardItem("    " + entry_label(entry, installed))
                item.setData(entry.id, ENTRY_ID_ROLE)
                item.setData(installed, INSTALLED_ROLE)
                item.setToolTip(entry.description or entry.name)
                model.appendRow(item)
                if installed and first_installed is None:
                    first_installed = entry.id
        self.model_combo.blockSignals(True)
        self.model_combo.setModel(model)
        self.model_combo.blockSignals(False)
        if (
            not self._select_row(wanted or "")
            and not self._select_row(_default_model_id() or "")  # the catalog's default (the bundled one)
            and not self._select_row(first_installed or "")
        ):
            # Nothing installed: show the first entry; Enhance then offers to download it or to import a model.
            for row in range(model.rowCount()):
                if model.item(row).data(ENTRY_ID_ROLE):
                    self.model_combo.setCurrentIndex(row)
                    break

    def select_model(self, model_id: str) -> bool:
        """Select a model by id; a model installed or imported since the picker was filled is picked up too."""
        if not model_id:
            return False
        if self._select_row(model_id):
            return True
        self.refresh_models(select=model_id)
        return self.selected_model_id() == model_id

    def _select_row(self, model_id: str) -> bool:
        model = self.model_combo.model()
        for row in range(model.rowCount()):
            if model.item(row).data(ENTRY_ID_ROLE) == model_id:
                self.model_combo.setCurrentIndex(row)
                return True
        return False

    def selected_model_id(self) -> str | None:
        if not hasattr(self, "model_combo") or self.model_combo.currentIndex() < 0:
            return None
        return self.model_combo.currentData(ENTRY_ID_ROLE)

    def _model_changed(self) -> None:
        model_id = self.selected_model_id()
        if model_id:
            self.settings.model_id = model_id
        self._update_enabled()

    # ------------------------------------------------------------------ opening photos
    def choose_photo(self) -> None:
        start = str(self.photo_path.parent) if self.photo_path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", start, image_filter())
        if path:
            self.open_photo(path)

    def open_photo(self, path: str | Path) -> None:
        """Decode the photo in the pool and show it when ready (`photoLoaded` is emitted then)."""
        if self._job is not None:
            self.statusBar().showMessage("Wait for the running job to finish, or cancel it, before opening another photo", 5000)
            return
        self._load_token += 1
        token = self._load_token
        self.progress_label.setText(f"Opening {Path(path).name}…")
        self._start_helper(
            CallRunnable(load_photo_with_levels, str(path)),
            lambda value: self._photo_ready(token, value),
            lambda message: self._photo_failed(token, message),
        )

    def _photo_ready(self, token: int, value) -> None:
        if token != self._load_token:
            return  # a newer open superseded this one
        path, image, levels = value
        self.photo_path = Path(path)
        self.last_output = None
        self.compare.set_before(image, levels)
        self.settings.add_recent(path)
        self.setWindowTitle(f"{self.photo_path.name} – Photo Enhancer")
        self.progress_label.setText(f"{self.photo_path.name}: {image.width()}×{image.height()}")
        self._update_enabled()
        self.photoLoaded.emit(str(self.photo_path))

    def _photo_failed(self, token: int, message: str) -> None:
        if token == self._load_token:
            self.progress_label.setText("")
            self.show_error("Could not open the photo", message)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        existing = [p for p in self.settings.recent_files if Path(p).exists()]
        for path in existing:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_photo(p))
        if not existing:
            empty = self.recent_menu.addAction("No recent photos")
            empty.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.recent_files = []

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not files:
            return
        event.acceptProposedAction()
        if files[0].is_dir() or len(files) > 1:
            self.open_batch(folder=str(files[0] if files[0].is_dir() else files[0].parent))
        else:
            self.open_photo(files[0])

    # ------------------------------------------------------------------ enhancing
    def _update_enabled(self) -> None:
        running = self._job is not None
        can_enhance = self.photo_path is not None and not running and self.selected_model_id() is not None
        self.enhance_action.setEnabled(can_enhance)
        self.enhance_button.setEnabled(can_enhance)
        self.cancel_action.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.open_action.setEnabled(not running)
        self.model_combo.setEnabled(not running)
        self.show_folder_action.setEnabled(self.last_output is not None)

    def make_job(self, inputs: list[str], models: list[str]) -> Job:
        s = self.settings
        return Job(
            inputs=inputs,
            models=models,
            output_dir=s.output_dir or None,
            suffix=s.suffix or None,
            format=s.output_format,
            quality=s.quality,
            tile=s.tile_value(),
            device=s.device,
            precision=s.precision,
            backend=s.backend,
        )

    def enhance(self) -> None:
        if self._job is not None or self.photo_path is None:
            return
        model_id = self.selected_model_id()
        if not model_id:
            return
        try:
            entry = store.get_entry(model_id)
        except Exception as exc:  # noqa: BLE001 - a broken catalog entry is shown, not raised
            self.show_error("Model unavailable", str(exc))
            return
        if not store.is_installed(entry):
            self._offer_install(entry)
            return
        job = self.make_job([str(self.photo_path)], [model_id])
        runnable = JobRunnable(job, self.cache, preview=True)
        runnable.signals.job_started.connect(self._job_started)
        runnable.signals.tile_progress.connect(self._tile_progress)
        runnable.signals.finished.connect(self._job_finished)
        runnable.signals.cancelled.connect(self._job_cancelled)
        runnable.signals.failed.connect(self._job_failed)
        self._job = runnable
        self._eta.reset()
        self.compare.clear_after()
        self.last_output = None
        self.progress.setRange(0, 0)  # busy until the first tile reports (loading the model)
        self.progress.show()
        self.progress_label.setText(f"Loading {entry.name}…")
        self._update_enabled()
        self.jobCreated.emit(runnable)
        self.pool.start(runnable)

    def _offer_install(self, entry) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Model not installed")
        size = f" ({format_size(entry.size)})" if entry.size else ""
        box.setText(f"{entry.name} is not installed yet.")
        box.setInformativeText(
            f"Download it{size} in the model manager, or import a model file you have. "
            f"Licence: {entry.license}."
        )
        manager = box.addButton("Download in the Model Manager…", QMessageBox.ButtonRole.AcceptRole)
        import_file = box.addButton("Import a Model File…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is manager:
            self.open_model_manager(select=entry.id)
        elif box.clickedButton() is import_file:
            self.open_model_manager(import_file=True)

    def _job_started(self, total: int, models, notes=()) -> None:
        self.progress_label.setText("Enhancing with " + ", ".join(models) + "".join(f" · {n}" for n in notes))
        if models and " on " in models[0]:
            # The engine's own words for where this model runs, e.g. "CPU, bf16" (precision depends on the model).
            hint = self._device_report[2]
            self.device_label.setText("Device: " + models[0].rsplit(" on ", 1)[1]
                                      + (" · NVIDIA GPU not used" if hint else ""))
        self._job_notes = tuple(notes)

    def _tile_progress(self, index: int, done: int, total: int) -> None:
        if total <= 0:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        eta = self._eta.update(done, total)
        self.progress.setFormat(f"%p%  ·  {format_eta(eta)}")

    def _end_job(self) -> None:
        self._job = None
        self.progress.hide()
        self.progress.setFormat("%p%")
        self._update_enabled()

    def _job_finished(self, results, preview) -> None:
        self._end_job()
        result = results[0] if results else None
        if result is None or result.status != "ok":
            self.show_error("Enhancing failed", result.error if result else "No file was processed.")
            self.jobEnded.emit("failed")
            return
        self.last_output = Path(result.output)
        if preview is not None:
            image, levels = preview
            self.compare.set_after(image, levels)
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        notes += "".join(f" · {n}" for n in self._job_notes)
        if result.backend:  # what ran the networks: torch, openvino or onnxruntime
            notes += f" · through {result.backend}"
        self.progress_label.setText(f"Saved {self.last_output.name} in {result.seconds:.1f} s{notes}")
        self._update_enabled()
        self.jobEnded.emit("ok")

    def _job_cancelled(self, results) -> None:
        self._end_job()
        self.progress_label.setText("Cancelled; nothing was written")
        self.jobEnded.emit("cancelled")

    def _job_failed(self, message: str) -> None:
        self._end_job()
        self.progress_label.setText("")
        self.show_error("Enhancing failed", message)
        self.jobEnded.emit("failed")

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.progress_label.setText("Cancelling…")

    def is_busy(self) -> bool:
        return self._job is not None

    # ------------------------------------------------------------------ other commands
    def show_in_folder(self) -> None:
        if self.last_output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_output.parent)))

    def set_compare_mode(self, mode: str) -> None:
        self.compare.set_mode(mode)
        self.settings.compare_mode = mode
        (self.side_action if mode == "side" else self.slider_action).setChecked(True)

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            dialog.apply(self.settings)
            self.settings.save()
            self.refresh_device()

    def open_batch(self, folder: str | None = None) -> None:
        from .batch_dialog import BatchDialog

        dialog = BatchDialog(self.settings, self.cache, self, folder=folder, model_id=self.selected_model_id())
        dialog.exec()

    def open_model_manager(self, select: str | None = None, import_file: bool = False) -> None:
        from .model_manager import ModelManagerDialog

        dialog = ModelManagerDialog(self, select=select if isinstance(select, str) else None)
        imported: list[str] = []
        dialog.importEnded.connect(lambda how: imported.append(dialog.selected_id() or "") if how == "ok" else None)
        if import_file:
            dialog.show()
            dialog.choose_import()
        dialog.exec()
        # A model imported right now is what the user wants to use next.
        self.refresh_models(select=imported[-1] if imported else None)

    def shortcut_rows(self) -> list[tuple[str, str]]:
        rows = []
        for action in (self.open_action, self.enhance_action, self.cancel_action, self.show_folder_action,
                       self.batch_action, self.models_action, self.settings_action, self.slider_action,
                       self.side_action, self.zoom_in_action, self.zoom_out_action, self.fit_action,
                       self.actual_action, self.shortcuts_action, self.quit_action):
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            rows.append((action.text().replace("&", "").rstrip("…"), keys))
        rows.append(("Zoom at the pointer", "Mouse wheel"))
        rows.append(("Pan", "Drag the picture"))
        rows.append(("Move the split", "Drag the round handle"))
        return rows

    def show_shortcuts(self) -> None:
        lines = "".join(f"<tr><td>{name}</td><td>&nbsp;&nbsp;<b>{keys}</b></td></tr>" for name, keys in self.shortcut_rows())
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{lines}</table>")

    def show_about(self) -> None:
        from enhancer import __version__

        text, found, hint = self._device_report
        devices_html = (f"<br><br>Devices found: {html.escape(', '.join(found)) if found else 'checking…'}"
                        f"<br>Uses: {html.escape(text)}")
        if hint:
            devices_html += f"<br><br><b>{html.escape(hint)}</b>"
        QMessageBox.about(
            self,
            "About Photo Enhancer",
            f"<b>Photo Enhancer</b> {__version__}<br>Upscale, denoise, deblur and repair photos on your own computer "
            "with SwinIR, Restormer and MobileSR." + devices_html,
        )

    def show_error(self, title: str, message: str) -> None:
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()  # non-blocking, so tests and queued signals keep flowing

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        """Cancel a running job and wait for the worker: the pipeline removes what it started, so no partial file."""
        if self._job is not None:
            self._job.cancel()
        for helper in list(self._helpers):
            helper.cancel()
        self.pool.waitForDone()
        self.settings.save()
        super().closeEvent(event)
