"""How long a training run will take here, measured rather than guessed: a few timed steps of the
same model on this device, scaled by the run's image and step counts. Random weights, since timing
does not depend on them and a missing ImageNet download must not stop an estimate."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..device import describe_device, select_device
from ..model import build_model
from ..model.backbones import STAGES
from ..model.fph import pooled_statistics
from ..model.weights import model_preprocessing
from .config import TrainConfig
from .losses import HashLoss


@dataclass
class Estimate:
    mode: str
    device: str
    epochs: int
    steps_per_epoch: int
    features_seconds: float  # fast mode: the one-off decode and backbone pass over every photo view (assumes no cache yet)
    epoch_seconds: float  # training steps and the validation pass of one epoch
    test_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.features_seconds + self.epochs * self.epoch_seconds + self.test_seconds

    def describe(self) -> str:
        text = f"about {format_duration(self.total_seconds)} on {self.device}"
        epochs = f"{self.epochs} epochs in {format_duration(self.epochs * self.epoch_seconds)}"
        if self.mode == "fast":
            text += f": {format_duration(self.features_seconds)} for the backbone's features (once), then {epochs}"
        else:
            text += f": {epochs}"
        return text


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _synchronizer(device: torch.device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def _timed(fn, sync=lambda: None, repeats: int = 2) -> float:
    fn()  # warm-up: allocations, kernel selection
    sync()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - started) / repeats


def estimate_training(
    config: TrainConfig,
    train_images: int,
    test_images: int,
    classes: int | None = None,
    sample_photos: Sequence[str | Path] = (),
    probe_batch: int = 8,
) -> Estimate:
    """The backbone is timed on ``probe_batch`` images; the heads' training step and encoding on the
    run's own batch size (the pooled statistics repeated), since small batches are slower per image; and
    decoding on ``sample_photos`` (a few of the run's own photos), since large JPEGs can cost more
    than the network on a CPU. Not timed: mixed precision (full mode on a GPU is a bit faster than
    this says) and the fp16 feature cache's reads."""
    device = select_device(config.device)
    sync = _synchronizer(device)
    mode = config.resolve_mode(device.type)
    epochs = config.epochs_for(mode)
    fit_images = max(1, round(train_images * (1 - config.val_fraction)))
    batch = min(config.classes_per_batch_for(mode), classes or config.classes_per_batch_for(mode)) * config.images_per_class
    steps = config.steps_per_epoch_for(mode, fit_images, classes or config.classes_per_batch_for(mode)) or max(
        1, fit_images // batch
    )

    torch.manual_seed(0)
    model = build_model(config.model, backbone_weights=None).to(device)
    loss_fn = HashLoss(config.loss, config.model.code_bits, 2, config.quant_weight, config.aux_weight).to(device)
    size = config.model.image_size
    images = torch.randn(probe_batch, 3, size, size, device=device)
    repeat = max(1, -(-batch // probe_batch))
    labels = (torch.arange(batch, device=device) % 2) if mode == "fast" else torch.arange(probe_batch, device=device) % 2

    model.eval()
    with torch.no_grad():  # not inference_mode: the statistics are reused in the timed training step
        per_image_backbone = _timed(lambda: model.backbone(images), sync) / probe_batch
        stages = {k: v for k, v in model.backbone(images).items() if k in STAGES}
        stats = {k: v.repeat(repeat, *[1] * (v.dim() - 1))[:batch] for k, v in pooled_statistics(config.model, stages).items()}
        per_image_heads = _timed(lambda: model(stats), sync) / batch

    def step() -> None:
        model.zero_grad(set_to_none=True)
        out = model(stats) if mode == "fast" else model(images)
        loss, _ = loss_fn(out, labels)
        loss.backward()

    model.train()
    if mode == "fast":
        model.backbone.eval()
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    per_step = _timed(step, sync) * (1 if mode == "fast" else batch / probe_batch)
    decode = _decode_seconds(sample_photos, model_preprocessing(model))
    # Decoding runs in DataLoader workers: beside the network on a GPU, on the same cores on a CPU.
    overlap = (lambda net: max(net, decode / max(1, config.workers))) if device.type != "cpu" else (lambda net: net + decode)

    encode = per_image_heads if mode == "fast" else overlap(per_image_backbone + per_image_heads)
    views = fit_images * config.views + (train_images - fit_images) + test_images
    return Estimate(
        mode=mode,
        device=describe_device(device),
        epochs=epochs,
        steps_per_epoch=steps,
        features_seconds=views * overlap(per_image_backbone) if mode == "fast" else 0.0,
        epoch_seconds=steps * (per_step if mode == "fast" else overlap(per_step / batch) * batch) + train_images * encode,
        test_seconds=(train_images + test_images) * encode,
    )


def _decode_seconds(photos: Sequence[str | Path], preprocessing) -> float:
    """Mean time to decode and prepare one photo, as the data loader does; 0 without samples."""
    from ..data.photos import PhotoDataset
    from ..imaging import ImageError

    dataset = PhotoDataset([Path(p) for p in photos], None, preprocessing)
    times = []
    for index in range(len(dataset)):
        started = time.perf_counter()
        try:
            dataset[index]
        except ImageError:
            continue
        times.append(time.perf_counter() - started)
    return sum(times) / len(times) if times else 0.0
