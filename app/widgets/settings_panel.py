"""The settings panel: motion, output, engine, recording and preview options, bound to AppSettings."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QSlider, QVBoxLayout, QWidget)

from app.settings import AppSettings

OUTPUT_SIZES = [(1280, 720), (1920, 1080), (960, 540), (640, 360), (640, 480), (720, 720)]
OUTPUT_FPS = [30, 25, 24, 60, 15]
ENGINE_LABELS = {"mesh": "Mesh warp (built-in)", "fomm": "First Order Motion (neural)"}


class SettingsPanel(QWidget):
    """Emits ``changed(name)`` with the AppSettings field that the user changed."""

    changed = Signal(str)
    open_clips_requested = Signal()
    choose_clips_requested = Signal()
    choose_checkpoint_requested = Signal()

    def __init__(self, settings: AppSettings, parent=None):
        super().__init__(parent)
        self._loading = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(8)

        motion = QGroupBox("Motion")
        form = QFormLayout(motion)
        self.relative = self._check("Relative motion (since calibration)", "relative")
        self.adapt_scale = self._check("Adapt movement to face size", "adapt_scale")
        self.auto_calibrate = self._check("Calibrate automatically when steady", "auto_calibrate")
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 100)
        self.smoothing.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.smoothing.setToolTip("0 = raw landmarks; more = steadier at rest, a little more lag")
        self.smoothing_label = QLabel()
        self.smoothing.valueChanged.connect(self._on_smoothing)
        row = QHBoxLayout()
        row.addWidget(self.smoothing, 1)
        row.addWidget(self.smoothing_label)
        self.mirror_input = self._check("Mirror the camera", "mirror_input")
        form.addRow(self.relative)
        form.addRow(self.adapt_scale)
        form.addRow(self.auto_calibrate)
        form.addRow("Smoothing", row)
        form.addRow(self.mirror_input)
        outer.addWidget(motion)

        output = QGroupBox("Output")
        form = QFormLayout(output)
        self.mirror_output = self._check("Mirror the output", "mirror_output")
        self.passthrough = self._check("Pass-through (send the real camera)", "passthrough")
        self.size = QComboBox()
        for w, h in OUTPUT_SIZES:
            self.size.addItem(f"{w} × {h}", f"{w}x{h}")
        self.size.currentIndexChanged.connect(lambda _: self._emit("output_size"))
        self.fps = QComboBox()
        for f in OUTPUT_FPS:
            self.fps.addItem(f"{f} fps", f)
        self.fps.currentIndexChanged.connect(lambda _: self._emit("output_fps"))
        form.addRow(self.mirror_output)
        form.addRow(self.passthrough)
        form.addRow("Size", self.size)
        form.addRow("Frame rate", self.fps)
        outer.addWidget(output)

        engine = QGroupBox("Engine")
        form = QFormLayout(engine)
        self.engine = QComboBox()
        for name, label in ENGINE_LABELS.items():
            self.engine.addItem(label, name)
        self.engine.currentIndexChanged.connect(lambda _: self._emit("engine"))
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA GPU", "cuda")
        self.set_cuda_available(False)
        self.device.currentIndexChanged.connect(lambda _: self._emit("device"))
        self.checkpoint = QPushButton("Choose FOMM checkpoint…")
        self.checkpoint.clicked.connect(self.choose_checkpoint_requested)
        form.addRow("Engine", self.engine)
        form.addRow("Device", self.device)
        form.addRow(self.checkpoint)
        outer.addWidget(engine)

        rec = QGroupBox("Recording")
        form = QFormLayout(rec)
        self.record_audio = self._check("Record microphone audio", "record_audio")
        self.clips_label = QLabel()
        self.clips_label.setWordWrap(True)
        self.clips_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clips_label.setStyleSheet("color: #9aa3b5;")
        buttons = QHBoxLayout()
        open_button = QPushButton("Open clips folder")
        open_button.clicked.connect(self.open_clips_requested)
        change_button = QPushButton("Change…")
        change_button.clicked.connect(self.choose_clips_requested)
        buttons.addWidget(open_button)
        buttons.addWidget(change_button)
        form.addRow(self.record_audio)
        form.addRow(self.clips_label)
        form.addRow(buttons)
        outer.addWidget(rec)

        preview = QGroupBox("Preview")
        form = QFormLayout(preview)
        self.show_landmarks = self._check("Show landmarks on the camera", "show_landmarks")
        self.show_overlay = self._check("See-through avatar over the camera", "show_overlay")
        form.addRow(self.show_landmarks)
        form.addRow(self.show_overlay)
        outer.addWidget(preview)
        outer.addStretch(1)
        self.load(settings)

    # -- helpers -------------------------------------------------------------------------------
    def _check(self, text: str, name: str) -> QCheckBox:
        box = QCheckBox(text)
        box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        box.toggled.connect(lambda _: self._emit(name))
        return box

    def _emit(self, name: str) -> None:
        if not self._loading:
            self.changed.emit(name)

    def _on_smoothing(self, value: int) -> None:
        self.smoothing_label.setText("off" if value == 0 else f"{value}")
        self._emit("smoothing")

    def set_cuda_available(self, available: bool) -> None:
        item = self.device.model().item(1)
        item.setEnabled(available)
        self.device.setToolTip("" if available else "No CUDA GPU visible to torch on this machine")

    def set_fomm_available(self, available: bool, why: str = "") -> None:
        item = self.engine.model().item(1)
        item.setEnabled(available)
        item.setToolTip(why)

    def set_clips_dir(self, path: str) -> None:
        self.clips_label.setText(f"Clips: {path}")

    # -- AppSettings <-> widgets -----------------------------------------------------------------
    def load(self, s: AppSettings) -> None:
        self._loading = True
        try:
            for name in ("relative", "adapt_scale", "auto_calibrate", "mirror_input", "mirror_output",
                         "passthrough", "record_audio", "show_landmarks", "show_overlay"):
                getattr(self, name).setChecked(bool(getattr(s, name)))
            self.smoothing.setValue(int(s.smoothing))
            self._on_smoothing(self.smoothing.value())
            self._select(self.size, f"{s.output_width}x{s.output_height}")
            self._select(self.fps, s.output_fps)
            self._select(self.engine, s.engine)
            self._select(self.device, s.device)
        finally:
            self._loading = False

    @staticmethod
    def _select(combo: QComboBox, data) -> None:
        for i in range(combo.count()):
            if combo.itemData(i) == data:
                combo.setCurrentIndex(i)
                return
        if isinstance(data, str) and "x" in data:  # a size that is not in the list
            combo.addItem(data.replace("x", " × "), data)
            combo.setCurrentIndex(combo.count() - 1)

    def store(self, s: AppSettings) -> None:
        for name in ("relative", "adapt_scale", "auto_calibrate", "mirror_input", "mirror_output",
                     "passthrough", "record_audio", "show_landmarks", "show_overlay"):
            setattr(s, name, getattr(self, name).isChecked())
        s.smoothing = self.smoothing.value()
        s.output_width, s.output_height = (int(v) for v in self.size.currentData().split("x"))
        s.output_fps = int(self.fps.currentData())
        s.engine = self.engine.currentData()
        s.device = self.device.currentData()
