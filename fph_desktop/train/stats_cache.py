"""The fast CPU mode's cache: for every photo view, the pooled statistics a pooled-first FPH needs
(:func:`~fph_desktop.model.fph.pooled_statistics`: stage means and the horizontal levels' cells), a
few KB each instead of the full stage maps.

Training photos get several views (the centre crop and random resized crops, mirrored at random),
every other photo the centre crop alone: augmentation a frozen backbone can afford, since each view
costs one backbone pass once and nothing per step. The cache is keyed by the backbone's tensors, the
preprocessing, the statistics' spec, the views and the files (path, size, mtime); a build that was
interrupted resumes where it stopped. Stored as fp16 memory-mapped arrays, read whole into memory to
train (a few hundred MB for CUB-200's 6,000 photos at 6 views).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.photos import PhotoViewDataset
from ..fileio import atomic_write
from ..model.backbones import Backbone
from ..model.config import FPHConfig
from ..model.fph import pooled_statistics, statistics_spec
from ..model.preprocessing import Preprocessing
from ..progress import Progress, silent

CACHE_VERSION = 1  # bump when the views or the statistics change meaning


def _cache_key(
    backbone: Backbone, preprocessing: Preprocessing, spec: dict, paths: Sequence[Path], views: Sequence[int], seed: int
) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_VERSION, backbone.name, preprocessing.to_dict(), spec, list(views), seed]).encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class ViewStatsCache:
    """Rows ``offsets[i] .. offsets[i] + views[i] - 1`` hold photo ``i``'s views, view 0 first."""

    def __init__(self, directory: Path, shapes: dict[str, tuple[int, ...]], views: Sequence[int]) -> None:
        self.directory = directory
        self.views = np.asarray(views, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.views)[:-1]]).astype(np.int64)
        rows = int(self.views.sum())
        self.tensors = {
            key: torch.from_numpy(
                np.array(np.memmap(directory / f"{_file_name(key)}.f16", dtype=np.float16, mode="r", shape=(rows, *shape)))
            )
            for key, shape in shapes.items()
        }

    @property
    def photos(self) -> int:
        return len(self.views)

    @classmethod
    def build(
        cls,
        backbone: Backbone,
        preprocessing: Preprocessing,
        config: FPHConfig,
        paths: Sequence[str | Path],
        views: Sequence[int],
        cache_root: Path,
        device: torch.device,
        progress: Progress | None = None,
        batch_size: int = 32,
        workers: int = 2,
        seed: int = 0,
    ) -> ViewStatsCache:
        progress = progress or silent()
        paths = [Path(p) for p in paths]
        spec = statistics_spec(config)
        directory = cache_root / _cache_key(backbone, preprocessing, spec, paths, views, seed)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        rows = [(photo, view) for photo, count in enumerate(views) for view in range(count)]
        backbone = backbone.eval().to(device)
        channels_last = device.type in ("cpu", "cuda")  # oneDNN / cuDNN are faster this way
        if channels_last:
            backbone = backbone.to(memory_format=torch.channels_last)
        if meta is None:
            with torch.inference_mode():
                probe = pooled_statistics(
                    config, backbone(torch.zeros(1, 3, preprocessing.crop, preprocessing.crop, device=device))
                )
            meta = {"rows": len(rows), "done": 0, "shapes": {k: list(v.shape[1:]) for k, v in probe.items()}}
            for key, shape in meta["shapes"].items():
                np.memmap(directory / f"{_file_name(key)}.f16", dtype=np.float16, mode="w+", shape=(len(rows), *shape)).flush()
            _write_json(meta_path, meta)
        shapes = {k: tuple(v) for k, v in meta["shapes"].items()}
        done = meta["done"]
        if done < len(rows):
            progress.set_status(f"Computing backbone features of {len(rows) - done} photo views (once; cached)")
            arrays = {
                k: np.memmap(directory / f"{_file_name(k)}.f16", dtype=np.float16, mode="r+", shape=(len(rows), *shape))
                for k, shape in shapes.items()
            }
            loader = DataLoader(
                PhotoViewDataset(paths, rows[done:], preprocessing, seed), batch_size=batch_size, num_workers=workers
            )
            graph = (
                _statistics_graph(backbone, config, list(shapes), preprocessing.crop, directory) if device.type == "cpu" else None
            )
            with torch.inference_mode():
                for pixels in loader:
                    if graph is not None:
                        stats = dict(zip(graph.keys, graph.run(pixels.numpy()), strict=True))
                    else:
                        pixels = pixels.to(device)
                        if channels_last:
                            pixels = pixels.contiguous(memory_format=torch.channels_last)
                        stats = {k: v.cpu().numpy() for k, v in pooled_statistics(config, backbone(pixels)).items()}
                    for key, array in arrays.items():
                        array[done : done + len(pixels)] = stats[key].astype(np.float16)
                    done += len(pixels)
                    for array in arrays.values():
                        array.flush()
                    meta["done"] = done
                    _write_json(meta_path, meta)
                    progress.set_progress(done, len(rows))
                    progress.check()
        return cls(directory, shapes, views)

    def rows_of(
        self, photos: Sequence[int], view: str | np.ndarray = "centre", rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Row indices of ``photos``: their centre crops, or (``view="random"``) one of each
        photo's views drawn uniformly with ``rng``."""
        photos = np.asarray(photos, dtype=np.int64)
        if view == "centre":
            return self.offsets[photos]
        draw = (rng or np.random.default_rng()).random(len(photos))
        return self.offsets[photos] + np.floor(draw * self.views[photos]).astype(np.int64)

    def batch(self, rows: np.ndarray, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(rows)
        return {key: tensor[index].to(device or "cpu", torch.float32) for key, tensor in self.tensors.items()}


def _statistics_graph(backbone: Backbone, config: FPHConfig, keys: list[str], image_size: int, directory: Path):
    """On the CPU the feature pass runs on ONNX Runtime (about 1.7x eager PyTorch, benchmarks/engines.py)
    when it is installed and the exported graph agrees with PyTorch; else ``None``: PyTorch runs it."""
    from ..model.graph import onnxruntime_version

    if onnxruntime_version() is None:
        return None
    from ..model.onnx_engine import StatisticsGraph

    try:
        return StatisticsGraph(backbone, config, keys, image_size, directory / "statistics.onnx")
    except Exception:  # noqa: BLE001 - an export can fail in many ways; PyTorch, the reference, still runs
        return None


def _file_name(key: str) -> str:
    return key.replace(":", "-")


def _write_json(path: Path, data: dict) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(data).encode())
