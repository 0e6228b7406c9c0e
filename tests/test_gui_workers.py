"""The worker layer on its own: jobs run on the worker thread, report through signals in the GUI
thread, fail with a readable message, and cancel cooperatively (queued ones never start)."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("pytestqt")

from fph_desktop.gui.workers import JobRunner  # noqa: E402


@pytest.fixture
def runner(qapp):
    runner = JobRunner("test-worker")
    yield runner
    assert runner.shutdown(10_000)


def test_a_job_runs_off_the_gui_thread_and_reports_progress_and_its_result(qtbot, runner):
    gui_thread = threading.get_ident()
    seen = {}

    def job(progress, n):
        seen["thread"] = threading.get_ident()
        progress.set_status("counting")
        for i in range(n):
            progress.set_progress(i + 1, n)
            progress.partial(i)
        return n * 2

    statuses, partials = [], []
    runner.status.connect(lambda i, text: statuses.append(text))
    runner.partial.connect(lambda i, p: partials.append(p))
    with qtbot.waitSignal(runner.finished, timeout=10_000) as blocker:
        job_id = runner.submit("count", job, 5)
    assert blocker.args == [job_id, "count", 10]
    assert seen["thread"] != gui_thread
    assert statuses == ["counting"] and partials == [0, 1, 2, 3, 4]


def test_an_error_arrives_as_a_signal_with_the_message(qtbot, runner):
    def job(progress):
        raise ValueError("/photos/x.fph: not an fph-desktop weights file")

    with qtbot.waitSignal(runner.failed, timeout=10_000) as blocker:
        runner.submit("model", job)
    assert blocker.args[1:] == ["model", "/photos/x.fph: not an fph-desktop weights file"]


def test_cancel_stops_the_running_job_and_drops_the_queued_ones(qtbot, runner):
    started = threading.Event()
    ran_second = []

    def long_job(progress):
        started.set()
        while True:
            progress.check()
            time.sleep(0.01)

    cancelled = []
    runner.cancelled.connect(lambda i, kind: cancelled.append(kind))
    runner.submit("index", long_job)
    runner.submit("index", lambda progress: ran_second.append(1))
    assert started.wait(10)
    runner.cancel(kind="index")
    qtbot.waitUntil(lambda: len(cancelled) == 2, timeout=10_000)
    assert not ran_second and not runner.is_busy()


def test_a_new_job_with_replace_supersedes_the_running_one_of_its_kind(qtbot, runner):
    started = threading.Event()

    def slow_search(progress):
        started.set()
        while True:
            progress.check()
            time.sleep(0.01)

    cancelled, finished = [], []
    runner.cancelled.connect(lambda i, kind: cancelled.append(i))
    runner.finished.connect(lambda i, kind, result: finished.append(result))
    first = runner.submit("search", slow_search)
    assert started.wait(10)
    runner.submit("search", lambda progress: "second", replace=True)
    qtbot.waitUntil(lambda: finished == ["second"], timeout=10_000)
    assert cancelled == [first]


def test_shutdown_waits_for_the_thread_even_with_work_running(qtbot, qapp):
    runner = JobRunner("closing")
    started = threading.Event()

    def job(progress):
        started.set()
        while True:
            progress.check()
            time.sleep(0.01)

    runner.submit("index", job)
    assert started.wait(10)
    assert runner.shutdown(10_000)
    assert runner.thread.isFinished()
    with pytest.raises(RuntimeError):
        runner.submit("index", job)


def test_cyclic_garbage_is_collected_in_the_gui_thread_not_by_a_busy_worker(qtbot, runner):
    """A closed widget caught in a reference cycle must never be destroyed by a worker thread (Qt
    crashes, as CI once did while a model loaded): cycles wait for the GUI thread's collector."""
    import gc

    gui_thread = threading.get_ident()
    freed_in = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            freed_in.append(threading.get_ident())

    kept = []

    def allocate_a_lot(progress):
        kept.append([[i] for i in range(50_000)])  # survivors cross every threshold, as a model load does

    gc.collect()
    Cycle()
    with qtbot.waitSignal(runner.finished, timeout=20_000):
        runner.submit("alloc", allocate_a_lot)
    qtbot.waitUntil(lambda: bool(freed_in), timeout=10_000)
    assert freed_in == [gui_thread]
