"""Searching an indexed folder with photos from anywhere: the Library the GUI holds."""

from __future__ import annotations

import shutil

import pytest
from index_support import app_dirs, make_photos, one_torch_thread, tiny_encoder, tiny_model_path, write_photo  # noqa: F401
from PIL import Image

from fph_desktop.index import IndexStoreError, Library, NoModelError, list_indexes, remembered_model
from fph_desktop.progress import Progress


@pytest.fixture
def library(app_dirs, tmp_path, tiny_model_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 10)
    # An exact duplicate that sorts before the original: a tie at distance 0 in file order.
    shutil.copy(folder / "album2" / "img_005.jpg", folder / "album0" / "aaa_copy.jpg")
    library = Library.open(folder, tiny_model_path, device="cpu")
    library.update()
    return library


def test_query_in_the_index_comes_first_at_distance_zero(library):
    query = library.folder / "album2" / "img_005.jpg"
    [result] = library.search_images([query], k=5)
    first = result.results[0]
    assert (first.relpath, first.distance, first.is_query, first.rank) == ("album2/img_005.jpg", 0, True, 0)
    assert first.path == query
    copy = next(r for r in result.results if r.relpath == "album0/aaa_copy.jpg")
    assert copy.distance == 0 and not copy.is_query and copy.rank == 1
    assert [r.rank for r in result.results] == list(range(5))
    assert all(a.distance <= b.distance for a, b in zip(result.results[1:], result.results[2:], strict=False))


def test_query_from_outside_and_in_memory_image(library, tmp_path):
    outside = write_photo(tmp_path / "elsewhere" / "q.png", seed=3, fmt="PNG")  # same picture as img_003
    image = Image.open(library.folder / "album0" / "img_003.jpg")
    by_path, by_image = library.search_images([outside, image], k=3)
    assert by_path.query == str(outside) and by_image.query == "<image 1>"
    assert not any(r.is_query for r in by_path.results + by_image.results)
    assert by_image.results[0].relpath == "album0/img_003.jpg" and by_image.results[0].distance == 0
    assert len(by_path.results) == 3


def test_unreadable_query_is_reported_and_others_still_searched(library, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("no photo")
    missing = tmp_path / "nothing.jpg"
    good = library.folder / "album1" / "img_001.jpg"
    results = library.search_images([bad, missing, good], k=2)
    assert "not an image" in results[0].error and str(bad) in results[0].error
    assert "no such file" in results[1].error
    assert results[2].error is None and results[2].results[0].is_query


def test_rerank_keeps_the_query_first_and_gives_soft_distances(library):
    query = library.folder / "album1" / "img_004.jpg"
    [result] = library.search_images([query], k=4, rerank_depth=8)
    assert result.results[0].is_query and result.results[0].distance == 0
    assert all(r.soft_distance is not None for r in result.results[1:])


def test_radius_search_includes_the_query_first(library):
    [result] = library.within_radius([library.folder / "album2" / "img_005.jpg"], radius=0)
    assert [r.relpath for r in result.results][:2] == ["album2/img_005.jpg", "album0/aaa_copy.jpg"]
    assert all(r.distance == 0 for r in result.results)


def test_offline_folder_still_searchable_from_its_index(library, tmp_path):
    query = write_photo(tmp_path / "q.jpg", seed=2)
    library.folder.rename(tmp_path / "unplugged")
    again = Library.open(library.folder, library.model_path, device="cpu", create=False)
    assert again.offline and len(again) == 11
    [result] = again.search_images([query], k=3)
    assert len(result.results) == 3
    assert again.update().offline and len(again) == 11


def test_listing_indexes_and_remembered_model(library, tiny_model_path):
    [info] = list_indexes()
    assert info.folder == str(library.folder) and info.photos == 11 and info.skipped == 0
    assert info.complete and not info.offline and info.code_bits == 16
    assert remembered_model(library.folder) == tiny_model_path
    reopened = Library.open(library.folder, device="cpu")  # no model: the remembered one
    assert reopened.encoder.fingerprint == library.encoder.fingerprint


def test_no_model_and_nothing_remembered_says_how_to_get_one(app_dirs, tmp_path):
    with pytest.raises(NoModelError, match="fph-desktop train --method itq"):
        Library.open(tmp_path / "Never indexed")


def test_search_without_an_index_says_to_run_index_first(app_dirs, tmp_path, tiny_model_path):
    with pytest.raises(IndexStoreError, match="fph-desktop index"):
        Library.open(tmp_path / "Never indexed", tiny_model_path, create=False)


def test_update_reports_progress_and_batches(app_dirs, tmp_path, tiny_model_path):
    folder = tmp_path / "P"
    make_photos(folder, 7)
    seen, batches = [], []
    library = Library.open(folder, tiny_model_path, device="cpu")
    report = library.update(
        Progress(on_progress=lambda d, t: seen.append((d, t)), on_partial=batches.append, min_interval=0), batch_size=3
    )
    assert report.encoded == 7 and seen[-1] == (7, 7) and [b.done for b in batches] == [3, 6, 7]
    assert len(library) == 7


def test_cancelled_update_leaves_committed_batches_searchable(app_dirs, tmp_path, tiny_model_path):
    from fph_desktop.progress import Cancelled

    folder = tmp_path / "P"
    make_photos(folder, 7)
    library = Library.open(folder, tiny_model_path, device="cpu")
    progress = Progress(on_partial=lambda batch: progress.cancel())
    with pytest.raises(Cancelled):
        library.update(progress, batch_size=3)
    assert len(library) == 3 and not library.info().complete
