"""Walking a photo folder: which files are photos, with the size and mtime that decide whether
they need encoding again.

The walk is iterative (no recursion limit on deep trees) and never stops on a directory it may not
read (it records the reason instead). Links to folders are followed only when they lead to a place
inside the indexed folder, and each real directory is entered once, so a link to ``/`` or a link
loop cannot make it walk the file system. Links to files are indexed wherever they lead (one file
each). Files with a photo's name that cannot be read as one (a HEIC photo without the ``heif``
extra, a pipe, a device, a dangling link) are passed over *with a reason*, never silently. Hidden
folders, OS clutter and the app's own directories are skipped unless asked otherwise. Paths are
kept relative to the root with ``/`` separators, so an index survives the drive being mounted elsewhere.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..imaging import is_image_path, unsupported_reason
from ..progress import Progress, silent

# Folders that hold thumbnails or system files, never the user's photos.
CLUTTER_DIRS = frozenset({"@eaDir", "$RECYCLE.BIN", "System Volume Information", "__MACOSX", "#recycle"})


@dataclass(frozen=True)
class ScannedFile:
    """One photo found on disk: ``relpath`` uses ``/`` whatever the OS."""

    relpath: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    root: Path
    files: list[ScannedFile] = field(default_factory=list)
    # Directories (relative, "." for the root) that could not be listed, with the reason.
    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)
    root_is_empty: bool = False  # the root itself has no entries at all (an unmounted mount point?)
    # Files named like photos that cannot be read as photos, with the reason (relpath, reason, size, mtime_ns).
    passed_over: list[tuple[str, str, int, int]] = field(default_factory=list)


def is_hidden(entry: os.DirEntry) -> bool:
    """Dot-names everywhere; the hidden attribute on Windows too."""
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return True


def _app_dirs() -> set[tuple[int, int]]:
    """(device, inode) of the app's data and cache directories, in case a user indexes a folder
    that contains them (a portable install): their thumbnails must not become photos."""
    found = set()
    for directory in (paths.data_dir(), paths.cache_dir()):
        try:
            st = directory.stat()
            found.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return found


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _pass_over(result: ScanResult, relpath: str, entry: os.DirEntry, reason: str) -> None:
    try:
        st = entry.stat(follow_symlinks=False)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = 0, 0
    result.passed_over.append((relpath, reason, size, mtime))


def scan_folder(root: str | Path, progress: Progress | None = None, include_hidden: bool = False) -> ScanResult:
    """All photos under ``root``, sorted by relative path.

    Raises :class:`FileNotFoundError` / :class:`NotADirectoryError` if ``root`` itself is not a
    readable directory; the caller decides whether that means "offline".
    """
    progress = progress or silent()
    root = Path(root)
    root_stat = root.stat()  # raises when the folder (or its drive) is gone
    if not stat.S_ISDIR(root_stat.st_mode):
        raise NotADirectoryError(f"{root} is not a folder")
    result = ScanResult(root=root)
    real_root = os.path.realpath(root)
    skip_dirs = _app_dirs()
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    pending: list[tuple[str, str]] = [("", str(root))]  # (relative prefix, absolute path)
    checked = 0
    while pending:
        prefix, directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except (PermissionError, FileNotFoundError, NotADirectoryError, OSError) as exc:
            reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
            result.unreadable_dirs.append((prefix.rstrip("/") or ".", reason))
            continue
        if not prefix and not entries:
            result.root_is_empty = True
        subdirs = []
        # Name order, real folders before symlinked ones: when two names lead to one folder, the
        # same one (preferably the real one) is kept on every run, so relpaths stay stable.
        entries.sort(key=lambda e: (_is_link(e), e.name))
        for entry in entries:
            try:
                if not include_hidden and is_hidden(entry):
                    continue
                if entry.is_dir():  # follows symlinks; loops are cut by ``visited`` below
                    if entry.name in CLUTTER_DIRS:
                        continue
                    if _is_link(entry) and not _inside(os.path.realpath(entry.path), real_root):
                        result.unreadable_dirs.append(
                            (prefix + entry.name, "a link to a folder outside the indexed folder; not followed")
                        )
                        continue
                    st = entry.stat()
                    key = (st.st_dev, st.st_ino)
                    if key in visited or key in skip_dirs:
                        continue
                    visited.add(key)
                    subdirs.append((prefix + entry.name + "/", entry.path))
                elif is_image_path(entry.name):
                    if entry.is_file():
                        st = entry.stat()
                        result.files.append(ScannedFile(prefix + entry.name, st.st_size, st.st_mtime_ns))
                    elif _is_link(entry) and not os.path.exists(entry.path):
                        _pass_over(result, prefix + entry.name, entry, "a link to a file that does not exist")
                    else:
                        _pass_over(result, prefix + entry.name, entry, "not a regular file (a pipe, device or socket)")
                else:
                    reason = unsupported_reason(entry.name)
                    if reason is not None and not entry.is_dir():
                        _pass_over(result, prefix + entry.name, entry, reason)
            except FileNotFoundError:
                continue  # vanished between listing and stat: nothing to index
            except OSError as exc:
                result.unreadable_dirs.append((prefix + entry.name, exc.strerror or str(exc)))
        # Reverse so that popping from the end visits folders in name order (deterministic logs).
        pending.extend(sorted(subdirs, reverse=True))
        checked += 1
        if checked % 64 == 0:
            progress.set_status(f"Looking for photos… {len(result.files)} found")
            progress.check()
    result.files.sort(key=lambda f: f.relpath)
    result.passed_over.sort()
    return result
