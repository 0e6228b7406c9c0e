"""A Qt-free handle through which long core jobs report progress and learn of a cancel.

The GUI's worker layer turns the callbacks into Qt signals; the CLI prints them. Core code only
calls ``set_status``, ``set_progress``, ``partial`` and ``check``, so it never knows which of the two
is listening.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised by :meth:`Progress.check` once a cancel was requested; jobs let it propagate."""


class Progress:
    """Progress, partial results and cooperative cancellation for one job.

    ``set_progress`` is throttled: the callback fires only when the rounded percentage changes and at
    most every ``min_interval`` seconds (plus always at 100%), so a tight loop can call it per item.
    Every method is safe to call from any thread.
    """

    def __init__(
        self,
        on_status: Callable[[str], Any] | None = None,
        on_progress: Callable[[int, int], Any] | None = None,
        on_partial: Callable[[Any], Any] | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self._on_status = on_status
        self._on_progress = on_progress
        self._on_partial = on_partial
        self._min_interval = min_interval
        self._cancel = threading.Event()
        self._last_percent = -1
        self._last_emit = 0.0
        self.status = ""

    def set_status(self, text: str) -> None:
        self.status = text
        if self._on_status is not None:
            self._on_status(text)

    def set_progress(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else int(100 * done / total)
        now = time.monotonic()
        finished = total > 0 and done >= total
        if percent == self._last_percent and not finished:
            return
        if not finished and now - self._last_emit < self._min_interval:
            return
        self._last_percent = percent
        self._last_emit = now
        if self._on_progress is not None:
            self._on_progress(done, total)

    def partial(self, result: Any) -> None:
        if self._on_partial is not None:
            self._on_partial(result)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if a cancel was requested; call between units of work."""
        if self._cancel.is_set():
            raise Cancelled()


def silent() -> Progress:
    """A progress handle nobody listens to, for callers that don't care."""
    return Progress()
