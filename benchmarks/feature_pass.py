"""The fast CPU mode's one-off feature pass on ONNX Runtime against PyTorch, in one run.

The pass runs the frozen backbone once over every photo view and stores the pooled statistics
(train/stats_cache.py). On the CPU it now runs on a graph exported from the backbone when ONNX
Runtime is installed; this builds the same cache both ways (EfficientNet-Lite0, 224 px, birds-dev
photos, the centre view) and reports views/s, the graph export's one-off cost included and not, and
the largest difference between the stored statistics (they are kept as fp16).

    python benchmarks/feature_pass.py [--photos 400] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"
RESULTS = Path(__file__).resolve().parent / "results" / "feature_pass.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from fph_desktop.model import FPHConfig, build_backbone
    from fph_desktop.train import stats_cache
    from fph_desktop.train.stats_cache import ViewStatsCache

    torch.set_num_threads(args.threads)
    photos = sorted(BIRDS.rglob("*.jpg"))[: args.photos]
    config = FPHConfig()
    backbone = build_backbone(config.backbone, "imagenet")
    preprocessing = backbone.preprocessing.with_size(config.image_size)
    timings, caches = {}, {}
    work = Path(tempfile.mkdtemp(prefix="feature-pass-"))
    exporter = stats_cache._statistics_graph
    for engine in ("torch", "onnx"):
        stats_cache._statistics_graph = exporter if engine == "onnx" else (lambda *a, **k: None)
        started = time.perf_counter()
        caches[engine] = ViewStatsCache.build(
            backbone, preprocessing, config, photos, [1] * len(photos), work / engine, torch.device("cpu"), workers=2
        )
        timings[engine] = time.perf_counter() - started
    stats_cache._statistics_graph = exporter
    started = time.perf_counter()
    exporter(backbone, config, list(caches["onnx"].tensors), config.image_size, work / "again")
    export_s = time.perf_counter() - started
    gap = max(float((caches["onnx"].tensors[k].float() - t.float()).abs().max()) for k, t in caches["torch"].tensors.items())
    results = {
        "photos": len(photos),
        "threads": args.threads,
        "views_per_second": {
            "pytorch": round(len(photos) / timings["torch"], 1),
            "onnx_runtime_with_export": round(len(photos) / timings["onnx"], 1),
            "onnx_runtime_without_export": round(len(photos) / (timings["onnx"] - export_s), 1),
        },
        "export_seconds": round(export_s, 2),
        "onnx_over_pytorch": round(timings["torch"] / timings["onnx"], 2),
        "onnx_over_pytorch_without_export": round(timings["torch"] / (timings["onnx"] - export_s), 2),
        "max_abs_difference_stored": gap,
    }
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
