"""The SQLite index file: schema version, WAL, refusal of newer files, one file per model."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from index_support import app_dirs  # noqa: F401

from fph_desktop.index.store import (
    SCHEMA_VERSION,
    FileRecord,
    IndexStore,
    IndexStoreError,
    db_path_for,
    folder_key,
)


def test_new_store_has_schema_version_and_wal(app_dirs, tmp_path):
    path = tmp_path / "i.sqlite"
    with IndexStore(path, create=True):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_from_a_newer_app_is_refused_with_advice(app_dirs, tmp_path):
    path = tmp_path / "i.sqlite"
    with IndexStore(path, create=True):
        pass
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(IndexStoreError, match="newer fph-desktop.*update"):
        IndexStore(path)


def test_damaged_file_is_refused_with_advice(app_dirs, tmp_path):
    path = tmp_path / "i.sqlite"
    path.write_bytes(b"this is no database" * 100)
    with pytest.raises(IndexStoreError, match="index the folder again"):
        IndexStore(path)


def test_codes_load_in_file_order_as_one_contiguous_array(app_dirs, tmp_path):
    with IndexStore(tmp_path / "i.sqlite", create=True) as store:
        store.write_records(
            [
                FileRecord("b.jpg", 1, 1, b"h2", code=bytes([2, 2])),
                FileRecord("a.jpg", 1, 1, b"h1", code=bytes([1, 1])),
                FileRecord("c.jpg", 0, 1, None, error="empty file (0 bytes)"),
            ]
        )
        relpaths, packed = store.load_codes(2)
        assert relpaths == ["a.jpg", "b.jpg"]
        assert packed.dtype == np.uint8 and packed.flags.c_contiguous and packed.tolist() == [[1, 1], [2, 2]]
        assert [s.reason for s in store.skipped_files()] == ["empty file (0 bytes)"]
        assert store.counts() == (2, 1)
        with pytest.raises(IndexStoreError, match="index the folder again"):
            store.load_codes(4)


def test_a_failed_batch_writes_nothing(app_dirs, tmp_path):
    with IndexStore(tmp_path / "i.sqlite", create=True) as store:
        good = FileRecord("a.jpg", 1, 1, None, code=b"\x00\x01")
        bad = FileRecord("b.jpg", None, 1, None, code=b"\x00\x01")  # size NOT NULL violated
        with pytest.raises(sqlite3.IntegrityError):
            store.write_records([good, bad])
        assert store.counts() == (0, 0)


def test_one_database_per_folder_and_fingerprint(app_dirs, tmp_path):
    a = db_path_for(tmp_path / "Photos", "aaaa")
    assert a == db_path_for(str(tmp_path / "Photos") + "/", "aaaa")
    assert a != db_path_for(tmp_path / "Photos", "bbbb")
    assert a != db_path_for(tmp_path / "other" / "Photos", "aaaa")
    assert a.parent == app_dirs / "indexes" and a.name.startswith("Photos-")
    assert folder_key(tmp_path / "x" / ".." / "Photos") == folder_key(tmp_path / "Photos")


def test_codes_of_two_models_never_mix_in_one_file(app_dirs, tmp_path):
    from types import SimpleNamespace

    from fph_desktop.index.indexer import write_index_meta

    def fake_encoder(fingerprint):
        return SimpleNamespace(fingerprint=fingerprint, code_bits=16, info=SimpleNamespace(describe=lambda: "test"))

    with IndexStore(tmp_path / "i.sqlite", create=True) as store:
        write_index_meta(store, tmp_path, fake_encoder("aaaa"), None)
        with pytest.raises(IndexStoreError, match="must never mix"):
            write_index_meta(store, tmp_path, fake_encoder("bbbb"), None)
