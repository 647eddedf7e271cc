"""Messages for the user at the top of the window: one row per topic, with optional action buttons.

Faults (camera lost, no virtual camera, disk full, engine errors) end up here as one clear line, never
as a traceback or a blocking dialog.
"""
from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

log = logging.getLogger("puppetcam.app")

_COLORS = {"error": ("#3b1e22", "#ff8a8a"), "warning": ("#3a3020", "#ffcf70"), "info": ("#1e2b3b", "#8ac6ff")}


class MessageBar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 8, 0)
        self._layout.setSpacing(4)
        self._rows: dict[str, tuple[QFrame, QLabel, str]] = {}
        self.hide()

    def show_message(self, key: str, text: str, level: str = "error",
                     actions: list[tuple[str, Callable[[], None]]] | None = None) -> None:
        self.clear(key)
        (log.info if level == "info" else log.warning)("%s", text)
        bg, fg = _COLORS.get(level, _COLORS["info"])
        row = QFrame(self)
        row.setObjectName(f"message-{key}")
        row.setStyleSheet(f"QFrame#message-{key} {{ background: {bg}; border-radius: 6px; }}"
                          f"QLabel {{ color: {fg}; }}")
        lay = QHBoxLayout(row)
        lay.setContentsMargins(10, 6, 6, 6)
        label = QLabel(text, row)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(label, 1)
        for name, callback in actions or []:
            button = QPushButton(name, row)
            button.setObjectName(f"action-{key}-{name}")
            button.clicked.connect(callback)
            lay.addWidget(button)
        close = QPushButton("✕", row)
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda: self.clear(key))
        lay.addWidget(close)
        self._layout.addWidget(row)
        self._rows[key] = (row, label, level)
        self.show()

    def clear(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is not None:
            row[0].setParent(None)
            row[0].deleteLater()
        if not self._rows:
            self.hide()

    def text(self, key: str | None = None) -> str:
        if key is not None:
            return self._rows[key][1].text() if key in self._rows else ""
        return "\n".join(label.text() for _, label, _ in self._rows.values())

    def keys(self) -> list[str]:
        return list(self._rows)

    def action(self, key: str, name: str) -> QPushButton | None:
        row = self._rows.get(key)
        return row[0].findChild(QPushButton, f"action-{key}-{name}") if row else None
