"""One indexer per index at a time, across processes: a second ``index`` run of the same folder (or
the app and the command line at once) waits for the first, then finds nothing left to do.

An advisory lock on a file beside the database (``flock`` on POSIX, ``msvcrt.locking`` on Windows):
the operating system drops it when its holder exits, so a killed indexer never leaves a stale lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import storage_error
from ..progress import Progress, silent

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def lock_path_for(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


@contextmanager
def index_lock(db_path: str | Path, progress: Progress | None = None, poll: float = 0.2) -> Iterator[None]:
    """Hold the index's lock for the block; while another process (or thread) holds it, say so and
    wait, still honouring a cancel."""
    progress = progress or silent()
    path = lock_path_for(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        error = storage_error(exc, path, "locking the index")
        if error is None:
            raise
        raise error from None
    try:
        if not _try_lock(fd):
            progress.set_status("Another fph-desktop is indexing this folder; waiting for it to finish…")
            while not _try_lock(fd):
                progress.check()
                time.sleep(poll)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
