"""A calm dark theme (Fusion + palette + a little style sheet)."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE = """
QMainWindow, QWidget { font-size: 10pt; }
QLabel#sectionTitle { font-size: 9pt; font-weight: 600; color: #9aa3b5; letter-spacing: 1px;
                      text-transform: uppercase; padding: 2px 2px 4px 2px; }
QLabel#alignment { font-size: 11pt; }
QLabel#recTimer { color: #ff6b6b; font-weight: 700; }
QGroupBox { border: 1px solid #2c3039; border-radius: 8px; margin-top: 14px; padding: 8px 6px 6px 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #c9d1e0; font-weight: 600; }
QPushButton { background: #2a2e37; border: 1px solid #3a3f4b; border-radius: 6px; padding: 5px 12px; }
QPushButton:hover { background: #333845; }
QPushButton#primary { background: #2f6fed; border-color: #2f6fed; color: white; font-weight: 600; }
QPushButton#primary:hover { background: #3d7bf5; }
QToolBar { background: #1b1d23; border-bottom: 1px solid #2c3039; spacing: 6px; padding: 4px 8px; }
QToolButton { background: #2a2e37; border: 1px solid #3a3f4b; border-radius: 6px; padding: 5px 12px; }
QToolButton:hover { background: #333845; }
QToolButton:checked { background: #2f6fed; border-color: #2f6fed; color: white; }
QToolButton#toggle-record:checked { background: #d64545; border-color: #d64545; }
QListWidget { background: #17191e; border: 1px solid #2c3039; border-radius: 8px; padding: 4px; }
QListWidget::item { color: #c9d1e0; border-radius: 6px; padding: 2px; }
QListWidget::item:selected { background: #2f6fed55; border: 1px solid #2f6fed; }
QComboBox { background: #2a2e37; border: 1px solid #3a3f4b; border-radius: 6px; padding: 4px 8px; }
QStatusBar { background: #1b1d23; border-top: 1px solid #2c3039; color: #9aa3b5; }
QStatusBar QLabel { color: #c9d1e0; padding: 0 8px; }
QScrollArea { background: transparent; }
QSplitter::handle { background: #1b1d23; width: 2px; }
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    base, text = QColor(32, 34, 40), QColor(220, 224, 232)
    pal.setColor(QPalette.ColorRole.Window, base)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, QColor(24, 26, 31))
    pal.setColor(QPalette.ColorRole.AlternateBase, base)
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, QColor(42, 46, 55))
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.Highlight, QColor(47, 111, 237))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(24, 26, 31))
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor(120, 124, 136))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(100, 104, 114))
    app.setPalette(pal)
    app.setStyleSheet(STYLE)
