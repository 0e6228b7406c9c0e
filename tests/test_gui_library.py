"""A library of several folders in the app: indexed one after the other, searched as one, listed in
the library panel with their state, removed without touching their photos, reopened at start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from test_gui_window import WAIT_MS, _index, _make_window  # noqa: E402


@pytest.fixture
def two_folders(tmp_path, tiny_birds) -> tuple[Path, Path]:
    """The drawn birds split in two folders, as photos from home and from a trip."""
    home, trip = tmp_path / "Home", tmp_path / "Trip"
    photos = sorted(tiny_birds.rglob("*.jpg"))
    for i, photo in enumerate(photos):
        target = (home if i % 2 else trip) / photo.relative_to(tiny_birds)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, target)
    return home, trip


def test_two_folders_are_searched_together_and_a_removed_one_is_left_out(qtbot, tiny_model_file, two_folders, tmp_path):
    home, trip = two_folders
    window = _make_window(qtbot, tiny_model_file)
    _index(qtbot, window, home)
    assert not window.library_dock.isVisible()  # one folder: nothing to see yet
    _index(qtbot, window, trip)
    assert window.library_dock.isVisible()  # a second folder: the library panel shows itself
    rows = {Path(r.folder).name: r for r in window.library_panel.rows}
    assert set(rows) == {"Home", "Trip"} and all(r.state == "ready" for r in rows.values())
    assert rows["Trip"].current and rows["Home"].photos + rows["Trip"].photos == 27
    assert "2 of 2 folders searched together, 27 photos" in window.library_panel.summary.text()

    query = tmp_path / "query.jpg"
    shutil.copy(next(home.rglob("*.jpg")), query)
    window.results.top_k.setValue(27)
    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        window.set_queries([str(query)])
    found = {Path(h.path).relative_to(tmp_path).parts[0] for h in searched.args[0].queries[0].hits}
    assert found == {"Home", "Trip"} and searched.args[0].database_size == 27

    with qtbot.waitSignal(window.searchFinished, timeout=WAIT_MS) as searched:
        window.remove_folder(str(trip))
    found = {Path(h.path).relative_to(tmp_path).parts[0] for h in searched.args[0].queries[0].hits}
    assert found == {"Home"} and trip.is_dir() and any(trip.rglob("*.jpg"))  # its photos are untouched
    assert [Path(r.folder).name for r in window.library_panel.rows] == ["Home"]
    window.close()


def test_the_library_is_reopened_at_start_up(qtbot, tiny_model_file, two_folders):
    home, trip = two_folders
    first = _make_window(qtbot, tiny_model_file)
    _index(qtbot, first, home)
    _index(qtbot, first, trip)
    first.close()
    again = _make_window(qtbot, tiny_model_file, start_background=True)
    qtbot.waitUntil(lambda: {str(home), str(trip)} <= set(again.folder_states), timeout=WAIT_MS)
    assert again.index_state.folder == str(trip)  # the folder worked in last is the current one
    assert sum(s.photos for s in again.searched_folders()) == 27
    again.close()
