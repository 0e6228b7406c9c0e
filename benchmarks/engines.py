"""PyTorch against ONNX Runtime on the CPU, in one run: speed and whether the codes depend on the engine.

    python benchmarks/engines.py                 # birds-dev (1,402 photos), models trained/fitted here
    python benchmarks/engines.py --skip-train    # speed only (ITQ)
    python benchmarks/engines.py --data cub200-val --skip-speed   # agreement on 5,994 CUB-200 photos

For each model kind (unsupervised ITQ, vertical-only FPH = the default, full FPH with the horizontal
pyramid), both engines encode birds-dev's train and test photos from the same decoded tensors; we
report the share of differing bits, the photos whose code differs, the largest |u| at a differing
bit, and mAP@all (query = test, database = train) with each engine. Speed: the bare forward of one
batch of 32 real photos, and indexing the whole folder end to end, with each engine, alternated.
Targets (issue #9): bits differ <= 0.05 %, mAP equal within 0.002, ONNX end to end >= 1.7x PyTorch.
``--data cub200-val``: the same agreement figures on CUB-200's official training split, all 200
species (queries: a seeded third of each species, as benchmarks/quality.py's cub200-val), with the
models still trained on birds-dev (what is measured is whether the engines agree, not the models).
Results: benchmarks/results/engines.json (engines-cub200-val.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"
RESULTS = Path(__file__).resolve().parent / "results" / "engines.json"


def trained_models(workdir: Path, skip_train: bool) -> dict[str, Path]:
    from fph_desktop.data.layouts import load_labelled_folder
    from fph_desktop.device import select_device
    from fph_desktop.model.config import FPHConfig
    from fph_desktop.model.weights import save_weights
    from fph_desktop.train.config import TrainConfig
    from fph_desktop.train.trainer import train
    from fph_desktop.train.unsupervised import fit_itq_model

    models = {}
    dataset = load_labelled_folder(BIRDS)
    itq = fit_itq_model([i.path for i in dataset.split("train")], "efficientnet_lite0", 48, device=select_device("cpu"))
    models["itq"] = workdir / "itq.fph"
    save_weights(models["itq"], itq, dataset.classes, {"method": "itq"})
    if skip_train:
        return models
    for name, settings in (("vertical (default)", {}), ("full FPH", {"use_horizontal": True})):
        out = workdir / f"{name.split()[0]}.fph"
        config = TrainConfig(data=str(BIRDS), model=FPHConfig(**settings), epochs=40, device="cpu")
        train(config, out, workdir / f"run-{name.split()[0]}")
        models[name] = out
    return models


def agreement(model_path: Path, photos: list, labels: np.ndarray, split: np.ndarray) -> dict:

    from fph_desktop.evaluation.metrics import evaluate_codes
    from fph_desktop.imaging import open_image
    from fph_desktop.model.encoder import Encoder

    by_torch = Encoder.load(model_path, "cpu", engine="torch")
    by_onnx = Encoder.load(model_path, "cpu", engine="onnx")
    packed, real = {"torch": [], "onnx": []}, {"torch": [], "onnx": []}
    for start in range(0, len(photos), 64):
        batch = np.stack([by_torch.to_array(open_image(p, by_torch.decode_side)) for p in photos[start : start + 64]])
        for name, encoder in (("torch", by_torch), ("onnx", by_onnx)):
            p, u = encoder.encode_batch(batch)
            packed[name].append(p)
            real[name].append(u)
    packed = {k: np.concatenate(v) for k, v in packed.items()}
    real = {k: np.concatenate(v) for k, v in real.items()}
    differing = np.unpackbits(packed["torch"] ^ packed["onnx"], axis=1).astype(bool)
    bits = by_torch.code_bits
    differing = differing[:, :bits]
    maps = {}
    for name in ("torch", "onnx"):
        q, d = split == "test", split == "train"
        maps[name] = evaluate_codes(packed[name][q], labels[q], packed[name][d], labels[d], ks=(10,), code_bits=bits)["map_all"]
    return {
        "photos": len(photos),
        "bits_differing_share": float(differing.mean()),
        "photos_with_a_differing_code": int(differing.any(axis=1).sum()),
        "max_abs_u_at_a_differing_bit": float(np.abs(real["torch"][differing]).max()) if differing.any() else 0.0,
        "max_abs_u_difference": float(np.abs(real["torch"] - real["onnx"]).max()),
        "map_all_torch": maps["torch"],
        "map_all_onnx": maps["onnx"],
        "map_difference": abs(maps["torch"] - maps["onnx"]),
        "engine_auto": Encoder.load(model_path, "cpu").describe_engine(),
    }


def speed(model_path: Path, photos: list, rounds: int) -> dict:

    from fph_desktop.imaging import open_image
    from fph_desktop.index.indexer import update_index
    from fph_desktop.model.encoder import Encoder

    encoders = {name: Encoder.load(model_path, "cpu", engine=name) for name in ("torch", "onnx")}
    batch = np.stack([encoders["torch"].to_array(open_image(p, 256)) for p in photos[:32]])
    bare = {name: [] for name in encoders}
    end_to_end = {name: [] for name in encoders}
    folder = Path(tempfile.mkdtemp(prefix="engines-photos-"))
    try:
        for i, p in enumerate(photos):
            shutil.copy(p, folder / f"{i:05d}.jpg")
        for _ in range(rounds):
            for name, encoder in encoders.items():  # alternated, so drift on a shared machine hits both
                encoder.encode_batch(batch)
                started = time.perf_counter()
                for _ in range(3):
                    encoder.encode_batch(batch)
                bare[name].append(3 * len(batch) / (time.perf_counter() - started))
                data = Path(tempfile.mkdtemp(prefix="engines-index-"))
                import os

                os.environ["FPH_DESKTOP_DATA_DIR"] = str(data)
                started = time.perf_counter()
                report = update_index(folder, encoder)
                end_to_end[name].append(report.encoded / (time.perf_counter() - started))
                shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = {k: {"bare_forward": max(bare[k]), "end_to_end": max(end_to_end[k])} for k in encoders}
    return {
        "photos_per_second": best,
        "onnx_over_torch_bare": best["onnx"]["bare_forward"] / best["torch"]["bare_forward"],
        "onnx_over_torch_end_to_end": best["onnx"]["end_to_end"] / best["torch"]["end_to_end"],
        "rounds": rounds,
        "photos": len(photos),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", choices=("birds-dev", "cub200-val"), default="birds-dev", help="the photos to agree on")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    import torch

    from fph_desktop.data.layouts import load_labelled_folder

    torch.set_num_threads(args.threads)
    if args.data == "cub200-val":
        dataset = load_labelled_folder(BIRDS.parent / "cub200-train" / "train", test_fraction=1 / 3, seed=0)
    else:
        dataset = load_labelled_folder(BIRDS)
    items = dataset.split("train") + dataset.split("test")
    photos = [i.path for i in items]
    labels = np.array([i.label for i in items])
    split = np.array(["train"] * len(dataset.split("train")) + ["test"] * len(dataset.split("test")))
    workdir = Path(tempfile.mkdtemp(prefix="engines-models-"))
    results = {"data": args.data, "models_trained_on": "birds-dev", "threads": args.threads, "torch": torch.__version__}
    models = trained_models(workdir, args.skip_train)
    if not args.skip_speed:
        results["speed (ITQ, Lite0, batch 32)"] = speed(models["itq"], photos, args.rounds)
        print(json.dumps(results, indent=2), flush=True)
    for name, path in models.items():
        results[name] = agreement(path, photos, labels, split)
        print(name, json.dumps(results[name], indent=2), flush=True)
    out = RESULTS if args.data == "birds-dev" else RESULTS.with_name(f"engines-{args.data}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
