"""Previews: a frame fitted into a widget (aspect kept), with optional overlays painted on top.

Frames arrive as RGB uint8 numpy arrays; they are wrapped in a ``QImage`` without copying and
painted scaled by Qt. Overlays (landmarks, the see-through avatar, a "held" badge) are QPainter
drawing, not image processing.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_qimage(image: np.ndarray) -> QImage:
    """An RGB uint8 (H, W, 3) array as a QImage that shares its memory (keep the array alive)."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    qimg = QImage(image.data, w, h, image.strides[0], QImage.Format.Format_RGB888)
    qimg.ndarray = image  # type: ignore[attr-defined]  # keeps the buffer alive with the QImage
    return qimg


class ImageView(QWidget):
    """Paints the latest frame letterboxed on a dark background, or a placeholder text."""

    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._array: np.ndarray | None = None
        self.placeholder = placeholder
        self.badge = ""  # short text shown in a corner ("Held", "Pass-through", ...)
        self.frames_shown = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(640, 360)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, 90)

    def set_frame(self, image: np.ndarray | None) -> None:
        self._array = image
        self._image = to_qimage(image) if image is not None else None
        self.frames_shown += image is not None
        self.update()

    @property
    def frame(self) -> np.ndarray | None:
        return self._array

    def image_rect(self) -> QRectF:
        """Where the frame lands in the widget (aspect kept)."""
        if self._image is None:
            return QRectF(self.rect())
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(18, 19, 23))
        if self._image is None:
            p.setPen(QColor(140, 144, 156))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        else:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            rect = self.image_rect()
            p.drawImage(rect, self._image)
            self.paint_overlay(p, rect)
        if self.badge:
            self._paint_badge(p)
        p.end()

    def paint_overlay(self, p: QPainter, rect: QRectF) -> None:
        """Subclasses draw on top of the frame here."""

    def _paint_badge(self, p: QPainter) -> None:
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        w = fm.horizontalAdvance(self.badge) + 16
        r = QRectF(10, 10, w, fm.height() + 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(200, 60, 60, 220))
        p.drawRoundedRect(r, 6, 6)
        p.setPen(QColor(255, 255, 255))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, self.badge)


class DrivingView(ImageView):
    """The driving camera, with the tracked landmarks and a see-through avatar to line up with."""

    def __init__(self, parent=None):
        super().__init__("No camera", parent)
        self.show_landmarks = True
        self.show_overlay = False
        self.mirrored = False  # the frame is shown mirrored (mirror input): landmarks are too
        self._landmarks: np.ndarray | None = None  # (N, 2) pixel coordinates in the frame
        self._avatar: QImage | None = None

    def sizeHint(self) -> QSize:
        return QSize(320, 240)

    def set_frame(self, image: np.ndarray | None) -> None:
        super().set_frame(image)
        if self.mirrored and self._image is not None:  # a selfie view; Qt flips it for display
            flipped = getattr(self._image, "flipped", None)
            self._image = flipped(Qt.Orientation.Horizontal) if flipped else self._image.mirrored(True, False)

    def set_landmarks(self, xy: np.ndarray | None) -> None:
        self._landmarks = xy

    def set_avatar(self, image: np.ndarray | None) -> None:
        self._avatar = to_qimage(image) if image is not None else None
        self.update()

    def paint_overlay(self, p: QPainter, rect: QRectF) -> None:
        if self.show_overlay and self._avatar is not None:
            # The portrait fitted over the frame, half transparent: move until the faces overlap.
            aw, ah = self._avatar.width(), self._avatar.height()
            scale = min(rect.width() / aw, rect.height() / ah)
            w, h = aw * scale, ah * scale
            p.setOpacity(0.4)
            p.drawImage(QRectF(rect.center().x() - w / 2, rect.center().y() - h / 2, w, h), self._avatar)
            p.setOpacity(1.0)
        if self.show_landmarks and self._landmarks is not None and self._image is not None:
            sx = rect.width() / self._image.width()
            sy = rect.height() / self._image.height()
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(80, 220, 160, 200), 1.6))
            points = [QPointF(rect.x() + x * sx, rect.y() + y * sy) for x, y in self._landmarks[::2]]
            p.drawPoints(points)


class OutputView(ImageView):
    def __init__(self, parent=None):
        super().__init__("Pick an avatar and a camera", parent)

    def paint_overlay(self, p: QPainter, rect: QRectF) -> None:
        p.setPen(QPen(QColor(60, 64, 76), 1))  # the edge of the frame that the sinks receive
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(rect.adjusted(0, 0, -1, -1))

    def sizeHint(self) -> QSize:
        return QSize(800, 450)
