"""The "Look-alike groups" window: every group of look-alikes in the current index, at a radius the
user sets with a slider, with what a photographer does next: open, show in the folder, copy paths,
move to the trash (after a confirmation) and export the groups as CSV.

The grouping is :func:`fph_desktop.gui.group_tasks.find_look_alike_groups` (the same core as
``fph-desktop groups``), run on the main window's ``lookups`` worker; a slider that is still moving
does not start one (it waits ~250 ms for the value to settle), and a newer grouping replaces the
running one. Thumbnails come from the main window's :class:`ThumbnailLoader`, asked for only when a
row is painted, so a long list loads as it scrolls.

A photo moved to the trash is left out of the groups at once; the index itself forgets it at the
next indexing of the folder (the window says so), and the window then forgets what it left out.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QEvent, QFile, QModelIndex, QPoint, QRect, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import group_tasks, resources
from .results_view import reveal_in_file_manager
from .thumbnails import ThumbnailLoader

RADIUS_MAX = 12
RADIUS_DEFAULT = 4
SETTLE_MS = 250  # the slider's value must rest this long before the photos are grouped again
ICON_SIDE = 56
OPEN_AT_MOST = 10  # "Open" on a whole selection opens this many photos, not hundreds of viewers

COLUMN_PHOTO, COLUMN_DISTANCE, COLUMN_SIZE, COLUMN_COPY, COLUMN_FOLDER = range(5)
PathRole = Qt.ItemDataRole.UserRole + 1  # a photo row: its absolute path
MemberRole = Qt.ItemDataRole.UserRole + 2  # a photo row: its GroupMember
GroupRole = Qt.ItemDataRole.UserRole + 3  # a group row: its number, from 1
BadgeRole = Qt.ItemDataRole.UserRole + 4  # the copy column: "exact copy" or "has a copy"

BADGE_COPY, BADGE_ORIGINAL, BADGE_EDITED = "exact copy", "has a copy", "edited copy"


def size_text(size: int) -> str:
    """``850 KB``, ``2.4 MB``: a file's size as a file manager shows it (1000-based)."""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "KB" else f"{size:.1f} {unit}"
    return ""  # unreachable


def radius_words(radius: int, code_bits: int) -> str:
    """What the radius means, in a photographer's words."""
    if radius == 0:
        return "only photos with the very same code"
    return f"each photo differs from its group's first in at most {radius} of {code_bits} bits"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def grouping_summary(grouping) -> str:
    """``37 groups, 112 of 750 photos; 9 exact copies``."""
    if not grouping.groups:
        return f"No look-alikes among {plural(grouping.photos, 'photo')}"
    photos = sum(len(g) for g in grouping.groups)
    copies = sum(g.redundant_copies for g in grouping.groups)
    text = f"{plural(len(grouping.groups), 'group')}, {photos:,} of {plural(grouping.photos, 'photo')}"
    return text + (f"; {plural(copies, 'exact copy', 'exact copies')}" if copies else "; no exact copies")


class NoteLabel(QLabel):
    """A muted line that takes no room while it has nothing to say."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("Muted")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setVisible(bool(text))


class GroupsTree(QTreeWidget):
    """Group rows on a tinted band across the whole row (the expand arrow's part too), so each
    group reads as one block."""

    def drawRow(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # noqa: N802 - Qt's name
        if index.data(GroupRole) is not None and not self.selectionModel().isSelected(index):
            painter.fillRect(option.rect, QColor(resources.theme()["button"]))
        super().drawRow(painter, option, index)


class GroupDelegate(QStyledItemDelegate):
    """Photo rows: the thumbnail (asked for when the row is painted) and the exact-copy badge."""

    def __init__(self, window: GroupsWindow) -> None:
        super().__init__(window.tree)
        self.window = window

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802 - Qt's name
        hint = super().sizeHint(option, index)
        if index.data(PathRole) is not None:
            hint.setHeight(max(hint.height(), ICON_SIDE + 8))
        else:
            hint.setHeight(max(hint.height(), option.fontMetrics.height() + 12))
        return hint

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # noqa: N802 - Qt's name
        super().initStyleOption(option, index)
        path = index.data(PathRole)
        if path is not None and index.column() == COLUMN_PHOTO:
            option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
            option.icon = self.window.thumbnail_icon(path)
            option.decorationSize = QSize(ICON_SIDE, ICON_SIDE)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        colours = resources.theme()
        super().paint(painter, option, index)
        badge = index.data(BadgeRole)
        if not badge:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.9)
        metrics = QFontMetrics(font)
        rect = QRect(0, 0, metrics.horizontalAdvance(badge) + 14, metrics.height() + 4)
        rect.moveCenter(option.rect.center())
        accent = QColor(colours["accent"])
        painter.setFont(font)
        if badge in (BADGE_COPY, BADGE_EDITED):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(accent)
            painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
            painter.setPen(QColor(colours["on_accent"]))
        else:
            painter.setPen(QPen(accent, 1.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), rect.height() / 2 - 1, rect.height() / 2 - 1)
            painter.setPen(accent)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, badge)
        painter.restore()


class GroupsWindow(QDialog):
    """The groups of one index. ``runner`` runs the grouping (the main window's ``lookups``);
    ``thumbnails`` draws the photos (a loader of its own when None)."""

    groupsShown = Signal(object)  # group_tasks.GroupsResult, once the list shows it
    groupingFailed = Signal(str)
    trashed = Signal(list, list)  # the paths moved to the trash, and (path, reason) of those that were not

    def __init__(
        self,
        db_path: str | Path,
        folder: str | Path,
        code_bits: int,
        runner,
        thumbnails: ThumbnailLoader | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self.runner = runner
        self.loader = thumbnails or ThumbnailLoader(parent=self)
        self.loader.ready.connect(self._thumbnail_ready)
        self.loader.failed.connect(self._thumbnail_failed)
        self.result: group_tasks.GroupsResult | None = None
        self._handle = None
        self._regroup_when_shown = False  # hidden while a grouping was on its way
        self._left_out: set[str] = set()  # relpaths moved to the trash from here, still in the index
        self._failed_thumbnails: set[str] = set()
        self._icons: OrderedDict[str, QIcon] = OrderedDict()
        self._placeholder = QIcon(resources.faded_pixmap("image-open", ICON_SIDE, 28))
        self._broken = QIcon(resources.faded_pixmap("warning", ICON_SIDE, 28))

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, RADIUS_MAX)
        self.slider.setValue(RADIUS_DEFAULT)
        self.slider.setPageStep(2)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setMinimumWidth(220)
        self.slider.setAccessibleName("Radius in bits")
        radius_label = QLabel("&Radius")
        radius_label.setBuddy(self.slider)
        self.radius_value = QLabel()
        self.radius_value.setObjectName("Heading")
        self.radius_value.setMinimumWidth(QFontMetrics(self.radius_value.font()).horizontalAdvance("12 of 256 bits") + 24)
        self.radius_words = QLabel()
        self.radius_words.setObjectName("Muted")
        self.radius_words.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.regroup)
        self.slider.valueChanged.connect(self._radius_moved)
        top = QHBoxLayout()
        top.addWidget(radius_label)
        top.addWidget(self.slider)
        top.addWidget(self.radius_value)
        top.addWidget(self.radius_words, 1)

        self.summary = QLabel("Grouping…")
        self.summary.setObjectName("Heading")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.tree = GroupsTree()
        self.tree.setObjectName("GroupsTree")
        self.tree.setColumnCount(5)
        self.tree.setHeaderLabels(["Photo", "Distance", "Size", "Exact copy", "Folder"])
        self.tree.setIconSize(QSize(ICON_SIDE, ICON_SIDE))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setItemDelegate(GroupDelegate(self))
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "IMG_1234 (1).jpg" keeps its end
        for column in (COLUMN_DISTANCE, COLUMN_SIZE):
            self.tree.headerItem().setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._apply_selection_colours()
        self.tree.setAccessibleName("Look-alike groups")
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.itemSelectionChanged.connect(self._update_enabled)
        self.tree.itemDoubleClicked.connect(lambda item, _column: self.open_selected() if item.data(0, PathRole) else None)
        header = self.tree.header()
        header.setStretchLastSection(False)  # the photo's name takes the room; the other columns keep theirs
        header.setSectionResizeMode(COLUMN_PHOTO, QHeaderView.ResizeMode.Stretch)
        metrics = QFontMetrics(self.tree.font())
        for column, widest in (
            (COLUMN_DISTANCE, "Distance"),
            (COLUMN_SIZE, "999.9 MB"),
            (COLUMN_COPY, "Exact copy"),
            (COLUMN_FOLDER, "M" * 18),
        ):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, metrics.horizontalAdvance(widest) + 32)
        self.tree.headerItem().setTextAlignment(COLUMN_COPY, Qt.AlignmentFlag.AlignCenter)
        self.empty = QLabel()
        self.empty.setObjectName("Muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()

        self.index_note = NoteLabel()  # about the index: an offline folder, an unfinished indexing, photos left out
        self.note = NoteLabel()  # what the last action did

        self.select_copies_action = self._action(
            "Select exact copies",
            "select",
            "Select every photo that is a byte-identical copy of another one in its group (the first copy stays unselected)",
            "Ctrl+Shift+E",
            self.select_exact_copies,
        )
        self.open_action = self._action(
            "Open", "open-external", "Open the selected photos in their default app", "Ctrl+Return", self.open_selected
        )
        self.reveal_action = self._action(
            "Show in folder", "show-folder", "Show the selected photo in the file manager", "Ctrl+Shift+R", self.reveal_selected
        )
        self.copy_action = self._action(
            "Copy paths", "copy", "Copy the full paths of the selected photos, one a line", "Ctrl+Shift+C", self.copy_selected
        )
        self.trash_action = self._action(
            "Move to trash…", "trash", "Move the selected photos to the trash (asks first)", "Delete", self.trash_selected
        )
        self.export_action = self._action(
            "Export CSV…", "export", "Save every group as a CSV file (one row a photo)", "Ctrl+E", self.export_csv
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self._button(self.select_copies_action))
        buttons.addStretch(1)
        for action in (self.open_action, self.reveal_action, self.copy_action, self.trash_action, self.export_action):
            buttons.addWidget(self._button(action))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.index_note)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.resize(980, 680)
        self.set_index(db_path, folder, code_bits)

    # -- construction -------------------------------------------------------------------------------
    def _action(self, text: str, icon: str | None, tip: str, shortcut: str, slot) -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(resources.icon(icon))
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    @staticmethod
    def _button(action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return button

    def _apply_selection_colours(self) -> None:
        """A selected row in the theme's light selection colour, as in the results grid (the
        stylesheet's item rules are for list views); again whenever the theme changes."""
        colours = resources.theme()
        palette = self.tree.palette()
        palette.setColor(QPalette.ColorRole.Highlight, QColor(colours["selection"]))
        palette.setColor(QPalette.ColorRole.HighlightedText, QColor(colours["text"]))
        self.tree.setPalette(palette)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange and hasattr(self, "tree"):
            self._apply_selection_colours()

    # -- the index and the grouping -------------------------------------------------------------------
    def set_index(self, db_path: str | Path, folder: str | Path, code_bits: int) -> None:
        """Show the groups of another index (the caller then calls :meth:`regroup`)."""
        same = getattr(self, "db_path", None) == Path(db_path)
        self.db_path, self.folder, self.code_bits = Path(db_path), Path(folder), int(code_bits)
        if not same:
            self._left_out.clear()
            self.result = None
            self.tree.clear()
        self.setWindowTitle(f"Look-alike groups — {self.folder.name or self.folder}")
        self._radius_moved(self.slider.value(), settle=False)

    def index_updated(self, db_path: str | Path, complete: bool = True) -> None:
        """The index at ``db_path`` was updated; once an update finished, the photos moved to the
        trash are gone from it and need no leaving out."""
        if Path(db_path) != self.db_path:
            return
        if complete:
            self._left_out.clear()
        if self.isVisible():
            self.regroup()

    def _radius_moved(self, radius: int, settle: bool = True) -> None:
        self.radius_value.setText(f"{radius} of {self.code_bits} bits")
        self.radius_words.setText(radius_words(radius, self.code_bits))
        tip = (
            f"Two photos are look-alikes when their {self.code_bits}-bit codes differ in at most this many bits. "
            "Smaller: only near-identical photos; larger: looser groups."
        )
        for widget in (self.slider, self.radius_value, self.radius_words):
            widget.setToolTip(tip)
        if settle:
            self._settle.start()

    def regroup(self) -> None:
        """Group the photos again at the slider's radius (replacing a grouping still running)."""
        self._settle.stop()
        self._regroup_when_shown = False
        radius = self.slider.value()
        self.summary.setText(f"Grouping within {radius} of {self.code_bits} bits…")
        try:
            handle = self.runner.submit(
                "groups", group_tasks.find_look_alike_groups, str(self.db_path), radius, frozenset(self._left_out), replace=True
            )
        except RuntimeError:  # the main window is closing: its workers are shut down
            return
        self._handle = handle
        handle.finished.connect(lambda result: self._grouped(handle, result))
        handle.failed.connect(lambda message: self._grouping_failed(handle, message))
        handle.cancelled.connect(lambda: self._grouping_cancelled(handle))

    def _grouped(self, handle, result: group_tasks.GroupsResult) -> None:
        if handle is not self._handle:
            return  # a newer grouping is on its way
        self._handle = None
        unchanged = self.result is not None and self.result.grouping == result.grouping and self.tree.isVisible()
        self.result = result
        if not unchanged:  # an update of the index that changed nothing here leaves the list as it is
            self._fill(result.grouping)
        self.summary.setText(grouping_summary(result.grouping))
        notes = []
        if not self.folder.is_dir():
            notes.append(f"{self.folder} cannot be reached (is its drive connected?); the groups are from its index.")
        if not result.complete:
            notes.append("Its last indexing did not finish: Update index (F5) in the main window includes every photo.")
        if result.left_out:
            notes.append(
                f"{plural(result.left_out, 'photo')} moved to the trash {'is' if result.left_out == 1 else 'are'} left out; "
                "the index forgets them at the next Update index (F5)."
            )
        self.index_note.setText(" ".join(notes))
        self.groupsShown.emit(result)

    def _grouping_failed(self, handle, message: str) -> None:
        if handle is not self._handle:
            return
        self._handle = None
        self.result = None
        self.tree.clear()
        self.summary.setText("Could not group the photos")
        self.empty.setText(message)
        self.tree.hide()
        self.empty.show()
        self._update_enabled()
        self.groupingFailed.emit(message)

    def _grouping_cancelled(self, handle) -> None:
        if handle is self._handle:
            self._handle = None
            self.summary.setText("Grouping was cancelled; move the slider to group again.")

    # -- the list -------------------------------------------------------------------------------------
    def _fill(self, grouping) -> None:
        kept = set(self.selected_paths())
        scrolled = self.tree.verticalScrollBar().value()  # regrouped after a move to the trash: stay there
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for number, group in enumerate(grouping.groups, 1):
            if group.max_distance == 0:
                spread = "all with the same code"
            else:
                spread = f"each within {plural(group.max_distance, 'bit')} of the first"
            copies = group.redundant_copies
            title = f"Group {number}  ·  {len(group)} photos, {spread}"
            if copies:
                title += f"  ·  {plural(copies, 'exact copy', 'exact copies')}"
            head = QTreeWidgetItem(self.tree, [title])
            head.setData(0, GroupRole, number)
            head.setFont(0, bold)
            head.setFirstColumnSpanned(True)
            for member in group.members:
                path = str(self.folder / member.relpath)
                relpath = Path(member.relpath)
                inside = relpath.parent.as_posix()
                row = QTreeWidgetItem(
                    head, [relpath.name, f"d={member.distance}", size_text(member.size), "", "" if inside == "." else inside]
                )
                row.setData(0, PathRole, path)
                row.setData(0, MemberRole, member)
                row.setTextAlignment(COLUMN_DISTANCE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                row.setTextAlignment(COLUMN_SIZE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                tip = f"{path}\n{member.distance} of {self.code_bits} bits differ from the group's first photo"
                if member.duplicate_of:
                    row.setData(COLUMN_COPY, BadgeRole, BADGE_COPY)
                    tip += f"\nA byte-identical copy of {member.duplicate_of}"
                elif member.edited_copy_of:
                    row.setData(COLUMN_COPY, BadgeRole, BADGE_EDITED)
                    tip += f"\nAn edited copy (resized, recompressed, cropped or brightened) of {member.edited_copy_of}"
                elif member.exact_duplicate:
                    row.setData(COLUMN_COPY, BadgeRole, BADGE_ORIGINAL)
                    tip += "\nThe group holds byte-identical copies of this photo"
                for column in range(self.tree.columnCount()):
                    row.setToolTip(column, tip)
                if path in kept:
                    row.setSelected(True)
        self.tree.expandAll()
        self.tree.verticalScrollBar().setValue(scrolled)
        self.tree.setUpdatesEnabled(True)
        has = bool(grouping.groups)
        if not has:
            radius = grouping.radius
            self.empty.setText(
                f"No two photos are within {radius} of {grouping.code_bits} bits of each other."
                + (" Move the slider to the right for looser groups." if radius < RADIUS_MAX else "")
            )
        self.tree.setVisible(has)
        self.empty.setVisible(not has)
        self._update_enabled()

    def group_items(self) -> list[QTreeWidgetItem]:
        return [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]

    def photo_items(self) -> list[QTreeWidgetItem]:
        return [head.child(j) for head in self.group_items() for j in range(head.childCount())]

    def thumbnail_icon(self, path: str) -> QIcon:
        icon = self._icons.get(path)
        if icon is not None:
            self._icons.move_to_end(path)
            return icon
        image = self.loader.cached(path)
        if image is None:
            if path in self._failed_thumbnails:
                return self._broken
            self.loader.request(path)  # lazy: only rows that are painted are decoded
            return self._placeholder
        scaled = image.scaled(
            QSize(ICON_SIDE, ICON_SIDE), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        icon = QIcon(QPixmap.fromImage(scaled))
        self._icons[path] = icon
        while len(self._icons) > 400:
            self._icons.popitem(last=False)
        return icon

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        self.tree.viewport().update()

    def _thumbnail_failed(self, path: str, reason: str) -> None:
        self._failed_thumbnails.add(path)
        self.tree.viewport().update()

    # -- selection ------------------------------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        """The selected photos' paths, in list order; a selected group row stands for all its photos."""
        chosen: set[str] = set()
        for item in self.tree.selectedItems():
            if item.data(0, GroupRole) is not None:
                chosen.update(item.child(j).data(0, PathRole) for j in range(item.childCount()))
            else:
                chosen.add(item.data(0, PathRole))
        return [path for item in self.photo_items() if (path := item.data(0, PathRole)) in chosen]

    def select_exact_copies(self) -> None:
        self.tree.clearSelection()
        copies = [item for item in self.photo_items() if item.data(0, MemberRole).duplicate_of]
        for item in copies:
            item.setSelected(True)
        if copies:
            self.tree.scrollToItem(copies[0])
        self.note.setText(
            f"Selected {plural(len(copies), 'exact copy', 'exact copies')}; the first of each set of copies stays unselected."
            if copies
            else "No photo here is a byte-identical copy of another."
        )

    def _update_enabled(self) -> None:
        has = bool(self.selected_paths())
        for action in (self.open_action, self.reveal_action, self.copy_action, self.trash_action):
            action.setEnabled(has)
        groups = self.result is not None and bool(self.result.grouping.groups)
        self.export_action.setEnabled(groups)
        self.select_copies_action.setEnabled(groups and any(g.redundant_copies for g in self.result.grouping.groups))

    # -- actions ---------------------------------------------------------------------------------------
    def open_selected(self) -> None:
        paths = self.selected_paths()
        for path in paths[:OPEN_AT_MOST]:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))
        if len(paths) > OPEN_AT_MOST:
            self.note.setText(f"Opened the first {OPEN_AT_MOST} of {len(paths)} selected photos.")

    def reveal_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            reveal_in_file_manager(paths[0])

    def copy_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            QGuiApplication.clipboard().setText("\n".join(paths))
            self.note.setText(f"Copied {plural(len(paths), 'path')} to the clipboard.")

    def _confirm_trash(self, paths: list[str]) -> bool:
        names = [Path(p).name for p in paths]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        whole = [
            str(head.data(0, GroupRole))
            for head in self.group_items()
            if all(head.child(j).data(0, PathRole) in set(paths) for j in range(head.childCount()))
        ]
        details = f"{shown}\n\nFrom {self.folder}. You can restore them from the trash."
        if whole:
            which = f"group{'s' if len(whole) > 1 else ''} {', '.join(whole)}"
            details += f"\n\nAll the photos of {which} are selected: none of them stays in the folder."
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Move to the trash")
        box.setText(f"Move {plural(len(paths), 'photo')} to the trash?")
        box.setInformativeText(details)
        move = box.addButton("Move to trash", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        return box.clickedButton() is move

    def trash_selected(self) -> None:
        """Ask, then move the selected photos to the trash; say what moved and what did not."""
        paths = self.selected_paths()
        if not paths or not self._confirm_trash(paths):
            return
        relpaths = {
            str(self.folder / item.data(0, MemberRole).relpath): item.data(0, MemberRole).relpath for item in self.photo_items()
        }
        moved, failed = [], []
        for path in paths:
            result = move_to_trash(path)
            if result:
                moved.append(path)
                self._left_out.add(relpaths[path])
            elif not os.path.lexists(path):
                failed.append((path, "it is no longer there"))
            else:
                failed.append((path, "the system refused (no trash on that drive, or no permission to move it)"))
        self._remove_rows(set(moved))
        if moved:
            self.note.setText(
                f"Moved {plural(len(moved), 'photo')} to the trash ({', '.join(Path(p).name for p in moved[:5])}"
                + (", …" if len(moved) > 5 else "")
                + "). They are left out of the groups now; the index forgets them at the next Update index (F5)."
            )
        if failed:
            QMessageBox.warning(
                self,
                "Not moved to the trash",
                f"{plural(len(failed), 'photo was', 'photos were')} not moved to the trash:\n\n"
                + "\n".join(f"{p}: {reason}" for p, reason in failed[:10])
                + (f"\n… and {len(failed) - 10} more" if len(failed) > 10 else ""),
            )
        self.trashed.emit(moved, failed)
        if moved:
            self.regroup()

    def _remove_rows(self, paths: set[str]) -> None:
        """Take the moved photos out of the list at once (the regrouping that follows re-forms the groups)."""
        for head in self.group_items():
            for j in reversed(range(head.childCount())):
                if head.child(j).data(0, PathRole) in paths:
                    head.removeChild(head.child(j))
            if head.childCount() < 2:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(head))
        self._update_enabled()

    def export_csv(self) -> None:
        if self.result is None or not self.result.grouping.groups:
            return
        start = Path.home() / f"{self.folder.name or 'photos'}-look-alikes-r{self.result.grouping.radius}.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export the groups as CSV", str(start), "CSV files (*.csv);;All files (*)")
        if not path:
            return
        if not Path(path).suffix:
            path += ".csv"
        try:
            rows = group_tasks.write_groups_csv(path, self.result.grouping, self.folder)
        except OSError as exc:
            QMessageBox.warning(
                self,
                "Could not export",
                f"Could not write {path}: {exc.strerror or exc}.\n\nChoose a folder you can write to, with free space.",
            )
            return
        self.note.setText(f"Exported {plural(rows, 'photo')} in {plural(len(self.result.grouping.groups), 'group')} to {path}.")

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        if not item.isSelected():
            self.tree.setCurrentItem(item)
        menu = QMenu(self)
        menu.addActions([self.open_action, self.reveal_action, self.copy_action])
        menu.addSeparator()
        menu.addActions([self.trash_action])
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Closed (or Esc): no grouping runs for a window nobody sees; opening it again regroups."""
        if self._handle is not None or self._settle.isActive():
            self._regroup_when_shown = True
        self._settle.stop()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._regroup_when_shown:
            self._regroup_when_shown = False
            self.regroup()


def move_to_trash(path: str) -> bool:
    """``QFile.moveToTrash`` (PySide6 returns ``(moved, path in the trash)``; some versions a bool)."""
    result = QFile.moveToTrash(path)
    return bool(result[0] if isinstance(result, tuple) else result)


def show_groups_window(window) -> GroupsWindow | None:
    """Open (or bring to the front) the groups window of ``window``'s current index."""
    state = window.index_state
    if state is None:
        return None
    library = state.library
    groups = window.findChild(GroupsWindow)
    if groups is None:
        groups = GroupsWindow(library.db_path, library.folder, state.code_bits, window.lookups, window.thumbnails, window)
        window.indexReady.connect(lambda new: groups.index_updated(new.library.db_path, new.complete))
    else:
        groups.set_index(library.db_path, library.folder, state.code_bits)
    groups.show()
    groups.raise_()
    groups.activateWindow()
    groups.regroup()
    return groups


__all__ = ["GroupsWindow", "grouping_summary", "radius_words", "show_groups_window", "size_text"]
