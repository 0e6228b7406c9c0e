"""Where query photos arrive: drag and drop files or a folder, or use File > Open / Paste.

Only the split into usable photos and rejected items happens here (by file suffix, like the
indexer's scanner); whether a photo really decodes is found out by the search job, which reports
unreadable queries one by one.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from . import resources

MAX_QUERIES = 64


def image_suffixes() -> set[str]:
    from ..imaging import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def split_dropped(paths: list[str], limit: int = MAX_QUERIES) -> tuple[list[str], list[str]]:
    """(photos to query, readable messages about what was left out). A folder gives the photos
    directly inside it and in its sub-folders, in name order, up to ``limit``."""
    suffixes = image_suffixes()
    photos: list[str] = []
    rejected: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                str(Path(root) / name)
                for root, _, names in os.walk(path)
                for name in names
                if Path(name).suffix.lower() in suffixes and not name.startswith(".")
            )
            if not found:
                rejected.append(f"{path}: this folder holds no photos (looked for {', '.join(sorted(suffixes))})")
            photos.extend(found)
        elif path.suffix.lower() in suffixes and path.is_file():
            photos.append(str(path))
        elif not path.exists():
            rejected.append(f"{path}: no such file")
        else:
            rejected.append(f"{path.name}: not a photo fph-desktop can read (it reads {', '.join(sorted(suffixes))})")
    if len(photos) > limit:
        rejected.append(f"{len(photos)} photos dropped; searching with the first {limit}")
        photos = photos[:limit]
    return photos, rejected


def local_paths(mime: QMimeData) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class DropArea(QFrame):
    """The dashed box at the top of the results: drop photos here (the whole window accepts drops
    too and forwards them). Emits the photos to query, or the reasons nothing could be used."""

    photosDropped = Signal(list)
    rejected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DropArea")
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumHeight(72)
        self.setToolTip("Drop photos or a folder here to find their look-alikes in the indexed folder")
        self.icon = QLabel()
        self.icon.setPixmap(resources.icon("drop").pixmap(QSize(32, 32)))
        self.title = QLabel("<b>Drop photos here</b> to find look-alikes")
        self.hint = QLabel("or File › Open photos… (Ctrl+O), or paste an image (Ctrl+V)")
        self.hint.setObjectName("DropHint")
        self.title.setWordWrap(True)
        self.hint.setWordWrap(True)
        self.queries = QLabel()
        self.queries.setObjectName("Muted")
        self.queries.setWordWrap(True)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.hint)
        text.addWidget(self.queries)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        self.query_thumb = QLabel()
        self.query_thumb.setFixedSize(QSize(64, 64))
        self.query_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_thumb.hide()
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addLayout(text, 1)
        layout.addWidget(self.query_thumb, 0, Qt.AlignmentFlag.AlignVCenter)

    def show_queries(self, paths: list[str]) -> None:
        names = [Path(p).name for p in paths]
        more = f" and {len(names) - 6} more" if len(names) > 6 else ""
        self.queries.setText(("Query: " if len(names) == 1 else f"{len(names)} queries: ") + ", ".join(names[:6]) + more)

    def set_query_image(self, image: QImage | None) -> None:
        """A small picture of the (first) query, beside its name."""
        if image is None or image.isNull():
            self.query_thumb.hide()
            return
        pixmap = QPixmap.fromImage(image).scaled(
            self.query_thumb.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.query_thumb.setPixmap(pixmap)
        self.query_thumb.show()

    def _set_dragging(self, on: bool) -> None:
        self.setProperty("dragging", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()
            self._set_dragging(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_dragging(False)
        self.handle_mime(event.mimeData())
        event.acceptProposedAction()

    def handle_mime(self, mime: QMimeData) -> bool:
        """Use dropped or pasted data: files, a folder, or (from the clipboard) image pixels are
        handled by the window. True when photos were found."""
        paths = local_paths(mime)
        if not paths:
            self.rejected.emit("Nothing usable was dropped: drop photo files or a folder of photos.")
            return False
        photos, rejected = split_dropped(paths)
        if rejected:
            self.rejected.emit("; ".join(rejected[:4]) + (f"; and {len(rejected) - 4} more" if len(rejected) > 4 else ""))
        if photos:
            self.photosDropped.emit(photos)
        return bool(photos)
