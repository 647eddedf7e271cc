"""A small live graph for the status bar: latency (ms) over the last seconds, with the 50 ms budget."""
from __future__ import annotations

import collections

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget


class Sparkline(QWidget):
    def __init__(self, budget: float = 50.0, keep: int = 120, parent=None):
        super().__init__(parent)
        self.budget = budget
        self.values: collections.deque[float] = collections.deque(maxlen=keep)
        self.setFixedSize(QSize(140, 22))
        self.setToolTip("Glass-to-output latency, last minute (the line is the 50 ms budget)")

    def add(self, value: float) -> None:
        self.values.append(float(value))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(30, 32, 38))
        top = max([self.budget * 1.5, *self.values]) if self.values else self.budget * 1.5
        h, w = self.height() - 2, self.width()

        def y(v):
            return 1 + h - h * min(v, top) / top

        p.setPen(QPen(QColor(200, 90, 90, 160), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(0, y(self.budget)), QPointF(w, y(self.budget)))
        if len(self.values) >= 2:
            step = w / (self.values.maxlen - 1)
            x0 = w - step * (len(self.values) - 1)
            path = QPainterPath(QPointF(x0, y(self.values[0])))
            for i, v in enumerate(self.values):
                path.lineTo(QPointF(x0 + i * step, y(v)))
            p.setPen(QPen(QColor(90, 200, 250), 1.5))
            p.drawPath(path)
        p.end()
