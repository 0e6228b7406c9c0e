"""How pixels become a backbone's input. Each backbone carries one of these, so no caller can feed
ImageNet-normalised pixels to a TF-normalised network or the other way round."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, centre-crop ``crop`` (test time), then normalise.

    Normalisation is ``(pixel * scale - mean) / std`` per channel, with pixels as floats in 0..1.
    ImageNet style: scale 1, mean/std the ImageNet statistics. TF style (EfficientNet-Lite):
    scale 255, mean 127, std 128, i.e. ``(x - 127) / 128`` on 0..255 pixels.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0
    resize: int = 256
    crop: int = 224

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            name=data["name"],
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            scale=float(data["scale"]),
            resize=int(data["resize"]),
            crop=int(data["crop"]),
        )

    def with_size(self, crop: int) -> Preprocessing:
        """The same normalisation at another input size (resize keeps the 256/224 ratio)."""
        return Preprocessing(self.name, self.mean, self.std, self.scale, round(crop * 256 / 224), crop)

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The centre-crop window in the original image's pixel coordinates (left, top, right, bottom)."""
        shorter = min(width, height)
        side = shorter * self.crop / self.resize
        left = (width - side) / 2
        top = (height - side) / 2
        return (left, top, left + side, top + side)

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """Test-time geometry: one resample straight from the crop window to ``crop`` x ``crop``."""
        image = image.convert("RGB")
        box = self.crop_box(*image.size)
        return image.resize((self.crop, self.crop), Image.Resampling.BILINEAR, box=box, reducing_gap=None)

    def to_array(self, image: Image.Image) -> np.ndarray:
        """A PIL image of any size and mode to normalised float32 pixels (3, crop, crop), in numpy:
        the one rule both engines are fed by, and what searching uses without PyTorch."""
        pixels = np.asarray(self.resize_and_crop(image), dtype=np.uint8).transpose(2, 0, 1)
        return self.normalize_array(pixels)

    def normalize_array(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (..., 3, H, W) pixels to the backbone's input range, float32, in numpy."""
        shape = (3, 1, 1)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        scaled = pixels.astype(np.float32) / np.float32(255.0) * np.float32(self.scale)
        return np.ascontiguousarray((scaled - mean) / std)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """The same as :meth:`to_array`, as a tensor (3, crop, crop)."""
        import torch

        return torch.from_numpy(self.to_array(image))

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, H, W) or float 0..1 pixels to the backbone's input range (training's
        augmented batches, on any device)."""
        import torch

        if pixels.dtype == torch.uint8:
            pixels = pixels.float().div_(255.0)
        shape = (3, 1, 1)
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(shape)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(shape)
        return (pixels * self.scale - mean) / std


def pil_to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


IMAGENET = Preprocessing("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.0)
TF_LITE = Preprocessing("tf", (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), 255.0)
