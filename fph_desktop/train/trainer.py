"""Training FPH: fast CPU mode (frozen backbone, cached pooled statistics of several views of each
photo) or full fine-tuning (GPU, mixed precision, channels_last, DistributedDataParallel under
torchrun). Checkpoints every epoch, resumes after a crash or a cancel, and keeps the checkpoint that
scores best on a validation split carved out of train: the test split is touched once, at the end,
to report."""

from __future__ import annotations

import functools
import hashlib
import io
import json
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
from ..errors import StorageError, UserError, storage_error
from ..evaluation.evaluate import encode_paths, metrics_for_codes
from ..evaluation.metrics import hamming_distance_matrix, mean_average_precision
from ..fileio import atomic_write
from ..model import build_model
from ..model.encoder import pack_codes
from ..model.weights import WeightsInfo, model_preprocessing, save_weights
from ..progress import Progress, silent
from .config import TrainConfig
from .losses import HashLoss
from .runs import RUN_FILE, read_record, runs_dir, write_record
from .stats_cache import ViewStatsCache

CHECKPOINT_FORMAT = "fph-desktop-checkpoint"


class TrainingError(UserError):
    """A run that cannot start or go on; the message says what to do next."""


@dataclass
class TrainResult:
    weights_path: Path
    info: WeightsInfo
    history: list[dict]
    test_metrics: dict
    resumed_from_epoch: int = 0
    run_dir: Path = field(default_factory=Path)
    collapsed: bool = False  # every training photo got the same code: saved, but useless for search


def default_run_dir(config: TrainConfig) -> Path:
    """Same config, same folder: that is what makes "resume" find an interrupted run."""
    key = hashlib.sha256(json.dumps(config.identity(), sort_keys=True).encode()).hexdigest()[:12]
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
            f"{dataset.root}: too few training images in {', '.join(thin[:5])}; "
            "each class needs at least 2 (10 or more work better)"
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
    except (OSError, RuntimeError) as exc:
        error = storage_error(
            exc, what, "saving the training run", kept="then resume the run (the same command, or Resume in the wizard)"
        )
        if error is None:
            raise
        raise error from None


def _atomic_save(obj, path: Path) -> None:
    buffer = io.BytesIO()  # serialised in memory first: PyTorch's writer hides the errno of a failed write
    torch.save(obj, buffer)
    with _disk_errors(path), atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def _record(run_dir: Path, *args) -> None:
    with _disk_errors(run_dir / RUN_FILE):
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


@dataclass
class _Run:
    """Everything one training run holds between its phases."""

    config: TrainConfig
    output: Path
    run_dir: Path
    world: _Distributed
    device: torch.device
    mode: str
    dataset: LabelledDataset
    train_items: list
    test_items: list
    fit_idx: list[int]
    val_idx: list[int]
    labels: torch.Tensor
    model: nn.Module
    net: nn.Module
    loss_fn: HashLoss
    epochs: int
    sampler: PKBatchSampler
    optimizer: torch.optim.Optimizer
    optimizer_name: str
    lr: float
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_context: object
    cache: ViewStatsCache | None = None
    loader: DataLoader | None = None
    history: list[dict] = field(default_factory=list)
    best_map: float = -1.0
    best_epoch: int = 0
    start_epoch: int = 0  # the epoch this call began at: 0, or where the resumed run had stopped
    started: float = 0.0

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"


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
    run = _set_up(config, Path(output), run_dir, progress, dataset)
    _resume(run, progress, resume)
    for epoch in range(run.start_epoch, run.epochs):
        record = _train_one_epoch(run, epoch, progress)
        record["val_map"] = _validate(run)
        _end_epoch(run, record, progress)
    return _finish(run, progress)


def _set_up(config: TrainConfig, output: Path, run_dir, progress: Progress, dataset: LabelledDataset | None) -> _Run:
    if config.model.method != "fph":
        raise TrainingError("only FPH is trained this way; ITQ is fitted with fit_itq_model")
    started = time.monotonic()
    try:
        world = _Distributed(config.device)
    except RuntimeError as exc:  # the run's GPU is gone (unplugged eGPU, another machine)
        raise TrainingError(f"{exc}; start a new run on another device") from exc
    device = world.device
    mode = config.resolve_mode(device.type)
    if mode == "fast" and not config.model.pool_first:
        raise TrainingError("the fast mode trains pooled-first models only; use the full mode for pool_first=False")
    _seed_everything(config.seed)
    # The backbone's weights first: a missing download must not wait for every photo to be checked.
    model = build_model(config.model, config.backbone_weights)
    if dataset is None:
        progress.set_status(f"Reading {config.data}")
        dataset = load_labelled_folder(config.data, config.test_fraction, config.seed, progress=progress)
    check_trainable(dataset)
    train_items, test_items = dataset.split("train"), dataset.split("test")
    fit_idx, val_idx = split_validation(train_items, config.val_fraction, config.seed)
    labels = torch.tensor([item.label for item in train_items])
    preprocessing = model_preprocessing(model)
    loss_fn = HashLoss(config.loss, config.model.code_bits, len(dataset.classes), config.quant_weight, config.aux_weight)

    cache = loader = None
    if mode == "fast":
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        views = training_views(config, len(train_items), fit_idx, len(test_items))
        all_paths = [i.path for i in train_items] + [i.path for i in test_items]

        def build_cache(report: Progress) -> ViewStatsCache:
            return ViewStatsCache.build(
                model.backbone,
                preprocessing,
                config.model,
                all_paths,
                views,
                paths.cache_dir() / "stats",
                device,
                report,
                config.batch_size_eval,
                config.workers,
                config.seed,
            )

        if world.main:
            cache = build_cache(progress)
        world.barrier()
        if not world.main:
            cache = build_cache(silent())
    model.to(device)
    loss_fn.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)

    sampler = PKBatchSampler(
        labels[fit_idx].tolist(),
        config.classes_per_batch_for(mode),
        config.images_per_class,
        config.steps_per_epoch_for(mode, len(fit_idx), len(set(labels[fit_idx].tolist())), world.world),
        config.seed,
        world.rank,
        world.world,
    )
    if mode == "full":
        fit_paths = [train_items[i].path for i in fit_idx]
        loader = DataLoader(
            PhotoDataset(fit_paths, labels[fit_idx].tolist(), preprocessing, augment=True),
            batch_sampler=sampler,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=config.workers > 0,
        )

    epochs = config.epochs_for(mode)
    optimizer_name, lr = config.optimizer_for(mode)
    optimizer = _optimizer(model, loss_fn, optimizer_name, lr, config)
    total_steps = epochs * len(sampler)
    warmup = max(1, total_steps // 30)
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup)),
        ],
        milestones=[warmup],
    )
    amp_context, amp_dtype = _amp_context(device, config.amp and mode == "full")
    net: nn.Module = model
    if world.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return _Run(
        config=config,
        output=output,
        run_dir=Path(run_dir) if run_dir else default_run_dir(config),
        world=world,
        device=device,
        mode=mode,
        dataset=dataset,
        train_items=train_items,
        test_items=test_items,
        fit_idx=fit_idx,
        val_idx=val_idx,
        labels=labels,
        model=model,
        net=net,
        loss_fn=loss_fn,
        epochs=epochs,
        sampler=sampler,
        optimizer=optimizer,
        optimizer_name=optimizer_name,
        lr=lr,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16),
        amp_context=amp_context,
        cache=cache,
        loader=loader,
        started=started,
    )


def training_views(config: TrainConfig, train_count: int, fit_idx: list[int], test_count: int) -> list[int]:
    """Cached views per photo (train split, then test): ``config.views`` for the photos trained
    on, the centre crop alone for validation and test photos."""
    fit_set = set(fit_idx)
    return [config.views if i in fit_set else 1 for i in range(train_count)] + [1] * test_count


def _optimizer(model: nn.Module, loss_fn: HashLoss, name: str, lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    """New layers at ``lr``, the backbone at ``lr * backbone_lr_ratio``; no weight decay on norm
    layers, biases and the loss's proxies (decay would only shrink what normalisation undoes)."""
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad] + [
        (f"loss.{n}", p) for n, p in loss_fn.named_parameters()
    ]
    for name_, p in named:
        decay = p.ndim > 1 and not name_.startswith("loss.")
        groups.setdefault((id(p) in backbone_ids, decay), []).append(p)
    param_groups = [
        {
            "params": params,
            "lr": lr * (config.backbone_lr_ratio if backbone else 1.0),
            "weight_decay": config.weight_decay if decay else 0.0,
        }
        for (backbone, decay), params in sorted(groups.items())
    ]
    if name == "sgd":
        return torch.optim.SGD(param_groups, momentum=config.momentum)
    return torch.optim.AdamW(param_groups)


def _resume(run: _Run, progress: Progress, resume: bool) -> None:
    config = run.config
    identity = json.dumps(config.identity(), sort_keys=True)
    previous = read_record(run.run_dir)
    if resume and run.last_path.is_file() and not (previous is not None and previous.state == "finished"):
        ckpt = torch.load(run.last_path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("train_identity") != identity:
            raise TrainingError(
                f"{run.run_dir}: holds a checkpoint of a different run; choose another run folder or start afresh"
            )
        if ckpt.get("classes", run.dataset.classes) != run.dataset.classes:
            raise TrainingError(f"the classes in {config.data} changed since this run stopped; it cannot go on, start a new run")
        run.model.load_state_dict(ckpt["model"])
        run.loss_fn.load_state_dict(ckpt["loss_fn"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        run.history = json.loads(ckpt["history"])
        run.best_map, run.best_epoch, run.start_epoch = ckpt["best_map"], ckpt["best_epoch"], ckpt["epoch"]
        progress.set_status(f"Resuming after epoch {run.start_epoch} of {run.epochs}")
    if run.world.main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        _record(run.run_dir, config, run.output, run.start_epoch, run.epochs, "running")


def _batches(run: _Run, epoch: int):
    """(model output, labels) of each training step of ``epoch``."""
    if run.loader is not None:
        for pixels, batch_labels, _ in run.loader:
            pixels = pixels.to(run.device, non_blocking=True)
            if run.device.type == "cuda":
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            with run.amp_context:  # the forward pass only: backward runs outside autocast
                output = run.net(pixels)
            yield output, torch.as_tensor(batch_labels).to(run.device)
        return
    rng = np.random.default_rng((run.config.seed, epoch, run.world.rank))
    fit_idx = np.asarray(run.fit_idx)
    for batch in run.sampler:
        photos = fit_idx[batch]
        stats = run.cache.batch(run.cache.rows_of(photos, "random", rng), run.device)
        yield run.net(stats), run.labels[photos].to(run.device)


def _train_one_epoch(run: _Run, epoch: int, progress: Progress) -> dict:
    started = time.monotonic()
    progress.set_status(f"Epoch {epoch + 1} of {run.epochs}")
    run.sampler.set_epoch(epoch)
    run.net.train()
    if run.cache is not None:
        run.model.backbone.eval()
    losses: list[float] = []
    step = epoch * len(run.sampler)
    total_steps = run.epochs * len(run.sampler)
    last_report = 0.0
    for hashed, batch_labels in _batches(run, epoch):
        with run.amp_context:
            loss, _ = run.loss_fn(hashed, batch_labels)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        losses.append(float(loss.detach()))
        if not np.isfinite(losses[-1]):
            raise TrainingError(
                f"training diverged: the loss became {losses[-1]} at step {step + 1} of epoch {epoch + 1}",
                hint=f"start a new run with a lower learning rate (now {run.lr:g})",
            )
        step += 1
        progress.set_progress(step, total_steps)
        if time.monotonic() - last_report >= 0.25:
            last_report = time.monotonic()
            progress.partial({"kind": "step", "step": step, "steps": total_steps, "epoch": epoch + 1, "loss": losses[-1]})
        progress.check()
    return {
        "kind": "epoch",
        "step": step,
        "epoch": epoch + 1,
        "epochs": run.epochs,
        "loss": float(np.mean(losses)) if losses else float("nan"),
        "val_map": float("nan"),
        "train_seconds": round(time.monotonic() - started, 3),
        "images": len(losses) * run.sampler.p * run.sampler.k,
        "lr": run.optimizer.param_groups[0]["lr"],
        "_started": started,
    }


def _encode(run: _Run, indices: list[int], items) -> np.ndarray:
    """tanh outputs of ``items[indices]`` (the train or test split), centre crops."""
    model = run.model
    if run.cache is not None:
        offset = 0 if items is run.train_items else len(run.train_items)
        rows = run.cache.rows_of(np.asarray(indices, dtype=np.int64) + offset)
        was_training = model.training
        model.eval()
        outs = []
        with torch.inference_mode():
            for s in range(0, len(rows), 1024):
                outs.append(model.forward_pooled(run.cache.batch(rows[s : s + 1024], run.device)).u.float().cpu())
        model.train(was_training)
        return torch.cat(outs).numpy() if outs else np.zeros((0, run.config.model.code_bits), np.float32)
    return encode_paths(
        model,
        model_preprocessing(model),
        [items[j].path for j in indices],
        run.device,
        run.config.batch_size_eval,
        run.config.workers,
    )


def _validate(run: _Run) -> float:
    if not run.val_idx:
        return float("nan")
    val_u, db_u = _encode(run, run.val_idx, run.train_items), _encode(run, run.fit_idx, run.train_items)
    distances = hamming_distance_matrix(pack_codes(val_u), pack_codes(db_u))
    return float(mean_average_precision(distances, run.labels[run.val_idx].numpy(), run.labels[run.fit_idx].numpy()))


def _end_epoch(run: _Run, record: dict, progress: Progress) -> None:
    """Keep the best epoch (by validation mAP, else the latest), checkpoint, report."""
    record["seconds"] = round(time.monotonic() - record.pop("_started"), 2)
    run.history.append(record)
    score = record["val_map"] if run.val_idx else float(record["epoch"])
    if score > run.best_map:
        run.best_map, run.best_epoch = score, record["epoch"]
        if run.world.main:
            _atomic_save({"model": run.model.state_dict()}, run.best_path)
    if run.world.main:
        _atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "train_identity": json.dumps(run.config.identity(), sort_keys=True),
                "epoch": record["epoch"],
                "classes": run.dataset.classes,
                "model": run.model.state_dict(),
                "loss_fn": run.loss_fn.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(),
                "history": json.dumps(run.history),
                "best_map": run.best_map,
                "best_epoch": run.best_epoch,
            },
            run.last_path,
        )
        _record(run.run_dir, run.config, run.output, record["epoch"], run.epochs, "running")
    progress.partial(dict(record))
    run.world.barrier()


def _finish(run: _Run, progress: Progress) -> TrainResult:
    """Load the best epoch, evaluate it once on the test split, save the weights file."""
    progress.check()  # a cancel during the last validation pass stops before the test pass and the save
    model, config, world = run.model, run.config, run.world
    digests = [_parameter_digest(model)]
    if world.world > 1:
        gathered: list = [None] * world.world
        dist.all_gather_object(gathered, digests[0])
        digests = gathered
    if run.best_path.is_file():
        model.load_state_dict(torch.load(run.best_path, map_location="cpu", weights_only=True)["model"])
    progress.set_status("Evaluating on the test split")
    test_metrics: dict = {}
    collapsed = False
    if run.test_items:
        test_u = _encode(run, list(range(len(run.test_items))), run.test_items)
        db_u = _encode(run, list(range(len(run.train_items))), run.train_items)
        collapsed = len(db_u) > 1 and len(np.unique(pack_codes(db_u), axis=0)) == 1
        test_metrics = metrics_for_codes(test_u, [i.label for i in run.test_items], db_u, run.labels.tolist(), ks=(10, 100))
    summary = {
        "data": str(run.dataset.root),
        "layout": run.dataset.layout,
        "classes": len(run.dataset.classes),
        "train_images": len(run.fit_idx),
        "validation_images": len(run.val_idx),
        "test_images": len(run.test_items),
        "skipped_images": len(run.dataset.skipped),
        "mode": run.mode,
        "device": describe_device(run.device),
        "epochs": run.epochs,
        "best_epoch": run.best_epoch,
        "best_val_map": run.best_map if run.val_idx else None,
        "test_map_all": test_metrics.get("map_all"),
        "loss": config.loss,
        "optimizer": run.optimizer_name,
        "lr": run.lr,
        "seconds": round(time.monotonic() - run.started, 1),
        "world_size": world.world,
        "rank_parameter_digests": digests,
        "train_config": config.to_dict(),
    }
    info = None
    if world.main:
        progress.set_status(f"Saving {run.output}")
        model.cpu()
        try:
            info = save_weights(run.output, model, run.dataset.classes, summary)
        except StorageError as exc:
            # The same error, with what survives: the finished run, which a rerun only saves.
            raise type(exc)(
                exc.message,
                exc.path,
                f"{exc.hint.split(';')[0]}, then resume (the same command, or Resume in the wizard): "
                "the trained model is kept in the run folder and only needs saving",
            ) from None
        except OSError as exc:
            error = storage_error(
                exc,
                run.output,
                "saving the model",
                kept="then resume (the same command, or Resume in the wizard): the trained model is kept in the run "
                "folder and only needs saving",
            )
            if error is None:
                raise
            raise error from None
        _record(run.run_dir, config, run.output, run.epochs, run.epochs, "finished")
    world.barrier()
    return TrainResult(run.output, info, run.history, test_metrics, run.start_epoch, run.run_dir, collapsed)
