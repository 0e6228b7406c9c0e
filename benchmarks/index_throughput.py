"""Indexing throughput end to end (scan, read + hash, decode, preprocess, encode, commit) against the
bare model's forward pass on pre-decoded tensors of the same batch size, in the same run.

    python benchmarks/index_throughput.py                       # birds-dev, then 200 generated 12 MP JPEGs
    python benchmarks/index_throughput.py --big 0 --limit 500   # birds-dev only, 500 photos

Model: EfficientNet-Lite0 with its ImageNet weights (offline, from the pip package) under an ITQ
head of 48 bits (a random rotation: the codes' quality does not matter here, the cost does).
The bare forward is measured before and after the indexing pass and averaged, because other
work on a shared machine moves both. Target: end to end >= 0.85 of bare forward.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"


def make_model(path: Path) -> Path:
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.weights import save_weights

    model = build_model(FPHConfig(method="itq", backbone="efficientnet_lite0", code_bits=48), backbone_weights="imagenet")
    rng = np.random.default_rng(0)
    dim = model.projection.shape[0]
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, 48)))
    model.set_fit(np.zeros(dim, np.float32), rotation.astype(np.float32), np.ones(48, np.float32))
    save_weights(path, model, training={"note": "benchmark: random ITQ rotation"})
    return path


def make_12mp_folder(folder: Path, count: int, sources: list[Path]) -> None:
    """``count`` 4000x3000 JPEGs (quality 92) made by upscaling real photos: camera-sized files
    with real content. Not part of any measurement."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"IMG_{i:04d}.jpg"
        if path.exists():
            continue
        with Image.open(sources[i % len(sources)]) as image:
            big = image.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
        big.save(path, quality=92)


def bare_forward(encoder, folder: Path, batch_size: int, repeats: int) -> float:
    """Images/s of ``encoder.encode_batch`` alone on one pre-decoded batch of real photos."""
    import torch

    from fph_desktop.imaging import open_image

    paths = sorted(p for p in folder.rglob("*.jpg"))[:batch_size]
    batch = torch.stack([encoder.to_tensor(open_image(p, encoder.decode_side)) for p in paths])
    encoder.encode_batch(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        encoder.encode_batch(batch)
    return repeats * len(batch) / (time.perf_counter() - start)


def end_to_end(encoder, folder: Path, batch_size: int, workers: int | None, data_dir: Path) -> tuple[float, str]:
    from fph_desktop.index import update_index

    shutil.rmtree(data_dir, ignore_errors=True)
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(data_dir)
    start = time.perf_counter()
    report = update_index(folder, encoder, batch_size=batch_size, workers=workers)
    seconds = time.perf_counter() - start
    return report.encoded / seconds, report.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--birds", type=Path, default=BIRDS)
    parser.add_argument("--limit", type=int, default=0, help="index only the first N birds-dev photos (0: all)")
    parser.add_argument("--big", type=int, default=200, help="how many 12 MP JPEGs to generate (0: skip)")
    parser.add_argument("--work", type=Path, help="directory for generated files (reused); default a temporary one")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: the indexer's)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch

    from fph_desktop.device import describe_device
    from fph_desktop.model.encoder import Encoder

    work = args.work or Path(tempfile.mkdtemp(prefix="fph-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(work / "appcache")
    encoder = Encoder.load(make_model(work / "lite0-itq48.fph"), device=args.device)
    print(
        f"device: {describe_device(encoder.device)}; torch threads {torch.get_num_threads()}; batch {args.batch_size}; "
        f"decode workers {args.workers or 'default'}; CPUs {os.cpu_count()}"
    )

    datasets = []
    birds = args.birds
    if args.limit:
        birds = work / "birds-subset"
        if not birds.exists():
            for p in sorted(args.birds.rglob("*.jpg"))[: args.limit]:
                target = birds / p.relative_to(args.birds)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, target)
    datasets.append(("birds-dev", birds))
    if args.big:
        big = work / "12mp"
        start = time.perf_counter()
        make_12mp_folder(big, args.big, sorted(args.birds.rglob("*.jpg"))[:: max(1, 1402 // max(args.big, 1))])
        size = sum(p.stat().st_size for p in big.glob("*.jpg")) / args.big / 1e6
        print(
            f"12 MP folder: {args.big} JPEGs 4000x3000, {size:.1f} MB each on average "
            f"(generated in {time.perf_counter() - start:.0f} s, not measured)"
        )
        datasets.append((f"{args.big} x 12 MP JPEG", big))

    rows = []
    for name, folder in datasets:
        n = sum(1 for _ in folder.rglob("*.jpg"))
        repeats = max(2, min(8, n // args.batch_size // 4))
        before = bare_forward(encoder, folder, args.batch_size, repeats)
        rate, summary = end_to_end(encoder, folder, args.batch_size, args.workers, work / f"appdata-{len(rows)}")
        after = bare_forward(encoder, folder, args.batch_size, repeats)
        bare = (before + after) / 2
        print(f"{name}: bare forward {before:.1f} / {after:.1f} img/s; end to end {rate:.1f} img/s -- {summary}", flush=True)
        rows.append((name, n, bare, rate))

    print("\n| data | photos | bare forward (img/s) | end to end (img/s) | ratio | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, n, bare, rate in rows:
        print(f"| {name} | {n} | {bare:.1f} | {rate:.1f} | {rate / bare:.2f} | >= 0.85 |")


if __name__ == "__main__":
    main()
