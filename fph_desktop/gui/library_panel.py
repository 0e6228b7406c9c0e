"""The library panel: the folders searched together, each with its state (photos, skipped, offline,
being indexed), and the buttons to add, update and remove them. A view only: the window owns the
folders and their indexes, and tells the panel what to show (:class:`FolderRow`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu, QPushButton, QVBoxLayout, QWidget

from . import resources

FolderRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class FolderRow:
    folder: str
    photos: int = 0
    skipped: int = 0
    state: str = "ready"  # ready, offline, indexing, waiting (not opened yet), incomplete, other-model
    current: bool = False  # the folder the status bar describes (the last indexed or selected)

    def describe(self) -> str:
        photos = f"{self.photos:,} photo{'' if self.photos == 1 else 's'}"
        skipped = f" · {self.skipped:,} skipped" if self.skipped else ""
        return {
            "ready": f"{photos}{skipped}",
            "incomplete": f"{photos}{skipped} · indexing not finished",
            "offline": f"offline: {photos} kept (is its drive connected?)",
            "indexing": "being indexed…",
            "waiting": "opening…",
            "other-model": f"{photos}, indexed with another model: not searched (Update it)",
        }.get(self.state, self.state)


class LibraryPanel(QWidget):
    """One row per folder: its name and, below, its state."""

    addRequested = Signal()
    updateRequested = Signal(str)
    removeRequested = Signal(str)
    revealRequested = Signal(str)
    folderSelected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("LibraryFolders")
        self.list.setAccessibleName("Library folders")
        self.list.setWordWrap(True)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(lambda item: self.folderSelected.emit(item.data(FolderRole)))
        self.list.currentItemChanged.connect(self._update_buttons)
        self.summary = QLabel()
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        self.add_button = QPushButton(resources.icon("folder-search"), "&Add…")
        self.add_button.setToolTip("Add a folder to the library: it is indexed, then searched with the others (Ctrl+I)")
        self.add_button.clicked.connect(self.addRequested)
        self.update_button = QPushButton("&Update")
        self.update_button.setToolTip("Look for new, changed and deleted photos in the selected folder")
        self.update_button.clicked.connect(lambda: self._emit_for_current(self.updateRequested))
        self.remove_button = QPushButton("&Remove")
        self.remove_button.setToolTip("Stop searching the selected folder (its photos and its index file stay where they are)")
        self.remove_button.clicked.connect(lambda: self._emit_for_current(self.removeRequested))
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.update_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.rows: list[FolderRow] = []
        self._update_buttons()

    def set_rows(self, rows: list[FolderRow]) -> None:
        selected = self.selected_folder()
        self.rows = list(rows)
        self.list.clear()
        for row in rows:
            name = Path(row.folder).name or row.folder
            item = QListWidgetItem(f"{name}\n{row.describe()}")
            item.setData(FolderRole, row.folder)
            item.setToolTip(row.folder)
            font = item.font()
            font.setBold(row.current)
            item.setFont(font)
            if row.state in ("offline", "other-model"):
                item.setForeground(self.palette().placeholderText())
            self.list.addItem(item)
            if row.folder == selected:
                self.list.setCurrentItem(item)
        searched = [r for r in rows if r.state in ("ready", "incomplete")]
        photos = sum(r.photos for r in searched)
        self.summary.setText(
            f"{len(searched)} of {len(rows)} folders searched together, {photos:,} photos" if rows else "No folders yet."
        )
        self._update_buttons()

    def selected_folder(self) -> str | None:
        item = self.list.currentItem()
        return item.data(FolderRole) if item is not None else None

    def _emit_for_current(self, signal) -> None:
        folder = self.selected_folder()
        if folder:
            signal.emit(folder)

    def _update_buttons(self, *_args) -> None:
        has = self.selected_folder() is not None
        self.update_button.setEnabled(has)
        self.remove_button.setEnabled(has)

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        folder = item.data(FolderRole)
        menu = QMenu(self)
        menu.addAction("Update", lambda: self.updateRequested.emit(folder))
        menu.addAction("Show in file manager", lambda: self.revealRequested.emit(folder))
        menu.addSeparator()
        menu.addAction("Remove from library", lambda: self.removeRequested.emit(folder))
        menu.exec(self.list.viewport().mapToGlobal(pos))
