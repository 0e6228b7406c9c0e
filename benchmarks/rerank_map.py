"""What asymmetric re-ranking does to birds-dev mAP.

ITQ at 48 bits on EfficientNet-Lite0's pooled C5 (head) features of the train split, as
``fph-desktop train --method itq`` makes it; queries = test, database = train, relevant = same
class. Rankings: Hamming with ties in database order (what the index returns), the tie-aware
expectation of that, and the Hamming top-R re-ranked by the asymmetric distance ``(q - u.b) / 2``
through :class:`~fph_desktop.index.search.SearchIndex` (R = 20, 100, 500, all).

    python benchmarks/rerank_map.py [--bits 48]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--birds", type=Path, default=BIRDS)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from fph_desktop.evaluation.metrics import hamming_distance_matrix, mean_average_precision, tie_aware_mean_average_precision
    from fph_desktop.imaging import open_image
    from fph_desktop.index.search import SearchIndex
    from fph_desktop.model import FPHConfig, build_model, fit_itq
    from fph_desktop.model.encoder import pack_codes

    with open(args.birds / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    splits = {s: [r for r in rows if r["split"] == s] for s in ("train", "test")}
    classes = sorted({r["class"] for r in rows})
    labels = {s: np.array([classes.index(r["class"]) for r in splits[s]]) for s in splits}

    model = build_model(
        FPHConfig(method="itq", backbone="efficientnet_lite0", code_bits=args.bits), backbone_weights="imagenet"
    ).eval()
    preprocessing = model.backbone.preprocessing.with_size(model.config.image_size)

    start = time.perf_counter()
    features = {}
    with torch.inference_mode():
        for split, items in splits.items():
            pooled = []
            for i in range(0, len(items), args.batch_size):
                batch = torch.stack(
                    [
                        preprocessing.to_tensor(open_image(args.birds / r["relpath"], preprocessing.resize))
                        for r in items[i : i + args.batch_size]
                    ]
                )
                pooled.append(model.backbone(batch)["C5"].float().mean(dim=(2, 3)).numpy())
            features[split] = np.concatenate(pooled)
    print(f"features: train {features['train'].shape}, test {features['test'].shape} ({time.perf_counter() - start:.0f} s)")

    model.set_fit(*fit_itq(features["train"], args.bits))
    with torch.inference_mode():  # exactly ITQHash.forward_stages on the pooled features
        real = {
            s: torch.tanh((torch.from_numpy(f) - model.mean) @ model.projection * model.scale).numpy()
            for s, f in features.items()
        }
    packed = {s: pack_codes(u) for s, u in real.items()}

    n_db = len(packed["train"])
    hamming = hamming_distance_matrix(packed["test"], packed["train"])
    results = [
        (
            "Hamming, ties in database order",
            mean_average_precision(hamming, labels["test"], labels["train"]),
            mean_average_precision(hamming, labels["test"], labels["train"], k=20),
        ),
        ("Hamming, tie-aware expectation", tie_aware_mean_average_precision(hamming, labels["test"], labels["train"]), None),
    ]
    index = SearchIndex(packed["train"], args.bits)
    full_d, full_i = index.topk(packed["test"], n_db)  # the index's own order: (distance, db order)
    for depth in (20, 100, 500, n_db):
        # Rank position as the "distance": re-ranked top-R first, the rest in Hamming order.
        position = np.empty((len(full_i), n_db), dtype=np.float64)
        for q in range(len(full_i)):
            top_ids, _, _ = index.rerank(real["test"][q], full_i[q, :depth], full_d[q, :depth])
            order = np.concatenate([top_ids, full_i[q, depth:]])
            position[q, order] = np.arange(n_db)
        label = f"re-ranked top {depth}" if depth < n_db else f"re-ranked all {n_db}"
        results.append(
            (
                label,
                mean_average_precision(position, labels["test"], labels["train"]),
                mean_average_precision(position, labels["test"], labels["train"], k=20),
            )
        )

    print(
        f"\nbirds-dev, ITQ {args.bits} bits on EfficientNet-Lite0 pooled head features; "
        f"{len(labels['test'])} test queries x {n_db} train database, {len(classes)} classes"
    )
    print("\n| ranking | mAP@all | mAP@20 |")
    print("|---|---:|---:|")
    for name, m_all, m_20 in results:
        print(f"| {name} | {m_all:.4f} | {'' if m_20 is None else f'{m_20:.4f}'} |")


if __name__ == "__main__":
    main()
