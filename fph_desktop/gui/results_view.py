"""The results grid: thumbnails with their Hamming distance, for one query or the combined ranking.

Thumbnails are asked for only when the view paints an item (so a long list loads lazily, as the
view scrolls), and arrive from :class:`~fph_desktop.gui.thumbnails.ThumbnailLoader`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QItemSelectionModel, QModelIndex, QPoint, QRect, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import resources
from .thumbnails import THUMB_SIDE, ThumbnailLoader

PathRole = Qt.ItemDataRole.UserRole + 1
DistanceRole = Qt.ItemDataRole.UserRole + 2
EditedCopyRole = Qt.ItemDataRole.UserRole + 3


@dataclass(frozen=True)
class ResultItem:
    path: str
    relpath: str
    distance: int
    detail: str = ""  # e.g. each query's distance in the combined ranking
    edited_copy: bool = False  # the same picture as the query, edited (resized, recompressed, cropped, brightened)


class ResultsModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.items: list[ResultItem] = []
        self.code_bits = 0
        self.loader = loader
        self._rows: dict[str, list[int]] = {}
        self._failed: dict[str, str] = {}
        self._placeholder = resources.faded_pixmap("image-open", THUMB_SIDE, 40)
        self._broken = resources.faded_pixmap("warning", THUMB_SIDE, 40)
        loader.ready.connect(self._thumbnail_ready)
        loader.failed.connect(self._thumbnail_failed)

    def set_items(self, items: list[ResultItem], code_bits: int) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.code_bits = code_bits
        self._rows = {}
        for row, item in enumerate(self.items):
            self._rows.setdefault(item.path, []).append(row)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(self.items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{index.row() + 1}.  d = {item.distance}\n{Path(item.relpath).name}"
        if role == Qt.ItemDataRole.DecorationRole:
            image = self.loader.cached(item.path)
            if image is not None:
                return QPixmap.fromImage(image)
            if item.path in self._failed:
                return self._broken
            self.loader.request(item.path)  # lazy: only items the view paints are decoded
            return self._placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            bits = f" of {self.code_bits} bits" if self.code_bits else ""
            extra = f"\n{item.detail}" if item.detail else ""
            failed = f"\nthumbnail: {self._failed[item.path]}" if item.path in self._failed else ""
            ranked = "\nRanked by the network's full outputs; d counts the code bits that differ"
            return f"{item.path}\nHamming distance {item.distance}{bits}{extra}{ranked}{failed}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Result {index.row() + 1}, {Path(item.relpath).name}, distance {item.distance}"
        if role == PathRole:
            return item.path
        if role == DistanceRole:
            return item.distance
        if role == EditedCopyRole:
            return item.edited_copy
        return None

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        for row in self._rows.get(path, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def _thumbnail_failed(self, path: str, reason: str) -> None:
        self._failed[path] = reason
        self._thumbnail_ready(path, QImage())


def name_lines(metrics: QFontMetrics, name: str, width: int, lines: int = 2) -> list[str]:
    """A file name on at most ``lines`` lines of ``width`` pixels: broken after "_", "-" or a space
    where it can be (anywhere if not); what still does not fit is elided at the start of the last
    line, so the end of the name (the photo's number, its extension) always stays readable."""
    if metrics.horizontalAdvance(name) <= width:
        return [name]
    out: list[str] = []
    rest = name
    while len(out) < lines - 1 and metrics.horizontalAdvance(rest) > width:
        fits = len(rest)
        while fits > 1 and metrics.horizontalAdvance(rest[:fits]) > width:
            fits -= 1
        cut = max(rest.rfind(c, 0, fits) + 1 for c in "_- ")
        if cut < fits // 2:
            cut = max(cut, rest.rfind(".", 0, fits) + 1)
        if cut < fits // 2:
            cut = fits
        out.append(rest[:cut])
        rest = rest[cut:]
    out.append(metrics.elidedText(rest, Qt.TextElideMode.ElideLeft, width))
    return out


class ResultDelegate(QStyledItemDelegate):
    """One tile: the thumbnail centred in a fixed box, a distance badge on it, rank and file name
    under it (on two lines when it is long; never cut in the middle), so every tile has the same
    size and the distance is readable at a glance."""

    PAD = 6
    TEXT_LINES = 2

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        line = option.fontMetrics.height()
        return QSize(THUMB_SIDE + 2 * self.PAD, THUMB_SIDE + 2 * self.PAD + self.TEXT_LINES * line + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        colours = resources.theme()
        rect = option.rect.adjusted(2, 2, -2, -2)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hovered:
            painter.setPen(QPen(QColor(colours["accent"]), 2) if selected else Qt.PenStyle.NoPen)
            painter.setBrush(QColor(colours["selection"] if selected else colours["hover"]))
            painter.drawRoundedRect(rect, 8, 8)
        box = QRect(rect.x() + self.PAD - 2, rect.y() + self.PAD - 2, THUMB_SIDE, THUMB_SIDE)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            scaled = pixmap.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
            badge_anchor = target.topLeft()
        else:
            badge_anchor = box.topLeft()
        distance = index.data(DistanceRole)
        badge_text = "edited copy" if index.data(EditedCopyRole) else f"d {distance}"
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        badge = QRect(
            badge_anchor.x() + 4, badge_anchor.y() + 4, metrics.horizontalAdvance(badge_text) + 12, metrics.height() + 2
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colours["accent"]))
        painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor(colours["on_accent"]))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, badge_text)
        painter.setFont(option.font)
        painter.setPen(QColor(colours["text"]))
        line = option.fontMetrics.height()
        width = rect.width() - 8
        label = f"{index.row() + 1}. {Path(index.data(PathRole)).name}"
        for i, text in enumerate(name_lines(option.fontMetrics, label, width, self.TEXT_LINES)):
            painter.drawText(QRect(rect.x() + 4, box.bottom() + 4 + i * line, width, line), Qt.AlignmentFlag.AlignHCenter, text)
        painter.restore()


def reveal_in_file_manager(path: str) -> None:
    """Show ``path`` selected in the platform's file manager (its folder, where selecting is not possible)."""
    if sys.platform == "win32":
        subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])
    elif sys.platform == "darwin":
        subprocess.Popen(["open", "-R", path])
    else:
        uri = QUrl.fromLocalFile(path).toString()
        try:
            subprocess.Popen(
                [
                    "dbus-send",
                    "--session",
                    "--dest=org.freedesktop.FileManager1",
                    "--type=method_call",
                    "/org/freedesktop/FileManager1",
                    "org.freedesktop.FileManager1.ShowItems",
                    f"array:string:{uri}",
                    "string:",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


class ResultsPanel(QWidget):
    """Query selector, top-k, duplicate filter, the grid, and per-result actions."""

    resultActivated = Signal(str)  # path of the selected result (opens the comparison)
    resultOpened = Signal(str)  # path of a result to view large (double-click, Space)
    optionsChanged = Signal()  # top-k, hide duplicates or the view (per query / combined) changed
    message = Signal(str)

    COMBINED = -1

    def __init__(self, loader: ThumbnailLoader, top_k: int, hide_duplicates: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.outcome = None
        self.view_selector = QComboBox()
        self.view_selector.setToolTip("Show the look-alikes of one query photo, or one ranking of all of them (sum of distances)")
        self.view_selector.setMinimumContentsLength(6)
        self.view_selector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.view_selector.currentIndexChanged.connect(self._show_current)
        self.top_k = QSpinBox(minimum=1, maximum=500, value=top_k)
        self.top_k.setToolTip("How many look-alikes to show for each query")
        self.top_k.setAccessibleName("Results per query")
        # Typing "25" must not search for 2 first: wait until the value rests for a moment.
        self._top_k_timer = QTimer(self, singleShot=True, interval=350)
        self._top_k_timer.timeout.connect(self.optionsChanged)
        self.top_k.valueChanged.connect(self._top_k_timer.start)
        self.hide_duplicates = QCheckBox("&Hide exact duplicates")
        self.hide_duplicates.setToolTip("Leave out the query photo itself and byte-identical copies of it")
        self.hide_duplicates.setChecked(hide_duplicates)
        self.hide_duplicates.toggled.connect(self.optionsChanged)
        top_label = QLabel("&Top")
        top_label.setBuddy(self.top_k)
        show_label = QLabel("&Show")
        show_label.setBuddy(self.view_selector)
        bar = QHBoxLayout()
        bar.addWidget(show_label)
        bar.addWidget(self.view_selector, 1)
        bar.addSpacing(8)
        bar.addWidget(top_label)
        bar.addWidget(self.top_k)
        bar.addSpacing(8)
        bar.addWidget(self.hide_duplicates)

        self.model = ResultsModel(loader, self)
        self.view = QListView()
        self.view.setObjectName("ResultsGrid")
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.view.setItemDelegate(ResultDelegate(self.view))
        self.view.setSpacing(4)
        self.view.setMouseTracking(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.setAccessibleName("Results")
        self.view.doubleClicked.connect(lambda index: self.resultOpened.emit(self.model.items[index.row()].path))

        self.empty = QLabel("No results yet. Index a folder, then drop a photo above.")
        self.empty.setObjectName("Muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)

        self.view_action = self._action(
            "View", "image-open", "View the selected photo large, with its date, camera and size", "Space", self.view_selected
        )
        # Space (as in file managers' quick look) only while the results have the focus: elsewhere it
        # still presses buttons and types spaces.
        self.view_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.open_action = self._action(
            "Open file", "open-external", "Open the selected photo in its default app", "Ctrl+Return", self.open_selected
        )
        self.reveal_action = self._action(
            "Show in file manager", "show-folder", "Show the selected photo in its folder", "Ctrl+Shift+R", self.reveal_selected
        )
        self.copy_action = self._action(
            "Copy path", "copy", "Copy the selected photo's full path", "Ctrl+Shift+C", self.copy_selected
        )
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for action in (self.view_action, self.open_action, self.reveal_action, self.copy_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            buttons.addWidget(button)
        self.summary = QLabel()
        self.summary.setObjectName("Muted")
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        buttons.insertWidget(0, self.summary)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty, 1)
        layout.addLayout(buttons)
        self._update_enabled()
        self.view.hide()

    def _action(self, text: str, icon: str, tip: str, shortcut: str, slot) -> QAction:
        action = QAction(resources.icon(icon), text, self)
        action.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})")
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # -- content ----------------------------------------------------------------------------------
    def show_outcome(self, outcome) -> None:
        """Show a :class:`~fph_desktop.gui.tasks.SearchOutcome`, keeping the selected query view."""
        previous = self.view_selector.currentData()
        self.outcome = outcome
        self.view_selector.blockSignals(True)
        self.view_selector.clear()
        for i, q in enumerate(outcome.queries):
            label = f"Query {i + 1}: {Path(q.query).name}" if len(outcome.queries) > 1 else f"Query: {Path(q.query).name}"
            self.view_selector.addItem(label + (" (cannot search)" if q.error else ""), i)
        if outcome.combined is not None:
            self.view_selector.addItem(f"Combined ranking of {len(outcome.queries)} queries (sum of distances)", self.COMBINED)
        at = self.view_selector.findData(previous)
        if at < 0 and outcome.combined is not None and previous == self.COMBINED:
            at = self.view_selector.count() - 1
        self.view_selector.setCurrentIndex(max(0, at))
        self.view_selector.blockSignals(False)
        self._show_current()

    def wants_combined(self) -> bool:
        return self.view_selector.currentData() == self.COMBINED

    def clear(self, text: str | None = None) -> None:
        self.outcome = None
        self.view_selector.clear()
        self.model.set_items([], 0)
        if text:
            self.empty.setText(text)
        self.view.hide()
        self.empty.show()
        self.summary.clear()
        self._update_enabled()

    def _show_current(self) -> None:
        outcome = self.outcome
        if outcome is None:
            return
        choice = self.view_selector.currentData()
        if choice == self.COMBINED and outcome.combined is not None:
            items = [
                ResultItem(h.path, h.relpath, h.distance, "distances: " + " + ".join(str(d) for d in h.per_query))
                for h in outcome.combined
            ]
            summary = f"{len(items)} photos nearest to all {len(outcome.queries)} queries, of {outcome.database_size}"
            error = None
        else:
            q = outcome.queries[choice or 0]
            copy_note = "the same picture as the query, edited"
            items = [ResultItem(h.path, h.relpath, h.distance, copy_note if h.edited_copy else "", h.edited_copy) for h in q.hits]
            hidden = f"; {q.hidden} exact duplicate{'s' if q.hidden != 1 else ''} hidden" if q.hidden else ""
            copies = sum(item.edited_copy for item in items)
            edited = f"; {copies} edited cop{'y' if copies == 1 else 'ies'} first" if copies else ""
            summary = f"{len(items)} most alike of {outcome.database_size} photos{edited}{hidden}"
            error = q.error
        self.model.set_items(items, outcome.code_bits)
        self.summary.setText(summary)
        if error:
            self.empty.setText(f"This query could not be searched: {error}")
        elif not items:
            self.empty.setText("No photos to show (all were hidden as duplicates of the query).")
        self.view.setVisible(bool(items))
        self.empty.setVisible(not items)
        if items:  # keyboard focus on the first result, nothing selected (selecting opens the comparison)
            self.view.selectionModel().setCurrentIndex(self.model.index(0), QItemSelectionModel.SelectionFlag.NoUpdate)
        self._update_enabled()

    def query_for(self, path: str) -> str | None:
        """The query to compare the result ``path`` with: the shown query, or in the combined view
        the query whose code is nearest to it."""
        if self.outcome is None or not self.outcome.queries:
            return None
        choice = self.view_selector.currentData()
        if choice == self.COMBINED and self.outcome.combined:
            usable = [q for q in self.outcome.queries if q.error is None]
            for hit in self.outcome.combined:
                if hit.path == path and hit.per_query:
                    return usable[min(range(len(hit.per_query)), key=hit.per_query.__getitem__)].query
            return usable[0].query if usable else None
        return self.outcome.queries[choice or 0].query

    # -- selection and actions --------------------------------------------------------------------
    def selected_path(self) -> str | None:
        indexes = self.view.selectionModel().selectedIndexes()
        return indexes[0].data(PathRole) if indexes else None

    def select_row(self, row: int) -> None:
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.selectionModel().select(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _selection_changed(self, *_) -> None:
        self._update_enabled()
        path = self.selected_path()
        if path:
            self.resultActivated.emit(path)

    def _update_enabled(self) -> None:
        has = self.selected_path() is not None
        for action in (self.view_action, self.open_action, self.reveal_action, self.copy_action):
            action.setEnabled(has)

    def view_selected(self) -> None:
        path = self.selected_path()
        if path:
            self.resultOpened.emit(path)

    def open_selected(self) -> None:
        path = self.selected_path()
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def reveal_selected(self) -> None:
        path = self.selected_path()
        if path:
            reveal_in_file_manager(path)

    def copy_selected(self) -> None:
        path = self.selected_path()
        if path:
            QGuiApplication.clipboard().setText(path)
            self.message.emit(f"Copied {path}")

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        self.select_row(index.row())
        menu = QMenu(self)
        menu.addActions([self.open_action, self.reveal_action, self.copy_action])
        menu.exec(self.view.viewport().mapToGlobal(pos))
