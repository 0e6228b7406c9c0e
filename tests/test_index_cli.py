"""The headless `index` and `search` commands, driven through argparse as the main CLI will."""

from __future__ import annotations

import json

import pytest
from index_support import app_dirs, make_photos, one_torch_thread, tiny_model_path  # noqa: F401

from fph_desktop.cli import main


def run(*argv: str) -> int:
    """The command as a user runs it: parsing, the command, and main's error handling."""
    return main([str(a) for a in argv])


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 6)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return folder


def test_index_then_search_json(app_dirs, photos, tiny_model_path, capsys):
    assert run("index", photos, "--model", tiny_model_path, "--quiet") == 0
    out = capsys.readouterr().out
    assert "6 encoded" in out and "1 could not be read" in out
    query = photos / "album1" / "img_001.jpg"
    assert run("search", query, "--index", photos, "-k", 3, "--json") == 0  # model remembered
    payload = json.loads(capsys.readouterr().out)
    [q] = payload["queries"]
    assert q["query"] == str(query) and q["error"] is None
    assert [r["rank"] for r in q["results"]] == [1, 2, 3]
    assert q["results"][0]["is_query"] and q["results"][0]["distance"] == 0
    assert q["results"][0]["path"] == str(query)
    assert payload["model"]["fingerprint"] and payload["offline"] is False


def test_index_report_lists_skipped_files_with_reasons(app_dirs, photos, tiny_model_path, capsys):
    run("index", photos, "--model", tiny_model_path, "--quiet")
    capsys.readouterr()
    assert run("index", photos, "--report", "--quiet") == 0
    out = capsys.readouterr().out
    assert "0 encoded" in out and "broken.jpg:" in out and "not an image" in out


def test_index_without_model_uses_the_shipped_default_and_says_so(app_dirs, tmp_path, capsys):
    folder = tmp_path / "Library"
    make_photos(folder, 52)  # unsupervised 48-bit codes need more than 48 photos to fit on
    assert run("index", folder, "--quiet") == 0
    captured = capsys.readouterr()
    assert "no model given: using the shipped EfficientNet-Lite0" in captured.err
    assert "52 encoded" in captured.out
    assert run("index", folder, "--quiet") == 0  # the default is remembered, not fitted again
    assert "no model given" not in capsys.readouterr().err


def test_index_without_model_on_a_small_folder_fits_shorter_codes_or_says_why(app_dirs, photos, tmp_path, capsys):
    assert run("index", photos, "--quiet") == 2  # 7 files named like photos: too few to fit codes on
    err = capsys.readouterr().err
    assert "has only 7 photos; codes fitted on a folder need at least 9" in err and len(err.strip().splitlines()) == 1
    holiday = tmp_path / "Holiday"
    make_photos(holiday, 20)
    assert run("index", holiday, "--quiet") == 0  # 20 photos: 16-bit codes
    captured = capsys.readouterr()
    assert "unsupervised 16-bit codes" in captured.err and "20 encoded" in captured.out


def test_index_with_unreadable_model_names_the_file(app_dirs, photos, tmp_path, capsys):
    bad = tmp_path / "bad.fph"
    bad.write_bytes(b"")
    assert run("index", photos, "--model", bad) == 2
    assert str(bad) in capsys.readouterr().err


def test_offline_folder_exit_status(app_dirs, photos, tiny_model_path, tmp_path, capsys):
    run("index", photos, "--model", tiny_model_path, "--quiet")
    photos.rename(tmp_path / "gone")
    assert run("index", photos, "--quiet") == 3
    assert "offline" in capsys.readouterr().out


def test_search_before_any_index_says_what_to_do(app_dirs, tmp_path, capsys):
    assert run("search", tmp_path / "q.jpg") == 2
    assert "fph-desktop index" in capsys.readouterr().err


def test_search_text_output_and_failed_query_status(app_dirs, photos, tiny_model_path, tmp_path, capsys):
    run("index", photos, "--model", tiny_model_path, "--quiet")
    capsys.readouterr()
    assert run("search", photos / "album0" / "img_000.jpg", tmp_path / "missing.jpg", "-k", 2) == 1
    captured = capsys.readouterr()
    assert "(this photo)" in captured.out and "missing.jpg: no such file" in captured.err


def test_search_hides_copies_of_the_query_and_ranks_queries_combined(app_dirs, photos, tiny_model_path, capsys):
    import shutil

    query = photos / "album1" / "img_001.jpg"
    shutil.copy(query, photos / "album1" / "copy_of_001.jpg")
    run("index", photos, "--model", tiny_model_path, "--quiet")
    capsys.readouterr()
    other = photos / "album1" / "img_004.jpg"
    assert run("search", query, other, "--index", photos, "-k", 4, "--hide-duplicates", "--combined", "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    first, second = payload["queries"]
    assert first["hidden"] == 2  # the query itself and its byte-identical copy
    assert all(r["relpath"] not in ("album1/img_001.jpg", "album1/copy_of_001.jpg") for r in first["results"])
    combined = payload["combined"]
    assert [r["distance"] for r in combined] == sorted(r["distance"] for r in combined)
    assert all(r["distance"] == sum(r["per_query"]) for r in combined)
    # Photos hidden for either query stay out of the combined ranking.
    assert {r["relpath"] for r in combined}.isdisjoint({"album1/img_001.jpg", "album1/copy_of_001.jpg", "album1/img_004.jpg"})
