"""The one error model: every failure a user can meet on purpose is a :class:`UserError`.

Why one module, free of torch and Qt: the command line's ``main`` and the GUI's worker layer both
need to tell "the user's file, folder, disk or argument" apart from "a bug in fph-desktop", and they
must decide it the same way without importing the model. A :class:`UserError` becomes one line
(what happened, which file, what to do) and an exit code; anything else is a bug: its traceback goes
to a crash report file and the user is told so, in one line as well.

Core code raises the narrowest subclass; :func:`storage_error` turns the ``OSError`` (or SQLite
error) of a write into the disk-full / read-only / permission variant with the same advice
everywhere.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import sqlite3
import sys
import traceback
from pathlib import Path

# Exit codes of the command line (README, "Exit codes").
EXIT_OK = 0
EXIT_PARTIAL = 1  # done, but some photos or queries failed; each is named on stderr
EXIT_USER = 2  # a bad argument, file, folder, model or index; nothing was changed
EXIT_OFFLINE = 3  # the folder is not reachable (drive unplugged); its index is kept
EXIT_STORAGE = 4  # the disk is full or read-only; what was saved before is intact
EXIT_BUG = 70  # an internal error (a bug): a crash report was written
EXIT_INTERRUPTED = 130  # cancelled (Ctrl+C); finished work is kept, rerun to continue


class UserError(Exception):
    """An expected failure with a message written for the person who met it.

    ``path`` is the file or folder concerned (named in the message), ``hint`` the next step."""

    exit_code = EXIT_USER

    def __init__(self, message: str, path: str | os.PathLike | None = None, hint: str | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if self.path is None else f"{display_path(self.path)}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class BadArgumentError(UserError):
    """A value given on the command line or in a dialog that cannot work (``-k 0``)."""


class ConfigError(BadArgumentError, ValueError):
    """Settings that cannot work together or are out of range (a ``ValueError`` too, for callers
    that build configs programmatically)."""


class BadFileError(UserError):
    """A file that cannot be used for what was asked: a damaged photo, a wrong weights file."""


class BadFolderError(UserError):
    """A folder that is missing, unreadable, or not laid out as the command needs."""


class BadIndexError(UserError):
    """An index file that cannot be opened or trusted (damaged, written by a newer version)."""


class NoModelError(UserError):
    """No model was given and none can be chosen on the user's behalf."""


class MissingDependencyError(UserError):
    """An optional package the request needs is not installed (faiss, pillow-heif)."""

    def __init__(self, package: str, needed_for: str, install: str, alternative: str | None = None) -> None:
        hint = f"install it with `pip install {install}`" + (f", or {alternative}" if alternative else "")
        super().__init__(f"{needed_for} needs {package}, which is not installed", hint=hint)
        self.package = package


class OfflineError(UserError):
    """The folder's drive is not reachable; the index stays as it was."""

    exit_code = EXIT_OFFLINE


class StorageError(UserError):
    """Writing failed for a reason of the storage, not of the data."""

    exit_code = EXIT_STORAGE


class DiskFullError(StorageError):
    """No space left (or quota exceeded) where we write."""


class ReadOnlyStorageError(StorageError):
    """The place we write to is read-only, or we may not write there."""


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS}
_DENIED = {errno.EACCES, errno.EPERM}


def storage_error(exc: BaseException, path: str | os.PathLike, doing: str, kept: str = "") -> UserError | None:
    """The :class:`UserError` for a failed write to ``path`` while ``doing`` (e.g. "saving the
    model"), or None when ``exc`` is not a storage problem (then it is a bug: let it propagate).

    ``kept`` tells the user what survived ("the index holds every batch saved before").
    Understands ``OSError`` errnos, SQLite's messages and PyTorch's serializer's ("file write failed").
    """
    hint_tail = f"; {kept}" if kept else ""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if isinstance(exc, OSError) and code in _FULL or "database or disk is full" in text or "no space left" in text:
        return DiskFullError(f"the disk is full while {doing}", path, f"free some space and run it again{hint_tail}")
    if isinstance(exc, OSError) and code == errno.EFBIG or "disk i/o error" in text:
        # EFBIG: the file system's (or the process's) file-size limit; SQLite reports any failed write so.
        return DiskFullError(
            f"writing to the disk failed while {doing} (is it full, or is the file over the size limit of its file system?)",
            path,
            f"free some space and run it again{hint_tail}",
        )
    if isinstance(exc, OSError) and code in _READ_ONLY or "readonly database" in text or "read-only file system" in text:
        return ReadOnlyStorageError(
            f"the storage is read-only, so {doing} is not possible",
            path,
            f"choose a writable location{hint_tail}",
        )
    if isinstance(exc, OSError) and code in _DENIED:
        return ReadOnlyStorageError(f"permission denied while {doing}", path, f"check the folder's permissions{hint_tail}")
    if isinstance(exc, RuntimeError) and "file write failed" in text:
        # PyTorch's zip writer hides the errno; the disk being full is by far the usual cause.
        return DiskFullError(
            f"writing failed while {doing} (is the disk full?)", path, f"free some space and run it again{hint_tail}"
        )
    return None


def sqlite_error(exc: sqlite3.Error, path: str | os.PathLike, doing: str, kept: str = "") -> UserError | None:
    """:func:`storage_error`, plus an index file that is not (or no longer) a database."""
    found = storage_error(exc, path, doing, kept)
    if found is not None:
        return found
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return BadIndexError(
            "the index file is damaged",
            path,
            "move it aside (or delete it) and index the folder again; your photos are not affected",
        )
    if "database is locked" in text or "unable to open database" in text:
        return BadIndexError(f"the index file cannot be opened ({exc})", path, "close other programs using it and try again")
    return None


def display_path(path: str | os.PathLike) -> str:
    """A path printable on any terminal: undecodable bytes in a file name show as ``\\xNN``."""
    text = os.fspath(path)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    # Control characters (a newline in a file name) would break line-based output.
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def crash_report_dir() -> Path:
    from . import paths

    return paths.cache_dir() / "crash-reports"


def report_bug(exc: BaseException, context: str = "") -> str:
    """Write the traceback of an unexpected error to a crash report and return the one line to show.

    The report's path is in the line, so a user can attach it to an issue; if even that cannot be
    written, the traceback goes to stderr instead."""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    summary = f"{type(exc).__name__}: {str(exc).strip()}".strip().rstrip(":")
    summary = summary.splitlines()[0][:300] if summary else type(exc).__name__
    try:
        from . import __version__

        directory = crash_report_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        report = directory / f"crash-{stamp}-{os.getpid()}.txt"
        report.write_text(
            f"fph-desktop {__version__}, Python {sys.version.split()[0]}, {sys.platform}\n{context}\n\n{details}",
            encoding="utf-8",
        )
        where = f"details are in {report}"
    except Exception:  # noqa: BLE001 - the report is best effort; the user still gets the line
        print(details, file=sys.stderr)
        where = "details were printed above"
    return f"internal error (a bug in fph-desktop): {summary}; {where}; please report it"


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, UserError)


def message_for(exc: BaseException, context: str = "") -> str:
    """The one line for any exception: a user error's own message, a crash report otherwise."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "ran out of memory; close other programs, or work on a smaller folder or batch"
    return report_bug(exc, context)


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, UserError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, MemoryError):
        return EXIT_USER
    return EXIT_BUG
