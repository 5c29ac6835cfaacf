"""The output size control: the model's size, a factor, a width, a height, or a box to fit in (`enhancer.sizing`).

It shows the size the open photo will get, and says when that is below (or above) what the model itself makes.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from enhancer.sizing import OutputSize

MODE_LABELS = (
    ("model", "Model's size"),
    ("scale", "Scale by"),
    ("width", "Width"),
    ("height", "Height"),
    ("fit", "Fit in"),
)
MAX_SIDE = 65535  # what PNG, TIFF and the size guards of the decoders still take


def _side_spin(value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(1, MAX_SIDE)
    spin.setValue(value)
    spin.setSuffix(" px")
    spin.setToolTip(tip)
    spin.setKeyboardTracking(False)  # one change per finished number, not one per digit typed
    return spin


class OutputSizePicker(QWidget):
    """A mode list and the numbers that mode needs; `changed(OutputSize)` on every change."""

    changed = Signal(object)

    def __init__(self, size: OutputSize | None = None, parent: QWidget | None = None,
                 no_photo_text: str = "Open a photo to see the size of the result"):
        super().__init__(parent)
        self._no_photo_text = no_photo_text
        self.mode_combo = QComboBox(self)
        for mode, label in MODE_LABELS:
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setToolTip("The size of the result. The model always runs at its own scale; the result is "
                                   "then resized (high-quality, antialiased) to this size, keeping the aspect ratio.")
        self.scale_spin = QDoubleSpinBox(self)
        self.scale_spin.setRange(0.05, 16.0)
        self.scale_spin.setDecimals(2)
        self.scale_spin.setSingleStep(0.5)
        self.scale_spin.setValue(2.0)
        self.scale_spin.setPrefix("×")
        self.scale_spin.setKeyboardTracking(False)
        self.scale_spin.setToolTip("The final factor, e.g. 2 with an x4 model gives twice the photo's size")
        self.width_spin = _side_spin(3840, "The width of the result; the height follows the aspect ratio")
        self.height_spin = _side_spin(2160, "The height of the result; the width follows the aspect ratio")
        self.fit_width_spin = _side_spin(3840, "The largest width")
        self.fit_height_spin = _side_spin(2160, "The largest height")
        self.times_label = QLabel("×", self)
        self.result_label = QLabel("", self)
        self.result_label.setWordWrap(True)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.mode_combo, 1)
        for widget in (self.scale_spin, self.width_spin, self.height_spin, self.fit_width_spin, self.times_label,
                       self.fit_height_spin):
            row.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.result_label)

        self._photo: tuple[int, int] | None = None
        self._model_scale = 1.0
        self.set_output_size(size or OutputSize())
        self.mode_combo.currentIndexChanged.connect(self._edited)
        for spin in (self.scale_spin, self.width_spin, self.height_spin, self.fit_width_spin, self.fit_height_spin):
            spin.valueChanged.connect(self._edited)

    # ----- value
    def output_size(self) -> OutputSize:
        mode = self.mode_combo.currentData()
        if mode == "scale":
            return OutputSize("scale", scale=round(self.scale_spin.value(), 2))
        if mode == "width":
            return OutputSize("width", width=self.width_spin.value())
        if mode == "height":
            return OutputSize("height", height=self.height_spin.value())
        if mode == "fit":
            return OutputSize("fit", width=self.fit_width_spin.value(), height=self.fit_height_spin.value())
        return OutputSize()

    def set_output_size(self, size: OutputSize) -> None:
        """Show `size` (without emitting `changed`); the other modes keep their last numbers."""
        widgets = (self.mode_combo, self.scale_spin, self.width_spin, self.height_spin, self.fit_width_spin,
                   self.fit_height_spin)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(size.mode)))
            if size.mode == "scale":
                self.scale_spin.setValue(float(size.scale))
            elif size.mode == "width":
                self.width_spin.setValue(int(size.width))
            elif size.mode == "height":
                self.height_spin.setValue(int(size.height))
            elif size.mode == "fit":
                self.fit_width_spin.setValue(int(size.width))
                self.fit_height_spin.setValue(int(size.height))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._show_fields()
        self._show_result()

    # ----- what it means for the open photo
    def set_photo(self, size: tuple[int, int] | None, model_scale: float | None) -> None:
        """The open photo's (width, height) and the chosen chain's factor, for the line that says the result's size."""
        self._photo = size
        self._model_scale = float(model_scale or 1)
        self._show_result()

    def result_size(self) -> tuple[int, int] | None:
        if self._photo is None:
            return None
        return self.output_size().target(*self._photo, self._model_scale)

    def result_text(self) -> str:
        return self.result_label.text()

    def _edited(self) -> None:
        self._show_fields()
        self._show_result()
        self.changed.emit(self.output_size())

    def _show_fields(self) -> None:
        mode = self.mode_combo.currentData()
        self.scale_spin.setVisible(mode == "scale")
        self.width_spin.setVisible(mode == "width")
        self.height_spin.setVisible(mode == "height")
        for widget in (self.fit_width_spin, self.times_label, self.fit_height_spin):
            widget.setVisible(mode == "fit")

    def _show_result(self) -> None:
        if self._photo is None:
            self.result_label.setText(self._no_photo_text)
            self.result_label.setToolTip("")
            return
        size = self.output_size()
        width, height = self._photo
        target = size.target(width, height, self._model_scale)
        natural = OutputSize().target(width, height, self._model_scale)
        text = f"Result: {target[0]}×{target[1]} px"
        tip = f"The model makes {natural[0]}×{natural[1]} px from this {width}×{height} photo."
        if size.below_model(width, height, self._model_scale):
            text += f" (below the model's {natural[0]}×{natural[1]}: its result is made smaller)"
        elif size.above_model(width, height, self._model_scale):
            text += f" (above the model's {natural[0]}×{natural[1]}: the extra size adds no detail)"
        self.result_label.setText(text)
        self.result_label.setToolTip(tip)
