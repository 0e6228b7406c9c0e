"""The look-alike groups window on real widgets: a real index of drawn bird photos with a byte copy
of one of them, opened through the main window's action; the exact copy is flagged, the groups
export as CSV, and a photo moved to the trash (a temporary one) leaves the folder and the list."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402
from test_gui_window import WAIT_MS, _index, window  # noqa: E402, F401 (window: the shared fixture)

from fph_desktop.gui.group_tasks import CSV_COLUMNS  # noqa: E402
from fph_desktop.gui.groups_view import COLUMN_COPY, BadgeRole, GroupsWindow, MemberRole, PathRole  # noqa: E402


@pytest.fixture
def folder_with_copy(tmp_path, tiny_birds) -> tuple[Path, Path, Path]:
    """(folder, a photo, its byte-identical copy under another name): 28 drawn bird photos."""
    folder = tmp_path / "photos"
    shutil.copytree(tiny_birds, folder)
    original = sorted(folder.glob("train/*/*.jpg"))[0]
    copy = original.with_name(f"{original.stem} copy.jpg")
    shutil.copyfile(original, copy)
    return folder, original, copy


def _open_groups(qtbot, window, folder):
    assert not window.groups_action.isEnabled(), "the action must wait for an index"
    _index(qtbot, window, folder)
    assert window.groups_action.isEnabled() and window.groups_action.shortcut().toString() == "Ctrl+G"
    window.groups_action.trigger()
    groups = window.findChild(GroupsWindow)
    assert groups is not None and groups.isVisible() and folder.name in groups.windowTitle()
    qtbot.waitUntil(lambda: groups.result is not None or groups.empty.isVisible(), timeout=WAIT_MS)
    assert groups.result is not None, f"grouping failed: {groups.empty.text()}"
    return groups


def _copies(groups, folder, original, copy) -> tuple[Path, Path]:
    """(the copy that stays, the redundant one): the first in file order is the one that stays."""
    members = {Path(item.data(0, PathRole)): item.data(0, MemberRole) for item in groups.photo_items()}
    redundant = next(p for p in (original, copy) if members[p].duplicate_of)
    kept = original if redundant == copy else copy
    assert members[redundant].duplicate_of == kept.relative_to(folder).as_posix()
    return kept, redundant


def _row(groups, path: Path):
    rows = [item for item in groups.photo_items() if Path(item.data(0, PathRole)) == path]
    return rows[0] if rows else None


def _answer_message_box(button_text: str) -> QTimer:
    """Click ``button_text`` in the next modal message box, as a user would (polls until it is shown)."""
    timer = QTimer()

    def click():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            for button in box.buttons():
                if button.text().replace("&", "") == button_text:
                    timer.stop()
                    button.click()

    timer.timeout.connect(click)
    timer.start(20)
    return timer


def test_groups_window_flags_the_exact_copy_and_exports_the_groups_as_csv(qtbot, window, folder_with_copy, tmp_path, monkeypatch):
    folder, original, copy = folder_with_copy
    groups = _open_groups(qtbot, window, folder)
    grouping = groups.result.grouping
    assert grouping.radius == 4 and grouping.photos == 28
    assert groups.radius_value.text() == "4 of 16 bits"
    copy_row, original_row = _row(groups, copy), _row(groups, original)
    assert copy_row is not None and original_row is not None
    assert copy_row.parent() is original_row.parent(), "byte-identical photos share their code: one group"
    kept, redundant = _copies(groups, folder, original, copy)
    member = _row(groups, redundant).data(0, MemberRole)
    assert member.exact_duplicate and _row(groups, kept).data(0, MemberRole).exact_duplicate
    assert _row(groups, redundant).data(COLUMN_COPY, BadgeRole) == "exact copy"
    assert _row(groups, kept).data(COLUMN_COPY, BadgeRole) == "has a copy"
    assert groups.summary.text().endswith("28 photos; 1 exact copy")
    sizes = [len(g) for g in grouping.groups]
    assert sizes == sorted(sizes, reverse=True), "largest groups first"
    assert groups.tree.topLevelItemCount() == len(grouping.groups)

    # Export: every member of every group, one row each, with its group number.
    target = tmp_path / "exported" / "groups"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    groups.export_action.trigger()
    with open(target.with_suffix(".csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == sum(sizes) and {int(r["group"]) for r in rows} == set(range(1, len(sizes) + 1))
    exported = next(r for r in rows if r["relpath"] == redundant.relative_to(folder).as_posix())
    assert exported["exact_duplicate"] == "true" and exported["duplicate_of"] == member.duplicate_of
    assert Path(exported["path"]) == redundant and int(exported["bytes"]) == redundant.stat().st_size
    assert "Exported" in groups.note.text()

    # Radius 0 (photos with the same code): regrouped once the slider settles; the copies stay together.
    groups.slider.setValue(0)
    assert groups.radius_value.text() == "0 of 16 bits"
    qtbot.waitUntil(lambda: groups.result.grouping.radius == 0, timeout=WAIT_MS)
    assert _row(groups, copy).parent() is _row(groups, original).parent()


def test_moving_a_photo_to_the_trash_asks_first_and_takes_it_out_of_the_groups(
    qtbot, window, folder_with_copy, tmp_path, monkeypatch
):
    data_home = tmp_path / "xdg-data"  # Qt's freedesktop trash: $XDG_DATA_HOME/Trash, never the user's own
    data_home.mkdir()  # as ~/.local/share is: Qt makes the Trash folder, not the data folder above it
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    warnings = []  # a failure is told in a message box: recorded here instead of waiting for a click
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *args: warnings.append(text))
    folder, original, copy = folder_with_copy
    groups = _open_groups(qtbot, window, folder)
    kept, redundant = _copies(groups, folder, original, copy)
    groups.select_copies_action.trigger()
    assert groups.selected_paths() == [str(redundant)]

    answer = _answer_message_box("Cancel")
    groups.trash_action.trigger()
    answer.stop()
    assert redundant.is_file() and _row(groups, redundant) is not None, "cancelling the confirmation moved the photo"

    answer = _answer_message_box("Move to trash")
    with qtbot.waitSignal(groups.trashed, timeout=WAIT_MS) as blocker:
        groups.trash_action.trigger()
    answer.stop()
    moved, failed = blocker.args
    assert moved == [str(redundant)] and failed == [] and warnings == []
    assert not redundant.exists() and kept.is_file()
    assert (data_home / "Trash" / "files" / redundant.name).is_file()
    assert _row(groups, redundant) is None
    assert "Moved 1 photo to the trash" in groups.note.text() and "Update index" in groups.note.text()
    # Regrouped without it: the photo kept is no one's copy any more, and the index still lists the moved one.
    qtbot.waitUntil(lambda: groups.result.left_out == 1, timeout=WAIT_MS)
    assert _row(groups, redundant) is None
    kept_row = _row(groups, kept)
    assert kept_row is None or not kept_row.data(0, MemberRole).exact_duplicate
    assert "no exact copies" in groups.summary.text()

    # The next indexing forgets the photo; the window then no longer needs to leave it out.
    _index(qtbot, window, folder)
    qtbot.waitUntil(lambda: groups.result.left_out == 0 and groups.result.grouping.photos == 27, timeout=WAIT_MS)
