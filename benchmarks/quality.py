"""Retrieval quality, fast CPU mode, by the fixed protocol (query = test, database = train, mAP@all,
ties in database order; tie-aware mAP beside it), with the trainer's defaults unless told otherwise:

- ``itq``: unsupervised ITQ on the pretrained backbone's pooled C5 (centre crops);
- ``baseline``: the frozen-feature baseline of issue #8, reproduced: Lite0's pooled 1280-d head
  features (L2-normalised), MLP head 1280->1024 (ReLU, dropout 0.3) ->q, tanh; normalised softmax
  (cosine classifier, scale 16) + 0.1 x quantisation; AdamW 1e-3; 3,000 steps of batch 256;
- ``vertical``, ``full``, and ablations: FPH trained by ``fph_desktop.train.train``.

Data sets:
- ``cub200-val``: the development protocol carved out of CUB-200's official *training* split
  (``../shared/data/cub200-train``): 10 photos per species (seeded) are the queries, the other ~20
  the database and the training data (the trainer carves its own validation split out of those).
- ``birds-dev``: 25 species, official split (652 test queries, 750 train).

    python benchmarks/quality.py --data cub200-val --bits 48 --variants itq baseline vertical full
    python benchmarks/quality.py --data birds-dev --bits 16 32 48 64

Times: ``train_seconds`` is the whole ``train()`` call, cache hits excluded; the one-off feature
pass of each data set is timed on its own (``cache_seconds``, the first variant that builds it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fph_desktop import paths  # noqa: E402
from fph_desktop.data.layouts import LabelledDataset, load_labelled_folder, split_validation  # noqa: E402
from fph_desktop.evaluation.evaluate import metrics_for_codes  # noqa: E402
from fph_desktop.model import FPHConfig, build_model, fit_itq  # noqa: E402
from fph_desktop.model.weights import model_preprocessing  # noqa: E402
from fph_desktop.progress import Progress  # noqa: E402
from fph_desktop.train.config import TrainConfig  # noqa: E402
from fph_desktop.train.losses import COSINE_SCALE  # noqa: E402
from fph_desktop.train.stats_cache import ViewStatsCache  # noqa: E402
from fph_desktop.train.trainer import train, training_views  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HORIZONTAL = dict(use_horizontal=True)
VARIANTS = {  # FPHConfig overrides; the defaults are the vertical pyramid's top level alone
    "vertical": dict(use_horizontal=False),
    "vertical-fpn": dict(use_horizontal=False, vertical_levels=("C3", "C4", "C5")),
    "full": HORIZONTAL,
    "horizontal": dict(use_vertical=False, **HORIZONTAL),
    "max": dict(fusion="max", **HORIZONTAL),
    "learned": dict(fusion="learned", **HORIZONTAL),
    "global": dict(structure="global", **HORIZONTAL),
    "no-aux": dict(aux_heads=False, **HORIZONTAL),
    "h-c3c4-w32": dict(horizontal_levels=("C3", "C4"), horizontal_grid="C3", horizontal_width=32, **HORIZONTAL),
    "h-c3c4-w32-global": dict(horizontal_levels=("C3", "C4"), horizontal_width=32, structure="global", **HORIZONTAL),
    "h-c3c4-w32-max": dict(horizontal_levels=("C3", "C4"), horizontal_width=32, fusion="max", **HORIZONTAL),
    "h-c3c4-w32-only": dict(horizontal_levels=("C3", "C4"), horizontal_width=32, use_vertical=False, **HORIZONTAL),
    "h-width64": dict(horizontal_width=64, **HORIZONTAL),
    "linear-head": dict(head_hidden=0, head_dropout=0.0),
}


def load_data(name: str, seed: int) -> LabelledDataset:
    if name == "birds-dev":
        return load_labelled_folder(SHARED / "birds-dev", seed=seed)
    if name == "cub200-val":
        # Class folders under train/: a seeded, stratified third (10 of 29-30 per species) as queries.
        return load_labelled_folder(SHARED / "cub200-train" / "train", test_fraction=1 / 3, seed=seed)
    return load_labelled_folder(name, seed=seed)


def centre_stats(dataset: LabelledDataset, config: TrainConfig) -> tuple[dict[str, torch.Tensor], float]:
    """The centre-crop statistics of every photo (train then test), from the very cache the trainer
    builds for ``config`` (so only the first caller pays for the backbone)."""
    model = build_model(config.model, "imagenet")
    train_items, test_items = dataset.split("train"), dataset.split("test")
    fit_idx, _ = split_validation(train_items, config.val_fraction, config.seed)
    started = time.monotonic()
    cache = ViewStatsCache.build(
        model.backbone,
        model_preprocessing(model),
        config.model,
        [i.path for i in train_items + test_items],
        training_views(config, len(train_items), fit_idx, len(test_items)),
        paths.cache_dir() / "stats",
        torch.device("cpu"),
        batch_size=config.batch_size_eval,
        workers=config.workers,
        seed=config.seed,
    )
    seconds = time.monotonic() - started
    return cache.batch(cache.rows_of(np.arange(cache.photos))), seconds


def itq_row(stats, n_train: int, labels: np.ndarray, bits: int, seed: int) -> tuple[dict, float]:
    pooled = F.normalize(stats["mean:C5"], dim=1).numpy()
    started = time.monotonic()
    mean, projection, scale = fit_itq(pooled[:n_train], bits, seed=seed)
    seconds = time.monotonic() - started
    u = np.tanh((pooled - mean) @ projection * scale)
    return metrics_for_codes(u[n_train:], labels[n_train:], u[:n_train], labels[:n_train], ks=(10, 100)), seconds


def baseline_row(stats, n_train: int, labels: np.ndarray, bits: int, seed: int, steps: int = 3000) -> tuple[dict, float]:
    """Issue #8's 60-line baseline, as described there (trained on the whole train split)."""
    torch.manual_seed(seed)
    x = F.normalize(stats["mean:C5"], dim=1)
    y = torch.as_tensor(labels)
    classes = int(y.max()) + 1
    head = nn.Sequential(nn.Linear(x.shape[1], 1024), nn.ReLU(), nn.Dropout(0.3), nn.Linear(1024, bits), nn.Tanh())
    proxies = nn.Parameter(torch.randn(classes, bits) * 0.01)
    optimizer = torch.optim.AdamW([*head.parameters(), proxies], lr=1e-3)
    started = time.monotonic()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, n_train, (256,), generator=generator)
        u = head(x[batch])
        logits = COSINE_SCALE * F.normalize(u, dim=1) @ F.normalize(proxies, dim=1).t()
        loss = F.cross_entropy(logits, y[batch]) + 0.1 * (u.abs() - 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.monotonic() - started
    head.eval()
    with torch.no_grad():
        u = head(x).numpy()
    return metrics_for_codes(u[n_train:], labels[n_train:], u[:n_train], labels[:n_train], ks=(10, 100)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="cub200-val", help="cub200-val, birds-dev, or a labelled folder")
    parser.add_argument("--bits", type=int, nargs="+", default=[48])
    parser.add_argument(
        "--variants", nargs="+", default=["itq", "baseline", "vertical", "full"], choices=["itq", "baseline", *VARIANTS]
    )
    parser.add_argument("--epochs", type=int, default=0, help="0: the fast mode's default")
    parser.add_argument("--views", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--loss", default=None)
    parser.add_argument("--lr", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="a suffix for the result file")
    parser.add_argument("--json", default=None, help="default: benchmarks/results/quality-DATA[-TAG].json")
    args = parser.parse_args()

    dataset = load_data(args.data, args.seed)
    train_items, test_items = dataset.split("train"), dataset.split("test")
    labels = np.array([i.label for i in train_items + test_items])
    print(dataset.describe(), flush=True)

    def config_for(bits: int, variant: str) -> TrainConfig:
        overrides = {
            k: v for k, v in (("views", args.views), ("loss", args.loss), ("weight_decay", args.weight_decay)) if v is not None
        }
        return TrainConfig(
            data=str(dataset.root),
            mode="fast",
            epochs=args.epochs,
            lr=args.lr,
            seed=args.seed,
            model=FPHConfig(code_bits=bits, **VARIANTS.get(variant, {})),
            **overrides,
        )

    stats, cache_seconds = centre_stats(dataset, config_for(args.bits[0], "full"))
    print(f"one-off feature pass (all views): {cache_seconds:.1f} s", flush=True)
    n_train = len(train_items)
    rows = []
    for bits in args.bits:
        for variant in args.variants:
            extra: dict = {}
            if variant == "itq":
                metrics, seconds = itq_row(stats, n_train, labels, bits, args.seed)
            elif variant == "baseline":
                metrics, seconds = baseline_row(stats, n_train, labels, bits, args.seed)
            else:
                history: list = []
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.monotonic()
                    result = train(
                        config_for(bits, variant),
                        Path(tmp) / "m.fph",
                        Path(tmp) / "run",
                        Progress(on_partial=history.append),
                        resume=False,
                        dataset=dataset,
                    )
                    seconds = time.monotonic() - started
                metrics = result.test_metrics
                epochs = [h for h in history if h.get("kind") == "epoch"]
                extra = {
                    "best_epoch": result.info.training["best_epoch"],
                    "best_val_map": round(result.info.training["best_val_map"], 4),
                    "val_curve": [round(h["val_map"], 4) for h in epochs],
                }
            row = {
                "data": args.data,
                "bits": bits,
                "variant": variant,
                "map_all": round(metrics["map_all"], 4),
                "map_tie_aware": round(metrics["map_tie_aware"], 4),
                "train_seconds": round(seconds, 1),
                **extra,
            }
            rows.append(row)
            print(
                f"{bits:>3} bits  {variant:<11} mAP@all {row['map_all']:.4f}  tie-aware {row['map_tie_aware']:.4f}  "
                f"{row['train_seconds']:>7.1f} s  {extra.get('best_epoch', '')}",
                flush=True,
            )
    name = f"quality-{Path(args.data).name}{'-' + args.tag if args.tag else ''}.json"
    out = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "data": dataset.describe(),
                "cache_seconds": round(cache_seconds, 1),
                "threads": torch.get_num_threads(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
