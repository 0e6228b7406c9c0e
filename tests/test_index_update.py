"""Incremental indexing against real files and a real SQLite database."""

from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np
import pytest
from index_support import (  # noqa: F401 (fixtures)
    CountingEncoder,
    app_dirs,
    make_photos,
    one_torch_thread,
    other_model_path,
    tiny_encoder,
    tiny_model_path,
    write_bomb_png,
    write_photo,
    write_truncated_jpeg,
)

from fph_desktop.index import IndexStore, Library, db_path_for, update_index
from fph_desktop.index import indexer as indexer_module
from fph_desktop.model.encoder import Encoder
from fph_desktop.progress import Cancelled, Progress


def codes_in(db_path) -> dict[str, bytes]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("SELECT relpath, code FROM files WHERE status = 'ok'"))


def errors_in(db_path) -> dict[str, str]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("SELECT relpath, error FROM files WHERE status = 'error'"))


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 12)
    return folder


def test_first_run_encodes_every_photo_and_stores_packed_codes(app_dirs, photos, tiny_encoder):
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder, batch_size=5)
    assert (report.scanned, report.encoded, encoder.encoded) == (12, 12, 12)
    codes = codes_in(report.db_path)
    assert len(codes) == 12 and all(len(c) == 2 for c in codes.values())  # 16 bits = 2 bytes, never floats
    assert report.db_path.parent == app_dirs / "indexes"
    assert sorted(codes) == sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg"))


def test_unchanged_rerun_encodes_nothing(app_dirs, photos, tiny_encoder):
    update_index(photos, tiny_encoder)
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder)
    assert (report.encoded, report.unchanged, encoder.encoded) == (0, 12, 0)


def test_changed_file_is_reencoded(app_dirs, photos, tiny_encoder):
    first = update_index(photos, tiny_encoder)
    target = photos / "album1" / "img_001.jpg"
    before = codes_in(first.db_path)["album1/img_001.jpg"]
    write_photo(target, seed=500)  # different content, new mtime
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder)
    assert (report.encoded, encoder.encoded, report.unchanged) == (1, 1, 11)
    with sqlite3.connect(report.db_path) as db:
        size, mtime_ns = db.execute("SELECT size, mtime_ns FROM files WHERE relpath = 'album1/img_001.jpg'").fetchone()
    assert (size, mtime_ns) == (target.stat().st_size, target.stat().st_mtime_ns)
    assert before is not None


def test_renamed_and_moved_files_keep_their_codes_without_reencoding(app_dirs, photos, tiny_encoder):
    first = update_index(photos, tiny_encoder)
    old = codes_in(first.db_path)
    (photos / "album0" / "img_000.jpg").rename(photos / "album0" / "renamed.jpg")
    (photos / "moved").mkdir()
    shutil.move(photos / "album2" / "img_002.jpg", photos / "moved" / "img_002.jpg")
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder)
    assert encoder.encoded == 0
    assert (report.moved, report.deleted, report.encoded) == (2, 2, 0)
    new = codes_in(report.db_path)
    assert new["album0/renamed.jpg"] == old["album0/img_000.jpg"]
    assert new["moved/img_002.jpg"] == old["album2/img_002.jpg"]
    assert "album0/img_000.jpg" not in new and "album2/img_002.jpg" not in new
    assert len(new) == 12


def test_copied_and_touched_files_reuse_codes(app_dirs, photos, tiny_encoder):
    update_index(photos, tiny_encoder)
    shutil.copy(photos / "album0" / "img_003.jpg", photos / "copy.jpg")
    touched = photos / "album1" / "img_004.jpg"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder)
    assert encoder.encoded == 0 and report.reused == 2
    codes = codes_in(report.db_path)
    assert codes["copy.jpg"] == codes["album0/img_003.jpg"]


def test_deleted_files_are_dropped(app_dirs, photos, tiny_encoder):
    update_index(photos, tiny_encoder)
    (photos / "album0" / "img_006.jpg").unlink()
    shutil.rmtree(photos / "album2")
    report = update_index(photos, tiny_encoder)
    codes = codes_in(report.db_path)
    assert report.deleted == 1 + 4
    assert "album0/img_006.jpg" not in codes and not any(p.startswith("album2/") for p in codes)
    assert len(codes) == 7


def test_bad_files_are_recorded_with_reasons_and_not_retried_unless_changed(app_dirs, photos, tiny_encoder):
    (photos / "empty.png").write_bytes(b"")
    (photos / "notes.jpg").write_text("this is not a photo")
    write_truncated_jpeg(photos / "truncated.jpg")
    write_bomb_png(photos / "bomb.png")
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder)
    assert report.failed == 4 and report.encoded == 12 and encoder.encoded == 12
    errors = errors_in(report.db_path)
    assert "empty" in errors["empty.png"]
    assert "not an image" in errors["notes.jpg"]
    assert "truncated" in errors["truncated.jpg"]
    assert "image too large" in errors["bomb.png"]
    assert {s.relpath for s in Library(photos, tiny_encoder).skipped_files()} == set(errors)

    calls = []
    original = indexer_module._prepare
    monkey = pytest.MonkeyPatch()
    monkey.setattr(indexer_module, "_prepare", lambda root, item, *a: calls.append(item.relpath) or original(root, item, *a))
    try:
        again = update_index(photos, tiny_encoder)
        assert calls == [] and again.still_skipped == 4 and again.failed == 0

        write_photo(photos / "notes.jpg", seed=77, fmt="JPEG")  # fixed: now a real photo
        fixed = update_index(photos, tiny_encoder)
    finally:
        monkey.undo()
    assert calls == ["notes.jpg"]
    assert (fixed.encoded, fixed.still_skipped) == (1, 3)
    assert "notes.jpg" in codes_in(fixed.db_path) and "notes.jpg" not in errors_in(fixed.db_path)


def test_file_vanishing_mid_run_is_recorded_and_dropped_next_run(app_dirs, photos, tiny_encoder, monkeypatch):
    real_scan = indexer_module.scan_folder

    def scan_then_delete(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        (photos / "album0" / "img_000.jpg").unlink()
        return result

    monkeypatch.setattr(indexer_module, "scan_folder", scan_then_delete)
    report = update_index(photos, tiny_encoder)
    assert report.failed == 1 and report.encoded == 11
    assert errors_in(report.db_path) == {"album0/img_000.jpg": "file vanished before it could be read"}
    monkeypatch.setattr(indexer_module, "scan_folder", real_scan)
    again = update_index(photos, tiny_encoder)
    assert again.deleted == 1 and errors_in(again.db_path) == {}


def test_missing_folder_is_offline_and_its_index_intact(app_dirs, photos, tiny_encoder):
    first = update_index(photos, tiny_encoder)
    before = codes_in(first.db_path)
    photos.rename(photos.with_name("unplugged"))
    report = update_index(photos, tiny_encoder)
    assert report.offline and "not found" in report.offline_reason
    assert codes_in(first.db_path) == before
    library = Library(photos, tiny_encoder)
    assert library.offline and library.info().offline and len(library) == 12


def test_empty_mount_point_is_offline_unless_allowed(app_dirs, photos, tiny_encoder):
    first = update_index(photos, tiny_encoder)
    shutil.rmtree(photos)
    photos.mkdir()  # what an unmounted mount point looks like
    report = update_index(photos, tiny_encoder)
    assert report.offline and len(codes_in(first.db_path)) == 12
    emptied = update_index(photos, tiny_encoder, allow_empty=True)
    assert not emptied.offline and emptied.deleted == 12 and codes_in(first.db_path) == {}


def test_different_model_gets_its_own_database(app_dirs, photos, tiny_encoder, other_model_path):
    other = Encoder.load(other_model_path, device="cpu")
    assert other.fingerprint != tiny_encoder.fingerprint
    a = update_index(photos, tiny_encoder)
    b = update_index(photos, other)
    assert a.db_path != b.db_path and b.encoded == 12  # nothing borrowed from the other model's index
    assert db_path_for(photos, other.fingerprint) == b.db_path
    with IndexStore(a.db_path) as store:
        assert store.get_meta("fingerprint") == tiny_encoder.fingerprint
    with IndexStore(b.db_path) as store:
        assert store.get_meta("fingerprint") == other.fingerprint


def test_cancel_keeps_committed_batches_and_next_run_resumes(app_dirs, photos, tiny_encoder):
    batches = []
    progress = Progress(on_partial=lambda batch: (batches.append(batch), progress.cancel()))
    with pytest.raises(Cancelled):
        update_index(photos, tiny_encoder, progress, batch_size=4)
    db_path = db_path_for(photos, tiny_encoder.fingerprint)
    kept = codes_in(db_path)
    assert len(batches) == 1 and len(kept) == 4
    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder, batch_size=4)
    assert encoder.encoded == 8 and report.unchanged == 4
    assert {k: v for k, v in codes_in(db_path).items() if k in kept} == kept


def test_photos_under_an_unreadable_folder_are_kept(app_dirs, photos, tiny_encoder, monkeypatch):
    update_index(photos, tiny_encoder)
    from fph_desktop.index import scanner

    real_scandir = os.scandir
    blocked = str(photos / "album1")

    def scandir(path):
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(scanner.os, "scandir", scandir)
    report = update_index(photos, tiny_encoder)
    assert report.unreadable_dirs == [("album1", "permission denied")]
    assert report.deleted == 0 and len(codes_in(report.db_path)) == 12
    assert Library(photos, tiny_encoder).unreadable_dirs() == [("album1", "permission denied")]


def test_index_matches_a_fresh_encoding_of_each_photo(app_dirs, photos, tiny_encoder):
    """Decoding in the pool (bytes read once, draft, hash) gives the same codes as encoding directly."""
    from fph_desktop.imaging import open_image

    report = update_index(photos, tiny_encoder, batch_size=3, workers=3)
    codes = codes_in(report.db_path)
    for relpath, code in list(codes.items())[:4]:
        image = open_image(photos / relpath, tiny_encoder.decode_side)
        packed, _ = tiny_encoder.encode_images([image])
        # Batch composition can move a float near 0 across the sign; allow one bit.
        assert np.unpackbits(np.frombuffer(code, np.uint8) ^ packed[0]).sum() <= 1
