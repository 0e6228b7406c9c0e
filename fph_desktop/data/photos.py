"""Photos as tensors for torch ``DataLoader``s: test-time centre crop, or the training augmentation
of the reading (resize the shorter side, random crop, horizontal flip)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from ..imaging import ImageError, open_image
from ..model.preprocessing import Preprocessing, pil_to_uint8_tensor


class PhotoDataset(Dataset):
    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int] | None,
        preprocessing: Preprocessing,
        augment: bool = False,
        skip_unreadable: bool = False,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.labels = list(labels) if labels is not None else [-1] * len(self.paths)
        self.preprocessing = preprocessing
        self.augment = augment
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        """``(pixels, label, index)``; ``None`` for an unreadable photo when ``skip_unreadable``
        (use :func:`collate_readable`), else the :class:`ImageError` propagates."""
        try:
            image = open_image(self.paths[index], min_side=self.preprocessing.resize)
        except ImageError:
            if self.skip_unreadable:
                return None
            raise
        image = self._augment(image) if self.augment else self.preprocessing.resize_and_crop(image)
        return self.preprocessing.normalize(pil_to_uint8_tensor(image)), self.labels[index], index

    def _augment(self, image: Image.Image) -> Image.Image:
        pre = self.preprocessing
        width, height = image.size
        scale = pre.resize / min(width, height)
        image = image.resize(
            (max(pre.crop, round(width * scale)), max(pre.crop, round(height * scale))), Image.Resampling.BILINEAR
        )
        left = int(torch.randint(0, image.width - pre.crop + 1, ()).item())
        top = int(torch.randint(0, image.height - pre.crop + 1, ()).item())
        image = image.crop((left, top, left + pre.crop, top + pre.crop))
        if torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


def random_resized_view(
    image: Image.Image, preprocessing: Preprocessing, rng, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)
) -> Image.Image:
    """A random crop of ``scale`` of the photo's area and ``ratio`` aspect, resized to the crop
    size, mirrored half the time: the training views the fast mode caches. ``rng`` is a
    ``random.Random``, so a view is reproducible from its seed (an interrupted cache build resumes
    with the same views)."""
    import math

    image = image.convert("RGB")
    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            break
    else:  # an extreme panorama: the centred square
        w = h = min(width, height)
        left, top = (width - w) // 2, (height - h) // 2
    crop = preprocessing.crop
    view = image.resize((crop, crop), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h), reducing_gap=None)
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view


class PhotoViewDataset(Dataset):
    """``(photo index, view)`` rows: view 0 is the test-time centre crop, view k > 0 a
    :func:`random_resized_view` seeded by ``(seed, photo index, k)``."""

    def __init__(
        self, paths: Sequence[str | Path], rows: Sequence[tuple[int, int]], preprocessing: Preprocessing, seed: int = 0
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.rows = list(rows)
        self.preprocessing = preprocessing
        self.seed = seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        import random

        photo, view = self.rows[index]
        image = open_image(self.paths[photo], min_side=self.preprocessing.resize)
        if view == 0:
            image = self.preprocessing.resize_and_crop(image)
        else:
            image = random_resized_view(image, self.preprocessing, random.Random(f"{self.seed}:{photo}:{view}"))
        return self.preprocessing.normalize(pil_to_uint8_tensor(image))


def collate_readable(samples):
    """Batch the samples that decoded; an all-unreadable batch becomes ``None``."""
    samples = [s for s in samples if s is not None]
    return default_collate(samples) if samples else None
