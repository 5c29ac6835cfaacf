"""Settings: device, precision, tile size, the output options (format, quality, naming, location), privacy (what
metadata the outputs keep), where pasted images go, and the theme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from enhancer.options import BACKENDS, DEVICES, PRECISIONS

from .settings import STRIP_METADATA_CHOICES, THEMES, Settings, output_formats

TILE_CHOICES = ("auto", "128", "192", "256", "384", "512", "768", "1024")


class OutputOptions(QWidget):
    """Output format, quality, naming suffix and location; shared by the settings and batch dialogs."""

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.format_combo = QComboBox(self)
        self.format_combo.addItems(output_formats())  # only what this install can write
        self.format_combo.setCurrentText(settings.output_format)
        form.addRow("Format:", self.format_combo)
        self.quality_spin = QSpinBox(self)
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(settings.quality)
        self.quality_spin.setToolTip("For JPEG and WebP")
        form.addRow("Quality:", self.quality_spin)
        self.suffix_edit = QLineEdit(settings.suffix, self)
        self.suffix_edit.setPlaceholderText("_{model}_x{scale}")
        self.suffix_edit.setToolTip("Added to the file name; {model} and {scale} are filled in")
        form.addRow("Name suffix:", self.suffix_edit)
        self.next_to_radio = QRadioButton("Next to the originals", self)
        self.folder_radio = QRadioButton("In a folder:", self)
        self.folder_edit = QLineEdit(settings.output_dir, self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        (self.folder_radio if settings.output_dir else self.next_to_radio).setChecked(True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_radio)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        location = QVBoxLayout()
        location.addWidget(self.next_to_radio)
        location.addLayout(folder_row)
        form.addRow("Save:", location)
        self.folder_edit.textEdited.connect(lambda text: self.folder_radio.setChecked(bool(text)) if text else None)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.folder_radio.setChecked(True)

    def output_dir(self) -> str:
        return self.folder_edit.text().strip() if self.folder_radio.isChecked() else ""

    def apply(self, settings: Settings) -> None:
        settings.output_format = self.format_combo.currentText()
        settings.quality = self.quality_spin.value()
        settings.suffix = self.suffix_edit.text().strip()
        settings.output_dir = self.output_dir()


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.device_combo = QComboBox(self)
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(settings.device)
        form.addRow("Device:", self.device_combo)
        self.precision_combo = QComboBox(self)
        for precision in PRECISIONS:
            self.precision_combo.addItem(precision, precision)
        self._mark_precisions()
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(settings.precision)))
        self.device_combo.currentTextChanged.connect(self._mark_precisions)
        form.addRow("Precision:", self.precision_combo)
        self.backend_combo = QComboBox(self)
        self.backend_combo.addItems(BACKENDS)
        self.backend_combo.setCurrentText(settings.backend)
        self.backend_combo.setToolTip("What runs the networks. auto: torch on a GPU; on the CPU the faster of torch and "
                                      "OpenVINO for each model, measured once.")
        form.addRow("Backend:", self.backend_combo)
        self.tile_combo = QComboBox(self)
        self.tile_combo.setEditable(True)
        self.tile_combo.addItems(TILE_CHOICES)
        self.tile_combo.setCurrentText(str(settings.tile))
        self.tile_combo.setToolTip("Pixels per tile; smaller tiles need less memory. auto picks by free memory.")
        form.addRow("Tile size:", self.tile_combo)
        self.skip_check = QCheckBox("Skip photos whose output already exists (batches)", self)
        self.skip_check.setChecked(settings.skip_existing)
        form.addRow("", self.skip_check)
        self.metadata_combo = QComboBox(self)
        for key, label in STRIP_METADATA_CHOICES:
            self.metadata_combo.addItem(label, key)
        self.metadata_combo.setCurrentIndex(max(0, self.metadata_combo.findData(settings.strip_metadata)))
        self.metadata_combo.setToolTip("What the enhanced photos keep of the original's metadata. Removing the location "
                                       "drops GPS and place fields; the colour profile and camera data stay.")
        form.addRow("Privacy:", self.metadata_combo)
        self.paste_edit = QLineEdit(settings.paste_folder, self)
        self.paste_edit.setToolTip("Images pasted with Ctrl+V are saved here as PNG, and their results next to them")
        paste_browse = QPushButton("Browse…", self)
        paste_browse.clicked.connect(self._browse_paste_folder)
        paste_row = QHBoxLayout()
        paste_row.addWidget(self.paste_edit, 1)
        paste_row.addWidget(paste_browse)
        form.addRow("Pasted images:", paste_row)
        self.theme_combo = QComboBox(self)
        for theme in THEMES:
            self.theme_combo.addItem({"system": "Follow the system"}.get(theme, theme.capitalize()), theme)
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(settings.theme)))
        form.addRow("Theme:", self.theme_combo)
        layout.addLayout(form)
        self.output = OutputOptions(settings, self)
        layout.addWidget(self.output)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse_paste_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for pasted images", self.paste_edit.text())
        if folder:
            self.paste_edit.setText(folder)

    def _mark_precisions(self) -> None:
        """Every precision stays on offer; one the chosen device cannot run is marked, e.g. "bf16 (not supported by
        this CPU; fp32 is used)"."""
        from enhancer import devices
        from enhancer.errors import EnhancerError

        try:
            missing = devices.precision_availability(self.device_combo.currentText())
        except EnhancerError:  # a device that is not there says so in the status bar; nothing to mark here
            missing = {}
        for index in range(self.precision_combo.count()):
            precision = self.precision_combo.itemData(index)
            why = missing.get(precision, "")
            self.precision_combo.setItemText(index, f"{precision} ({why}; fp32 is used)" if why else precision)
            self.precision_combo.setItemData(index, why or None, Qt.ItemDataRole.ToolTipRole)

    def apply(self, settings: Settings) -> None:
        settings.device = self.device_combo.currentText()
        settings.precision = self.precision_combo.currentData()
        settings.backend = self.backend_combo.currentText()
        tile = self.tile_combo.currentText().strip()
        settings.tile = tile if tile.isdigit() and int(tile) >= 16 else "auto"
        settings.skip_existing = self.skip_check.isChecked()
        settings.strip_metadata = self.metadata_combo.currentData()
        settings.paste_folder = self.paste_edit.text().strip() or settings.paste_folder
        theme = self.theme_combo.currentData()
        if theme != settings.theme:
            from PySide6.QtWidgets import QApplication

            from .app import apply_style, chosen_theme

            settings.theme = theme
            apply_style(QApplication.instance(), chosen_theme(theme))  # at once, not only after a restart
        self.output.apply(settings)
