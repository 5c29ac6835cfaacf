"""The model manager: the catalog with installed state; download (licence first where needed), import, delete."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from enhancer import store
from enhancer.catalog import format_size
from enhancer.download import download_model, license_text
from enhancer.errors import Cancelled

from .model_list import grouped_catalog
from .workers import CallRunnable, readable_error, stop_workers

COLUMNS = ("Task", "Model", "Licence", "Size", "State")


class DownloadSignals(QObject):
    progress = Signal(object, object, object)  # bytes done, total or None, bytes per second
    done = Signal(str)  # installed path
    failed = Signal(str)
    cancelled = Signal()


class DownloadRunnable(QRunnable):
    def __init__(self, model_id: str, accept_license: bool):
        super().__init__()
        self.setAutoDelete(False)
        self.model_id = model_id
        self.accept_license = accept_license
        self.cancel_flag = threading.Event()
        self.signals = DownloadSignals()
        self.notices: list[str] = []

    def cancel(self) -> None:
        self.cancel_flag.set()

    def run(self) -> None:
        try:
            path = download_model(
                self.model_id,
                progress=lambda done, total, rate: self.signals.progress.emit(done, total, rate),
                cancel=self.cancel_flag.is_set,
                accept_license=self.accept_license,
                on_notice=self.notices.append,
            )
        except Cancelled:
            self.signals.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - always report back to the dialog
            self.signals.failed.emit(readable_error(exc))
        else:
            self.signals.done.emit(str(path))


class LicenseDialog(QDialog):
    """Shows a licence; with `ask=True` the user must press "Accept" to go on."""

    def __init__(self, text: str, ask: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Licence")
        self.resize(560, 300)
        layout = QVBoxLayout(self)
        view = QPlainTextEdit(text, self)
        view.setReadOnly(True)
        layout.addWidget(view)
        row = QHBoxLayout()
        row.addStretch(1)
        if ask:
            accept = QPushButton("Accept and Download", self)
            accept.clicked.connect(self.accept)
            decline = QPushButton("Decline", self)
            decline.clicked.connect(self.reject)
            row.addWidget(decline)
            row.addWidget(accept)
        else:
            close = QPushButton("Close", self)
            close.clicked.connect(self.accept)
            row.addWidget(close)
        layout.addLayout(row)


class ModelManagerDialog(QDialog):
    catalogChanged = Signal()
    downloadEnded = Signal(str)  # "ok", "failed", "cancelled"

    def __init__(self, parent: QWidget | None = None, select: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.resize(900, 560)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._download: DownloadRunnable | None = None
        self._import: CallRunnable | None = None
        self.last_message = ""
        # Licence acceptance for tests and scripted use: None asks the user in a dialog.
        self.auto_accept_license: bool | None = None

        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in (0, 2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        self.details = QLabel("", self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        progress_row.addWidget(self.status, 1)
        progress_row.addWidget(self.progress)
        layout.addLayout(progress_row)

        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download", self)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton("Cancel Download", self)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.cancel_button.hide()
        self.import_button = QPushButton("Import a File…", self)
        self.import_button.clicked.connect(self.choose_import)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)
        self.license_button = QPushButton("Licence…", self)
        self.license_button.clicked.connect(self.show_license)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        for button in (self.download_button, self.cancel_button, self.import_button, self.delete_button,
                       self.license_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.refresh(select)

    # ------------------------------------------------------------------ table
    def refresh(self, select: str | None = None) -> None:
        select = select or self.selected_id()
        self.table.setRowCount(0)
        for group, items in grouped_catalog():
            for entry, installed in items:
                row = self.table.rowCount()
                self.table.insertRow(row)
                state = "bundled" if installed and entry.is_bundled else ("imported" if entry.imported else
                                                                          ("installed" if installed else "not installed"))
                values = (group, entry.name, entry.license, format_size(entry.size) if entry.size else "–", state)
                for column, value in enumerate(values):
                    item = QTableWidgetItem(value)
                    item.setData(Qt.ItemDataRole.UserRole, entry.id)
                    if column == 4 and installed:
                        font = item.font()
                        font.setBold(True)
                        item.setFont(font)
                    self.table.setItem(row, column, item)
                if entry.id == select:
                    self.table.selectRow(row)
        self._update_buttons()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def select(self, model_id: str) -> bool:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == model_id:
                self.table.selectRow(row)
                return True
        return False

    def state_of(self, model_id: str) -> str | None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == model_id:
                return self.table.item(row, 4).text()
        return None

    def _update_buttons(self) -> None:
        busy = self._download is not None or self._import is not None
        model_id = self.selected_id()
        entry = store.get_entry(model_id) if model_id else None
        installed = entry is not None and store.is_installed(entry)
        self.download_button.setEnabled(not busy and entry is not None and not installed and bool(entry.url))
        self.delete_button.setEnabled(not busy and entry is not None and not entry.is_bundled
                                      and (installed or entry.imported))
        self.license_button.setEnabled(entry is not None)
        self.import_button.setEnabled(not busy)
        if entry is not None:
            text = f"<b>{entry.name}</b> ({entry.id}): {entry.arch}, task {entry.task}, x{entry.scale}."
            if entry.description:
                text += f" {entry.description}"
            if entry.requires_license_acceptance:
                text += " Its licence must be accepted before the download."
            self.details.setText(text)

    # ------------------------------------------------------------------ actions
    def show_license(self) -> None:
        model_id = self.selected_id()
        if model_id:
            LicenseDialog(license_text(store.get_entry(model_id)), ask=False, parent=self).exec()

    def download_selected(self) -> None:
        model_id = self.selected_id()
        if model_id is None or self.is_busy():
            return
        entry = store.get_entry(model_id)
        accept = False
        if entry.requires_license_acceptance and not store.license_accepted(entry):
            if self.auto_accept_license is None:
                accept = LicenseDialog(license_text(entry), ask=True, parent=self).exec() == QDialog.DialogCode.Accepted
            else:
                accept = self.auto_accept_license
            if not accept:
                self.status.setText(f"{entry.name}: the licence was not accepted, so nothing was downloaded.")
                return
        runnable = DownloadRunnable(model_id, accept_license=accept)
        runnable.signals.progress.connect(self._progress)
        runnable.signals.done.connect(lambda path: self._download_ended("ok", f"{entry.name} installed."))
        runnable.signals.failed.connect(lambda message: self._download_ended("failed", message))
        runnable.signals.cancelled.connect(lambda: self._download_ended("cancelled", "Download cancelled; nothing kept."))
        self._download = runnable
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.status.setText(f"Downloading {entry.name}…")
        self._update_buttons()
        self.pool.start(runnable)

    def _progress(self, done, total, rate) -> None:
        rate_text = f" at {rate / 1e6:.1f} MB/s" if rate else ""
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.status.setText(f"{format_size(done)} of {format_size(total)}{rate_text}")
        else:
            self.status.setText(f"{format_size(done)}{rate_text}")

    def _download_ended(self, how: str, message: str) -> None:
        notices = self._download.notices if self._download else []
        self._download = None
        self.progress.hide()
        self.cancel_button.hide()
        self.last_message = message
        self.status.setText(" ".join([message, *notices]))
        if how == "failed":
            QMessageBox.warning(self, "Download failed", message)
        self.refresh()
        self.catalogChanged.emit()
        self.downloadEnded.emit(how)

    def cancel_download(self) -> None:
        if self._download is not None:
            self._download.cancel_flag.set()

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model file", "", "Model files (*.pth *.pt *.ckpt *.safetensors *.bin);;All files (*)"
        )
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Check and copy the file in the pool (it may be hundreds of MB); the table updates when done."""
        if self.is_busy():  # one change to the store at a time
            self.status.setText("Wait for the running download or import to finish first.")
            return
        runnable = CallRunnable(store.import_model, path, pass_cancel=True)
        runnable.signals.done.connect(self._imported)
        runnable.signals.failed.connect(self._import_failed)
        self._import = runnable
        self.status.setText(f"Importing {path}…")
        self._update_buttons()
        self.pool.start(runnable)

    importEnded = Signal(str)

    def _imported(self, entry) -> None:
        self._import = None
        self.last_message = f"Imported as {entry.id} ({entry.arch}, {entry.task} x{entry.scale})."
        self.status.setText(self.last_message)
        self.refresh(select=entry.id)
        self.catalogChanged.emit()
        self.importEnded.emit("ok")

    def _import_failed(self, message: str) -> None:
        self._import = None
        self.last_message = message
        self.status.setText("")
        self._update_buttons()
        if message == "cancelled":  # the dialog is closing: nothing to report
            self.importEnded.emit("cancelled")
            return
        QMessageBox.warning(self, "Import failed", message)
        self.importEnded.emit("failed")

    def delete_selected(self, confirm: bool = True) -> None:
        model_id = self.selected_id()
        if model_id is None or self.is_busy():
            return
        entry = store.get_entry(model_id)
        if confirm:
            answer = QMessageBox.question(self, "Delete model", f"Delete {entry.name} from this computer?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            store.delete_model(model_id)
        except Exception as exc:  # noqa: BLE001
            QMessageBox.warning(self, "Delete failed", readable_error(exc))
            return
        self.status.setText(f"{entry.name} deleted.")
        self.refresh()
        self.catalogChanged.emit()

    def is_busy(self) -> bool:
        return self._download is not None or self._import is not None

    def _stop(self) -> None:
        """Cancel a download or import and wait a moment; one that cannot stop in time ends in the background, and
        the engine then keeps nothing of it (the download's part file and the import's copy are removed)."""
        stop_workers(self.pool, [self._download, self._import])

    def closeEvent(self, event) -> None:
        self._stop()
        super().closeEvent(event)

    def reject(self) -> None:
        self._stop()
        super().reject()
