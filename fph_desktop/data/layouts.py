"""Reading labelled photo collections in the layouts people actually have.

- ``split-folders``: ``root/train/<class>/*.jpg`` and ``root/test/<class>/*.jpg``
- ``class-folders``: ``root/<class>/*.jpg``, split here (seeded, stratified)
- ``cub-200-2011``: the archive layout (``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``)
- ``stanford-dogs``: ``Images/<breed>/*.jpg`` with ``lists/train_list.mat`` and ``lists/test_list.mat``

Unreadable images are skipped and listed with their reason, never fatal.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadFolderError
from ..imaging import ImageError, is_image_path, open_image
from ..progress import Progress, silent

LAYOUTS = ("split-folders", "class-folders", "cub-200-2011", "stanford-dogs")


class LayoutError(BadFolderError):
    """The folder holds no usable labelled collection; the message says what was expected."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int
    split: str  # "train" or "test"


@dataclass
class LabelledDataset:
    root: Path
    layout: str
    classes: list[str]
    items: list[LabelledImage]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def split(self, name: str) -> list[LabelledImage]:
        return [item for item in self.items if item.split == name]

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        counts = Counter(item.label for item in self.items if split is None or item.split == split)
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def describe(self) -> str:
        train, test = len(self.split("train")), len(self.split("test"))
        text = f"{self.root}: {self.layout} layout, {len(self.classes)} classes, {train} train / {test} test images"
        if self.skipped:
            text += f", {len(self.skipped)} unreadable skipped"
        return text


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def _class_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".") and _image_files(d))


def detect_layout(root: str | Path) -> str:
    """Name the layout of ``root`` (see module docstring) or raise :class:`LayoutError`."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    if all((root / name).is_file() for name in ("images.txt", "image_class_labels.txt", "train_test_split.txt")):
        return "cub-200-2011"
    if (root / "Images").is_dir() and (root / "lists" / "train_list.mat").is_file():
        return "stanford-dogs"
    if _class_dirs(root / "train") and _class_dirs(root / "test"):
        return "split-folders"
    if len(_class_dirs(root)) >= 1 or _class_dirs(root / "train"):  # a train/ without a test/: split it here
        return "class-folders"
    nested = root / "CUB_200_2011"
    if nested.is_dir():
        return detect_layout(nested)
    raise LayoutError(
        f"{root}: no labelled photos found; expected one sub-folder of photos per class "
        "(optionally under train/ and test/), or the CUB-200-2011 or Stanford Dogs layout"
    )


def load_labelled_folder(
    root: str | Path,
    test_fraction: float = 0.3,
    seed: int = 0,
    verify: bool = True,
    progress: Progress | None = None,
) -> LabelledDataset:
    """Read a labelled collection. ``verify`` decodes every image once (small, fast) so broken files
    are listed up front instead of failing mid-training."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "cub-200-2011" and not (root / "images.txt").is_file():
        root = root / "CUB_200_2011"
    if layout == "class-folders" and not _class_dirs(root):
        root = root / "train"
    reader = {
        "split-folders": _read_split_folders,
        "class-folders": lambda r: _read_class_folders(r, test_fraction, seed),
        "cub-200-2011": _read_cub,
        "stanford-dogs": _read_stanford_dogs,
    }[layout]
    classes, items = reader(root)
    dataset = LabelledDataset(root, layout, classes, items)
    if verify:
        _drop_unreadable(dataset, progress or silent())
    if not dataset.items:
        raise LayoutError(f"{root}: {layout} layout, but none of its images could be read")
    return dataset


def _read_split_folders(root: Path):
    names = sorted({d.name for d in _class_dirs(root / "train")} | {d.name for d in _class_dirs(root / "test")})
    index = {name: i for i, name in enumerate(names)}
    items = []
    for split in ("train", "test"):
        for class_dir in _class_dirs(root / split):
            items += [LabelledImage(p, index[class_dir.name], split) for p in _image_files(class_dir)]
    return names, items


def _read_class_folders(root: Path, test_fraction: float, seed: int):
    """Stratified split: each class keeps at least one training image."""
    names = [d.name for d in _class_dirs(root)]
    rng = random.Random(seed)
    items = []
    for label, name in enumerate(names):
        files = _image_files(root / name)
        rng.shuffle(files)
        n_test = min(len(files) - 1, round(len(files) * test_fraction))
        items += [LabelledImage(p, label, "test" if i < n_test else "train") for i, p in enumerate(files)]
    items.sort(key=lambda item: (item.label, str(item.path)))
    return names, items


def _read_table(path: Path) -> dict[str, str]:
    table = {}
    for line in path.read_text().splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            table[parts[0]] = parts[1].strip()
    return table


def _read_cub(root: Path):
    paths = _read_table(root / "images.txt")
    labels = _read_table(root / "image_class_labels.txt")
    is_train = _read_table(root / "train_test_split.txt")
    if (root / "classes.txt").is_file():
        class_table = _read_table(root / "classes.txt")
        names = [class_table[k] for k in sorted(class_table, key=int)]
    else:
        names = sorted({Path(p).parent.name for p in paths.values()})
        class_table = {str(i + 1): n for i, n in enumerate(names)}
    order = {name: i for i, name in enumerate(names)}
    items = []
    for image_id in sorted(paths, key=int):
        label = order[class_table[labels[image_id]]]
        split = "train" if is_train.get(image_id) == "1" else "test"
        items.append(LabelledImage(root / "images" / paths[image_id], label, split))
    return names, items


def _read_stanford_dogs(root: Path):
    try:
        from scipy.io import loadmat
    except ImportError:
        raise LayoutError(f"{root}: reading Stanford Dogs' .mat lists needs scipy (pip install scipy)") from None

    def read(list_name: str) -> list[str]:
        mat = loadmat(str(root / "lists" / list_name))
        return [str(entry[0][0]) for entry in mat["file_list"]]

    split_of = {rel: "train" for rel in read("train_list.mat")}
    if (root / "lists" / "test_list.mat").is_file():
        split_of.update({rel: "test" for rel in read("test_list.mat")})
    names = sorted({rel.split("/")[0] for rel in split_of})
    index = {name: i for i, name in enumerate(names)}
    items = [LabelledImage(root / "Images" / rel, index[rel.split("/")[0]], split) for rel, split in sorted(split_of.items())]
    return names, items


def _drop_unreadable(dataset: LabelledDataset, progress: Progress) -> None:
    progress.set_status(f"Checking {len(dataset.items)} images")
    keep = []
    for done, item in enumerate(dataset.items, 1):
        try:
            open_image(item.path, min_side=64)  # JPEG draft: a cheap full decode
            keep.append(item)
        except ImageError as exc:
            dataset.skipped.append((str(item.path), exc.reason))
        progress.set_progress(done, len(dataset.items))
        progress.check()
    dataset.items = keep


def split_validation(items: list[LabelledImage], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Carve a stratified validation set out of training items: returns (train indices, val indices).
    Each class keeps at least two training images (a positive pair for the ranking loss)."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_class[item.label].append(i)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        members = by_class[label][:]
        rng.shuffle(members)
        n_val = min(max(len(members) - 2, 0), round(len(members) * fraction))
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)
