"""Writing files so that a crash, a kill or a full disk never leaves half of one behind."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive but not ours, or a platform where signal 0 means something else
        return True
    return True


def remove_stale_parts(path: str | Path) -> list[Path]:
    """Remove the temporary files that writers of ``path`` killed mid-write (``kill -9``, power loss)
    left behind: ``NAME.PID.*.part`` whose PID no longer runs. Returns what was removed."""
    path = Path(path)
    removed = []
    for part in path.parent.glob(f"{glob.escape(path.name)}.*.part"):
        pid = part.name[len(path.name) + 1 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                part.unlink()
                removed.append(part)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file beside ``path``; when the block ends, flush it to disk and rename it over
    ``path``. On any error the temporary file is removed and ``path`` keeps its old content; the
    leftovers of earlier writers that were killed are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
