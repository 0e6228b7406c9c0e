"""Look-alike groups: the grouping rule on hand-made codes, and `fph-desktop groups` on a real index
with an exact byte copy and an edited copy of a photo."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from index_support import app_dirs, make_photos, one_torch_thread, other_model_path, tiny_model_path  # noqa: F401
from PIL import Image, ImageEnhance

from fph_desktop.cli import main
from fph_desktop.cli.groups import folder_index
from fph_desktop.errors import BadArgumentError
from fph_desktop.index.groups import find_groups, find_pairs
from fph_desktop.index.search import as_words, hamming_radius


def run(*argv) -> int:
    return main([str(a) for a in argv])


def codes_with_bits(*bit_sets: tuple[int, ...], bits: int = 16) -> np.ndarray:
    """Packed codes with exactly the given bits set: distances are easy to count by hand."""
    rows = np.zeros((len(bit_sets), bits), bool)
    for row, ones in zip(rows, bit_sets, strict=True):
        row[list(ones)] = True
    return np.packbits(rows, axis=1)


# -- the grouping rule -------------------------------------------------------------------------
def test_a_chain_is_grouped_around_its_middle_photo_not_by_its_ends():
    # a-b: 3 bits, b-c: 3 bits, a-c: 6 bits; radius 3.
    codes = codes_with_bits((), (0, 1, 2), (0, 1, 2, 3, 4, 5))
    grouping = find_groups(codes, 16, 3, ["a.jpg", "b.jpg", "c.jpg"])
    [group] = grouping.groups
    assert [(m.relpath, m.distance) for m in group.members] == [("b.jpg", 0), ("a.jpg", 3), ("c.jpg", 3)]
    assert grouping.pairs == 2


def test_a_long_chain_splits_instead_of_growing_one_giant_group():
    # Five photos, 2 bits between neighbours; the ends are 8 bits apart. Radius 2.
    codes = codes_with_bits((), (0, 1), (0, 1, 2, 3), (0, 1, 2, 3, 4, 5), (0, 1, 2, 3, 4, 5, 6, 7))
    names = [f"{i}.jpg" for i in range(5)]
    groups = find_groups(codes, 16, 2, names).groups
    assert [[m.relpath for m in g.members] for g in groups] == [["1.jpg", "0.jpg", "2.jpg"], ["3.jpg", "4.jpg"]]
    assert all(m.distance <= 2 for g in groups for m in g.members)


def test_exact_duplicates_are_byte_identical_files_not_photos_that_share_a_code():
    codes = codes_with_bits((5,), (5,), (5,), (5, 6))
    grouping = find_groups(
        codes, 16, 1, ["a.jpg", "b.jpg", "copy of a.jpg", "d.jpg"], [100, 90, 100, 80], [b"A", b"B", b"A", b"D"]
    )
    [group] = grouping.groups
    flags = {m.relpath: (m.distance, m.exact_duplicate, m.duplicate_of) for m in group.members}
    assert flags == {
        "a.jpg": (0, True, None),
        "b.jpg": (0, False, None),  # the same code as a.jpg, other bytes: a look-alike, not a copy
        "copy of a.jpg": (0, True, "a.jpg"),
        "d.jpg": (1, False, None),
    }
    assert group.redundant_copies == 1


def test_groups_come_largest_first_and_min_size_leaves_out_small_ones():
    codes = codes_with_bits((0,), (0, 1), (8,), (8, 9), (8, 10), (15,))
    names = [f"{i}.jpg" for i in range(6)]
    groups = find_groups(codes, 16, 1, names).groups
    assert [len(g) for g in groups] == [3, 2]
    assert groups[0].representative.relpath == "2.jpg"
    assert [len(g) for g in find_groups(codes, 16, 1, names, min_size=3).groups] == [3]


@pytest.mark.parametrize("bits", [16, 24, 48, 128])
def test_pairs_are_exactly_the_pairs_within_the_radius(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 256, (700, bits // 8), dtype=np.uint8)  # more than one block of rows
    codes[300:305] = codes[7]
    radius = bits // 4
    first, second, distances = find_pairs(codes, bits, radius, threads=2)
    words = as_words(codes)
    expected = {
        (q, int(i), int(d))
        for q, (ids, ds) in enumerate(hamming_radius(words, words, radius, bits))
        for i, d in zip(ids, ds, strict=True)
        if i > q
    }
    assert set(zip(first.tolist(), second.tolist(), distances.tolist(), strict=True)) == expected
    assert len(first) == len(expected)


def test_a_radius_that_pairs_everything_is_refused_with_a_hint():
    codes = np.zeros((50, 2), np.uint8)
    with pytest.raises(BadArgumentError, match="too wide to group look-alikes; choose a smaller radius"):
        find_pairs(codes, 16, 0, max_pairs=100)


# -- the command -------------------------------------------------------------------------------
@pytest.fixture
def photos_with_copies(tmp_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 10)
    (folder / "copies").mkdir()
    shutil.copyfile(folder / "album1" / "img_001.jpg", folder / "copies" / "img_001 copy.jpg")
    with Image.open(folder / "album2" / "img_002.jpg") as photo:
        ImageEnhance.Brightness(photo).enhance(1.05).save(folder / "copies" / "img_002 edited.jpg", quality=85)
    return folder


def test_groups_json_flags_the_exact_copy_and_groups_the_edited_one(app_dirs, photos_with_copies, tiny_model_path, capsys):
    folder = photos_with_copies
    assert run("index", folder, "--model", tiny_model_path, "--quiet") == 0
    capsys.readouterr()
    assert run("groups", folder, "--radius", 1, "--json") == 0
    groups = json.loads(capsys.readouterr().out)
    by_path = {m["relpath"]: (g, m) for g in groups for m in g["members"]}

    group, copy = by_path["copies/img_001 copy.jpg"]
    assert copy["exact_duplicate"] and copy["duplicate_of"] == "album1/img_001.jpg"
    assert copy["path"] == str(folder / "copies" / "img_001 copy.jpg")
    original = next(m for m in group["members"] if m["relpath"] == "album1/img_001.jpg")
    assert original["exact_duplicate"] and original["duplicate_of"] is None
    assert original["distance"] == copy["distance"]

    group, edited = by_path["copies/img_002 edited.jpg"]
    assert "album2/img_002.jpg" in [m["relpath"] for m in group["members"]]
    assert not edited["exact_duplicate"]
    exact = {m["relpath"] for g in groups for m in g["members"] if m["exact_duplicate"]}
    assert exact == {"album1/img_001.jpg", "copies/img_001 copy.jpg"}  # equal codes alone are not copies
    for g in groups:
        assert g["members"][0]["distance"] == 0 and all(m["distance"] <= 1 for m in g["members"])
    assert [g["size"] for g in groups] == sorted((g["size"] for g in groups), reverse=True)


def test_groups_text_names_each_group_and_the_copy(app_dirs, photos_with_copies, tiny_model_path, capsys):
    run("index", photos_with_copies, "--model", tiny_model_path, "--quiet")
    capsys.readouterr()
    assert run("groups", photos_with_copies, "--radius", 0) == 0
    out = capsys.readouterr().out
    assert "group(s) of look-alikes" in out and "1 exact copy of another photo" in out
    assert "Group 1:" in out and "exact copy of album1/img_001.jpg" in out


def test_groups_of_a_folder_never_indexed_is_one_line_with_the_next_step(app_dirs, tmp_path, capsys):
    folder = tmp_path / "Holiday"
    make_photos(folder, 2)
    assert run("groups", folder, "--radius", 4) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "has not been indexed yet" in err and f"run `fph-desktop index {folder}` first" in err
    assert run("groups", tmp_path / "nowhere", "--radius", 4) == 2
    assert "no such folder" in capsys.readouterr().err


def test_groups_uses_the_latest_index_or_the_one_of_model(
    app_dirs, photos_with_copies, tiny_model_path, other_model_path, capsys
):
    folder = photos_with_copies
    run("index", folder, "--model", tiny_model_path, "--quiet")
    run("index", folder, "--model", other_model_path, "--quiet")
    capsys.readouterr()
    assert folder_index(folder)[1]["model_path"] == str(other_model_path)  # the latest
    assert folder_index(folder, tiny_model_path)[1]["model_path"] == str(tiny_model_path)
    assert run("groups", folder, "--radius", 0, "--model", folder / "unknown.fph") == 2
    err = capsys.readouterr().err
    assert "has not been indexed with" in err and "unknown.fph" in err


def test_of_byte_identical_files_the_copy_by_its_name_is_flagged_not_the_original():
    """``IMG_1234 (1).jpg`` sorts before ``IMG_1234.jpg``: "select exact copies, move to trash" must
    still keep the original's name."""
    import numpy as np

    from fph_desktop.index.groups import find_groups

    relpaths = ["IMG_1234 (1).jpg", "IMG_1234-2.jpg", "IMG_1234.jpg", "IMG_9999.jpg"]
    packed = np.zeros((4, 2), np.uint8)
    packed[3] = 255
    same = b"\x01" * 32
    grouping = find_groups(packed, 16, 0, relpaths, [100] * 4, [same, same, same, b"\x02" * 32])
    [group] = grouping.groups
    flagged = {m.relpath: m.duplicate_of for m in group.members}
    assert flagged == {"IMG_1234 (1).jpg": "IMG_1234.jpg", "IMG_1234-2.jpg": "IMG_1234.jpg", "IMG_1234.jpg": None}
