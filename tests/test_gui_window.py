"""The desktop app driven for real: the main window, its worker threads, real drops, a real index
of a small real photo folder (with a corrupt file), searches and the comparison view."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from conftest import make_tiny_birds  # noqa: E402
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000


@pytest.fixture
def photo_folder(tmp_path, tiny_birds) -> Path:
    """27 drawn bird photos in class sub-folders plus one corrupt JPEG."""
    folder = tmp_path / "photos"
    shutil.copytree(tiny_birds, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" + b"\0" * 64)
    return folder


def _make_window(qtbot, model_file=None, start_background=False):
    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.main_window import MainWindow
    from fph_desktop.gui.settings import CHOICE_FILE, AppSettings

    create_app()
    settings = AppSettings()
    if model_file is not None:
        settings.model_choice = CHOICE_FILE
        settings.model_path = str(model_file)
        settings.hide_duplicates = False
    window = MainWindow(settings, start_background=start_background)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, tiny_model_file):
    window = _make_window(qtbot, tiny_model_file)
    yield window
    window.close()
    assert window.jobs.thread.isFinished() and window.lookups.thread.isFinished()


def _index(qtbot, window, folder, **kwargs):
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS) as blocker:
        window.index_folder(str(folder), **kwargs)
    return blocker.args[0]


def _drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the drop area refused a drag of local files"
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def _probe_env(probe: Path) -> dict:
    """The environment of an app started as a user would, with the launch probe writing to ``probe``."""
    return dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        FPH_DESKTOP_LAUNCH_PROBE=str(probe),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )


def test_importing_the_app_and_showing_the_window_does_not_load_torch(tmp_path):
    probe = tmp_path / "probe.json"
    env = _probe_env(probe)
    code = "import sys, fph_desktop.gui.app as app; assert 'torch' not in sys.modules, 'imported torch'; sys.exit(app.run_app())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(probe.read_text())
    assert record["torch_loaded_at_paint"] is False


def test_first_run_offers_three_ways_and_remembers_the_choice(qtbot):
    from fph_desktop.gui.main_window import PAGE_FIRST_RUN, PAGE_MAIN
    from fph_desktop.gui.settings import CHOICE_PRETRAINED, AppSettings

    window = _make_window(qtbot)
    assert window.pages.currentIndex() == PAGE_FIRST_RUN
    panel = window.first_run
    assert panel.pretrained_button.isEnabled() and panel.file_button.isEnabled()
    assert panel.train_button.isEnabled() and window.train_action.isEnabled()
    qtbot.mouseClick(panel.pretrained_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentIndex() == PAGE_MAIN
    assert AppSettings().model_choice == CHOICE_PRETRAINED
    window.close()
    again = _make_window(qtbot)
    assert again.pages.currentIndex() == PAGE_MAIN
    again.close()


def test_loading_a_damaged_weights_file_says_what_is_wrong(qtbot, window, tmp_path):
    bad = tmp_path / "damaged.fph"
    bad.write_bytes(b"not a model")
    with qtbot.waitSignal(window.jobFailed, timeout=WAIT_MS) as blocker:
        window.use_model_file(str(bad))
    kind, message = blocker.args
    assert kind == "model" and "damaged.fph" in message
    assert window.banner.isVisible() and "damaged.fph" in window.banner.text.text()


def test_index_shows_the_folder_and_lists_the_corrupt_file_as_skipped(qtbot, window, photo_folder):
    state = _index(qtbot, window, photo_folder)
    assert state.photos == 27 and state.skipped == 1 and state.complete
    label = window.index_label.text()
    assert "27 photos" in label and 'href="skipped"' in label and "1 skipped" in label
    assert "bits" not in label and "16 bits" in window.index_label.toolTip()  # the code length is a detail
    window.index_label.linkActivated.emit("skipped")
    from fph_desktop.gui.main_window import SkippedDialog

    qtbot.waitUntil(lambda: any(isinstance(w, SkippedDialog) and w.isVisible() for w in window.findChildren(SkippedDialog)))
    dialog = next(w for w in window.findChildren(SkippedDialog) if w.isVisible())
    rows = [
        (dialog.tree.topLevelItem(i).text(0), dialog.tree.topLevelItem(i).text(1)) for i in range(dialog.tree.topLevelItemCount())
    ]
    assert len(rows) == 1 and rows[0][0] == "broken.jpg" and rows[0][1]
    dialog.close()
    assert str(photo_folder) in window.settings.recent_folders


def test_dropping_photos_searches_and_the_query_itself_comes_first(qtbot, window, photo_folder, tmp_path):
    _index(qtbot, window, photo_folder)
    query = sorted(photo_folder.glob("*/*/*.jpg"))[3]
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as blocker:
        _drop(window.drop_area, [query, notes])
    outcome = blocker.args[0]
    assert window.banner.isVisible() and "notes.txt" in window.banner.text.text() and "not a photo" in window.banner.text.text()
    assert [Path(q.query) for q in outcome.queries] == [query]
    hits = outcome.queries[0].hits
    assert Path(hits[0].path) == query and hits[0].distance == 0
    assert len(hits) == window.results.top_k.value()
    assert window.results.model.rowCount() == len(hits)
    assert window.results.view.isVisible()

    # Hiding exact duplicates leaves the query photo out.
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as blocker:
        window.results.hide_duplicates.setChecked(True)
    hits = blocker.args[0].queries[0].hits
    assert all(Path(h.path) != query for h in hits) and blocker.args[0].queries[0].hidden == 1


def test_selecting_a_result_shows_where_the_two_photos_agree_with_numbered_pairs(qtbot, window, photo_folder):
    _index(qtbot, window, photo_folder)
    query = sorted(photo_folder.glob("*/*/*.jpg"))[0]
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):
        window.set_queries([str(query)])
    with qtbot.waitSignal(window.comparisonShown, timeout=WAIT_MS) as blocker:
        window.results.select_row(1)
    comparison = blocker.args[0]
    assert Path(comparison.query.path) == query
    assert comparison.match.path == window.results.model.items[1].path
    assert comparison.distance == window.results.model.items[1].distance
    view = window.comparison
    assert view.query_view.has_overlay() and view.match_view.has_overlay()
    # A photographer's measure first; the bit numbers are in the tooltip.
    assert f"{comparison.agreeing_bits} of {comparison.code_bits} bits agree" in view.bits_label.text()
    assert f"Hamming distance {comparison.distance}" in view.bits_label.toolTip()
    # The strongest corresponding regions, numbered alike on both photos, inside the crop.
    pairs = comparison.pairs["fused"]
    assert 1 <= len(pairs) <= 5 and pairs == sorted(pairs, key=lambda p: -p.score)
    query_marks, match_marks = view.query_view.markers, view.match_view.markers
    assert [n for *_, n in query_marks] == [n for *_, n in match_marks] == list(range(1, len(pairs) + 1))
    assert all(0 < x < 1 and 0 < y < 1 for x, y, _ in query_marks + match_marks)
    # The test model is vertical-only (the wizard's default variant): the agreement is shown, and the
    # view says plainly that its code is not made from these layers.
    assert not comparison.maps_feed_code and "not from these layers" in view.map_note.text()
    assert view.legend.isVisible() and view.opacity_value.text() == f"{view.opacity.value()} %"
    view.opacity.setValue(0)
    plain = view.query_view.grab().toImage()
    assert view.opacity_value.text() == "0 %"
    view.opacity.setValue(100)
    overlaid = view.query_view.grab().toImage()
    assert plain != overlaid, "the agreement map did not change the picture"
    view.layer.setCurrentIndex(view.layer.findData("C2"))
    c2 = view.query_view.grab().toImage()
    assert c2 != overlaid, "switching to one low layer's map did not change the overlay"


def test_several_queries_give_per_query_results_and_a_combined_ranking(qtbot, window, photo_folder):
    _index(qtbot, window, photo_folder)
    queries = [str(p) for p in sorted(photo_folder.glob("*/*/*.jpg"))[:2]]
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as blocker:
        _drop(window.drop_area, queries)
    outcome = blocker.args[0]
    assert len(outcome.queries) == 2 and outcome.combined
    for hit in outcome.combined:
        assert hit.distance == sum(hit.per_query)
    assert [h.distance for h in outcome.combined] == sorted(h.distance for h in outcome.combined)
    selector = window.results.view_selector
    assert selector.count() == 3
    selector.setCurrentIndex(2)
    assert window.results.model.items[0].distance == outcome.combined[0].distance


def test_pasting_an_image_from_the_clipboard_searches_with_it(qtbot, window, photo_folder):
    _index(qtbot, window, photo_folder)
    QGuiApplication.clipboard().setImage(QImage(str(sorted(photo_folder.glob("*/*/*.jpg"))[5])))
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as blocker:
        window.paste_action.trigger()
    outcome = blocker.args[0]
    assert outcome.queries[0].query.endswith(".png") and outcome.queries[0].error is None
    assert outcome.queries[0].hits


def _after_each_batch(monkeypatch, act):
    """Run ``act(progress)`` in the worker thread right after each committed batch of the window's
    index jobs, so what a test does mid-index happens at a known point however fast this machine is."""
    from fph_desktop.gui import tasks
    from fph_desktop.index.indexer import BatchCommitted

    index_folder = tasks.index_folder

    def observed(progress, *args, **kwargs):
        report = progress.partial

        def partial(result):
            report(result)
            if isinstance(result, BatchCommitted):
                act(progress)

        progress.partial = partial
        return index_folder(progress, *args, **kwargs)

    monkeypatch.setattr(tasks, "index_folder", observed)


class IndexGate:
    """Holds the window's index job after its first committed batch until released."""

    def __init__(self, monkeypatch):
        self.reached, self._go = threading.Event(), threading.Event()
        _after_each_batch(monkeypatch, self._hold)

    def _hold(self, progress):
        if not self.reached.is_set():
            self.reached.set()
            self._go.wait(60)

    def release(self):
        self._go.set()


def test_cancel_mid_index_keeps_a_usable_index_that_resumes(qtbot, window, photo_folder, monkeypatch):
    # Cancel right after the first committed batch, from the worker thread itself.
    _after_each_batch(monkeypatch, lambda progress: progress.cancel())
    with qtbot.waitSignal(window.jobCancelled, timeout=WAIT_MS):
        window.index_folder(str(photo_folder), batch_size=2)
    monkeypatch.undo()
    state = window.index_state
    assert state is not None and not state.complete
    assert 0 < state.photos < 27
    assert "incomplete" in window.index_label.text()
    assert "cancelled" in window.status_label.text().lower()
    indexed = sorted(p for p in photo_folder.rglob("*.jpg") if p.name != "broken.jpg")
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as blocker:
        window.set_queries([str(indexed[0])])
    assert blocker.args[0].queries[0].hits  # searchable at once
    state = _index(qtbot, window, photo_folder)
    assert state.photos == 27 and state.skipped == 1 and state.complete


def test_closing_the_window_while_indexing_stops_the_threads_and_keeps_the_index(
    qtbot, tiny_model_file, photo_folder, monkeypatch
):
    from fph_desktop.index import Library

    window = _make_window(qtbot, tiny_model_file)
    first_batch = threading.Event()
    _after_each_batch(monkeypatch, lambda progress: first_batch.set())
    window.index_folder(str(photo_folder), batch_size=2)
    assert first_batch.wait(WAIT_MS / 1000)
    window.close()
    assert window.jobs.thread.isFinished() and window.lookups.thread.isFinished()
    library = Library.open(photo_folder, tiny_model_file, create=False)
    assert 0 < len(library) <= 27
    library.update()
    assert len(library) == 27


def test_event_loop_keeps_beating_while_indexing(qtbot, tiny_model_file, tmp_path):
    """The issue's heartbeat check: a 10 ms QTimer runs while a folder is indexed in the worker;
    the longest gap between beats must stay under 200 ms."""
    folder = make_tiny_birds(tmp_path / "more-birds", classes=6, train=14, test=4, side=96)
    window = _make_window(qtbot, tiny_model_file)
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    try:
        state = _index(qtbot, window, folder, batch_size=8)
    finally:
        timer.stop()
        window.close()
    assert state.photos == 6 * 18
    gaps = [b - a for a, b in pairwise(beats)]
    worst = max(gaps)
    print(
        f"\nheartbeat: {len(beats)} beats over {beats[-1] - beats[0]:.2f} s of indexing {state.photos} photos; "
        f"max gap {worst * 1000:.0f} ms"
    )
    assert len(beats) > 10
    assert worst < 0.2, f"the event loop stalled for {worst * 1000:.0f} ms"


def test_settings_and_window_geometry_survive_a_restart(qtbot, tiny_model_file):
    window = _make_window(qtbot, tiny_model_file)
    window.resize(780, 620)
    window.results.top_k.setValue(7)
    window.comparison.opacity.setValue(30)
    window.close()
    again = _make_window(qtbot)
    assert (again.width(), again.height()) == (780, 620)
    assert again.results.top_k.value() == 7
    assert again.comparison.opacity.value() == 30
    again.close()


def test_photos_given_on_the_command_line_are_searched_once_the_last_index_reopens(qtbot, tiny_model_file, photo_folder):
    from fph_desktop.cli import photos_for_the_app

    query = sorted(photo_folder.glob("test/*/*.jpg"))[0]
    assert photos_for_the_app([str(query)]) == [str(query)]  # "Open with fph-desktop" from a file manager
    assert photos_for_the_app(["index", str(photo_folder)]) is None and photos_for_the_app([str(query), "nope.jpg"]) is None
    first = _make_window(qtbot, tiny_model_file)
    _index(qtbot, first, photo_folder)
    first.close()

    window = _make_window(qtbot, tiny_model_file, start_background=True)
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        window.search_when_ready([str(query)])
    assert Path(searched.args[0].queries[0].hits[0].path) == query and window.index_state.folder == str(photo_folder)
    with qtbot.waitSignal(window.comparisonShown, timeout=WAIT_MS) as compared:
        window.results.select_row(1)
    assert compared.args[0].query.heatmaps and compared.args[0].match.heatmaps
    window.close()


def test_a_photo_opened_with_the_app_is_searched_before_torch_is_loaded(qtbot, tiny_model_file, photo_folder, tmp_path):
    """ "Open with fph-desktop" on a folder indexed before: the results come from the exported
    graph while ``import torch`` (seconds on a cold start) has not even begun."""
    first = _make_window(qtbot, tiny_model_file)
    _index(qtbot, first, photo_folder)
    first.close()
    query = tmp_path / "query.jpg"  # outside the folder: decoded and encoded, not looked up
    query.write_bytes(sorted(photo_folder.glob("test/*/*.jpg"))[0].read_bytes())
    probe = tmp_path / "probe.json"
    env = _probe_env(probe)
    done = subprocess.run([sys.executable, "-m", "fph_desktop", str(query)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(probe.read_text())
    assert record["hits"] > 0 and record["torch_loaded_at_results"] is False


def test_photos_opened_while_the_app_runs_go_to_the_running_window(qtbot, tiny_model_file, photo_folder, tmp_path):
    """A file manager's "Open with" on a second photo: the launch hands it over and exits; the
    window that runs searches with it (one window, one loaded model)."""
    from fph_desktop.gui.app import bring_forward
    from fph_desktop.gui.single_instance import InstanceServer

    window = _make_window(qtbot, tiny_model_file)
    _index(qtbot, window, photo_folder)
    server = InstanceServer(window)
    server.photosReceived.connect(lambda photos: bring_forward(window, photos))
    assert server.listening
    query = sorted(photo_folder.glob("test/*/*.jpg"))[1]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        second = subprocess.Popen([sys.executable, "-m", "fph_desktop", str(query)], env=env, stderr=subprocess.PIPE, text=True)
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=WAIT_MS)
    assert second.returncode == 0, second.stderr.read()
    assert Path(searched.args[0].queries[0].hits[0].path) == query and window.query_paths == [str(query)]
    server.close()
    window.close()


def test_a_socket_left_by_a_crashed_instance_does_not_stop_the_next_one(qtbot, tmp_path):
    import socket

    from PySide6.QtCore import QDir

    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.single_instance import InstanceServer, send_to_running_instance, server_name

    create_app()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(Path(QDir.tempPath()) / server_name()))  # bound, never listening: what a crash leaves
    stale.close()
    assert not send_to_running_instance(["/nowhere.jpg"])  # nothing answers: this launch opens its window
    server = InstanceServer()
    assert server.listening  # the stale socket was removed, and this instance now answers later launches
    server.close()


def test_double_clicking_a_result_opens_it_large_with_its_date_camera_and_size(qtbot, window, photo_folder, tmp_path):
    from PIL import Image

    query = sorted(photo_folder.glob("*/*/*.jpg"))[0]
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "Canon EOS 7D", 6  # taken with the camera on its side
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x829A], sub[0x829D], sub[0x8827], sub[0x920A] = "2019:05:04 07:31:22", 0.004, 5.6, 400, 300.0
    Image.open(query).save(query, exif=exif)  # the query, with the EXIF a camera writes
    _index(qtbot, window, photo_folder)
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS):
        window.set_queries([str(query)])
    first = window.results.view.model().index(0, 0)
    assert window.results.model.items[0].path == str(query)
    with qtbot.waitSignal(window.photoViewerOpened, timeout=WAIT_MS) as opened:
        window.results.view.doubleClicked.emit(first)  # what the grid says on a double-click (timing-free)
    viewer = opened.args[0]
    qtbot.waitUntil(viewer.is_loaded, timeout=WAIT_MS)
    form = viewer.details
    cell = lambda row, role: form.itemAt(row, role).widget().text()  # noqa: E731
    shown = {cell(row, form.ItemRole.LabelRole): cell(row, form.ItemRole.FieldRole) for row in range(form.rowCount())}
    width, height = Image.open(query).size
    assert shown["Taken"] == "4 May 2019, 07:31" and shown["Camera"] == "Canon EOS 7D"
    assert shown["Exposure"] == "1/250 s · f/5.6 · ISO 400 · 300 mm"
    assert shown["Size"].startswith(f"{height:,} × {width:,} px")  # upright, as the photo is shown
    assert viewer.view.item.pixmap().width() == height  # the pixels are turned upright too
    viewer.view.actual_size()
    assert viewer.zoom_label.text() == "100 %"
    viewer.view.zoom_by(2)
    assert viewer.zoom_label.text() == "200 %"
    viewer.close()


def test_new_and_deleted_photos_are_picked_up_when_the_window_comes_back(qtbot, window, photo_folder, monkeypatch):
    from fph_desktop.gui import main_window

    state = _index(qtbot, window, photo_folder)
    before = state.photos
    assert window.refresh_if_stale() == []  # just indexed: nothing to check yet
    new = photo_folder / "train" / "new-visitor.jpg"
    shutil.copy(sorted(photo_folder.glob("test/*/*.jpg"))[0], new)  # a copy: its code is reused
    (sorted(photo_folder.glob("train/*/*.jpg"))[0]).unlink()
    monkeypatch.setattr(main_window, "REFRESH_AFTER_S", 0.0)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    with qtbot.waitSignal(window.indexReady, timeout=WAIT_MS) as refreshed:  # the user comes back to the app
        QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))
    state = refreshed.args[0]
    assert state.photos == before and state.changes == 2  # one added, one removed
    assert "1 copy of an indexed photo" in window.status_label.text() and "1 removed" in window.status_label.text()
    paths = {r.relpath for r in window.index_state.library.search_images([new], k=50)[0].results}
    assert "train/new-visitor.jpg" in paths
