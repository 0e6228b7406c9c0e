"""How close the training wizard's time estimate is to the run it estimates, in the same process.

Estimates a fast-mode run on birds-dev (or a few of its classes), then runs it for real with a fresh
feature cache and compares: the one-off feature pass, the mean epoch (training steps and the
validation pass) and the total. A ratio of 1.0 is a perfect estimate; the wizard shows the estimate
as "about", so within 0.5-2x is what a user needs to plan.

    python benchmarks/estimate_accuracy.py [--backbone efficientnet_lite0] [--classes 25] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def subset(data: Path, classes: int, out: Path) -> Path:
    for split in ("train", "test"):
        for class_dir in sorted((data / split).iterdir())[:classes]:
            target = out / split / class_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for photo in class_dir.glob("*.jpg"):
                (target / photo.name).symlink_to(photo)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "birds-dev")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--classes", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fph-estimate-"))
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(work / "data")
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(work / "cache")  # fresh: the feature pass is timed too

    from fph_desktop.data.layouts import load_labelled_folder
    from fph_desktop.model.config import FPHConfig
    from fph_desktop.progress import Progress
    from fph_desktop.train.config import TrainConfig
    from fph_desktop.train.estimate import estimate_training
    from fph_desktop.train.trainer import train

    data = subset(args.data, args.classes, work / "photos") if args.classes < 25 else args.data
    dataset = load_labelled_folder(data)
    config = TrainConfig(
        data=str(data), model=FPHConfig(backbone=args.backbone, code_bits=args.bits), mode="fast", epochs=args.epochs
    )
    n_train, n_test = len(dataset.split("train")), len(dataset.split("test"))
    started = time.perf_counter()
    estimate = estimate_training(config, n_train, n_test)
    estimate_cost = time.perf_counter() - started
    print(f"estimate ({estimate_cost:.1f} s to make): {estimate.describe()}")

    marks = {}

    def status(text: str) -> None:
        marks.setdefault(text.split(" ")[0], time.perf_counter())

    started = time.perf_counter()
    result = train(config, work / "model.fph", progress=Progress(on_status=status), dataset=dataset)
    total = time.perf_counter() - started
    features = marks.get("Epoch", started) - marks.get("Computing", marks.get("Epoch", started))
    epoch = sum(r["seconds"] for r in result.history) / len(result.history)
    rows = {
        "features_s": (estimate.features_seconds, features),
        "epoch_s": (estimate.epoch_seconds, epoch),
        "total_s": (estimate.total_seconds, total),
    }
    print(f"{'':12}{'estimate':>10}{'actual':>10}{'actual/estimate':>17}")
    for name, (guess, actual) in rows.items():
        print(f"{name:12}{guess:10.1f}{actual:10.1f}{actual / guess:17.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": vars(args) | {"data": str(args.data), "json": str(args.json)},
                    "train_images": n_train,
                    "test_images": n_test,
                    "rows": {k: {"estimate": g, "actual": a} for k, (g, a) in rows.items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
