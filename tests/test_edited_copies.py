"""Edited copies among look-alikes (issue #11): the index stores each photo's real-valued outputs and
perceptual hash beside its code (schema 2); an index made before them is migrated in place, searched
as before, and filled in by its next update; searches put a photo's edited copies ahead of look-alikes
that are as close by code, and groups keep them with their original."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from conftest import draw_bird_photo
from index_support import app_dirs, one_torch_thread, tiny_encoder, tiny_model_path  # noqa: F401
from PIL import Image

from fph_desktop.imaging import open_image
from fph_desktop.index import IndexStore, Library
from fph_desktop.index.copies import COPY_PHOTO_RADIUS, photo_hash, photo_hash_word
from fph_desktop.index.groups import find_groups, groups_in_index
from fph_desktop.index.ranking import search_many
from fph_desktop.index.search import SearchIndex
from fph_desktop.index.store import SCHEMA_VERSION

ORIGINAL = "s0_look_00.jpg"
COPIES = {"zz_q40.jpg", "zz_crop90.jpg"}


def centre_crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * fraction), round(h * fraction)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


@pytest.fixture
def copies_folder(tmp_path):
    """Drawn birds of three species, eight of each; the first photo has a JPEG quality 40 re-save and
    a 90 % centre crop, named to sort after every look-alike, so ties by code put the look-alikes first."""
    folder = tmp_path / "Photos"
    folder.mkdir()
    for species in range(3):
        for seed in range(8):
            draw_bird_photo(species, seed, side=96).save(folder / f"s{species}_look_{seed:02d}.jpg", quality=90)
    with Image.open(folder / ORIGINAL) as photo:
        image = photo.convert("RGB")
    image.save(folder / "zz_q40.jpg", quality=40)
    centre_crop(image, 0.9).save(folder / "zz_crop90.jpg", quality=90)
    return folder


@pytest.fixture
def library(app_dirs, copies_folder, tiny_model_path, one_torch_thread):
    library = Library.open(copies_folder, tiny_model_path, device="cpu")
    library.update()
    return library


def as_schema_1(db_path) -> None:
    """Turn an index into the file the previous version wrote: schema 1 had no outputs or hashes."""
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("ALTER TABLE files DROP COLUMN real_code")
        db.execute("ALTER TABLE files DROP COLUMN photo_hash")
        db.execute("PRAGMA user_version = 1")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the main file, as a closed app leaves it
    finally:
        db.close()


def columns(db_path) -> set[str]:
    with sqlite3.connect(db_path) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(files)")}


def ranked(library, query, **options) -> list[tuple[str, int]]:
    [result] = library.search_images([query], k=len(library), **options)
    assert result.error is None
    return [(r.relpath, r.distance) for r in result.results]


# -- searching ---------------------------------------------------------------------------------
def test_edited_copies_rank_first_among_look_alikes_that_hamming_puts_ahead(library, copies_folder):
    query = copies_folder / ORIGINAL
    by_code = ranked(library, query, ranking="hamming")
    copy_ranks = [rank for rank, (relpath, _) in enumerate(by_code) if relpath in COPIES]
    # The case under test: by code alone, look-alikes as close as the copies come before them.
    assert min(copy_ranks) > 1
    assert any(d <= max(dict(by_code)[c] for c in COPIES) for relpath, d in by_code[1 : min(copy_ranks)])

    [result] = library.search_images([query], k=6)
    first = result.results[0]
    assert first.is_query and first.relpath == ORIGINAL and not first.edited_copy
    assert {r.relpath for r in result.results[1:3]} == COPIES
    assert all(r.edited_copy for r in result.results[1:3]) and not any(r.edited_copy for r in result.results[3:])
    assert all(r.soft_distance is not None for r in result.results[1:])


def test_an_edited_copy_as_query_finds_its_original_first(library, copies_folder, tmp_path):
    # Indexed (its stored outputs and hash are used) and from outside the folder (decoded and hashed).
    outside = tmp_path / "elsewhere" / "q40 again.jpg"
    outside.parent.mkdir()
    shutil.copy(copies_folder / "zz_q40.jpg", outside)
    indexed, from_outside = library.search_images([copies_folder / "zz_q40.jpg", outside], k=4)
    assert indexed.results[0].is_query
    assert ORIGINAL in {r.relpath for r in indexed.results[1:3]}
    assert from_outside.results[0].relpath == "zz_q40.jpg" and from_outside.results[0].edited_copy
    assert ORIGINAL in {r.relpath for r in from_outside.results[1:3]}


def test_search_many_keeps_edited_copies_and_flags_them(library, copies_folder):
    outcome = search_many(library, [str(copies_folder / ORIGINAL)], k=4, hide_duplicates=True)
    hits = outcome.queries[0].hits
    assert outcome.queries[0].hidden == 1  # the query itself; its edited copies are not byte copies
    assert {h.relpath for h in hits[:2]} == COPIES and all(h.edited_copy for h in hits[:2])
    assert not any(h.edited_copy for h in hits[2:])


def test_hamming_ranking_is_what_it_always_was(library, copies_folder):
    by_code = ranked(library, copies_folder / ORIGINAL, ranking="hamming")
    assert ranked(library, copies_folder / ORIGINAL, rerank_depth=0) == by_code
    assert by_code[0] == (ORIGINAL, 0)
    assert [d for _, d in by_code[1:]] == sorted(d for _, d in by_code[1:])


def test_outputs_reorder_the_candidates_and_copies_are_found_beyond_them():
    """Hand-made 16-bit codes: two look-alikes 1 bit from the query (one strong bit flipped each), a
    crop 3 bits away whose outputs are nearly the query's (those bits sat near zero), a re-save 4 bits
    away (a quarter of the code) with the query's perceptual hash but weaker outputs, and a photo with
    that hash and the opposite code (another dark bird on another plain sky: not a copy)."""
    bits = 16
    query_u = np.where(np.arange(bits) % 2 == 0, 0.8, -0.8).astype(np.float32)
    query_u[:4] = 0.05
    look_a, look_b, crop, resave = (query_u.copy() for _ in range(4))
    look_a[5], look_b[6] = -query_u[5], -query_u[6]
    crop[:3] = -0.05
    resave[:4] = -0.05
    resave[4:] *= 0.2
    reals = np.stack([look_a, look_b, crop, resave, -query_u])
    packed = np.packbits(reals >= 0, axis=1)
    query = np.packbits(query_u >= 0)
    picture = 0x0123456789ABCDEF
    hashes = np.array([0xFFFF0000FFFF0000, 0x00FF00FF00FF00FF, 0x0F0F0F0F0F0F0F0F, picture ^ 0b111, picture], np.uint64)
    index = SearchIndex(packed, bits, real_codes=reals.astype(np.float16), photo_hashes=hashes)

    dists, ids = index.topk(query, 5)
    assert ids[0].tolist() == [0, 1, 2, 3, 4] and dists[0].tolist() == [1, 1, 3, 4, 16]  # by code alone
    assert index.copies_of(query, picture).tolist() == [3]  # the stranger's code is too far
    hits = index.ranked(query, 5, query_u, picture, depth=5)
    assert hits.ids.tolist() == [3, 2, 0, 1, 4] and hits.copies.tolist() == [True, False, False, False, False]
    assert hits.distances.tolist() == [4, 3, 1, 1, 16] and hits.soft[1] < hits.soft[2]
    assert index.ranked(query, 2, query_u, picture, depth=2).ids.tolist() == [3, 0]  # a copy past the candidates
    assert index.ranked(query, 3, query_u, picture, depth=5, copies_first=False).ids.tolist() == [2, 0, 1]
    assert index.ranked(query, 3, query_u, None, depth=5).ids.tolist() == [2, 0, 1]
    assert index.ranked(query, 3, None, picture, depth=5).ids.tolist() == [3, 0, 1]  # no outputs: by code


def test_perceptual_hash_survives_the_edits_and_tells_photos_apart():
    photo = draw_bird_photo(0, 0, side=160)
    other = draw_bird_photo(0, 1, side=160)

    def distance(a, b) -> int:
        return bin(photo_hash_word(photo_hash(a)) ^ photo_hash_word(photo_hash(b))).count("1")

    import io

    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=40)
    resaved = Image.open(io.BytesIO(buffer.getvalue()))
    small = photo.resize((photo.width * 3 // 4, photo.height * 3 // 4), Image.Resampling.LANCZOS)
    assert distance(photo, resaved) <= COPY_PHOTO_RADIUS and distance(photo, small) <= COPY_PHOTO_RADIUS
    assert distance(photo, other) > COPY_PHOTO_RADIUS
    assert photo_hash(Image.new("RGB", (64, 48), (120, 130, 140))) is None  # a flat photo is nobody's copy


# -- the index ---------------------------------------------------------------------------------
def test_each_photo_stores_its_outputs_and_perceptual_hash(library, copies_folder, tiny_encoder):
    with sqlite3.connect(library.db_path) as db:
        rows = {relpath: (real, ph) for relpath, real, ph in db.execute("SELECT relpath, real_code, photo_hash FROM files")}
    assert len(rows) == 26 and all(real is not None and ph is not None for real, ph in rows.values())
    image = open_image(copies_folder / "zz_crop90.jpg", tiny_encoder.decode_side)
    packed, u = tiny_encoder.encode_images([image])
    real, stored_hash = rows["zz_crop90.jpg"]
    assert np.allclose(np.frombuffer(real, "<f2"), u[0], atol=1e-3)
    assert stored_hash == photo_hash(image)


def test_a_moved_photo_keeps_its_outputs_and_hash_without_decoding(library, copies_folder):
    def stored(relpath):
        with sqlite3.connect(library.db_path) as db:
            return db.execute("SELECT code, real_code, photo_hash FROM files WHERE relpath = ?", (relpath,)).fetchone()

    before = stored("zz_q40.jpg")
    (copies_folder / "zz_q40.jpg").rename(copies_folder / "renamed q40.jpg")
    report = library.update()
    assert (report.moved, report.encoded) == (1, 0)
    assert stored("renamed q40.jpg") == before


def test_a_schema_1_index_is_migrated_searched_as_before_and_filled_by_the_next_update(
    app_dirs, copies_folder, tiny_model_path, one_torch_thread
):
    library = Library.open(copies_folder, tiny_model_path, device="cpu")
    library.update()
    query = copies_folder / ORIGINAL
    by_code = ranked(library, query, ranking="hamming")
    as_schema_1(library.db_path)
    assert "real_code" not in columns(library.db_path)

    old = Library.open(copies_folder, tiny_model_path, device="cpu")  # opening migrates the file in place
    [result] = old.search_images([query], k=len(old))
    assert [(r.relpath, r.distance) for r in result.results] == by_code  # as before: by code alone
    assert not any(r.edited_copy or r.soft_distance is not None for r in result.results)
    with sqlite3.connect(old.db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT COUNT(*) FROM files WHERE real_code IS NULL AND photo_hash IS NULL").fetchone()[0] == 26

    report = old.update()
    assert (report.encoded, report.upgraded, report.unchanged) == (26, 26, 0)
    assert "26 upgraded once" in report.summary()
    with sqlite3.connect(old.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM files WHERE real_code IS NULL OR photo_hash IS NULL").fetchone()[0] == 0
    again = old.update()
    assert (again.encoded, again.upgraded, again.unchanged) == (0, 0, 26)
    [result] = old.search_images([query], k=6)
    assert {r.relpath for r in result.results[1:3]} == COPIES and all(r.edited_copy for r in result.results[1:3])


def test_a_partly_upgraded_index_is_searched_by_code_until_every_photo_has_its_outputs(library, copies_folder):
    by_code = ranked(library, copies_folder / ORIGINAL, ranking="hamming")
    with sqlite3.connect(library.db_path) as db:
        db.execute("UPDATE files SET real_code = NULL WHERE relpath = 's1_look_03.jpg'")
    library.reload()
    assert ranked(library, copies_folder / ORIGINAL) == by_code
    assert library.update().upgraded == 1
    assert ranked(library, copies_folder / ORIGINAL) != by_code


def test_a_schema_1_index_on_read_only_storage_is_searched_by_its_codes(library, copies_folder, monkeypatch):
    by_code = ranked(library, copies_folder / ORIGINAL, ranking="hamming")
    as_schema_1(library.db_path)

    def read_only(self):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(IndexStore, "_set_up", read_only)
    library.reload()
    assert ranked(library, copies_folder / ORIGINAL) == by_code
    with IndexStore(library.db_path) as store:
        assert store.read_only and store.version == 1 and store.load_search_data(16).real is None
    assert "real_code" not in columns(library.db_path)  # untouched


# -- groups ------------------------------------------------------------------------------------
def test_an_edited_copy_joins_its_original_group_whatever_the_radius():
    # 16-bit codes: the original, its re-save 3 bits away (same picture), a look-alike 1 bit away,
    # and a photo with the same perceptual hash whose code is 8 bits away (not a copy).
    codes = np.packbits(np.array([[0] * 16, [1, 1, 1] + [0] * 13, [0] * 15 + [1], [1] * 8 + [0] * 8], bool), axis=1)
    relpaths = ["original.jpg", "resaved.jpg", "look-alike.jpg", "stranger.jpg"]
    picture = bytes(range(8))
    hashes = [picture, bytes([1, *range(1, 8)]), bytes([255] * 8), picture]
    sizes = [5000, 3000, 4000, 4500]

    by_code = find_groups(codes, 16, 1, relpaths, sizes)
    assert [[m.relpath for m in g.members] for g in by_code.groups] == [["original.jpg", "look-alike.jpg"]]

    grouping = find_groups(codes, 16, 1, relpaths, sizes, photo_hashes=hashes)
    [group] = grouping.groups
    members = {m.relpath: m for m in group.members}
    assert set(members) == {"original.jpg", "resaved.jpg", "look-alike.jpg"}
    assert members["resaved.jpg"].edited_copy_of == "original.jpg" and members["resaved.jpg"].distance == 3
    assert members["original.jpg"].edited_copy_of is None and members["look-alike.jpg"].edited_copy_of is None
    assert group.edited_copies == 1 and grouping.edited_copies == 1
    alone = find_groups(codes, 16, 0, relpaths, sizes, photo_hashes=hashes)  # no look-alike at radius 0
    assert [[m.relpath for m in g.members] for g in alone.groups] == [["original.jpg", "resaved.jpg"]]


def test_a_crop_joins_the_photo_its_outputs_are_far_nearest_to_and_a_look_alike_does_not():
    # 16-bit codes and outputs: the original, its re-save (same perceptual hash), a crop whose hash
    # changed but whose outputs are nearly the original's, two look-alikes, and a photo about as near
    # to both look-alikes (no copy of anything).
    u = np.where(np.arange(16) % 2 == 0, 0.8, -0.8).astype(np.float32)
    u[0] = 0.1  # a weak bit, which the crop flips
    resaved, crop, look_a, look_b, between = (u.copy() for _ in range(5))
    resaved[2] = 0.7
    crop[0] = -0.05
    look_a[3], look_b[5] = -look_a[3], -look_b[5]
    between[[3, 5]] = 0.0
    reals = np.stack([u, resaved, crop, look_a, look_b, between])
    codes = np.packbits(reals >= 0, axis=1)
    relpaths = ["original.jpg", "resaved.jpg", "crop.jpg", "look-a.jpg", "look-b.jpg", "between.jpg"]
    picture = bytes(range(8))
    hashes = [picture, picture, bytes([255] * 8), bytes([15] * 8), bytes([240] * 8), bytes([51] * 8)]
    sizes = [900, 800, 700, 600, 500, 400]

    with_outputs = find_groups(codes, 16, 0, relpaths, sizes, photo_hashes=hashes, real_codes=reals.astype(np.float16))
    flagged = {m.relpath: m.edited_copy_of for g in with_outputs.groups for m in g.members}
    assert flagged == {"original.jpg": None, "resaved.jpg": "original.jpg", "crop.jpg": "original.jpg"}
    by_hash = find_groups(codes, 16, 0, relpaths, sizes, photo_hashes=hashes)
    assert {m.relpath for g in by_hash.groups for m in g.members} == {"original.jpg", "resaved.jpg"}


def test_a_byte_copy_is_an_exact_duplicate_not_an_edited_copy():
    codes = np.packbits(np.zeros((3, 16), bool), axis=1)
    hashes = [bytes(range(8))] * 3
    grouping = find_groups(codes, 16, 0, ["a.jpg", "b.jpg", "c.jpg"], [10, 10, 9], [b"x", b"x", b"y"], photo_hashes=hashes)
    members = {m.relpath: m for m in grouping.groups[0].members}
    assert members["b.jpg"].duplicate_of == "a.jpg" and members["b.jpg"].edited_copy_of is None
    assert members["c.jpg"].edited_copy_of == "a.jpg" and members["c.jpg"].duplicate_of is None


def test_groups_in_an_index_flag_the_edited_copies(library):
    grouping = groups_in_index(library.db_path, 0)
    group = next(g for g in grouping.groups if ORIGINAL in {m.relpath for m in g.members})
    flagged = {m.relpath: m.edited_copy_of for m in group.members if m.edited_copy_of}
    assert flagged == dict.fromkeys(COPIES, ORIGINAL)
    without = groups_in_index(library.db_path, 0, left_out={"zz_q40.jpg"})
    assert "zz_q40.jpg" not in {m.relpath for g in without.groups for m in g.members}


def test_the_search_command_ranks_edited_copies_first_and_rerank_0_by_code(library, copies_folder, capsys):
    import json

    from fph_desktop.cli import main

    query = str(copies_folder / ORIGINAL)
    assert main(["search", query, "--index", str(copies_folder), "-k", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert results[0]["is_query"] and {r["relpath"] for r in results[1:]} == COPIES
    assert main(["search", query, "--index", str(copies_folder), "-k", "3", "--rerank", "0", "--json"]) == 0
    by_code = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert [(r["relpath"], r["distance"]) for r in by_code] == ranked(library, copies_folder / ORIGINAL, ranking="hamming")[:3]
