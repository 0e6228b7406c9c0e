"""Re-indexing an unchanged folder of 10,000 photos: nothing is decoded or encoded, so the time is
the walk plus one comparison per file against the SQLite index. Target: under 5 s.

    python benchmarks/reindex_unchanged.py [--files 10000] [--keep DIR]

The folder (small distinct JPEGs in 100 sub-folders) and a tiny random model are generated first;
the first, full index run is timed and reported too, but it is not the measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_folder(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"album_{i % 100:02d}" / f"photo_{i:05d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((48, 36)).save(path, quality=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="work in this directory (reused between runs) instead of a temporary one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fph-reindex-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(work / "appdata")
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(work / "appcache")

    import torch

    from fph_desktop.index import scan_folder, update_index
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.encoder import Encoder
    from fph_desktop.model.weights import save_weights

    folder = work / "Photos"
    start = time.perf_counter()
    make_folder(folder, args.files)
    print(f"generated {args.files} photos in {time.perf_counter() - start:.1f} s (not measured)")
    torch.manual_seed(0)
    model_path = work / "tiny.fph"
    save_weights(model_path, build_model(FPHConfig(backbone="resnet18", code_bits=64, image_size=32), None))
    encoder = Encoder.load(model_path, device="cpu")

    first = update_index(folder, encoder, model_path=model_path, batch_size=64)
    print(f"first run (not the measurement): {first.summary()}")

    scans, reruns = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        scan = scan_folder(folder)
        scans.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = update_index(folder, encoder, batch_size=64)
        reruns.append(time.perf_counter() - t)
        assert report.encoded == 0 and report.unchanged == args.files, report.summary()
    print("\n| files | walk only (s) | unchanged re-index, end to end (s) | encoded | target |")
    print("|---:|---:|---:|---:|---|")
    print(
        f"| {len(scan.files):,} | {min(scans):.2f} | {min(reruns):.2f} "
        f"(runs: {', '.join(f'{r:.2f}' for r in reruns)}) | 0 | < 5 s |"
    )


if __name__ == "__main__":
    main()
