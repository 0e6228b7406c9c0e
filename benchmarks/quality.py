"""Retrieval quality on birds-dev: ITQ on pretrained features, vertical-pyramid-only FPH and full FPH
(plus optional ablations), fast CPU mode, at several code lengths, by the fixed protocol
(query = test, database = train, mAP@all, ties in database order; tie-aware mAP beside it).

    python benchmarks/quality.py --bits 16 32 48 64
    python benchmarks/quality.py --bits 48 --variants full mean-max global horizontal

Training times exclude the one-off backbone feature cache, which is timed and printed on its own.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fph_desktop.data.layouts import load_labelled_folder  # noqa: E402
from fph_desktop.evaluation.evaluate import metrics_for_codes  # noqa: E402
from fph_desktop.model import FPHConfig, build_model, fit_itq  # noqa: E402
from fph_desktop.model.itq import itq_descriptor  # noqa: E402
from fph_desktop.model.weights import model_preprocessing  # noqa: E402
from fph_desktop.progress import Progress  # noqa: E402
from fph_desktop import paths  # noqa: E402
from fph_desktop.train.config import TrainConfig  # noqa: E402
from fph_desktop.train.feature_cache import StageCache  # noqa: E402
from fph_desktop.train.trainer import train  # noqa: E402

VARIANTS = {
    "vertical": dict(use_horizontal=False),
    "full": dict(),
    "horizontal": dict(use_vertical=False),
    "max": dict(fusion="max"),
    "learned": dict(fusion="learned"),
    "global": dict(structure="global"),
}


def itq_results(cache: StageCache, n_train: int, labels: np.ndarray, bits: int) -> tuple[dict, float]:
    pooled = np.concatenate(
        [itq_descriptor(cache.batch(list(range(s, min(s + 128, cache.count))))["C5"]).numpy() for s in range(0, cache.count, 128)]
    )
    started = time.monotonic()
    mean, projection, scale = fit_itq(pooled[:n_train], bits, seed=0)
    seconds = time.monotonic() - started
    u = np.tanh((pooled - mean) @ projection * scale)
    return metrics_for_codes(u[n_train:], labels[n_train:], u[:n_train], labels[:n_train], ks=(10, 100)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "birds-dev"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 48, 64])
    parser.add_argument("--variants", nargs="+", default=["itq", "vertical", "full"], choices=["itq", *VARIANTS])
    parser.add_argument("--epochs", type=int, default=0, help="0: the fast mode's default")
    parser.add_argument("--loss", default="softmax", choices=["softmax", "triplet", "dpsh"])
    parser.add_argument("--optimizer", default="auto")
    parser.add_argument("--lr", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=None, help="default: TrainConfig's")
    parser.add_argument("--head-dropout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    dataset = load_labelled_folder(args.data, seed=args.seed)
    train_items, test_items = dataset.split("train"), dataset.split("test")
    labels = np.array([i.label for i in train_items + test_items])
    probe = build_model(FPHConfig(backbone=args.backbone), "imagenet")
    started = time.monotonic()
    cache = StageCache.build(
        probe.backbone, model_preprocessing(probe), [i.path for i in train_items + test_items], ("C2", "C3", "C4", "C5"),
        paths.cache_dir() / "features", torch.device("cpu"),
    )
    cache_seconds = time.monotonic() - started
    print(f"{dataset.describe()}\nbackbone feature cache: {cache_seconds:.1f} s (built once, reused by every run)", flush=True)

    rows = []
    for bits in args.bits:
        for variant in args.variants:
            if variant == "itq":
                metrics, seconds = itq_results(cache, len(train_items), labels, bits)
                extra = {}
            else:
                config = TrainConfig(
                    data=args.data, mode="fast", epochs=args.epochs, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
                    seed=args.seed,
                    model=FPHConfig(backbone=args.backbone, code_bits=bits, head_dropout=args.head_dropout, **VARIANTS[variant]),
                    **({} if args.weight_decay is None else {"weight_decay": args.weight_decay}),
                )
                history = []
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.monotonic()
                    result = train(config, Path(tmp) / "m.fph", Path(tmp) / "run", Progress(on_partial=history.append),
                                   resume=False, dataset=dataset)
                    seconds = time.monotonic() - started
                metrics = result.test_metrics
                extra = {"best_epoch": result.info.training["best_epoch"], "best_val_map": result.info.training["best_val_map"]}
            row = {"bits": bits, "variant": variant, "map_all": metrics["map_all"], "map_tie_aware": metrics["map_tie_aware"],
                   "map@100": metrics.get("map@100"), "train_seconds": round(seconds, 1), **extra}
            rows.append(row)
            print(f"{bits:>3} bits  {variant:<10}  mAP@all {row['map_all']:.4f}  tie-aware {row['map_tie_aware']:.4f}  "
                  f"{row['train_seconds']:>7.1f} s  {extra}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "cache_seconds": round(cache_seconds, 1), "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
