"""The unsupervised start: a pretrained backbone plus ITQ fitted on the photos being indexed, for
people with no labels. It yields a model and weights file like any trained FPH."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.photos import PhotoDataset, collate_readable
from ..errors import BadFolderError
from ..model import FPHConfig, ITQHash, build_model, fit_itq
from ..model.itq import itq_descriptor
from ..model.weights import model_preprocessing
from ..progress import Progress, silent


@torch.inference_mode()
def pooled_features(
    model: ITQHash,
    paths: Sequence[str | Path],
    device: torch.device,
    batch_size: int = 32,
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[int]]:
    """ITQ descriptors (pooled, normalised C5) of the photos that decode, and their positions in ``paths``."""
    progress = progress or silent()
    backbone = model.backbone.eval().to(device)
    dataset = PhotoDataset(paths, None, model_preprocessing(model), skip_unreadable=True)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_readable)
    features, used, done = [], [], 0
    for batch in loader:
        done += batch_size
        progress.set_progress(min(done, len(paths)), len(paths))
        progress.check()
        if batch is None:
            continue
        pixels, _, indices = batch
        features.append(itq_descriptor(backbone(pixels.to(device))["C5"]).cpu())
        used += indices.tolist()
    dim = model.backbone.channels["C5"]
    return (torch.cat(features).numpy() if features else np.zeros((0, dim), np.float32)), used


def fit_itq_model(
    paths: Sequence[str | Path],
    backbone: str = "efficientnet_lite0",
    code_bits: int = 48,
    backbone_weights: str | Path | None = "imagenet",
    device: torch.device | None = None,
    seed: int = 0,
    max_images: int = 5000,
    progress: Progress | None = None,
) -> ITQHash:
    """Fit ITQ on (a seeded sample of at most ``max_images`` of) ``paths``. Unreadable photos are
    left out of the fit; reporting them is the index's business."""
    progress = progress or silent()
    device = device or torch.device("cpu")
    paths = [Path(p) for p in paths]
    if len(paths) > max_images:
        rng = np.random.default_rng(seed)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), max_images, replace=False))]
    model = build_model(FPHConfig(method="itq", backbone=backbone, code_bits=code_bits), backbone_weights)
    progress.set_status(f"Fitting unsupervised {code_bits}-bit codes on {len(paths)} photos")
    features, used = pooled_features(model, paths, device, progress=progress)
    if len(used) <= code_bits:
        raise BadFolderError(
            f"unsupervised {code_bits}-bit codes need more than {code_bits} readable photos to fit on; found {len(used)}",
            hint="choose fewer bits or a folder with more photos",
        )
    mean, projection, scale = fit_itq(features, code_bits, seed=seed)
    model.set_fit(mean, projection, scale)
    model.config.extra = {"itq_fit_images": len(used), "itq_seed": seed}
    return model.eval()
