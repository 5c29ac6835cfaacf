"""Batch a folder: recursive or not, a chain of models, output size and options, a time estimate for the whole batch
before it starts, per-file and overall progress, failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QThreadPool, QTimer, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from enhancer.pipeline import Job, ModelCache
from enhancer.sizing import OutputSize

from .eta import EtaEstimator, format_eta
from .model_list import grouped_catalog
from .settings import Settings
from .settings_dialog import OutputOptions
from .size_picker import OutputSizePicker
from .workers import CallRunnable, JobRunnable, stop_workers

# The estimate waits this long after the last change of the options, so that typing a folder does not start one per key.
ESTIMATE_DELAY_MS = 400


def _estimate_function():
    """`enhancer.estimate.estimate_job`, or None with an engine that has no estimate."""
    try:
        from enhancer.estimate import estimate_job
    except ImportError:
        return None
    return estimate_job


class BatchDialog(QDialog):
    batchEnded = Signal(str)  # "done", "cancelled", "failed"
    estimateShown = Signal(str)  # the estimate's text ("" when there is none for these options)

    def __init__(self, settings: Settings, cache: ModelCache | None = None, parent: QWidget | None = None,
                 folder: str | None = None, model_id: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Batch a folder")
        self.resize(720, 640)
        self.settings = settings
        self.cache = cache if cache is not None else ModelCache()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._job: JobRunnable | None = None
        self._estimate: CallRunnable | None = None
        self._estimate_token = 0
        self._eta = EtaEstimator()
        self._files_total = 0
        self._files_done = 0
        self._file_started_at = 0.0
        self._file_seconds: list[float] = []
        self.results: list = []
        self.output_folder: Path | None = None

        layout = QVBoxLayout(self)
        source = QGroupBox("Photos", self)
        source_form = QFormLayout(source)
        self.folder_edit = QLineEdit(folder or "", self)
        self.folder_edit.setPlaceholderText("A folder of photos")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        source_form.addRow("Folder:", row)
        self.recursive_check = QCheckBox("Include subfolders (the folder tree is kept in an output folder)", self)
        source_form.addRow("", self.recursive_check)
        layout.addWidget(source)

        models = QGroupBox("Models (checked ones run in this order, e.g. deblur then upscale)", self)
        models_layout = QVBoxLayout(models)
        self.model_list = QListWidget(self)
        self.model_list.setMaximumHeight(130)
        for group, items in grouped_catalog():
            for entry, installed in items:
                if not installed:
                    continue
                item = QListWidgetItem(f"{group}: {entry.name}")
                item.setData(Qt.ItemDataRole.UserRole, entry.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                chosen = entry.id == (model_id or settings.model_id)
                item.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)
                self.model_list.addItem(item)
        if self.model_list.count() == 0:
            self.model_list.addItem("No model is installed: download or import one in the model manager first.")
        models_layout.addWidget(self.model_list)
        layout.addWidget(models)

        output = QGroupBox("Output", self)
        output_layout = QVBoxLayout(output)
        size_row = QFormLayout()
        size_row.setContentsMargins(0, 0, 0, 0)
        self.size_picker = OutputSizePicker(_saved_output_size(settings), self,
                                            no_photo_text="Every photo of the batch is made this size (aspect kept)")
        size_row.addRow("Size:", self.size_picker)
        output_layout.addLayout(size_row)
        self.output = OutputOptions(settings, self)
        output_layout.addWidget(self.output)
        self.skip_check = QCheckBox("Skip photos whose output already exists", self)
        self.skip_check.setChecked(settings.skip_existing)
        output_layout.addWidget(self.skip_check)
        layout.addWidget(output)

        progress = QGroupBox("Progress", self)
        progress_form = QFormLayout(progress)
        self.file_label = QLabel("–", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        progress_form.addRow("File:", self.file_label)
        self.file_progress = QProgressBar(self)
        progress_form.addRow("This photo:", self.file_progress)
        self.overall_progress = QProgressBar(self)
        self.overall_progress.setFormat("%v of %m")
        progress_form.addRow("All photos:", self.overall_progress)
        self.eta_label = QLabel("", self)
        progress_form.addRow("", self.eta_label)
        self.estimate_label = QLabel("", self)
        self.estimate_label.setWordWrap(True)
        progress_form.addRow("Estimate:", self.estimate_label)
        self.failures = QTreeWidget(self)
        self.failures.setHeaderLabels(["Failed photo", "Reason"])
        self.failures.setRootIsDecorated(False)
        self.failures.setMinimumHeight(80)
        progress_form.addRow("Failures:", self.failures)
        layout.addWidget(progress, 1)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start", self)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open Output Folder", self)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_output_folder)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        self.summary_label = QLabel("", self)
        buttons.addWidget(self.summary_label, 1)
        for button in (self.start_button, self.cancel_button, self.open_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        # A new estimate whenever what it depends on changes (after a short pause).
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self.refresh_estimate)
        self.folder_edit.textChanged.connect(self._options_changed)
        self.recursive_check.toggled.connect(self._options_changed)
        self.model_list.itemChanged.connect(self._options_changed)
        self.size_picker.changed.connect(self._options_changed)
        self._options_changed()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def chosen_models(self) -> list[str]:
        chosen = []
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) and item.checkState() == Qt.CheckState.Checked:
                chosen.append(item.data(Qt.ItemDataRole.UserRole))
        return chosen

    def set_models(self, model_ids: list[str]) -> None:
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            wanted = item.data(Qt.ItemDataRole.UserRole) in model_ids
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)

    def make_job(self) -> Job:
        s = self.settings
        return Job(
            inputs=[self.folder_edit.text().strip()],
            models=self.chosen_models(),
            output_dir=self.output.output_dir() or None,
            suffix=self.output.suffix_edit.text().strip() or None,
            format=self.output.format_combo.currentText(),
            quality=self.output.quality_spin.value(),
            recursive=self.recursive_check.isChecked(),
            tile=s.tile_value(),
            device=s.device,
            precision=s.precision,
            backend=s.backend,
            skip_existing=self.skip_check.isChecked(),
            output_size=self.size_picker.output_size(),
            strip_metadata=s.strip_metadata,
        )

    # ------------------------------------------------------------------ estimate
    def _options_changed(self, *args) -> None:
        self._cancel_estimate()
        if self._job is None:
            self._estimate_timer.start()

    def _cancel_estimate(self) -> None:
        self._estimate_token += 1  # a result still on its way is for older options: dropped
        if self._estimate is not None:
            self._estimate.cancel()
            self._estimate = None

    def refresh_estimate(self) -> None:
        """Time the batch off the UI thread (one tile of the chain on the chosen device), then show it."""
        estimate_job = _estimate_function()
        folder = self.folder_edit.text().strip()
        if estimate_job is None or self._job is not None or not folder or not Path(folder).is_dir() \
                or not self.chosen_models():
            self._show_estimate("")
            return
        self._cancel_estimate()
        token = self._estimate_token
        cancel = threading.Event()
        try:
            job = self.make_job()
        except ValueError as exc:  # options the batch would refuse too: it says so when started
            self._show_estimate(f"no estimate ({exc})")
            return
        runnable = CallRunnable(estimate_job, job, self.cache, cancel)
        runnable.cancel_flag = cancel  # `runnable.cancel()` sets the flag the estimate watches
        runnable.signals.done.connect(lambda estimate: self._estimated(token, estimate))
        runnable.signals.failed.connect(lambda message: self._estimated(token, None, message))
        self._estimate = runnable
        self.estimate_label.setText("Estimating…")
        self.pool.start(runnable)

    def _estimated(self, token: int, estimate, message: str = "") -> None:
        if token != self._estimate_token:
            return
        self._estimate = None
        if estimate is not None:
            self._show_estimate(str(getattr(estimate, "text", estimate)))
        else:
            self._show_estimate("" if message == "cancelled" else f"no estimate ({message})")

    def _show_estimate(self, text: str) -> None:
        self.estimate_label.setText(text)
        self.estimateShown.emit(text)

    def start(self) -> None:
        if self._job is not None:
            return
        folder = self.folder_edit.text().strip()
        if not folder or not Path(folder).is_dir():
            self._say(f"Choose a folder of photos first{': ' + folder + ' is not a folder' if folder else ''}.")
            return
        if not self.chosen_models():
            self._say("Check at least one installed model.")
            return
        self.output.apply(self.settings)  # remember the output choices for the next batch
        self.settings.skip_existing = self.skip_check.isChecked()
        self.settings.output_size = self.size_picker.output_size().to_text()
        self._estimate_timer.stop()
        if self._estimate is not None:  # the batch queues behind it; cancelled, it stops at once
            self._cancel_estimate()
            self.estimate_label.setText("")
        job = self.make_job()
        self.output_folder = Path(job.output_dir) if job.output_dir else Path(folder)
        self.failures.clear()
        self.results = []
        self._files_done = 0
        self._file_seconds = []
        self._eta.reset()
        runnable = JobRunnable(job, self.cache)
        runnable.signals.job_started.connect(self._started)
        runnable.signals.file_started.connect(self._file_started)
        runnable.signals.tile_progress.connect(self._tile_progress)
        runnable.signals.file_finished.connect(self._file_finished)
        runnable.signals.finished.connect(lambda results, preview: self._ended(results, "done"))
        runnable.signals.cancelled.connect(lambda results: self._ended(results, "cancelled"))
        runnable.signals.failed.connect(self._failed)
        self._job = runnable
        self._set_running(True)
        self.summary_label.setText("Loading the models…")
        self.overall_progress.setRange(0, 0)
        self.pool.start(runnable)

    def _say(self, text: str) -> None:
        self.summary_label.setText(text)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        for widget in (self.folder_edit, self.recursive_check, self.model_list, self.size_picker, self.output,
                       self.skip_check):
            widget.setEnabled(not running)

    def _started(self, total: int, models, notes=()) -> None:
        self._files_total = total
        self.overall_progress.setRange(0, max(1, total))
        self.overall_progress.setValue(0)
        self.summary_label.setText(f"{total} photo(s) with " + " + ".join(models) + "".join(f"\n{n}" for n in notes))
        if total == 0:
            self.overall_progress.setRange(0, 1)

    def _file_started(self, index: int, total: int, path: str) -> None:
        self.file_label.setText(f"{index}/{total}: {path}")
        self.file_progress.setRange(0, 0)
        self._file_started_at = time.monotonic()

    def _tile_progress(self, index: int, done: int, total: int) -> None:
        if total > 0:
            self.file_progress.setRange(0, total)
            self.file_progress.setValue(done)
            self._update_eta(index - 1 + done / total)

    def _update_eta(self, files_done: float) -> None:
        # Whole-batch estimate in "thousandths of a file" so tile progress inside a photo moves it too.
        seconds = self._eta.update(int(files_done * 1000), max(1, self._files_total) * 1000)
        self.eta_label.setText(format_eta(seconds))

    def _file_finished(self, index: int, total: int, result) -> None:
        self.results.append(result)
        self._files_done = index
        self.overall_progress.setValue(index)
        self.file_progress.setRange(0, 1)
        self.file_progress.setValue(1)
        if result.status == "failed":
            reason = result.error or "failed"
            prefix = f"{result.input}: "
            if reason.startswith(prefix):  # the file is in the first column already
                reason = reason[len(prefix):]
            shown = Path(result.input)
            try:  # relative to the batch folder: shorter, and the folder is right above
                shown = shown.relative_to(self.folder_edit.text().strip())
            except ValueError:
                pass
            item = QTreeWidgetItem([str(shown), reason])
            item.setToolTip(0, str(result.input))
            item.setToolTip(1, result.error or "")
            self.failures.addTopLevelItem(item)
            self.failures.resizeColumnToContents(0)
        self._update_eta(index)

    def _ended(self, results, how: str) -> None:
        self._job = None
        self._set_running(False)
        if how == "done":
            self.results = list(results)
        ok = sum(r.status == "ok" for r in self.results)
        skipped = sum(r.status == "skipped" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        parts = [f"{ok} enhanced"] + ([f"{skipped} skipped"] if skipped else []) + [f"{failed} failed"]
        prefix = "Cancelled: " if how == "cancelled" else "Done: "
        self.summary_label.setText(prefix + ", ".join(parts))
        self.eta_label.setText("")
        self.open_button.setEnabled(ok > 0 or skipped > 0)
        self.batchEnded.emit(how)

    def _failed(self, message: str) -> None:
        self._job = None
        self._set_running(False)
        self.overall_progress.setRange(0, 1)
        self.summary_label.setText("The batch could not start")
        self.failures.addTopLevelItem(QTreeWidgetItem(["(whole batch)", message]))
        self.batchEnded.emit("failed")

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.summary_label.setText("Cancelling after the current tile…")

    def open_output_folder(self) -> None:
        if self.output_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_folder)))

    def is_running(self) -> bool:
        return self._job is not None

    def closeEvent(self, event) -> None:
        # At most a moment's wait: a worker inside one tile or model load finishes in the background, writing nothing.
        self._estimate_timer.stop()
        stop_workers(self.pool, [self._job, self._estimate])
        self._job = None  # cancelled: stopped, or stopping in the background; the dialog closes either way
        self._set_running(False)
        super().closeEvent(event)

    def reject(self) -> None:  # Esc: cancel a running batch first, close only when idle
        if self._job is not None:
            self.cancel()
            return
        self._estimate_timer.stop()
        stop_workers(self.pool, [self._estimate])
        super().reject()


def _saved_output_size(settings: Settings) -> OutputSize:
    try:
        return OutputSize.from_text(settings.output_size)
    except ValueError:
        return OutputSize()
