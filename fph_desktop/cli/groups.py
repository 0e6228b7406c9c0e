"""``fph-desktop groups FOLDER --radius R``: the look-alike groups of an indexed folder.

It reads the folder's index from SQLite and compares the stored codes; no model is loaded and no
photo is read, so it works on an offline folder too. The folder's index is the most recently updated
one, or the one made with ``--model FILE`` (matched by the model path the index recorded, so the
model file itself need not exist any more). How pairs become groups: :mod:`fph_desktop.index.groups`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import EXIT_OK, BadArgumentError, display_path
from ..index.groups import Grouping, groups_in_index
from ..index.store import DB_SUFFIX, IndexStore, IndexStoreError, folder_key, folder_label, indexes_dir
from .flags import bounded, non_negative_int


def add_groups_parser(subparsers) -> None:
    groups = subparsers.add_parser(
        "groups",
        help="find groups of look-alike photos (and exact copies) in an indexed folder",
        description="Group the photos of an indexed FOLDER whose codes are within RADIUS bits of a group's first "
        "photo; byte-identical copies are flagged. Reads the index only: run `fph-desktop index FOLDER` first.",
    )
    groups.add_argument("folder", type=Path, help="a folder indexed with `fph-desktop index`")
    groups.add_argument(
        "--radius",
        type=non_negative_int,
        required=True,
        help="the largest Hamming distance to a group's first photo (0: the same code; e.g. 4 of 48 bits)",
    )
    groups.add_argument(
        "--model", type=Path, help="use the folder's index made with this weights file (default: its latest index)"
    )
    groups.add_argument(
        "--min-size", type=bounded(int, 2), default=2, metavar="N", help="leave out groups of fewer photos (default 2)"
    )
    groups.add_argument("--json", action="store_true", help="machine-readable output: a list of groups")
    groups.set_defaults(func=run_groups)


def _same_file(recorded: str | None, model: Path) -> bool:
    if not recorded:
        return False
    if os.path.abspath(recorded) == os.path.abspath(model):
        return True
    try:
        return os.path.samefile(recorded, model)
    except OSError:
        return False


def folder_index(folder: Path, model: Path | None = None) -> tuple[Path, dict[str, str]]:
    """(index file, its metadata) of ``folder``: its most recently updated index, or the one made
    with ``model``. Reads only the index files named after the folder (see ``db_path_for``)."""
    key, label = folder_key(folder), folder_label(folder) + "-"
    found, damaged = [], []
    for db_path in sorted(indexes_dir().iterdir()):
        if not (db_path.name.startswith(label) and db_path.name.endswith(DB_SUFFIX)):
            continue
        try:
            with IndexStore(db_path) as store:
                meta = store.meta()
        except IndexStoreError as exc:
            damaged.append(exc)
            continue
        if meta.get("root") == key:
            found.append((db_path, meta))
    if not found:
        if not folder.exists():
            raise BadArgumentError("no such folder", folder, "check the path (is its drive connected?)")
        if not folder.is_dir():
            raise BadArgumentError("is a file, not a folder", folder, "give a folder indexed with `fph-desktop index`")
        if damaged:
            raise damaged[0]
        raise IndexStoreError("has not been indexed yet", folder, f"run `fph-desktop index {display_path(folder)}` first")
    if model is not None:
        found = [(db_path, meta) for db_path, meta in found if _same_file(meta.get("model_path"), model)]
        if not found:
            raise IndexStoreError(
                f"has not been indexed with {display_path(model)}",
                folder,
                f"run `fph-desktop index {display_path(folder)} --model {display_path(model)}`, or leave out --model",
            )
    return max(found, key=lambda item: float(item[1].get("updated", 0) or 0))


def _size_text(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""  # unreachable


def _as_json(grouping: Grouping, folder: Path) -> list[dict]:
    return [
        {
            "size": len(group),
            "max_distance": group.max_distance,
            "representative": group.representative.relpath,
            "members": [
                {
                    "relpath": m.relpath,
                    "path": str(folder / m.relpath),
                    "distance": m.distance,
                    "exact_duplicate": m.exact_duplicate,
                    "duplicate_of": m.duplicate_of,
                    "edited_copy_of": m.edited_copy_of,
                    "bytes": m.size,
                }
                for m in group.members
            ],
        }
        for group in grouping.groups
    ]


def _print_text(grouping: Grouping, folder: Path, notes: list[str]) -> None:
    grouped = sum(len(g) for g in grouping.groups)
    copies = sum(g.redundant_copies for g in grouping.groups)
    if grouping.groups:
        found = f"{len(grouping.groups)} group(s) of look-alikes, {grouped} of {grouping.photos} photos"
    else:
        found = f"no look-alikes among {grouping.photos} photos"
    print(
        f"{display_path(folder)}: {found} (radius {grouping.radius} of {grouping.code_bits} bits)"
        + (f"; {copies} exact cop{'y' if copies == 1 else 'ies'} of another photo" if copies else "")
    )
    for note in notes:
        print(f"(note: {note})")
    for number, group in enumerate(grouping.groups, 1):
        spread = (
            "all with the same code"
            if group.max_distance == 0
            else f"each within {group.max_distance} bit{'s' if group.max_distance > 1 else ''} of the first"
        )
        print(f"\nGroup {number}: {len(group)} photos, {spread}")
        for m in group.members:
            copy = f"  exact copy of {display_path(m.duplicate_of)}" if m.duplicate_of else ""
            if m.edited_copy_of:
                copy = f"  edited copy of {display_path(m.edited_copy_of)}"
            print(f"  d={m.distance:<3d} {display_path(m.relpath)}  ({_size_text(m.size)}){copy}")


def run_groups(args: argparse.Namespace) -> int:
    db_path, meta = folder_index(args.folder, args.model)
    folder = Path(meta.get("root") or folder_key(args.folder))
    grouping = groups_in_index(db_path, args.radius, min_size=args.min_size)
    notes = []
    if not folder.is_dir():
        notes.append(f"{display_path(folder)} is offline; the groups are from its index")
    if meta.get("last_update_complete") != "1":
        notes.append(f"its last indexing did not finish; run `fph-desktop index {display_path(folder)}` to include every photo")
    if args.json:
        json.dump(_as_json(grouping, folder), sys.stdout, indent=2)
        print()
        for note in notes:
            print(f"fph-desktop: note: {note}", file=sys.stderr)
    else:
        _print_text(grouping, folder, notes)
    return EXIT_OK


__all__ = ["add_groups_parser", "folder_index", "run_groups"]
