"""Issue #10, the app: what the window shows must always be true. A folder that cannot be indexed
never replaces the index the user works in; messages go once what they asked for is done; running
work stays visible; an index's finish message times the whole run and names its steps; a failed job
says one line (a bug says it is one); and the comparison never shows a stale pair or crashes on a
model without maps. Real windows, real worker threads, real photos drawn by conftest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QFontMetrics  # noqa: E402
from test_gui_window import WAIT_MS, IndexGate, _index, _make_window, photo_folder  # noqa: E402, F401 (a fixture)


@pytest.fixture
def window(qtbot, tiny_model_file):
    window = _make_window(qtbot, tiny_model_file)
    yield window
    window.close()


def _fail_on_dialog(monkeypatch):
    """A folder dialog opened in a test would block it: record the attempt instead."""
    from PySide6.QtWidgets import QFileDialog

    opened = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: opened.append(a) or ""))
    return opened


# -- indexing --------------------------------------------------------------------------------------------
def test_indexing_an_empty_folder_leaves_the_working_index_current_and_remembered(qtbot, tiny_model_file, photo_folder, tmp_path):
    from fph_desktop.gui.settings import CHOICE_PRETRAINED

    window = _make_window(qtbot, tiny_model_file)
    _index(qtbot, window, photo_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(window.jobFailed, timeout=WAIT_MS) as failed:
        window.index_folder(str(empty))
    kind, message = failed.args
    assert kind == "index" and str(empty) in message and "no photos" in message and "\n" not in message
    assert window.banner.isVisible() and "empty" in window.banner.text.text()
    assert window.index_state.folder == str(photo_folder) and window.index_state.photos == 27
    assert "Indexing" not in window.index_label.text() and f"<b>{photo_folder.name}</b>" in window.index_label.text()
    assert "still searching photos" in window.status_label.text()
    assert window.settings.last_folder == str(photo_folder) and str(empty) not in window.settings.recent_folders

    # The pretrained model refuses an empty folder before fitting anything, the same way.
    window.settings.model_choice = CHOICE_PRETRAINED
    with qtbot.waitSignal(window.jobFailed, timeout=WAIT_MS) as failed:
        window.index_folder(str(empty))
    assert str(empty) in failed.args[1] and window.index_state.folder == str(photo_folder)
    window.settings.model_choice = "file"
    window.close()

    # The next launch reopens the folder that was indexed, not the empty one.
    again = _make_window(qtbot, tiny_model_file, start_background=True)
    qtbot.waitUntil(lambda: again.index_state is not None, timeout=WAIT_MS)
    assert again.index_state.folder == str(photo_folder) and f"<b>{photo_folder.name}</b>" in again.index_label.text()
    again.close()


def test_the_finish_message_times_the_whole_run_and_names_each_step(qtbot, photo_folder, monkeypatch):
    """With the pretrained model a first index has four steps (find the photos, read them to fit the
    codes, fit, analyse them with the codes). The bar restarts with each counted step and is busy
    while the codes are fitted (not stuck at its last count), and the finish message's duration is
    the wall time of the whole job, fitting included (it once said 12.6 s of a 70-84 s run)."""
    import time

    from fph_desktop.gui import tasks
    from fph_desktop.gui.settings import CHOICE_PRETRAINED, AppSettings

    settings = AppSettings()
    settings.model_choice = CHOICE_PRETRAINED
    settings.unsupervised_bits = 8
    settings.sync()
    fitting = {}
    ensure = tasks.ensure_unsupervised_model

    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return ensure(*args, **kwargs)
        finally:
            fitting["seconds"] = time.monotonic() - started

    monkeypatch.setattr(tasks, "ensure_unsupervised_model", timed)
    window = _make_window(qtbot)
    events = []

    def observe(job):
        job.partial.connect(
            lambda result: (
                events.append(("step", result.number, result.count, window.progress_bar.maximum()))
                if isinstance(result, tasks.Step)
                else None
            )
        )
        job.progress.connect(lambda done, total: events.append(("count", done, total)))

    window.jobSubmitted.connect(observe)  # after the window's own handlers: the bar is as it shows
    state = _index(qtbot, window, photo_folder)
    assert state.photos == 27 and state.complete

    steps = [e for e in events if e[0] == "step"]
    assert [(number, count) for _, number, count, _ in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(busy == 0 for *_, busy in steps)  # each step starts with a busy bar
    fit_start = events.index(steps[2])
    encode_start = events.index(steps[3])
    assert not [e for e in events[fit_start + 1 : encode_start] if e[0] == "count"], "a count while the codes were fitted"

    def counts_in(first: int, last: int) -> list:
        return [e for e in events[first + 1 : last] if e[0] == "count"]

    reading = counts_in(events.index(steps[1]), fit_start)
    assert reading and reading[-1][1] == reading[-1][2]  # the fit's reading ends whole, before "Fitting" shows
    encoding = counts_in(encode_start, len(events))
    assert encoding and encoding[0][1] < encoding[0][2] and encoding[-1][1] == encoding[-1][2]

    assert state.seconds >= fitting["seconds"] > 0
    message = window.status_label.text()
    assert message == state.summary and f"in {tasks.duration(state.seconds)}" in message
    assert "Indexed photos" in message and "27 photos" in message and "fitted" in message


def test_a_status_tip_never_hides_the_progress_bar(qtbot, window, photo_folder, monkeypatch):
    gate = IndexGate(monkeypatch)
    window.index_folder(str(photo_folder), batch_size=2)
    qtbot.waitUntil(lambda: gate.reached.is_set() and window.progress_bar.isVisible(), timeout=WAIT_MS)
    window.open_action.showStatusText(window.toolbar)  # what the mouse resting on the toolbar button does
    assert window.statusBar().currentMessage() == window.open_action.statusTip()
    assert window.progress_bar.isVisible() and window.cancel_button.isVisible()
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS):
        gate.release()


def test_a_second_index_cannot_start_while_one_runs(qtbot, window, photo_folder, tmp_path, monkeypatch):
    opened = _fail_on_dialog(monkeypatch)
    other = tmp_path / "other"
    shutil.copytree(photo_folder / "train", other)
    gate = IndexGate(monkeypatch)
    first = window.index_folder(str(photo_folder), batch_size=2)
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    assert not window.index_action.isEnabled() and not window.reindex_action.isEnabled()
    assert window.index_folder(str(other)) is None
    window.choose_folder()
    assert not opened and "being indexed" in window.banner.text.text()
    with qtbot.waitSignal(first.finished, timeout=WAIT_MS):
        gate.release()
    assert window.index_state.folder == str(photo_folder) and window.index_state.photos == 27
    assert window.index_action.isEnabled() and window.reindex_action.isEnabled()


def test_update_index_is_off_without_a_folder_and_says_when_it_finishes(qtbot, window, photo_folder):
    assert not window.reindex_action.isEnabled()
    _index(qtbot, window, photo_folder)
    assert window.reindex_action.isEnabled()
    query = sorted(photo_folder.glob("test/*/*.jpg"))[0]
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):
        window.set_queries([str(query)])
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):  # the results are refreshed after the update
        window.reindex_action.trigger()
    assert window.status_label.text().startswith(f"{photo_folder.name} is up to date: 27 photos, nothing changed")
    (photo_folder / "train" / "extra.jpg").write_bytes(query.read_bytes())
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS):
        window.reindex_action.trigger()
    assert window.status_label.text().startswith(f"Updated {photo_folder.name} in ")
    assert "28 photos" in window.status_label.text() and "1 copy of an indexed photo" in window.status_label.text()


# -- stale messages ---------------------------------------------------------------------------------------
def test_ctrl_i_without_a_model_asks_for_one_first_and_the_request_goes_once_one_is_chosen(qtbot, monkeypatch):
    from fph_desktop.gui.main_window import PAGE_FIRST_RUN, PAGE_MAIN

    opened = _fail_on_dialog(monkeypatch)
    window = _make_window(qtbot)
    window.index_action.trigger()
    assert not opened, "the folder dialog opened although no folder can be indexed yet"
    assert window.pages.currentIndex() == PAGE_FIRST_RUN
    assert window.banner.isVisible() and "Choose how to get a model first" in window.banner.text.text()
    qtbot.mouseClick(window.first_run.pretrained_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentIndex() == PAGE_MAIN and not window.banner.isVisible()
    window.index_action.trigger()
    assert len(opened) == 1  # with a model, Ctrl+I asks for the folder
    window.close()


def test_a_folder_asked_for_before_the_model_is_indexed_once_the_model_loads(qtbot, tiny_model_file, photo_folder):
    window = _make_window(qtbot)
    assert window.index_folder(str(photo_folder)) is None
    assert "Choose how to get a model first" in window.banner.text.text() and photo_folder.name in window.banner.text.text()
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS) as ready:
        window.use_model_file(str(tiny_model_file))
    assert ready.args[0].folder == str(photo_folder) and not window.banner.isVisible()
    window.close()


def test_results_take_away_the_request_to_index_a_folder_first(qtbot, window, photo_folder):
    query = sorted(photo_folder.glob("test/*/*.jpg"))[0]
    window.set_queries([str(query)])
    assert window.banner.isVisible() and "Index a folder first" in window.banner.text.text()
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):  # the pending search runs once indexed
        window.index_folder(str(photo_folder))
    assert not window.banner.isVisible() and window.results.view.isVisible()


def test_a_failed_query_leaves_no_earlier_comparison_on_screen(qtbot, window, photo_folder, monkeypatch):
    from fph_desktop.errors import BadIndexError
    from fph_desktop.gui import tasks

    _index(qtbot, window, photo_folder)
    good = sorted(photo_folder.glob("test/*/*.jpg"))[0]
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):
        window.set_queries([str(good)])
    with qtbot.waitSignal(window.comparisonShown, timeout=WAIT_MS) as shown:
        window.results.select_row(1)
    earlier = [shown.args[0].query.path, shown.args[0].match.path]
    view = window.comparison

    def shows_earlier_paths() -> bool:
        text = " ".join(
            [
                view.query_caption.text(),
                view.match_caption.text(),
                view.title.full_text(),
                view.query_caption.name.toolTip(),
                view.match_caption.name.toolTip(),
            ]
        )
        return (
            any(Path(p).name in text for p in earlier) or view.query_view.photo is not None or view.match_view.photo is not None
        )

    # A query that cannot be read: its error is shown, and nothing of the earlier pair.
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        window.set_queries([str(photo_folder / "broken.jpg")])
    assert searched.args[0].queries[0].error and not shows_earlier_paths()

    # Back to a comparison, then a search that fails as a whole: one line, no stale pair or results.
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):
        window.set_queries([str(good)])
    with qtbot.waitSignal(window.comparisonShown, timeout=WAIT_MS):
        window.results.select_row(1)

    def broken_index(progress, *args, **kwargs):
        raise BadIndexError("the index file is damaged", "/data/index.sqlite", "index the folder again")

    monkeypatch.setattr(tasks, "search", broken_index)
    with qtbot.waitSignal(window.jobFailed, timeout=WAIT_MS) as failed:
        window.set_queries([str(good)])
    assert failed.args == ["search", "/data/index.sqlite: the index file is damaged; index the folder again"]
    assert window.banner.text.text() == "Search failed: /data/index.sqlite: the index file is damaged; index the folder again"
    assert not shows_earlier_paths() and window.results.model.rowCount() == 0


def test_a_failed_job_shows_one_line_and_a_bug_names_its_crash_report(qtbot, window, monkeypatch):
    from fph_desktop.gui import tasks

    def buggy(progress, path, device=None):
        raise KeyError("a bug in the loader")

    monkeypatch.setattr(tasks, "load_model", buggy)
    with qtbot.waitSignal(window.jobFailed, timeout=WAIT_MS) as failed:
        window.use_model_file("/models/birds.fph")
    kind, message = failed.args
    shown = window.banner.text.text()
    assert kind == "model" and shown == f"Could not load the model: {message}"
    assert "a bug in fph-desktop" in shown and "Traceback" not in shown and "\n" not in shown
    report = Path(message.split("details are in ", 1)[1].split(";", 1)[0])
    assert report.is_file() and "KeyError" in report.read_text()


# -- the comparison ---------------------------------------------------------------------------------------
def _side(path: str, height: int, width: int, maps: dict):
    from fph_desktop.gui.tasks import Side, colorize

    rng = np.random.default_rng(height * width)
    photo = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    heat = {name: colorize(rng.uniform(0, 1, (32, 32))) for name in maps}
    return Side(path, photo, (0.0, 0.0, float(width), float(height)), heat, np.zeros(2, np.uint8))


def _comparison_view(qtbot, width: int, height: int):
    """A shown comparison view on its own (the app's styles applied)."""
    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.comparison import ComparisonView

    create_app()
    view = ComparisonView()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    return view


def _comparison(query_shape=(300, 400), match_shape=(300, 400), maps=("fused", "C2", "C3", "C4"), feed=True):
    from fph_desktop.gui.tasks import Comparison

    return Comparison(
        _side("/photos/birds/2021/Cardinal_0001_17057.jpg", *query_shape, maps),
        _side("/photos/birds/2023/spring/Cardinal_0054_19334.jpg", *match_shape, maps),
        16,
        [3, 9],
        feed,
    )


def test_a_model_without_maps_shows_the_photos_and_says_so(qtbot):
    view = _comparison_view(qtbot, 700, 700)
    view.show_comparison(_comparison(maps=()))
    assert view.query_view.photo is not None and not view.query_view.has_overlay()
    assert not view.layer.isEnabled() and "no activation map" in view.map_note.text()
    view.grab()  # paints without a map

    # Only the single layers' maps (no fused one): the view switches to one it has.
    view.layer.setCurrentIndex(view.layer.findData("fused"))
    view.show_comparison(_comparison(maps=("C2", "C3", "C4"), feed=False))
    assert view.layer.currentData() == "C2" and view.query_view.has_overlay()
    assert not view.layer.model().item(view.layer.findData("fused")).isEnabled()
    assert "not from these layers" in view.map_note.text()
    assert "14 of 16 bits agree" in view.bits_label.text() and "3, 9" not in view.bits_label.text()
    assert "3, 9" in view.bits_label.toolTip()  # the bit numbers are a detail


def test_a_portrait_match_does_not_move_the_controls(qtbot):
    view = _comparison_view(qtbot, 700, 800)
    view.show_comparison(_comparison(match_shape=(300, 400)))
    qtbot.wait(10)
    where = (view.layer.mapTo(view, view.layer.rect().topLeft()), view.match_view.size())
    view.show_comparison(_comparison(match_shape=(600, 300)))
    qtbot.wait(10)
    assert (view.layer.mapTo(view, view.layer.rect().topLeft()), view.match_view.size()) == where


def test_file_names_keep_their_end_and_the_full_path_is_in_the_tooltip(qtbot):
    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.comparison import ComparisonView
    from fph_desktop.gui.results_view import name_lines

    app = create_app()
    metrics = QFontMetrics(app.font())
    name = "17. Rose_breasted_Grosbeak_0087_39451_from_the_spring_trip.jpg"
    lines = name_lines(metrics, name, 150)
    assert len(lines) == 2 and all(metrics.horizontalAdvance(line) <= 150 for line in lines)
    assert lines[0].startswith("17. Rose_") and lines[-1].endswith("trip.jpg")  # start and end both readable
    assert name_lines(metrics, "DSC_0042.jpg", 150) == ["DSC_0042.jpg"]

    view = ComparisonView()
    qtbot.addWidget(view)
    view.resize(420, 700)
    view.show()
    comparison = _comparison()
    view.show_comparison(comparison)
    qtbot.wait(10)
    caption = view.match_caption
    assert caption.name.text().startswith("Match: ") and caption.name.text().endswith("19334.jpg")
    assert caption.folder.text().endswith("spring") and comparison.match.path in caption.name.toolTip()
    assert caption.folder.text() in ("in /photos/birds/2023/spring", "in …/birds/2023/spring", "in …/2023/spring", "in …/spring")


# -- the look ---------------------------------------------------------------------------------------------
def test_the_top_label_is_whole_and_the_spin_box_draws_its_arrows(qtbot, window):
    from PySide6.QtWidgets import QLabel

    top = next(label for label in window.results.findChildren(QLabel) if label.text() == "&Top")
    assert top.width() >= top.fontMetrics().boundingRect("Top").width()
    spin = window.results.top_k
    image = spin.grab().toImage()
    buttons = [
        image.pixelColor(x, y).lightness()
        for x in range(image.width() - 16, image.width() - 2)
        for y in range(2, image.height() - 2)
    ]
    assert min(buttons) < 120, "no arrow drawn on the spin box's buttons"
