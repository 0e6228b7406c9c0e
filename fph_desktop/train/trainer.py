"""Training FPH: fast CPU mode (frozen backbone, cached stage maps) or full fine-tuning (GPU, mixed
precision, channels_last, DistributedDataParallel under torchrun). Checkpoints every epoch, resumes
after a crash or a cancel, and keeps the checkpoint that scores best on a validation split carved
out of train: the test split is touched once, at the end, to report."""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .. import paths
from ..data.layouts import LabelledDataset, load_labelled_folder, split_validation
from ..data.photos import PhotoDataset
from ..data.sampler import PKBatchSampler
from ..device import describe_device, select_device
from ..fileio import atomic_write
from ..evaluation.evaluate import encode_paths, metrics_for_codes
from ..evaluation.metrics import hamming_distance_matrix, mean_average_precision
from ..model import build_model
from ..model.backbones import STAGES
from ..model.encoder import pack_codes
from ..model.weights import WeightsInfo, model_preprocessing, save_weights
from ..progress import Progress, silent
from .config import TrainConfig
from .feature_cache import StageCache
from .losses import HashLoss
from .runs import RUN_FILE, read_record, runs_dir, write_record

CHECKPOINT_FORMAT = "fph-desktop-checkpoint"


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says what to do next."""


@dataclass
class TrainResult:
    weights_path: Path
    info: WeightsInfo
    history: list[dict]
    test_metrics: dict
    resumed_from_epoch: int = 0
    run_dir: Path = field(default_factory=Path)


def default_run_dir(config: TrainConfig) -> Path:
    """Same config, same folder: that is what makes "resume" find an interrupted run."""
    key = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    return runs_dir() / f"{Path(config.data).name or 'data'}-{key}"


def check_trainable(dataset: LabelledDataset) -> None:
    counts = dataset.class_counts("train")
    populated = [name for name, n in counts.items() if n > 0]
    if not populated:
        raise TrainingError(f"{dataset.root}: no training images found")
    if len(populated) < 2:
        raise TrainingError(
            f"{dataset.root}: only one class ({populated[0]}); training needs photos of at least two classes, one sub-folder each"
        )
    thin = [f"{name} ({n})" for name, n in counts.items() if 0 < n < 2]
    if thin:
        raise TrainingError(
            f"{dataset.root}: too few training images in {', '.join(thin[:5])}; each class needs at least 2 (10 or more work better)"
        )


class _Distributed:
    """torchrun's environment, if any: rank, world size, and the process group."""

    def __init__(self, device_pref: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            if torch.cuda.is_available() and device_pref in ("auto", "cuda"):
                torch.cuda.set_device(self.local_rank)
                self.device = torch.device("cuda", self.local_rank)
                backend = "nccl"
            else:
                self.device = torch.device("cpu")
                backend = "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend=backend)
        else:
            self.device = select_device(device_pref)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def _disk_errors(what: str):
    """A checkpoint or the run record that cannot be written ends the run with the next step named."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(f"could not write {what}: {exc.strerror or exc}; free some disk space and resume") from exc


def _atomic_save(obj, path: Path) -> None:
    with _disk_errors(f"checkpoint {path}"), atomic_write(path) as handle:
        torch.save(obj, handle)


def _record(run_dir: Path, *args) -> None:
    with _disk_errors(str(run_dir / RUN_FILE)):
        write_record(run_dir, *args)


def _parameter_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _amp_context(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype), dtype
    return torch.autocast(device.type, enabled=False), None


def _explain_gpu_memory_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise TrainingError(
                "the GPU ran out of memory; start a new run with a smaller image size or fewer classes per "
                "batch, or in the fast mode (frozen backbone), which needs far less"
            ) from exc

    return wrapper


@_explain_gpu_memory_errors
def train(
    config: TrainConfig,
    output: str | Path,
    run_dir: str | Path | None = None,
    progress: Progress | None = None,
    resume: bool = True,
    dataset: LabelledDataset | None = None,
) -> TrainResult:
    """Train, checkpointing into ``run_dir`` every epoch; write the best model to ``output``.

    Raises :class:`~fph_desktop.progress.Cancelled` on a cancel: the last finished epoch's checkpoint
    stays in ``run_dir`` and a later call with ``resume=True`` continues from it. Running out of GPU
    memory ends in a :class:`TrainingError` that says what to lower.

    ``progress.partial`` receives ``{"kind": "step", ...}`` with the latest loss a few times a second
    and ``{"kind": "epoch", ...}`` after every epoch (its loss, validation mAP and time).
    """
    progress = progress or silent()
    if config.model.method != "fph":
        raise TrainingError("only FPH is trained this way; ITQ is fitted with fit_itq_model")
    started = time.monotonic()
    try:
        world = _Distributed(config.device)
    except RuntimeError as exc:  # the run's GPU is gone (unplugged eGPU, another machine)
        raise TrainingError(f"{exc}; start a new run on another device") from exc
    device = world.device
    mode = config.mode if config.mode != "auto" else ("full" if device.type == "cuda" else "fast")
    _seed_everything(config.seed)
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    output = Path(output)

    if dataset is None:
        progress.set_status(f"Reading {config.data}")
        dataset = load_labelled_folder(config.data, config.test_fraction, config.seed, progress=progress)
    check_trainable(dataset)
    train_items, test_items = dataset.split("train"), dataset.split("test")
    fit_idx, val_idx = split_validation(train_items, config.val_fraction, config.seed)
    labels = torch.tensor([item.label for item in train_items])

    model = build_model(config.model, config.backbone_weights)
    preprocessing = model_preprocessing(model)
    loss_fn = HashLoss(config.loss, config.model.code_bits, len(dataset.classes), config.quant_weight, config.aux_weight)
    epochs = config.epochs_for(mode)

    cache = None
    if mode == "fast":
        # Every stage is cached, whatever this variant uses, so that all variants share one cache.
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        all_paths = [i.path for i in train_items] + [i.path for i in test_items]
        if world.main:
            cache = StageCache.build(
                model.backbone, preprocessing, all_paths, STAGES, paths.cache_dir() / "features",
                device, progress, config.batch_size_eval, config.workers,
            )
        world.barrier()
        if not world.main:
            cache = StageCache.build(
                model.backbone, preprocessing, all_paths, STAGES, paths.cache_dir() / "features", device
            )
    model.to(device)
    loss_fn.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)

    sampler = PKBatchSampler(
        labels[fit_idx].tolist(), config.classes_per_batch, config.images_per_class,
        config.steps_per_epoch * world.world or None, config.seed, world.rank, world.world,
    )
    loader = None
    if mode == "full":
        fit_paths = [train_items[i].path for i in fit_idx]
        loader = DataLoader(
            PhotoDataset(fit_paths, labels[fit_idx].tolist(), preprocessing, augment=True),
            batch_sampler=sampler, num_workers=config.workers, pin_memory=device.type == "cuda",
            persistent_workers=config.workers > 0,
        )

    optimizer_name, lr = config.optimizer_for(mode)
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": model.new_parameters() + list(loss_fn.parameters()), "lr": lr}]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": lr * config.backbone_lr_ratio})
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(groups, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    total_steps = epochs * len(sampler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    amp_context, amp_dtype = _amp_context(device, config.amp and mode == "full")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    net: nn.Module = model
    if world.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    history: list[dict] = []
    best_map, best_epoch, start_epoch = -1.0, 0, 0
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    previous = read_record(run_dir)
    if resume and last_path.is_file() and not (previous is not None and previous.state == "finished"):
        ckpt = torch.load(last_path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("train_config") != config_json:
            raise TrainingError(f"{run_dir}: holds a checkpoint of a different run; choose another run folder or start afresh")
        if ckpt.get("classes", dataset.classes) != dataset.classes:
            raise TrainingError(
                f"the classes in {config.data} changed since this run stopped; it cannot go on, start a new run"
            )
        model.load_state_dict(ckpt["model"])
        loss_fn.load_state_dict(ckpt["loss_fn"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history = json.loads(ckpt["history"])
        best_map, best_epoch, start_epoch = ckpt["best_map"], ckpt["best_epoch"], ckpt["epoch"]
        progress.set_status(f"Resuming after epoch {start_epoch} of {epochs}")
    resumed_from = start_epoch
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _record(run_dir, config, output, start_epoch, epochs, "running")

    def encode(indices: list[int], items) -> np.ndarray:
        if cache is not None:
            offset = 0 if items is train_items else len(train_items)
            model.eval()
            outs = []
            with torch.inference_mode():
                for s in range(0, len(indices), 256):
                    progress.check()  # closing the app during a validation pass stops within a chunk
                    stages = cache.batch([offset + j for j in indices[s : s + 256]])
                    outs.append(model({k: v.to(device) for k, v in stages.items()}).u.float().cpu())
            return torch.cat(outs).numpy()
        return encode_paths(model, preprocessing, [items[j].path for j in indices], device, config.batch_size_eval, config.workers)

    step = start_epoch * len(sampler)
    last_step_report = 0.0
    for epoch in range(start_epoch, epochs):
        epoch_started = time.monotonic()
        progress.set_status(f"Epoch {epoch + 1} of {epochs}")
        sampler.set_epoch(epoch)
        net.train()
        if cache is not None:
            model.backbone.eval()
        losses = []
        batches = iter(loader) if loader is not None else ((None, labels[fit_idx][b], b) for b in sampler)
        for pixels, batch_labels, batch_idx in batches:
            batch_labels = torch.as_tensor(batch_labels).to(device)
            with amp_context:
                if cache is not None:
                    rows = [fit_idx[j] for j in batch_idx]
                    stages = cache.batch(rows, flip=torch.rand(len(rows)) < 0.5)
                    hashed = net({k: v.to(device) for k, v in stages.items()})
                else:
                    pixels = pixels.to(device, non_blocking=True)
                    if device.type == "cuda":
                        pixels = pixels.contiguous(memory_format=torch.channels_last)
                    hashed = net(pixels)
                loss, _ = loss_fn(hashed, batch_labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(float(loss.detach()))
            step += 1
            progress.set_progress(step, total_steps)
            if time.monotonic() - last_step_report >= 0.25:
                last_step_report = time.monotonic()
                progress.partial({"kind": "step", "step": step, "steps": total_steps, "epoch": epoch + 1, "loss": losses[-1]})
            progress.check()

        train_seconds = time.monotonic() - epoch_started
        val_map = float("nan")
        if val_idx:
            val_u, db_u = encode(val_idx, train_items), encode(fit_idx, train_items)
            distances = hamming_distance_matrix(pack_codes(val_u), pack_codes(db_u))
            val_map = float(mean_average_precision(distances, labels[val_idx].numpy(), labels[fit_idx].numpy()))
        score = val_map if val_idx else float(epoch)
        record = {
            "kind": "epoch", "step": step, "epoch": epoch + 1, "epochs": epochs, "loss": float(np.mean(losses)) if losses else float("nan"),
            "val_map": val_map, "seconds": round(time.monotonic() - epoch_started, 2),
            "train_seconds": round(train_seconds, 3), "images": len(losses) * sampler.p * sampler.k,
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(record)
        if score > best_map:
            best_map, best_epoch = score, epoch + 1
            if world.main:
                _atomic_save({"model": model.state_dict()}, best_path)
        if world.main:
            _atomic_save(
                {
                    "format": CHECKPOINT_FORMAT, "train_config": config_json, "epoch": epoch + 1, "classes": dataset.classes,
                    "model": model.state_dict(), "loss_fn": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "history": json.dumps(history),
                    "best_map": best_map, "best_epoch": best_epoch,
                },
                last_path,
            )
            _record(run_dir, config, output, epoch + 1, epochs, "running")
        progress.partial(dict(record))
        world.barrier()

    progress.check()  # a cancel during the last validation pass stops before the test pass and the save
    digests = [_parameter_digest(model)]
    if world.world > 1:
        gathered: list = [None] * world.world
        dist.all_gather_object(gathered, digests[0])
        digests = gathered
    if best_path.is_file():
        model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["model"])
    progress.set_status("Evaluating on the test split")
    test_metrics: dict = {}
    if test_items:
        test_u = encode(list(range(len(test_items))), test_items)
        db_u = encode(list(range(len(train_items))), train_items)
        test_metrics = metrics_for_codes(test_u, [i.label for i in test_items], db_u, labels.tolist(), ks=(10, 100))
    summary = {
        "data": str(dataset.root), "layout": dataset.layout, "classes": len(dataset.classes),
        "train_images": len(fit_idx), "validation_images": len(val_idx), "test_images": len(test_items),
        "skipped_images": len(dataset.skipped), "mode": mode, "device": describe_device(device),
        "epochs": epochs, "best_epoch": best_epoch, "best_val_map": best_map if val_idx else None,
        "test_map_all": test_metrics.get("map_all"), "loss": config.loss, "optimizer": optimizer_name, "lr": lr,
        "seconds": round(time.monotonic() - started, 1), "world_size": world.world,
        "rank_parameter_digests": digests, "train_config": config.to_dict(),
    }
    info = None
    if world.main:
        progress.set_status(f"Saving {output}")
        model.cpu()
        try:
            info = save_weights(output, model, dataset.classes, summary)
        except OSError as exc:
            raise TrainingError(f"{exc.strerror or exc}; free some disk space and resume: the trained model is kept and only needs saving") from exc
        _record(run_dir, config, output, epochs, epochs, "finished")
    world.barrier()
    return TrainResult(output, info, history, test_metrics, resumed_from, run_dir)

