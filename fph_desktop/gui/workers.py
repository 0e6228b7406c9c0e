"""The one worker layer: long jobs run on a long-lived QThread and talk to the GUI only by signals.

A job is a plain function ``fn(progress, *args)`` from :mod:`fph_desktop.gui.tasks`; it gets a
Qt-free :class:`~fph_desktop.progress.Progress` whose callbacks become signals here (its
``set_progress`` is already throttled). A :class:`JobRunner` owns one thread and a queue, so jobs of
one runner run in order; submitting with ``replace=True`` cancels the queued and running jobs of the
same kind first (a new query supersedes the last one, as in Orange's TaskState). Cancelling is
cooperative: the core calls ``progress.check()`` between batches, which raises ``Cancelled``.

:meth:`JobRunner.submit` returns a :class:`JobHandle`, one per job (as superqt's workers are): the
caller connects to the job it started, so nothing is dispatched on a kind string. Every signal of a
handle is emitted in the GUI thread, in the order the job reported it, and exactly one of
``finished``/``failed``/``cancelled`` ends it (then ``ended``).

Errors are judged by :mod:`fph_desktop.errors`: a :class:`~fph_desktop.errors.UserError` arrives
as its own one line; anything else is a bug, whose traceback goes to a crash report file, and the
line says so and where the report is. No traceback ever reaches the window.
:meth:`JobRunner.shutdown` cancels everything and waits for the thread, so closing the window never
leaves a thread running or a batch half-written (the index commits whole batches only).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from .. import errors
from ..progress import Cancelled, Progress
from . import gc_guard

_job_ids = itertools.count(1)

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED = "queued", "running", "finished", "failed", "cancelled"


class JobHandle(QObject):
    """One submitted job, as the GUI thread sees it. Lives in the GUI thread; all its signals are
    emitted there. The runner keeps it alive until the job has ended; keep a reference for longer."""

    started = Signal()
    status = Signal(str)
    progress = Signal(int, int)  # done, total
    partial = Signal(object)
    finished = Signal(object)  # the job's return value
    failed = Signal(str)  # one line for the user (see fph_desktop.errors.message_for)
    cancelled = Signal()
    ended = Signal()  # after finished, failed or cancelled

    def __init__(self, job: Job, runner: JobRunner) -> None:
        super().__init__()
        self._job = job
        self._runner = runner
        self.id = job.id
        self.kind = job.kind
        self.state = QUEUED
        self.result: Any = None
        self.message = ""  # the failure's line
        self.user_error = False  # the failure was the user's file, folder, disk or argument (not a bug)

    def cancel(self) -> None:
        """Ask the job to stop: a queued job never starts, a running one stops at its next check."""
        self._job.progress.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._job.progress.cancelled

    @property
    def done(self) -> bool:
        return self.state in (FINISHED, FAILED, CANCELLED)

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.kind} {self.state}>"


@dataclass
class Job:
    """The worker thread's side of a job (the GUI holds its :class:`JobHandle`)."""

    kind: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_job_ids))
    progress: Progress | None = None
    late_cancel: bool = True  # a cancel during the job's last step still reports as cancelled


class _Executor(QObject):
    """Lives in the worker thread; runs queued jobs one after another and reports each event as
    ``event(job id, signal name, arguments)``, which the runner relays to the job's handle."""

    event = Signal(int, str, object)
    idle = Signal()

    def __init__(self, runner: JobRunner) -> None:
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
            self.event.emit(job.id, "started", ())
            result = job.fn(progress, *job.args, **job.kwargs)
            if job.late_cancel:
                progress.check()  # a cancel that arrived during the last step still counts as a cancel
            outcome = (FINISHED, (result,))
        except Cancelled:
            outcome = (CANCELLED, ())
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI as a signal
            user = errors.is_user_error(exc) or isinstance(exc, MemoryError)
            message = errors.message_for(exc, f"while running the app's {job.kind!r} job")  # a bug: a crash report
            outcome = (FAILED, (message, user))
        finally:
            self._runner._done(job)  # first, so a handler of the outcome sees the runner without it
        self.event.emit(job.id, *outcome)


class JobRunner(QObject):
    """One worker thread and its queue. ``idle`` is emitted (in the GUI thread) whenever the queue
    runs dry; everything a job reports arrives on the :class:`JobHandle` that :meth:`submit`
    returns (``submitted`` hands each new one to observers)."""

    idle = Signal()
    submitted = Signal(object)  # each new JobHandle, before submit() returns (for observers: tests, scripts)
    _wake = Signal()

    def __init__(self, name: str = "fph-worker", parent: QObject | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # before any Python code runs in the new thread
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._handles: dict[int, JobHandle] = {}  # until each job has ended (GUI thread only)
        self._closed = False
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._executor = _Executor(self)
        self._executor.moveToThread(self._thread)
        self._executor.event.connect(self._relay, Qt.ConnectionType.QueuedConnection)
        self._executor.idle.connect(self.idle, Qt.ConnectionType.QueuedConnection)
        self._wake.connect(self._executor.drain)
        self._thread.start()

    # -- called from the GUI thread ------------------------------------------------------------------
    def submit(
        self, kind: str, fn: Callable[..., Any], *args, replace: bool = False, late_cancel: bool = True, **kwargs
    ) -> JobHandle:
        """Queue ``fn(progress, *args, **kwargs)`` and return its handle: connect to its signals
        before control returns to the event loop (they are queued, so none is missed).
        ``replace``: cancel the queued and running jobs of the same ``kind`` first.
        ``late_cancel=False``: a job that returned is finished, even if a cancel came in after its
        last check (a training run that has saved its model must not be reported as stopped)."""
        if self._closed:
            raise RuntimeError("the worker was shut down")
        if replace:
            self.cancel(kind=kind)
        job = Job(kind, fn, args, kwargs, late_cancel=late_cancel)
        emit = self._executor.event.emit
        job.progress = Progress(
            on_status=lambda text, i=job.id: emit(i, "status", (text,)),
            on_progress=lambda done, total, i=job.id: emit(i, "progress", (done, total)),
            on_partial=lambda result, i=job.id: emit(i, "partial", (result,)),
            min_interval=0.1,
        )
        handle = JobHandle(job, self)
        self._handles[job.id] = handle
        with self._lock:
            self._queue.append(job)
        self.submitted.emit(handle)
        self._wake.emit()
        return handle

    def cancel(self, job_id: int | None = None, kind: str | None = None) -> None:
        """Cancel the matching jobs (all when neither is given): queued ones never start, the running
        one stops at its next ``progress.check()``."""
        for job in self._jobs():
            if (job_id is None or job.id == job_id) and (kind is None or job.kind == kind):
                job.progress.cancel()

    def is_busy(self, kind: str | None = None) -> bool:
        """A job (of ``kind``) is queued or running and was not asked to stop."""
        return any((kind is None or j.kind == kind) and not j.progress.cancelled for j in self._jobs())

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

    def _jobs(self) -> list[Job]:
        with self._lock:
            return list(self._queue) + ([self._current] if self._current else [])

    @Slot(int, str, object)
    def _relay(self, job_id: int, name: str, args: tuple) -> None:
        """In the GUI thread: one event of a job, onto its handle."""
        handle = self._handles.get(job_id)
        if handle is None:
            return
        if name == "started":
            handle.state = RUNNING
            handle.started.emit()
        elif name == "status":
            handle.status.emit(*args)
        elif name == "progress":
            handle.progress.emit(*args)
        elif name == "partial":
            handle.partial.emit(*args)
        else:
            del self._handles[job_id]
            handle.state = name
            if name == FINISHED:
                handle.result = args[0]
                handle.finished.emit(args[0])
            elif name == FAILED:
                handle.message, handle.user_error = args
                handle.failed.emit(handle.message)
            else:
                handle.cancelled.emit()
            handle.ended.emit()

    # -- called from the worker thread ---------------------------------------------------------------
    def _take_next(self) -> Job | None:
        with self._lock:
            self._current = self._queue.popleft() if self._queue else None
            return self._current

    def _done(self, job: Job) -> None:
        with self._lock:
            if self._current is job:
                self._current = None
