"""Does decoding keep up with the ONNX engine? Decode + preprocess against encode, per photo, in one run.

    python benchmarks/decode.py               # 300 birds-dev photos and 40 generated 12 MP JPEGs

Decoding is what the indexer's thread pool does for each file (read, JPEG draft reduction to the
model's input side, EXIF rotation, RGB, resize + crop + normalise); encoding is one batch of 32
through each engine. Decoding is timed on one thread and with the pool the indexer uses (one
thread per core), so the ratio says whether the pool keeps the network busy. Then each set is
indexed end to end with the ONNX engine (read, hash, decode in the pool, encode, commit) and set
against the bound of decoding and encoding sharing the same cores (their core-seconds per photo):
near 1 means the pool and the network keep every core busy.
Results: benchmarks/results/decode.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"
RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"


def decode_rate(encoder, photos: list[Path], threads: int) -> float:
    from fph_desktop.imaging import open_image

    def one(path: Path):
        with open(path, "rb") as handle:
            data = handle.read()
        return encoder.to_array(open_image(path, encoder.decode_side, data=data))

    started = time.perf_counter()
    if threads == 1:
        for p in photos:
            one(p)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, photos))
    return len(photos) / (time.perf_counter() - started)


def encode_rate(encoder, batch, repeats: int = 3) -> float:
    encoder.encode_batch(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        encoder.encode_batch(batch)
    return repeats * len(batch) / (time.perf_counter() - started)


def main() -> None:
    import os

    import torch

    from benchmarks.index_throughput import make_12mp_folder, make_model
    from fph_desktop.imaging import open_image
    from fph_desktop.index.indexer import update_index
    from fph_desktop.model.encoder import Encoder

    torch.set_num_threads(2)
    workdir = Path(tempfile.mkdtemp(prefix="decode-bench-"))
    model = make_model(workdir / "itq.fph")
    birds = sorted(BIRDS.glob("train/*/*.jpg"))[:300]
    big = workdir / "12mp"
    make_12mp_folder(big, 40, birds)
    sets = {"birds-dev (about 0.2 MP)": birds, "12 MP JPEGs (4000x3000)": sorted(big.glob("*.jpg"))}
    encoders = {name: Encoder.load(model, "cpu", engine=name) for name in ("torch", "onnx")}
    batch = np.stack([encoders["onnx"].to_array(open_image(p, 256)) for p in birds[:32]])
    pool = max(1, min(8, os.cpu_count() or 1))
    results = {"threads_for_the_network": 2, "decode_pool_threads": pool, "sets": {}}
    rates = {name: encode_rate(encoder, batch) for name, encoder in encoders.items()}
    results["encode_photos_per_second"] = rates
    for label, photos in sets.items():
        one = decode_rate(encoders["onnx"], photos, 1)
        many = decode_rate(encoders["onnx"], photos, pool)
        os.environ["FPH_DESKTOP_DATA_DIR"] = str(workdir / f"data-{len(results['sets'])}")
        started = time.perf_counter()
        report = update_index(photos[0].parent if label.startswith("12") else BIRDS / "train", encoders["onnx"])
        end_to_end = report.encoded / (time.perf_counter() - started)
        # Core-seconds per photo: decoding 1/one on one core, encoding pool/rate on all of them.
        bound = pool / (1 / one + pool / rates["onnx"])
        results["sets"][label] = {
            "photos": len(photos),
            "decode_photos_per_second_one_thread": one,
            f"decode_photos_per_second_{pool}_threads": many,
            "decode_over_onnx_encode": many / rates["onnx"],
            "index_end_to_end_photos_per_second": end_to_end,
            "index_photos": report.encoded,
            "bound_sharing_the_cores": bound,
            "end_to_end_over_bound": end_to_end / bound,
        }
        print(label, json.dumps(results["sets"][label], indent=1), flush=True)
    print(json.dumps(results["encode_photos_per_second"], indent=1))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
