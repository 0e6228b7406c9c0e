"""The look-alike groups window's job and its export: Qt-free, so a worker thread runs the job and a
test can call both directly.

The job reads the index file straight from SQLite (no model, no photo is read), as ``fph-desktop
groups`` does, but leaves out the photos the user moved to the trash from the window: the index
still lists them until the folder is indexed again, and a group must not offer a photo that is gone.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..progress import Progress

CSV_COLUMNS = ("group", "relpath", "path", "distance", "exact_duplicate", "duplicate_of", "bytes")


@dataclass(frozen=True)
class GroupsResult:
    """One grouping, with what the window needs to say about it."""

    grouping: object  # fph_desktop.index.groups.Grouping
    left_out: int  # photos of the index left out because they were moved to the trash
    complete: bool = True  # the index's last update finished (else some photos may be missing)


def find_look_alike_groups(progress: Progress, db_path: str, radius: int, left_out: Collection[str] = ()) -> GroupsResult:
    """The groups of the index at ``db_path`` within ``radius`` bits, without the photos whose
    relpaths are in ``left_out``. Raises :class:`~fph_desktop.errors.BadArgumentError` when the
    radius is too wide to group anything, :class:`~fph_desktop.index.store.IndexStoreError` for a
    damaged index."""
    from ..index.groups import groups_in_index
    from ..index.store import IndexStore

    progress.set_status(f"Grouping look-alikes within {radius} bits…")
    with IndexStore(db_path) as store:
        complete = store.get_meta("last_update_complete") == "1"
        indexed = set(store.encoded_files())
    progress.check()
    gone = set(left_out)
    grouping = groups_in_index(db_path, radius, left_out=gone)  # edited copies found by the index's hashes too
    progress.check()
    return GroupsResult(grouping, len(gone & indexed), complete)


def write_groups_csv(path: str | Path, grouping, folder: str | Path) -> int:
    """Write every member of every group as one CSV row (:data:`CSV_COLUMNS`; groups numbered from
    1 in the window's order); returns the number of rows. Raises OSError."""
    folder = Path(folder)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for number, group in enumerate(grouping.groups, 1):
            for member in group.members:
                writer.writerow(
                    [
                        number,
                        member.relpath,
                        str(folder / member.relpath),
                        member.distance,
                        "true" if member.exact_duplicate else "false",
                        member.duplicate_of or "",
                        member.size,
                    ]
                )
                rows += 1
    return rows


__all__ = ["CSV_COLUMNS", "GroupsResult", "find_look_alike_groups", "write_groups_csv"]
