"""The fast CPU mode's cache: a frozen backbone's stage maps of every image, computed once, stored as
fp16 memory-mapped arrays on disk, so training touches only the pyramids and heads.

A cache is keyed by the backbone's tensors, the preprocessing and the image files (path, size,
mtime); a build that was interrupted resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.photos import PhotoDataset
from ..fileio import atomic_write
from ..model.backbones import Backbone
from ..model.preprocessing import Preprocessing
from ..progress import Progress, silent


def _cache_key(backbone: Backbone, preprocessing: Preprocessing, stages: Sequence[str], paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([backbone.name, preprocessing.to_dict(), list(stages)]).encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class StageCache:
    def __init__(self, directory: Path, shapes: dict[str, tuple[int, ...]], count: int) -> None:
        self.directory = directory
        self.count = count
        self.shapes = shapes
        self.arrays = {
            stage: np.memmap(directory / f"{stage}.f16", dtype=np.float16, mode="r", shape=(count, *shape))
            for stage, shape in shapes.items()
        }

    @classmethod
    def build(
        cls,
        backbone: Backbone,
        preprocessing: Preprocessing,
        paths: Sequence[str | Path],
        stages: Sequence[str],
        cache_root: Path,
        device: torch.device,
        progress: Progress | None = None,
        batch_size: int = 32,
        workers: int = 2,
    ) -> "StageCache":
        progress = progress or silent()
        paths = [Path(p) for p in paths]
        directory = cache_root / _cache_key(backbone, preprocessing, stages, paths)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        backbone = backbone.eval().to(device)
        if meta is None:
            with torch.inference_mode():
                probe = backbone(torch.zeros(1, 3, preprocessing.crop, preprocessing.crop, device=device))
            meta = {"count": len(paths), "done": 0, "shapes": {s: list(probe[s].shape[1:]) for s in stages}}
            for stage in stages:
                np.memmap(directory / f"{stage}.f16", dtype=np.float16, mode="w+", shape=(len(paths), *meta["shapes"][stage])).flush()
            _write_json(meta_path, meta)
        shapes = {s: tuple(v) for s, v in meta["shapes"].items()}
        done = meta["done"]
        if done < len(paths):
            progress.set_status(f"Computing backbone features of {len(paths) - done} images (once; cached)")
            arrays = {s: np.memmap(directory / f"{s}.f16", dtype=np.float16, mode="r+", shape=(len(paths), *shapes[s])) for s in stages}
            loader = DataLoader(
                PhotoDataset(paths[done:], None, preprocessing), batch_size=batch_size, num_workers=workers
            )
            with torch.inference_mode():
                for pixels, _, _ in loader:
                    out = backbone(pixels.to(device))
                    for stage in stages:
                        arrays[stage][done : done + len(pixels)] = out[stage].half().cpu().numpy()
                    done += len(pixels)
                    for array in arrays.values():
                        array.flush()
                    meta["done"] = done
                    _write_json(meta_path, meta)
                    progress.set_progress(done, len(paths))
                    progress.check()
        return cls(directory, shapes, len(paths))

    def batch(self, indices: Sequence[int], flip: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Stage maps of ``indices`` as float32; rows where ``flip`` is set are mirrored left-right
        (a feature-space horizontal flip: the augmentation the cache can still afford)."""
        order = np.asarray(indices)
        out = {}
        for stage, array in self.arrays.items():
            maps = torch.from_numpy(np.ascontiguousarray(array[order])).float()
            if flip is not None and flip.any():
                maps[flip] = maps[flip].flip(-1)
            out[stage] = maps
        return out


def _write_json(path: Path, data: dict) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(data).encode())
