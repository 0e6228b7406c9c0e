"""Evaluating a hashing model by the fixed protocol: query = test split, database = train split,
relevant = same class, ranking by Hamming distance with ties in database order (see metrics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.layouts import LabelledDataset
from ..data.photos import PhotoDataset
from ..errors import BadFolderError
from ..model.encoder import pack_codes
from ..model.preprocessing import Preprocessing
from ..progress import Progress, silent
from .metrics import evaluate_codes


@torch.inference_mode()
def encode_paths(
    model: nn.Module,
    preprocessing: Preprocessing,
    paths: Sequence[str | Path],
    device: torch.device,
    batch_size: int = 64,
    workers: int = 2,
    progress: Progress | None = None,
    encode: Callable[[torch.Tensor], np.ndarray] | None = None,
) -> np.ndarray:
    """tanh outputs (N, q) float32 of photos, decoded in ``workers`` processes beside the network.
    ``encode`` (pixels -> u), when given, runs the batches instead of ``model`` (an encoder's engine)."""
    progress = progress or silent()
    was_training = model.training
    model.eval()
    loader = DataLoader(PhotoDataset(paths, None, preprocessing), batch_size=batch_size, num_workers=workers)
    outputs, done = [], 0
    for pixels, _, _ in loader:
        if encode is not None:
            outputs.append(torch.from_numpy(np.asarray(encode(pixels), dtype=np.float32)))
            done += len(pixels)
            progress.set_progress(done, len(paths))
            progress.check()
            continue
        if device.type == "cuda":
            pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        outputs.append(model(pixels.to(device)).u.float().cpu())
        done += len(pixels)
        progress.set_progress(done, len(paths))
        progress.check()
    model.train(was_training)
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, model.config.code_bits), np.float32)


def metrics_for_codes(query_u: np.ndarray, query_labels, db_u: np.ndarray, db_labels, ks=(10, 100)) -> dict:
    """The protocol's metrics for real-valued outputs, binarised by the one packing rule."""
    bits = query_u.shape[1]
    return evaluate_codes(
        pack_codes(query_u), np.asarray(query_labels), pack_codes(db_u), np.asarray(db_labels), ks=ks, code_bits=bits
    )


def evaluate_model(
    model: nn.Module,
    preprocessing: Preprocessing,
    dataset: LabelledDataset,
    device: torch.device,
    ks=(10, 100),
    batch_size: int = 64,
    workers: int = 2,
    progress: Progress | None = None,
    encode: Callable[[torch.Tensor], np.ndarray] | None = None,
) -> dict:
    progress = progress or silent()
    queries, database = dataset.split("test"), dataset.split("train")
    if not queries or not database:
        raise BadFolderError(
            "evaluation needs both test and train photos",
            dataset.root,
            "give a folder with a test split, or class folders (30 % become test photos)",
        )
    progress.set_status(f"Encoding {len(database)} database images")
    db_u = encode_paths(model, preprocessing, [i.path for i in database], device, batch_size, workers, progress, encode)
    progress.set_status(f"Encoding {len(queries)} query images")
    query_u = encode_paths(model, preprocessing, [i.path for i in queries], device, batch_size, workers, progress, encode)
    results = metrics_for_codes(query_u, [i.label for i in queries], db_u, [i.label for i in database], ks)
    results.update({"queries": len(queries), "database": len(database), "code_bits": int(query_u.shape[1])})
    return results


def format_table(results: dict) -> str:
    """A small plain-text table of the scalar metrics (the PR curve goes to JSON only)."""
    rows = [(k, v) for k, v in results.items() if isinstance(v, (int, float))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows)
