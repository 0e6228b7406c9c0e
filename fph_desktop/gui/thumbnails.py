"""Result thumbnails: decoded off the GUI thread, cached on disk under the user cache directory.

The cache key is the file's absolute path, size and mtime, so an edited photo gets a fresh
thumbnail. Decoding uses :func:`fph_desktop.imaging.open_image` (JPEG draft reduction, EXIF
orientation), in a small QThreadPool; finished images come back as ``ready(path, QImage)`` in the
GUI thread. Only QImage crosses threads (QPixmap is GUI-thread only).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from ..fileio import atomic_write
from . import gc_guard

THUMB_SIDE = 160


def thumbnail_dir() -> Path:
    from .. import paths

    directory = paths.cache_dir() / "thumbnails"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def cache_path(path: str, side: int = THUMB_SIDE) -> Path | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{side}"
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()
    return thumbnail_dir() / digest[:2] / f"{digest}.jpg"


def make_thumbnail(path: str, side: int = THUMB_SIDE) -> QImage:
    """The cached thumbnail of ``path``, made (and stored) when missing. Raises ImageError/OSError."""
    from ..imaging import ImageError, open_image

    cached = cache_path(path, side)
    if cached is None:
        raise ImageError(path, "file not found")
    if cached.is_file():
        image = QImage(str(cached))
        if not image.isNull():
            return image
    photo = open_image(path, side)
    photo.thumbnail((side, side))
    with atomic_write(cached) as handle:
        photo.save(handle, "JPEG", quality=85)
    image = QImage(str(cached))
    if image.isNull():
        raise ImageError(path, "thumbnail could not be read back")
    return image


class _Signals(QObject):
    ready = Signal(str, QImage)
    failed = Signal(str, str)


class _Task(QRunnable):
    def __init__(self, path: str, side: int, signals: _Signals) -> None:
        super().__init__()
        self.path, self.side, self.signals = path, side, signals

    def run(self) -> None:
        try:
            image = make_thumbnail(self.path, self.side)
        except Exception as exc:  # noqa: BLE001 - a bad file costs its thumbnail, never the app
            self.signals.failed.emit(self.path, getattr(exc, "reason", str(exc)))
        else:
            self.signals.ready.emit(self.path, image)


class ThumbnailLoader(QObject):
    """Asks for thumbnails by path; emits ``ready``/``failed`` once per request. Keeps a small
    in-memory cache so scrolling back is instant."""

    ready = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(self, side: int = THUMB_SIDE, threads: int = 2, memory_items: int = 600, parent: QObject | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # its pool threads run Python code too
        self.side = side
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.ready.connect(self._on_ready)
        self._signals.failed.connect(self._on_failed)
        self._memory: OrderedDict[str, QImage] = OrderedDict()
        self._memory_items = memory_items
        self._pending: set[str] = set()

    def cached(self, path: str) -> QImage | None:
        image = self._memory.get(path)
        if image is not None:
            self._memory.move_to_end(path)
        return image

    def request(self, path: str) -> None:
        if path in self._memory or path in self._pending:
            return
        self._pending.add(path)
        self._pool.start(_Task(path, self.side, self._signals))

    def _on_ready(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._memory[path] = image
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)
        self.ready.emit(path, image)

    def _on_failed(self, path: str, reason: str) -> None:
        self._pending.discard(path)
        self.failed.emit(path, reason)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()
