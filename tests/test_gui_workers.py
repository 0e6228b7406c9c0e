"""The worker layer on its own: jobs run on the worker thread, report on their own handle in the GUI
thread, fail with one line (a user's error as it is, a bug as a crash report), and cancel
cooperatively (queued ones never start)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from fph_desktop.errors import BadFileError  # noqa: E402
from fph_desktop.gui.workers import JobRunner  # noqa: E402


@pytest.fixture
def runner(qapp):
    runner = JobRunner("test-worker")
    yield runner
    assert runner.shutdown(10_000)


def _endless(started: threading.Event):
    def job(progress):
        started.set()
        while True:
            progress.check()
            time.sleep(0.01)

    return job


def test_a_job_runs_off_the_gui_thread_and_reports_on_its_own_handle(qtbot, runner):
    gui_thread = threading.get_ident()
    seen = {}

    def job(progress, n):
        seen["thread"] = threading.get_ident()
        progress.set_status("counting")
        for i in range(n):
            progress.set_progress(i + 1, n)
            progress.partial(i)
        return n * 2

    events, in_thread = [], []
    handle = runner.submit("count", job, 5)
    for name in ("started", "status", "partial", "finished", "ended"):
        getattr(handle, name).connect(
            lambda *args, name=name: (events.append((name, *args)), in_thread.append(threading.get_ident()))
        )
    with qtbot.waitSignal(handle.ended, timeout=10_000):
        pass
    assert seen["thread"] != gui_thread and set(in_thread) == {gui_thread}
    assert events == [("started",), ("status", "counting"), *[("partial", i) for i in range(5)], ("finished", 10), ("ended",)]
    assert handle.state == "finished" and handle.result == 10 and handle.done


def test_each_job_reports_only_to_its_own_handle(qtbot, runner):
    first = runner.submit("search", lambda progress: "first")
    second = runner.submit("search", lambda progress: "second")
    got = {"first": [], "second": []}
    first.finished.connect(got["first"].append)
    second.finished.connect(got["second"].append)
    with qtbot.waitSignals([first.ended, second.ended], timeout=10_000):
        pass
    assert got == {"first": ["first"], "second": ["second"]}


def test_a_user_error_arrives_as_its_one_line_message(qtbot, runner):
    def job(progress):
        raise BadFileError("not an fph-desktop weights file", "/photos/x.fph", "choose a .fph file made by fph-desktop")

    handle = runner.submit("model", job)
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        pass
    [message] = blocker.args
    assert message == "/photos/x.fph: not an fph-desktop weights file; choose a .fph file made by fph-desktop"
    assert handle.user_error and handle.state == "failed"


def test_a_bug_is_reported_as_a_bug_with_its_crash_report_not_blamed_on_the_user(qtbot, runner, tmp_path):
    """A ValueError or OSError from a bug must not read as the user's fault: the line says it is a
    bug and names the crash report, which holds the traceback (the line never does)."""

    def job(progress):
        raise ValueError("list index out of range in a helper")

    handle = runner.submit("search", job)
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        pass
    [message] = blocker.args
    assert not handle.user_error
    assert "a bug in fph-desktop" in message and "ValueError" in message and "\n" not in message and "Traceback" not in message
    report = Path(message.split("details are in ", 1)[1].split(";", 1)[0])
    assert report.is_file() and report.is_relative_to(tmp_path)
    text = report.read_text()
    assert "Traceback" in text and "list index out of range in a helper" in text and "'search'" in text


def test_cancel_stops_the_running_job_and_drops_the_queued_ones(qtbot, runner):
    started = threading.Event()
    ran_second = []
    first = runner.submit("index", _endless(started))
    second = runner.submit("index", lambda progress: ran_second.append(1))
    assert started.wait(10)
    second_started = []
    second.started.connect(lambda: second_started.append(1))
    with qtbot.waitSignals([first.cancelled, second.cancelled], timeout=10_000):
        runner.cancel(kind="index")
    assert not ran_second and not second_started and not runner.is_busy()
    assert first.state == second.state == "cancelled"


def test_a_handle_cancels_its_own_job_only(qtbot, runner):
    started = threading.Event()
    mine = runner.submit("index", _endless(started))
    other = runner.submit("index", lambda progress: "done")
    results = []
    other.finished.connect(results.append)
    assert started.wait(10)
    with qtbot.waitSignals([mine.cancelled, other.ended], timeout=10_000):
        mine.cancel()
    assert results == ["done"] and mine.state == "cancelled"


def test_a_new_job_with_replace_supersedes_the_running_one_of_its_kind(qtbot, runner):
    started = threading.Event()
    first = runner.submit("search", _endless(started))
    assert started.wait(10)
    second = runner.submit("search", lambda progress: "second", replace=True)
    results = []
    second.finished.connect(results.append)
    with qtbot.waitSignals([first.cancelled, second.ended], timeout=10_000):
        pass
    assert results == ["second"] and first.state == "cancelled"


def test_a_cancel_during_the_last_step_counts_unless_the_job_says_it_is_done(qtbot, runner):
    """``late_cancel``: a job whose work is saved when it returns (training) is finished, even if a
    cancel came after its last check; any other job is reported as cancelled."""

    def cancel_on_the_way_out(progress):
        progress.cancel()
        return "saved"

    late = runner.submit("search", cancel_on_the_way_out)
    kept = runner.submit("train", cancel_on_the_way_out, late_cancel=False)
    with qtbot.waitSignals([late.ended, kept.ended], timeout=10_000):
        pass
    assert late.state == "cancelled" and kept.state == "finished" and kept.result == "saved"


def test_submitted_hands_every_new_job_to_observers(qtbot, runner):
    seen = []
    runner.submitted.connect(seen.append)
    handle = runner.submit("count", lambda progress: 1)
    assert seen == [handle]
    with qtbot.waitSignal(handle.ended, timeout=10_000):
        pass


def test_shutdown_waits_for_the_thread_even_with_work_running(qtbot, qapp):
    runner = JobRunner("closing")
    started = threading.Event()
    runner.submit("index", _endless(started))
    assert started.wait(10)
    assert runner.shutdown(10_000)
    assert runner.thread.isFinished()
    with pytest.raises(RuntimeError):
        runner.submit("index", _endless(started))


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
    handle = runner.submit("alloc", allocate_a_lot)
    with qtbot.waitSignal(handle.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: bool(freed_in), timeout=10_000)
    assert freed_in == [gui_thread]
