"""The main window: open a photo, pick a model, Enhance, compare before and after."""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRect, QThreadPool, QTimer, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDesktopServices,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from enhancer import store
from enhancer.catalog import format_size
from enhancer.imageio import IMAGE_EXTENSIONS
from enhancer.pipeline import Job, ModelCache
from enhancer.sizing import OutputSize

from .compare_view import CompareView
from .eta import EtaEstimator, format_eta
from .imaging import read_image
from .model_list import entry_label, grouped_catalog
from .settings import Settings
from .size_picker import OutputSizePicker
from .window_state import restore_window, save_window
from .workers import CallRunnable, JobRunnable, describe_device, load_photo_with_levels, stop_workers

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
    estimateShown = Signal(str)  # the estimate's text, e.g. "about 6 min on the CPU"
    previewEnded = Signal(str)  # "ok", "failed", "cancelled", "dropped" (another photo was opened meanwhile)
    copied = Signal(str)  # the result's path, or "preview"

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
        self._estimate: CallRunnable | None = None  # the estimate being computed
        self._estimate_token = 0  # bumped on every change of photo, model, size or device: older estimates are dropped
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(300)
        self._estimate_timer.timeout.connect(self._start_estimate)
        self.estimated = None  # the estimate shown (enhancer.estimate.Estimate), or None
        self.lighter = None  # (model id, Estimate) of the lighter model offered, or None
        self._preview: CallRunnable | None = None  # the region preview being computed
        self.last_preview = None  # [(RegionResult, QImage)] of the preview shown
        self.last_pasted: Path | None = None
        self._closed = False

        self.setWindowTitle("Photo Enhancer")
        self.setAcceptDrops(True)
        self.resize(1100, 760)
        self.compare = CompareView(self)
        self.compare.set_mode(self.settings.compare_mode)
        self._build_actions()
        self._build_toolbar()
        self.side_panel = self._build_side_panel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("main-splitter")  # its state is saved by name
        self.splitter.addWidget(self.compare)
        self.splitter.addWidget(self.side_panel)
        self.splitter.setCollapsible(0, False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([900, 280])
        self.setCentralWidget(self.splitter)
        self._build_menus()
        self._build_status_bar()
        self.jobEnded.connect(lambda how: self._estimate_if_missing())
        self.refresh_models()
        self._update_enabled()
        restore_window(self, self.settings)  # after the toolbar and splitters exist: their state is restored too
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
        self.preview_action = self._action("&Preview Region", self.preview_region, ["P"],
                                           "Run the model on the region only and show it in the slider (P)")
        self.region_tool_action = self._action("Pick &Region", lambda: None, ["R"],
                                               "Drag on the photo to choose the region to preview (R); Shift+drag "
                                               "always does")
        self.region_tool_action.setCheckable(True)
        self.region_tool_action.toggled.connect(self._region_tool_toggled)
        self.clear_region_action = self._action("C&lear Region", self.clear_region, [],
                                                "Remove the region and its preview")
        self.paste_action = self._action("&Paste Image", self.paste, [QKeySequence.StandardKey.Paste],
                                         "Open the image on the clipboard (saved as a PNG first)")
        self.copy_action = self._action("&Copy Result", self.copy_result, [QKeySequence.StandardKey.Copy],
                                        "Copy the enhanced image to the clipboard")

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("main-toolbar")  # saveState/restoreState find toolbars by name
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        bar.addAction(self.open_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Model: "))
        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(26)  # the toolbar must fit at 1280 px; the popup shows full names
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
        # The time estimate sits next to Enhance; a lighter model is offered there when the run would be long.
        self.estimate_label = QLabel("", self)
        self.estimate_label.setObjectName("estimate")
        self.estimate_label.setContentsMargins(6, 0, 4, 0)
        bar.addWidget(self.estimate_label)
        self.lighter_label = QLabel("", self)
        self.lighter_label.setObjectName("lighter-model")
        self.lighter_label.setTextFormat(Qt.TextFormat.RichText)
        self.lighter_label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.lighter_label.linkActivated.connect(self._lighter_chosen)
        self.lighter_action = bar.addWidget(self.lighter_label)  # a toolbar widget is shown and hidden by its action
        self.lighter_action.setVisible(False)
        bar.addSeparator()
        # Short texts on the toolbar so that it fits at 1280 px; menus and tooltips keep the full names.
        for action, short in ((self.slider_action, "Slider"), (self.side_action, "Side by Side"),
                              (self.zoom_out_action, "−"), (self.zoom_in_action, "+"), (self.fit_action, "Fit"),
                              (self.actual_action, "1:1")):
            action.setIconText(short)
            if not action.toolTip() or action.toolTip() == short:
                action.setToolTip(action.text().replace("&", ""))
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
        edit_menu = menus.addMenu("&Edit")
        edit_menu.addAction(self.paste_action)
        edit_menu.addAction(self.copy_action)
        enhance_menu = menus.addMenu("&Enhance")
        enhance_menu.addAction(self.enhance_action)
        enhance_menu.addAction(self.cancel_action)
        enhance_menu.addSeparator()
        enhance_menu.addAction(self.preview_action)
        enhance_menu.addAction(self.region_tool_action)
        enhance_menu.addAction(self.clear_region_action)
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
        if self._closed:
            return
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
        self._refresh_compare_models()
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
        self._show_result_size()
        self.request_estimate()
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
        self.last_preview = None
        self.preview_label.setText("")
        self._show_result_size()
        self.request_estimate()
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
        if not self.is_busy() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not files:
            return
        if self.is_busy():  # a drop starts or changes a job: not while one runs
            self.statusBar().showMessage("Wait for the running job to finish, or cancel it, before dropping photos", 5000)
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
        # Batches and store changes (import, download, delete) wait until the running job is done.
        self.batch_action.setEnabled(not running)
        self.models_action.setEnabled(not running)
        self.show_folder_action.setEnabled(self.last_output is not None)
        self.cancel_action.setEnabled(running or self._preview is not None)  # Esc stops a preview too
        self.cancel_button.setEnabled(self.cancel_action.isEnabled())
        if self._preview is not None:  # one run at a time: the preview ends in seconds
            self.enhance_action.setEnabled(False)
            self.enhance_button.setEnabled(False)
        can_preview = self.photo_path is not None and not running and self._preview is None
        self.preview_action.setEnabled(can_preview and self.selected_model_id() is not None)
        self.preview_button.setEnabled(self.preview_action.isEnabled())
        self.compare_model_combo.setEnabled(self._preview is None and not running)
        self.clear_region_action.setEnabled(self.compare.selection() is not None or self.compare.has_region_result())
        self.paste_action.setEnabled(not running)
        self.copy_action.setEnabled(self.last_output is not None or self.compare.has_region_result())
        self.size_picker.setEnabled(not running)

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
            strip_metadata=s.strip_metadata,
            output_size=self._saved_output_size(),
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
        if self._preview is not None:
            return  # one thing at a time on the machine: the preview ends in seconds
        if self._estimate is not None:
            self._estimate.cancel()  # it would only slow the run down
            self._estimate_token += 1
            self.estimate_label.setText("")
        self._estimate_timer.stop()
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
        elif self._preview is not None:
            self._preview.cancel()
            self.preview_label.setText("Cancelling the preview…")

    def is_busy(self) -> bool:
        return self._job is not None

    # ------------------------------------------------------------------ output size
    def _build_side_panel(self) -> QWidget:
        """The panel right of the photo: the output size, and the region preview with its A/B model."""
        panel = QWidget(self)
        panel.setObjectName("side-panel")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 8, 8, 8)

        layout.addWidget(_heading("Output size", panel))
        self.size_picker = OutputSizePicker(self._saved_output_size(), panel)
        self.size_picker.changed.connect(self._output_size_changed)
        self.compare.selectionChanged.connect(lambda rect: self._update_enabled())
        layout.addWidget(self.size_picker)

        layout.addSpacing(12)
        layout.addWidget(_heading("Region preview", panel))
        hint = QLabel("Shift+drag on the photo (or turn on Pick Region and drag) to choose a region; without one, "
                      "the middle of the visible part is used.", panel)
        hint.setWordWrap(True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(hint)
        layout.addWidget(QLabel("Compare with:", panel))
        self.compare_model_combo = QComboBox(panel)
        self.compare_model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.compare_model_combo.setMinimumContentsLength(18)
        self.compare_model_combo.setToolTip("A second model for an A/B of the same region: A (the chosen model) "
                                            "left of the split, B right of it")
        layout.addWidget(self.compare_model_combo)
        buttons = QHBoxLayout()
        self.preview_button = QPushButton("Preview", panel)
        self.preview_button.setToolTip("Run the model on the region only and show it in the slider (P)")
        self.preview_button.clicked.connect(self.preview_region)
        self.region_button = QToolButton(panel)
        self.region_button.setDefaultAction(self.region_tool_action)
        self.clear_region_button = QToolButton(panel)
        self.clear_region_button.setDefaultAction(self.clear_region_action)
        buttons.addWidget(self.preview_button, 1)
        buttons.addWidget(self.region_button)
        buttons.addWidget(self.clear_region_button)
        layout.addLayout(buttons)
        self.preview_label = QLabel("", panel)
        self.preview_label.setWordWrap(True)
        layout.addWidget(self.preview_label)
        layout.addStretch(1)
        panel.setMinimumWidth(230)
        panel.setMaximumWidth(460)
        return panel

    def _saved_output_size(self) -> OutputSize:
        try:
            return OutputSize.from_text(self.settings.output_size or "model")
        except ValueError:
            return OutputSize()

    def output_size(self) -> OutputSize:
        return self.size_picker.output_size()

    def set_output_size(self, size: OutputSize | str) -> None:
        """Choose the output size (also remembered in Settings), as the control would."""
        size = OutputSize.from_text(size) if isinstance(size, str) else size
        self.size_picker.set_output_size(size)
        self._output_size_changed(size)

    def _output_size_changed(self, size: OutputSize) -> None:
        self.settings.output_size = size.to_text()
        self.request_estimate()

    def _selected_scale(self) -> int | None:
        model_id = self.selected_model_id()
        if not model_id:
            return None
        try:
            return int(store.get_entry(model_id).scale)
        except Exception:  # noqa: BLE001 - an entry that cannot be read: no size shown, Enhance will say why
            return None

    def _show_result_size(self) -> None:
        size = self.compare.before_size()
        photo = (size.width(), size.height()) if size is not None and self.photo_path is not None else None
        self.size_picker.set_photo(photo, self._selected_scale())

    # ------------------------------------------------------------------ time estimate
    def request_estimate(self) -> None:
        """Estimate the run for the open photo with the chosen model, size and device, in the pool, soon (changes in
        quick succession make one estimate). A result for an older choice is dropped."""
        self._estimate_token += 1
        if self._estimate is not None:
            self._estimate.cancel()
        self.lighter_action.setVisible(False)
        self.estimated = None
        self.lighter = None
        self.enhance_button.setToolTip("Enhance the photo (Ctrl+E)")
        if self.photo_path is None or not self.selected_model_id():
            self.estimate_label.setText("")
            return
        self.estimate_label.setText("estimating the time…")
        self.estimate_label.setToolTip("")
        self._estimate_timer.start()

    def _estimate_if_missing(self) -> None:
        """After a run or a preview that stopped the estimate, estimate again (the machine is free now)."""
        if self.estimated is None and self._estimate is None and not self._estimate_timer.isActive():
            self.request_estimate()

    def _start_estimate(self) -> None:
        model_id = self.selected_model_id()
        size = self.compare.before_size()
        if self.photo_path is None or not model_id or size is None:
            return
        if self._job is not None or self._preview is not None:
            self._estimate_timer.start()  # the machine is busy: timing a tile now would measure the load
            return
        try:
            installed = store.is_installed(store.get_entry(model_id))
        except Exception:  # noqa: BLE001
            installed = False
        if not installed:
            self.estimate_label.setText("")
            return
        token = self._estimate_token
        job = self.make_job([str(self.photo_path)], [model_id])
        runnable = CallRunnable(estimate_for_window, job, size.width(), size.height(), self.cache)
        runnable.args = (*runnable.args, runnable.cancel_flag)
        self._estimate = runnable

        def done(value) -> None:
            if self._estimate is runnable:
                self._estimate = None
            if token == self._estimate_token:
                self._estimate_shown(*value)

        def failed(message: str) -> None:
            if self._estimate is runnable:
                self._estimate = None
            if token == self._estimate_token and message != "cancelled":
                self.estimate_label.setText("")
                self.estimate_label.setToolTip(f"No time estimate: {message}")

        self._start_helper(runnable, done, failed)

    def _estimate_shown(self, estimate, lighter) -> None:
        self.estimated = estimate
        self.estimate_label.setText(estimate.text)
        # Also on the button: a narrow window puts the label in the toolbar's overflow menu.
        self.enhance_button.setToolTip(f"Enhance the photo (Ctrl+E): {estimate.text}")
        self.estimate_label.setToolTip(f"Measured on one tile ({estimate.tiles} tiles in all) before the run")
        self.lighter = lighter
        if lighter is not None:
            model_id, quick = lighter
            try:
                name = store.get_entry(model_id).name
            except Exception:  # noqa: BLE001
                name = model_id
            self.lighter_label.setText(f'or <a href="{html.escape(model_id)}">{html.escape(_short_name(name))}: '
                                       f"{html.escape(_short_estimate(quick.text))}</a>")
            self.lighter_label.setToolTip(f"{name}, a lighter model for the same task: {quick.text}. "
                                          "Click to choose it.")
            self.lighter_action.setVisible(True)
        self.estimateShown.emit(estimate.text)

    def _lighter_chosen(self, model_id: str) -> None:
        self.select_model(model_id)

    # ------------------------------------------------------------------ region preview
    def _refresh_compare_models(self) -> None:
        """The second model for an A/B: the same list as the model picker, after "nothing" (before/after)."""
        wanted = self.compare_model_combo.currentData(ENTRY_ID_ROLE) if self.compare_model_combo.count() else None
        source = self.model_combo.model()
        model = QStandardItemModel(self)
        nothing = QStandardItem("Nothing (before and after)")
        model.appendRow(nothing)
        for row in range(source.rowCount()):
            model.appendRow(source.item(row).clone())
        self.compare_model_combo.setModel(model)
        self.compare_model_combo.setCurrentIndex(0)
        if wanted:
            self.set_compare_model(wanted)

    def set_compare_model(self, model_id: str | None) -> bool:
        """The model B of an A/B preview; None for a plain before/after preview."""
        model = self.compare_model_combo.model()
        for row in range(model.rowCount()):
            if model.item(row).data(ENTRY_ID_ROLE) == model_id or (model_id is None and row == 0):
                self.compare_model_combo.setCurrentIndex(row)
                return True
        return False

    def compare_model_id(self) -> str | None:
        if self.compare_model_combo.currentIndex() <= 0:
            return None
        return self.compare_model_combo.currentData(ENTRY_ID_ROLE)

    def preview_box(self) -> tuple[QRect, str] | None:
        """The region a preview runs on, in photo pixels, and how it was chosen (for the status line)."""
        chosen = self.compare.selection()
        if chosen is not None:
            limit, how = PREVIEW_MAX_SIDE, "the region"
        else:
            chosen = self.compare.visible_region()
            if chosen is None:
                return None
            limit, how = PREVIEW_VISIBLE_SIDE, "the visible part"
        if chosen.width() > limit or chosen.height() > limit:
            width, height = min(chosen.width(), limit), min(chosen.height(), limit)
            chosen = QRect(chosen.left() + (chosen.width() - width) // 2, chosen.top() + (chosen.height() - height) // 2,
                           width, height)
            how = f"the middle {width}×{height} of {how}"
        return chosen, how

    def preview_region(self) -> None:
        """Run the chosen model (and the A/B model) on the region, off the UI thread; the result shows in the slider."""
        if self._job is not None or self._preview is not None or self.photo_path is None:
            return
        model_ids = [self.selected_model_id(), self.compare_model_id()]
        model_ids = [m for m in model_ids if m]
        if not model_ids:
            return
        for model_id in model_ids:
            try:
                entry = store.get_entry(model_id)
            except Exception as exc:  # noqa: BLE001
                self.show_error("Model unavailable", str(exc))
                return
            if not store.is_installed(entry):
                self._offer_install(entry)
                return
        found = self.preview_box()
        if found is None:
            return
        box, how = found
        if self._estimate is not None:
            self._estimate.cancel()
        jobs = [self.make_job([str(self.photo_path)], [m]) for m in model_ids]
        edges = (box.left(), box.top(), box.left() + box.width(), box.top() + box.height())
        runnable = CallRunnable(run_region_previews, jobs, str(self.photo_path), edges, self.cache)
        # The worker gets the cancel flag and a progress callback, which crosses to this thread as a queued signal.
        runnable.args = (*runnable.args, runnable.cancel_flag,
                         lambda step, done, total: runnable.signals.progress.emit(step, done, total))
        self._preview = runnable
        token = self._load_token
        started = time.monotonic()
        doing = f"Previewing {how} ({box.width()}×{box.height()} px)"
        self.preview_label.setText(doing + "…")
        models_text = [_model_name(m) for m in model_ids]

        def progress(step, done, total) -> None:
            if self._preview is runnable and total:
                self.preview_label.setText(f"{doing}: {models_text[step]}, tile {done} of {total}…")

        runnable.signals.progress.connect(progress)
        self._update_enabled()

        def done(results) -> None:
            self._preview = None
            self._update_enabled()
            self._estimate_if_missing()
            if token != self._load_token:
                self.previewEnded.emit("dropped")  # another photo was opened meanwhile
                return
            self._preview_shown(results, how, time.monotonic() - started)

        def failed(message: str) -> None:
            self._preview = None
            self._update_enabled()
            self._estimate_if_missing()
            if message == "cancelled":
                self.preview_label.setText("Preview cancelled")
                self.previewEnded.emit("cancelled")
                return
            self.preview_label.setText("")
            self.show_error("Preview failed", message)
            self.previewEnded.emit("failed")

        self._start_helper(runnable, done, failed)

    def _preview_shown(self, results, how: str, seconds: float) -> None:
        first, first_image = results[0]
        left, top, right, bottom = first.box
        box = QRect(left, top, right - left, bottom - top)
        name_a = _model_name(first.models[0]) if first.models else "model"
        if len(results) > 1:
            second, second_image = results[1]
            name_b = _model_name(second.models[0]) if second.models else "model"
            self.compare.set_region_result(box, first_image, second_image, f"A: {name_a}", f"B: {name_b}")
            what = f"A/B of {how}: {name_a} {first.seconds:.1f} s, {name_b} {second.seconds:.1f} s"
        else:
            self.compare.set_region_result(box, None, first_image, "Before", f"After: {name_a}")
            what = f"Preview of {how}, {box.width()}×{box.height()} px: {name_a} in {first.seconds:.1f} s"
        self.preview_label.setText(what + f" ({seconds:.1f} s in all). Nothing was saved.")
        self.last_preview = results
        self._update_enabled()
        self.previewEnded.emit("ok")

    def clear_region(self) -> None:
        self.compare.clear_selection()
        self.compare.clear_region_result()
        self.preview_label.setText("")
        self._update_enabled()

    def _region_tool_toggled(self, on: bool) -> None:
        self.compare.set_select_mode(on)

    # ------------------------------------------------------------------ clipboard
    def paste(self) -> None:
        """Ctrl+V: an image on the clipboard is saved as a PNG in the paste folder and opened; a copied photo file is
        opened where it is."""
        if self._job is not None:
            self.statusBar().showMessage("Wait for the running job to finish, or cancel it, before pasting", 5000)
            return
        mime = QGuiApplication.clipboard().mimeData()
        # A copied file first: opened where it is, its metadata and bit depth intact (some file managers add a
        # thumbnail image to the same clipboard).
        files = [Path(url.toLocalFile()) for url in (mime.urls() if mime is not None else []) if url.isLocalFile()]
        photos = [f for f in files if f.is_file()]
        if photos:
            self.open_photo(photos[0])
            return
        if mime is not None and mime.hasImage():
            image = QImage(mime.imageData())
            if image.isNull():
                self.show_error("Nothing to paste", "The clipboard says it holds an image, but it could not be read.")
                return
            folder = self.settings.paste_folder
            self.progress_label.setText("Saving the pasted image…")
            self._start_helper(
                CallRunnable(save_pasted_image, image, folder),
                self._pasted,
                self._paste_failed,
            )
            return
        self.show_error("Nothing to paste", f"The clipboard holds {_clipboard_content(mime)}, not an image. Copy an "
                        "image (or a photo file) and paste again.")

    def _paste_failed(self, message: str) -> None:
        self.progress_label.setText("")
        self.show_error("Could not save the pasted image", message)

    def _pasted(self, path) -> None:
        self.last_pasted = Path(path)
        self.statusBar().showMessage(f"Pasted image saved as {self.last_pasted}", 10000)
        self.open_photo(self.last_pasted)

    def copy_result(self) -> None:
        """Ctrl+C: the enhanced image (the saved result, or else the region preview's) goes to the clipboard."""
        if self.last_output is not None and self.last_output.exists():
            output = self.last_output
            self.progress_label.setText(f"Copying {output.name}…")

            def copied(image) -> None:
                QGuiApplication.clipboard().setImage(image)
                self.progress_label.setText(f"Copied {output.name} ({image.width()}×{image.height()}) to the clipboard")
                self.copied.emit(str(output))

            self._start_helper(CallRunnable(read_image, str(output)), copied,
                               lambda message: self.show_error("Could not copy the result", message))
            return
        if self.last_preview and self.compare.has_region_result():
            image = self.last_preview[-1][1]
            QGuiApplication.clipboard().setImage(image)
            self.progress_label.setText(f"Copied the region preview ({image.width()}×{image.height()}) to the clipboard")
            self.copied.emit("preview")
            return
        self.show_error("Nothing to copy", "There is no result yet: Enhance the photo (or preview a region) first.")

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
            self.request_estimate()  # the device, backend or tile may have changed

    def open_batch(self, folder: str | None = None) -> None:
        from .batch_dialog import BatchDialog

        if self.is_busy():
            return
        dialog = BatchDialog(self.settings, self.cache, self, folder=folder, model_id=self.selected_model_id())
        dialog.exec()
        if self._saved_output_size() != self.output_size():  # the batch dialog shares the output size setting
            self.size_picker.set_output_size(self._saved_output_size())
            self.request_estimate()

    def open_model_manager(self, select: str | None = None, import_file: bool = False) -> None:
        from .model_manager import ModelManagerDialog

        if self.is_busy():
            return
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
                       self.batch_action, self.models_action, self.settings_action, self.paste_action,
                       self.copy_action, self.preview_action, self.region_tool_action, self.slider_action,
                       self.side_action, self.zoom_in_action, self.zoom_out_action, self.fit_action,
                       self.actual_action, self.shortcuts_action, self.quit_action):
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            rows.append((action.text().replace("&", "").rstrip("…"), keys))
        rows.append(("Zoom at the pointer", "Mouse wheel"))
        rows.append(("Pan", "Drag the picture"))
        rows.append(("Move the split", "Drag the round handle"))
        rows.append(("Choose a region to preview", "Shift+drag on the photo"))
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
        """Cancel a running job and wait for the worker at most `workers.CLOSE_WAIT_MS`: a worker inside one model load
        or one tile is left to finish in the background, and the engine writes nothing after a cancel."""
        self._closed = True  # no new helper (e.g. a pending estimate) starts after this
        self._estimate_timer.stop()
        stop_workers(self.pool, [self._job, *self._helpers])
        save_window(self, self.settings)
        self.settings.save()
        super().closeEvent(event)


# A region preview must come back in seconds: a drawn region is used up to this side (photo pixels), the visible part
# (when nothing is drawn) up to the smaller one, each around its middle.
PREVIEW_MAX_SIDE = 512
PREVIEW_VISIBLE_SIDE = 320


def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def _model_name(described: str) -> str:
    """"own-mobilesr-x4 (mobilesr x4) on CPU, fp32" -> "own-mobilesr-x4"."""
    return described.split(" (", 1)[0]


def _short_name(name: str) -> str:
    """A catalog name short enough for the toolbar: "Quick: ESPCN x4, our own (bundled)" -> "ESPCN x4"."""
    short = name.split(",", 1)[0].split(" (", 1)[0]
    return short.rsplit(": ", 1)[-1].strip() or name


def _short_estimate(text: str) -> str:
    """"about 40 s on the CPU" -> "about 40 s" (the device is said once, by the main estimate)."""
    return text.split(" on ", 1)[0]


def is_long_on_cpu(estimate) -> bool:
    """Whether to look for a lighter model: the engine's own threshold (`estimate.LONG_SECONDS`), on a CPU."""
    from enhancer.estimate import LONG_SECONDS

    return estimate.seconds > LONG_SECONDS and "cpu" in str(estimate.device).lower()


def estimate_for_window(job: Job, width: int, height: int, cache: ModelCache, cancel):
    """(the estimate for the open photo, the lighter model's (id, estimate) when the run is long on a CPU, else None).
    Runs in the pool: it times one tile."""
    from enhancer.estimate import estimate_photo, lighter_alternative

    estimate = estimate_photo(job, width, height, cache, cancel)
    lighter = lighter_alternative(job, cache, cancel) if is_long_on_cpu(estimate) else None
    return estimate, lighter


def run_region_previews(jobs: list[Job], path: str, box: tuple[int, int, int, int], cache: ModelCache, cancel,
                        progress=None):
    """Each job's chain on `box` of the photo (read once), with the result as a QImage for the view. In the pool.
    `progress(job_index, tiles_done, tiles_total)` as tiles finish."""
    from enhancer.imageio import read_photo
    from enhancer.preview import enhance_region

    from .imaging import to_qimage

    photo = read_photo(path)
    results = []
    for index, job in enumerate(jobs):
        report = (lambda done, total, index=index: progress(index, done, total)) if progress is not None else None
        result = enhance_region(job, photo, box, cache, cancel, progress=report)
        results.append((result, to_qimage(result.after)))
    return results


def save_pasted_image(image: QImage, folder: str | Path) -> Path:
    """Save a pasted image as "Pasted <date> <time>.png" in `folder` (made if missing), never replacing a file: a name
    that is taken gets -1, -2... In the pool."""
    from enhancer.atomic import AtomicFile

    target_folder = Path(folder).expanduser()
    try:
        target_folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{target_folder}: cannot make the folder for pasted images ({exc.strerror or exc}); "
                      "choose another one in Settings") from None
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("the pasted image could not be encoded as PNG")
    buffer.close()
    payload = bytes(data)
    stamp = time.strftime("%Y-%m-%d %H-%M-%S")
    for number in range(10000):
        target = target_folder / (f"Pasted {stamp}.png" if number == 0 else f"Pasted {stamp}-{number}.png")
        if os.path.lexists(target):
            continue
        try:
            with AtomicFile(target, "wb", replace=False) as fh:
                fh.write(payload)
        except FileExistsError:
            continue  # taken between the check and the move: the next number
        except OSError as exc:
            raise OSError(f"{target}: the pasted image could not be saved ({exc.strerror or exc})") from None
        return target
    raise OSError(f"{target_folder}: no free name for the pasted image")


def _clipboard_content(mime) -> str:
    if mime is None or not mime.formats():
        return "nothing"
    if mime.hasText():
        return "text"
    if mime.hasUrls():
        return "links that are not files on this computer"
    return "data of another kind (" + ", ".join(mime.formats()[:3]) + ")"
