"""The one worker layer: long jobs run on a long-lived QThread and talk to the GUI only by signals.

A job is a plain function ``fn(progress, *args)`` from :mod:`fph_desktop.gui.tasks`; it gets a
Qt-free :class:`~fph_desktop.progress.Progress` whose callbacks become signals here (its
``set_progress`` is already throttled). A :class:`JobRunner` owns one thread and a queue, so jobs of
one runner run in order; submitting with ``replace=True`` cancels the queued and running jobs of the
same kind first (a new query supersedes the last one, as in Orange's TaskState). Cancelling is
cooperative: the core calls ``progress.check()`` between batches, which raises ``Cancelled``.

Errors arrive as ``failed(job_id, kind, message)`` with a message a person can act on; the traceback
of an unexpected error also goes to stderr. :meth:`JobRunner.shutdown` cancels everything and waits
for the thread, so closing the window never leaves a thread running or a batch half-written (the
index commits whole batches only).
"""
from __future__ import annotations

import itertools
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..progress import Cancelled, Progress
from . import gc_guard

_job_ids = itertools.count(1)


@dataclass
class Job:
    kind: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_job_ids))
    progress: Progress | None = None
    late_cancel: bool = True  # a cancel during the job's last step still reports as cancelled


_EXPECTED = ("WeightsError", "ImageError", "IndexStoreError", "NoModelError", "BackboneWeightsError", "TrainingError")


def is_expected(exc: BaseException) -> bool:
    """Errors the core raises on purpose, with a message written for the user."""
    return exc.__class__.__name__ in _EXPECTED or isinstance(exc, (ValueError, OSError))


def user_message(exc: BaseException) -> str:
    """One line a person can act on. Core errors already name the file and the next step."""
    text = str(exc).strip() or exc.__class__.__name__
    if is_expected(exc):
        return text
    if isinstance(exc, MemoryError):
        return "ran out of memory; close other programs, or index a smaller folder first"
    return f"unexpected error ({exc.__class__.__name__}: {text}); details were written to the terminal"


class _Executor(QObject):
    """Lives in the worker thread; runs queued jobs one after another."""

    started = Signal(int, str)
    status = Signal(int, str)
    progress = Signal(int, int, int)
    partial = Signal(int, object)
    finished = Signal(int, str, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int, str)
    idle = Signal()

    def __init__(self, runner: "JobRunner") -> None:
        super().__init__()
        self._runner = runner

    @Slot()
    def drain(self) -> None:
        while True:
            job = self._runner._take_next()
            if job is None:
                self.idle.emit()
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        progress = job.progress
        try:
            if progress.cancelled:
                raise Cancelled()
            self.started.emit(job.id, job.kind)
            result = job.fn(progress, *job.args, **job.kwargs)
            if job.late_cancel:
                progress.check()  # a cancel that arrived during the last step still counts as a cancel
        except Cancelled:
            self.cancelled.emit(job.id, job.kind)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI as a signal
            if not is_expected(exc):
                traceback.print_exc(file=sys.stderr)
            self.failed.emit(job.id, job.kind, user_message(exc))
        else:
            self.finished.emit(job.id, job.kind, result)
        finally:
            self._runner._done(job)


class JobRunner(QObject):
    """One worker thread and its queue. Signals are delivered in the GUI thread."""

    started = Signal(int, str)  # job id, kind
    status = Signal(int, str)  # job id, text
    progress = Signal(int, int, int)  # job id, done, total
    partial = Signal(int, object)  # job id, partial result
    finished = Signal(int, str, object)  # job id, kind, result
    failed = Signal(int, str, str)  # job id, kind, message
    cancelled = Signal(int, str)  # job id, kind
    idle = Signal()
    _wake = Signal()

    def __init__(self, name: str = "fph-worker", parent: QObject | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # before any Python code runs in the new thread
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._closed = False
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._executor = _Executor(self)
        self._executor.moveToThread(self._thread)
        for name_ in ("started", "status", "progress", "partial", "finished", "failed", "cancelled", "idle"):
            getattr(self._executor, name_).connect(getattr(self, name_))
        self._wake.connect(self._executor.drain)
        self._thread.start()

    # -- called from the GUI thread ------------------------------------------------------------------
    def submit(self, kind: str, fn: Callable[..., Any], *args, replace: bool = False, late_cancel: bool = True, **kwargs) -> int:
        """Queue ``fn(progress, *args, **kwargs)``; returns the job id used in every signal.
        ``late_cancel=False``: a job that returned is finished, even if a cancel came in after its
        last check (a training run that has saved its model must not be reported as stopped)."""
        if self._closed:
            raise RuntimeError("the worker was shut down")
        if replace:
            self.cancel(kind=kind)
        job = Job(kind, fn, args, kwargs, late_cancel=late_cancel)
        job.progress = Progress(
            on_status=lambda text, i=job.id: self._executor.status.emit(i, text),
            on_progress=lambda done, total, i=job.id: self._executor.progress.emit(i, done, total),
            on_partial=lambda result, i=job.id: self._executor.partial.emit(i, result),
            min_interval=0.1,
        )
        with self._lock:
            self._queue.append(job)
        self._wake.emit()
        return job.id

    def cancel(self, job_id: int | None = None, kind: str | None = None) -> None:
        """Cancel the matching jobs (all when neither is given): queued ones never start, the running
        one stops at its next ``progress.check()``."""
        with self._lock:
            jobs = list(self._queue) + ([self._current] if self._current else [])
        for job in jobs:
            if (job_id is None or job.id == job_id) and (kind is None or job.kind == kind):
                job.progress.cancel()

    def is_busy(self, kind: str | None = None) -> bool:
        with self._lock:
            jobs = list(self._queue) + ([self._current] if self._current else [])
        return any((kind is None or j.kind == kind) and not j.progress.cancelled for j in jobs)

    def running_kind(self) -> str | None:
        with self._lock:
            return self._current.kind if self._current else None

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Cancel all jobs, stop the thread and wait for it (``None``: as long as it takes). True when
        the thread has ended."""
        self._closed = True
        self.cancel()
        self._thread.quit()
        ended = self._thread.wait() if wait_ms is None else self._thread.wait(wait_ms)
        return bool(ended)

    @property
    def thread(self) -> QThread:
        return self._thread

    # -- called from the worker thread ---------------------------------------------------------------
    def _take_next(self) -> Job | None:
        with self._lock:
            self._current = self._queue.popleft() if self._queue else None
            return self._current

    def _done(self, job: Job) -> None:
        with self._lock:
            if self._current is job:
                self._current = None
