"""The training wizard's jobs: thin, Qt-free calls into the core, run on the worker layer like the
main window's (each takes a :class:`~fph_desktop.progress.Progress` first and returns plain data)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..progress import Progress

FEW_IMAGES = 10  # below this many training photos a class still trains, but poorly: warn


@dataclass
class DataSummary:
    folder: str
    dataset: object | None  # data.layouts.LabelledDataset when readable
    layout: str = ""
    counts: list[tuple[str, int, int]] = field(default_factory=list)  # class, train, test
    skipped: list[tuple[str, str]] = field(default_factory=list)  # path, reason
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # why this folder cannot be trained on; empty when it can

    @property
    def trainable(self) -> bool:
        return self.dataset is not None and not self.error

    @property
    def train_images(self) -> int:
        return sum(c[1] for c in self.counts)

    @property
    def test_images(self) -> int:
        return sum(c[2] for c in self.counts)


def inspect_data(progress: Progress, folder: str, test_fraction: float = 0.3, seed: int = 0) -> DataSummary:
    """Detect the layout, count photos per class, decode each once to list the unreadable ones, and
    say whether training can start (the trainer's own check, so the two never disagree)."""
    from ..data.layouts import LayoutError, load_labelled_folder
    from ..train.trainer import TrainingError, check_trainable

    progress.set_status(f"Reading {folder}")
    try:
        dataset = load_labelled_folder(folder, test_fraction, seed, progress=progress)
    except (LayoutError, OSError) as exc:
        return DataSummary(folder, None, error=str(exc))
    train, test = dataset.class_counts("train"), dataset.class_counts("test")
    summary = DataSummary(
        folder, dataset, dataset.layout, [(name, train[name], test[name]) for name in dataset.classes], list(dataset.skipped)
    )
    try:
        check_trainable(dataset)
    except TrainingError as exc:
        summary.error = str(exc).removeprefix(f"{dataset.root}: ")
    few = [f"{name} ({n})" for name, n, _ in summary.counts if 0 < n < FEW_IMAGES]
    if few:
        summary.warnings.append(
            f"{len(few)} class{'es have' if len(few) > 1 else ' has'} fewer than {FEW_IMAGES} training photos: "
            f"{', '.join(few[:6])}{', …' if len(few) > 6 else ''}. Training works, but codes for them will be less sure."
        )
    if not summary.test_images:
        summary.warnings.append("No test photos: the finished run cannot report its test mAP.")
    return summary


@dataclass(frozen=True)
class DeviceChoice:
    id: str  # what TrainConfig.device takes
    label: str
    gpu: bool


def list_devices(progress: Progress) -> list[DeviceChoice]:
    """The GPUs by name (CUDA, Apple MPS), then the CPU; the first is the automatic choice."""
    progress.set_status("Looking for a GPU…")
    import torch

    choices = [
        DeviceChoice(f"cuda:{i}", f"GPU {i}: {torch.cuda.get_device_name(i)}", True) for i in range(torch.cuda.device_count())
    ]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        choices.append(DeviceChoice("mps", "Apple GPU (MPS)", True))
    choices.append(DeviceChoice("cpu", f"CPU ({os.cpu_count() or 1} cores)", False))
    return choices


def backbone_notes(progress: Progress) -> dict[str, str | None]:
    """Per backbone, None when its pretrained weights are at hand offline, else why not."""
    from ..model.backbones import BACKBONES, weights_note

    return {name: weights_note(name) for name in BACKBONES}


def estimate(progress: Progress, config, train_images: int, test_images: int, classes: int, sample_photos=()):
    from ..train.estimate import estimate_training

    progress.set_status("Timing a few training steps…")
    return estimate_training(config, train_images, test_images, classes, sample_photos)


def default_weights_path(config) -> Path:
    """A new file in the app's models folder, named after the data and the model; never an existing one."""
    from .. import paths

    stem = f"{paths.file_stem(Path(config.data).name, 'data')}-{config.model.backbone}-{config.model.code_bits}bit"
    folder = paths.data_dir() / "models"
    candidate, n = folder / f"{stem}.fph", 2
    while candidate.exists():
        candidate, n = folder / f"{stem}-{n}.fph", n + 1
    return candidate


def interrupted_runs(progress: Progress) -> list:
    """Runs an earlier session left unfinished (read here, not in the GUI thread: it imports torch)."""
    from ..train.runs import interrupted_runs as find

    return find()


def train_model(progress: Progress, config, output: str, run_dir: str, resume: bool, dataset=None):
    """Train into ``run_dir`` (continuing its last finished epoch when ``resume``); returns the
    TrainResult. A finished run's checkpoints are deleted: the model is saved, they are not needed."""
    from ..train.runs import discard_run
    from ..train.trainer import train

    result = train(config, output, run_dir, progress, resume=resume, dataset=dataset)
    try:
        discard_run(run_dir)
    except OSError:
        pass  # a leftover checkpoint folder is not worth failing a run whose model is saved
    return result
