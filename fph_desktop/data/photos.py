"""Photos as tensors for torch ``DataLoader``s: test-time centre crop, or the training augmentation
of the reading (resize the shorter side, random crop, horizontal flip)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from torch.utils.data import default_collate

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
        image = image.resize((max(pre.crop, round(width * scale)), max(pre.crop, round(height * scale))), Image.Resampling.BILINEAR)
        left = int(torch.randint(0, image.width - pre.crop + 1, ()).item())
        top = int(torch.randint(0, image.height - pre.crop + 1, ()).item())
        image = image.crop((left, top, left + pre.crop, top + pre.crop))
        if torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


def collate_readable(samples):
    """Batch the samples that decoded; an all-unreadable batch becomes ``None``."""
    samples = [s for s in samples if s is not None]
    return default_collate(samples) if samples else None
