"""Python's cycle collector runs only in the GUI thread while the app has worker threads.

CPython collects cyclic garbage in whichever thread happens to allocate when a threshold is crossed.
If that is a worker thread (loading a model, training) and the garbage holds a Qt widget (a closed
dialog whose wrapper sits in a reference cycle through a connected lambda), the widget's C++ side
is destroyed off the GUI thread, which crashes Qt. So automatic collection is switched off and a
timer in the GUI thread runs the same generational collection, as the thresholds would have.
Reference counting, which frees almost everything, is untouched.
"""

from __future__ import annotations

import gc
import os

from PySide6.QtCore import QCoreApplication, QObject, QTimer

_guard: MainThreadCollector | None = None


class MainThreadCollector(QObject):
    def __init__(self, parent: QObject, interval_ms: int = 200) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(interval_ms)

    def collect_due(self) -> int:
        """Collect the oldest generation whose count is over its threshold; returns the objects freed."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                return gc.collect(generation)
        return 0


def install() -> MainThreadCollector:
    """Idempotent; needs the application object, whose lifetime the collector shares."""
    global _guard
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before the worker threads")
    if _guard is None or _guard.parent() is not app:
        if _guard is None and hasattr(os, "register_at_fork"):
            # Forked children (DataLoader workers) have no GUI thread and no timer: they collect as usual.
            os.register_at_fork(after_in_child=gc.enable)
        _guard = MainThreadCollector(app)
    return _guard
