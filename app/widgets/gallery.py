"""The avatar gallery: bundled portraits plus the user's own, with the detected face box drawn on
each thumbnail. Images can be dropped onto it. Numbered 1-9 for the keyboard shortcuts."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem

from app.widgets.preview import to_qimage

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
THUMB = 96
PATH_ROLE = Qt.ItemDataRole.UserRole


def pretty_name(path: str) -> str:
    words = Path(path).stem.replace("-", " ").replace("_", " ").split()
    return " ".join(w if w.isupper() else w.capitalize() for w in words)


class AvatarGallery(QListWidget):
    files_dropped = Signal(list)  # list[str] of image paths

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 12, THUMB + 26))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # ←/→ belong to the window's shortcuts
        self.setToolTip("Click to switch avatar (keys 1–9, ←/→). Drop images here to add them.")

    # -- items ---------------------------------------------------------------------------------
    def add_avatar(self, path: str, bundled: bool) -> QListWidgetItem:
        existing = self.item_for(path)
        if existing is not None:
            return existing
        item = QListWidgetItem(self._placeholder(), "")
        item.setData(PATH_ROLE, str(path))
        item.setData(PATH_ROLE + 1, bundled)
        item.setToolTip(f"{path}\nchecking the face…")
        self.addItem(item)
        self._renumber()
        return item

    def remove_avatar(self, path: str) -> None:
        item = self.item_for(path)
        if item is not None:
            self.takeItem(self.row(item))
            self._renumber()

    def item_for(self, path: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).data(PATH_ROLE) == str(path):
                return self.item(i)
        return None

    def paths(self) -> list[str]:
        return [self.item(i).data(PATH_ROLE) for i in range(self.count())]

    def user_paths(self) -> list[str]:
        return [self.item(i).data(PATH_ROLE) for i in range(self.count()) if not self.item(i).data(PATH_ROLE + 1)]

    def current_path(self) -> str:
        item = self.currentItem()
        return item.data(PATH_ROLE) if item is not None else ""

    def _renumber(self) -> None:
        for i in range(self.count()):
            item = self.item(i)
            prefix = f"{i + 1} · " if i < 9 else ""
            item.setText(prefix + pretty_name(item.data(PATH_ROLE)))

    def set_portrait(self, path: str, image, bbox: tuple[float, float, float, float]) -> None:
        """The face was found: the thumbnail shows the portrait with its face box."""
        item = self.item_for(path)
        if item is None:
            return
        qimg = to_qimage(image)
        thumb = qimg.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                            Qt.TransformationMode.SmoothTransformation)
        pix = QPixmap(THUMB, THUMB)
        pix.fill(QColor(24, 26, 31))
        p = QPainter(pix)
        ox, oy = (THUMB - thumb.width()) / 2, (THUMB - thumb.height()) / 2
        p.drawImage(int(ox), int(oy), thumb)
        s = thumb.width() / qimg.width()
        x0, y0, x1, y1 = bbox
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(80, 220, 160), 1.5))
        p.drawRect(QRectF(ox + x0 * s, oy + y0 * s, (x1 - x0) * s, (y1 - y0) * s))
        p.end()
        item.setIcon(QIcon(pix))
        item.setToolTip(f"{path}\n{qimg.width()}×{qimg.height()}, face found")

    def _placeholder(self) -> QIcon:
        pix = QPixmap(THUMB, THUMB)
        pix.fill(QColor(24, 26, 31))
        p = QPainter(pix)
        p.setPen(QColor(120, 124, 136))
        f = QFont(p.font())
        f.setPointSize(8)
        p.setFont(f)
        p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, "checking…")
        p.end()
        return QIcon(pix)

    # -- drag and drop -------------------------------------------------------------------------
    @staticmethod
    def _image_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls()
                if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._image_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if self._image_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = self._image_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        else:
            event.ignore()
