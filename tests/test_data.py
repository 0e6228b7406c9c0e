"""Labelled collections in the layouts people have, and class-balanced batches."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest

from fph_desktop.data import LayoutError, PKBatchSampler, detect_layout, load_labelled_folder
from fph_desktop.data.layouts import split_validation


def test_split_folders_are_read_with_their_official_split(tiny_birds):
    data = load_labelled_folder(tiny_birds)
    assert data.layout == "split-folders" and len(data.classes) == 3
    assert data.class_counts("train") == {name: 6 for name in data.classes}
    assert len(data.split("test")) == 9 and "split-folders layout, 3 classes" in data.describe()


def test_class_folders_get_a_seeded_stratified_split(tiny_birds, tmp_path):
    for class_dir in (tiny_birds / "train").iterdir():
        shutil.copytree(class_dir, tmp_path / "mine" / class_dir.name)
    first = load_labelled_folder(tmp_path / "mine", test_fraction=0.34, seed=3)
    again = load_labelled_folder(tmp_path / "mine", test_fraction=0.34, seed=3)
    other = load_labelled_folder(tmp_path / "mine", test_fraction=0.34, seed=4)
    assert first.layout == "class-folders"
    assert Counter(i.label for i in first.split("test")) == {0: 2, 1: 2, 2: 2}
    assert [i.path for i in first.split("test")] == [i.path for i in again.split("test")]
    assert [i.path for i in first.split("test")] != [i.path for i in other.split("test")]
    # A train/ folder with no test/ beside it (e.g. CUB's training split alone) is split the same way.
    shutil.copytree(tmp_path / "mine", tmp_path / "only-train" / "train")
    alone = load_labelled_folder(tmp_path / "only-train", test_fraction=0.34, seed=3)
    assert alone.layout == "class-folders" and alone.root == tmp_path / "only-train" / "train"
    assert [i.path.name for i in alone.split("test")] == [i.path.name for i in first.split("test")]


def test_cub_archive_layout_uses_its_split_file(tiny_birds, tmp_path):
    root = tmp_path / "CUB_200_2011"
    lines, labels, split, classes = [], [], [], []
    for class_id, class_dir in enumerate(sorted((tiny_birds / "train").iterdir()), 1):
        classes.append(f"{class_id} {class_dir.name}")
        for image in sorted(class_dir.iterdir()) + sorted((tiny_birds / "test" / class_dir.name).iterdir()):
            rel = f"{class_dir.name}/{image.name}"
            (root / "images" / class_dir.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, root / "images" / rel)
            image_id = len(lines) + 1
            lines.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {1 if image.parent.parent.name == 'train' else 0}")
    for name, rows in [
        ("images.txt", lines),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("classes.txt", classes),
    ]:
        (root / name).write_text("\n".join(rows) + "\n")
    assert detect_layout(tmp_path) == "cub-200-2011"  # the archive's outer folder works too
    data = load_labelled_folder(tmp_path)
    assert data.layout == "cub-200-2011" and len(data.split("train")) == 18 and len(data.split("test")) == 9


def test_stanford_dogs_layout_reads_its_mat_lists(tiny_birds, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    root = tmp_path / "dogs"
    train, test = [], []
    for class_dir in sorted((tiny_birds / "train").iterdir()):
        for split, bucket in (("train", train), ("test", test)):
            for image in sorted((tiny_birds / split / class_dir.name).iterdir()):
                rel = f"{class_dir.name}/{image.name}"
                (root / "Images" / class_dir.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(image, root / "Images" / rel)
                bucket.append(rel)
    (root / "lists").mkdir()
    for name, files in (("train_list.mat", train), ("test_list.mat", test)):
        cell = np.empty((len(files), 1), dtype=object)
        for i, rel in enumerate(files):
            cell[i, 0] = np.array([rel])
        scipy_io.savemat(root / "lists" / name, {"file_list": cell})
    data = load_labelled_folder(root)
    assert data.layout == "stanford-dogs" and len(data.classes) == 3
    assert len(data.split("train")) == 18 and len(data.split("test")) == 9


def test_unreadable_images_are_skipped_and_listed(tiny_birds, tmp_path):
    root = tmp_path / "birds"
    shutil.copytree(tiny_birds, root)
    some_class = sorted((root / "train").iterdir())[0]
    (some_class / "empty.jpg").write_bytes(b"")
    (some_class / "notes.jpg").write_text("not a photo")
    good = sorted(some_class.glob("*.jpg"))[0].read_bytes()
    (some_class / "cut.jpg").write_bytes(good[: len(good) // 3])
    data = load_labelled_folder(root)
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in data.skipped}
    assert set(reasons) == {"empty.jpg", "notes.jpg", "cut.jpg"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.jpg"] and "truncated" in reasons["cut.jpg"]
    assert data.class_counts("train")[some_class.name] == 6


def test_a_folder_without_labelled_photos_says_what_it_expected(tmp_path):
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(LayoutError, match="one sub-folder of photos per class"):
        load_labelled_folder(tmp_path)


def test_pk_batches_hold_p_classes_of_k_images_and_ranks_do_not_overlap():
    labels = np.repeat(np.arange(10), [2, 9, 9, 9, 9, 9, 9, 9, 9, 9])
    sampler = PKBatchSampler(labels, classes_per_batch=4, images_per_class=3, batches_per_epoch=6, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 6
    for batch in batches:
        counts = Counter(labels[batch])
        assert len(counts) == 4 and set(counts.values()) == {3}
    ranks = [list(PKBatchSampler(labels, 4, 3, 6, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    assert ranks[0] + ranks[1] != batches and sorted(map(tuple, ranks[0] + ranks[1])) == sorted(map(tuple, batches))
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_validation_split_is_stratified_and_keeps_a_positive_pair(tiny_birds):
    items = load_labelled_folder(tiny_birds, verify=False).split("train")
    fit, val = split_validation(items, 0.5, seed=0)
    assert sorted(fit + val) == list(range(len(items)))
    fit_counts = Counter(items[i].label for i in fit)
    assert min(fit_counts.values()) >= 2 and Counter(items[i].label for i in val) == {0: 3, 1: 3, 2: 3}
