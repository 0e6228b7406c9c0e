"""A library of several folders: each keeps its own index, a search ranks them together."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from index_support import app_dirs, make_photos, make_tiny_model, tiny_model_path, write_photo  # noqa: F401

from fph_desktop.errors import BadArgumentError
from fph_desktop.index.collection import Collection
from fph_desktop.index.library import Library
from fph_desktop.index.ranking import search_many


def test_several_folders_are_searched_as_one_ranking(app_dirs, tmp_path, tiny_model_path):
    photos = make_photos(tmp_path / "all", 12, subdirs=1)
    home, trip = tmp_path / "Home", tmp_path / "Trip"
    for i, photo in enumerate(photos):
        target = (home if i < 6 else trip) / "IMG" / f"IMG_{i % 6:04d}.jpg"  # the same names in both folders
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, target)
    libraries = []
    for folder in (home, trip, tmp_path / "all"):
        library = Library.open(folder, tiny_model_path, device="cpu")
        library.update()
        libraries.append(library)
    together = Collection(libraries[:2])
    assert len(together) == 12
    query = write_photo(tmp_path / "query.jpg", seed=40)
    [merged] = together.search_images([query], k=12)
    [reference] = libraries[2].search_images([query], k=12)  # one folder with every photo
    # Ranked as one folder holding every photo ranks them (the same distances, in the same order).
    assert [(r.distance, r.soft_distance) for r in merged.results] == [(r.distance, r.soft_distance) for r in reference.results]
    assert len({r.relpath for r in merged.results}) == 12  # IMG_0000.jpg of Home and of Trip stay apart
    assert {r.path.parent.parent for r in merged.results} == {home, trip}
    outcome = search_many(together, [str(query), str(photos[0])], k=5, combined=True)  # what the app and CLI run
    assert len(outcome.queries[0].hits) == 5 and outcome.database_size == 12 and len(outcome.combined) == 5


def test_folders_indexed_with_different_models_are_not_mixed(app_dirs, tmp_path, tiny_model_path):
    other = make_tiny_model(tmp_path / "other.fph", seed=9)
    a, b = tmp_path / "A", tmp_path / "B"
    make_photos(a, 3)
    make_photos(b, 3)
    first, second = Library.open(a, tiny_model_path, device="cpu"), Library.open(b, other, device="cpu")
    with pytest.raises(BadArgumentError, match="different models"):
        Collection([first, second])


def test_the_command_line_searches_several_folders_as_one(app_dirs, tmp_path, tiny_model_path, capsys):
    import json

    from fph_desktop.cli import main

    home, trip = tmp_path / "Home", tmp_path / "Trip"
    make_photos(home, 5)
    make_photos(trip, 5, start=5)
    for folder in (home, trip):
        assert main(["index", str(folder), "--model", str(tiny_model_path), "--quiet"]) == 0
    capsys.readouterr()
    query = write_photo(tmp_path / "query.jpg", seed=41)
    assert main(["search", str(query), "--index", str(home), "--index", str(trip), "-k", "10", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert len(hits) == 10 and {tmp_path / "Home", tmp_path / "Trip"} <= {
        p.parents[1] for p in map(Path, (h["path"] for h in hits))
    }
    assert main(["search", str(query), "--index", str(home), "--index", str(trip), "--radius", "2"]) == 2
    assert "work with one --index" in capsys.readouterr().err
