"""int8 quantisation of the exported graph, measured as an option (issue #9: adopt only where mAP
drops by at most 0.005).

The default model (EfficientNet-Lite0 + ITQ, 48 bits, fitted on birds-dev's train split) is exported
as the app exports it, then quantised with ONNX Runtime's static QDQ quantisation (int8 weights and
activations, per-channel weights, calibrated on 128 train photos; the form its CPU kernels run
fastest with VNNI), and dynamic quantisation (weights only) as the other common choice. All graphs
encode birds-dev's photos from the same decoded pixels: mAP@all (query = test, database = train),
the bits that differ from the float graph, and the speed of a batch of 32 (photos/s), alternated.

    python benchmarks/int8.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"
RESULTS = Path(__file__).resolve().parent / "results" / "int8.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fph_desktop.codes import pack_codes
    from fph_desktop.data.layouts import load_labelled_folder
    from fph_desktop.device import select_device
    from fph_desktop.evaluation.metrics import evaluate_codes
    from fph_desktop.imaging import open_image
    from fph_desktop.model.encoder import Encoder
    from fph_desktop.model.graph import OnnxSession
    from fph_desktop.model.weights import save_weights
    from fph_desktop.train.unsupervised import fit_itq_model

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="int8-"))
    dataset = load_labelled_folder(BIRDS)
    train, test = dataset.split("train"), dataset.split("test")
    model = fit_itq_model([i.path for i in train], "efficientnet_lite0", 48, device=select_device("cpu"))
    weights = work / "itq.fph"
    save_weights(weights, model, dataset.classes, {"method": "itq"})
    encoder = Encoder.load(weights, "cpu", engine="onnx")
    graph = weights.with_name(weights.name + ".onnx")
    items = train + test
    pixels = np.stack([encoder.to_array(open_image(i.path, encoder.decode_side)) for i in items])
    labels = np.array([i.label for i in items])
    is_test = np.array([False] * len(train) + [True] * len(test))

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            chosen = rng.choice(len(train), 128, replace=False)
            self.batches = iter([{"pixels": pixels[chosen[s : s + 16]]} for s in range(0, 128, 16)])

        def get_next(self):
            return next(self.batches, None)

    prepared = work / "prepared.onnx"
    quant_pre_process(str(graph), str(prepared))
    variants = {"float32": graph}
    variants["int8 static (QDQ, per-channel)"] = work / "static.onnx"
    quantize_static(
        str(prepared), str(variants["int8 static (QDQ, per-channel)"]), Calibration(),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    variants["int8 dynamic (weights)"] = work / "dynamic.onnx"
    quantize_dynamic(str(prepared), str(variants["int8 dynamic (weights)"]), weight_type=QuantType.QInt8)
    sessions = {name: OnnxSession(path, None, args.threads) for name, path in variants.items()}
    results: dict = {"data": "birds-dev", "model": "EfficientNet-Lite0 + ITQ, 48 bits", "threads": args.threads, "variants": {}}
    codes = {}
    for name, session in sessions.items():
        u = np.concatenate([session.run(pixels[s : s + 64]) for s in range(0, len(pixels), 64)])
        codes[name] = pack_codes(u)
        m = evaluate_codes(codes[name][is_test], labels[is_test], codes[name][~is_test], labels[~is_test], code_bits=48)
        results["variants"][name] = {"map_all": m["map_all"], "graph_mb": round(variants[name].stat().st_size / 1e6, 1)}
    batch = pixels[:32]
    speed = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            session.run(batch)
            started = time.perf_counter()
            for _ in range(3):
                session.run(batch)
            speed[name].append(96 / (time.perf_counter() - started))
    base = results["variants"]["float32"]
    for name, row in results["variants"].items():
        row["photos_per_second"] = round(max(speed[name]), 1)
        row["speed_over_float32"] = round(max(speed[name]) / max(speed["float32"]), 2)
        row["map_drop"] = round(base["map_all"] - row["map_all"], 4)
        row["bits_differing_share"] = float(np.unpackbits(codes[name] ^ codes["float32"], axis=1).mean())
        row["adopt (drop <= 0.005 and faster)"] = row["map_drop"] <= 0.005 and row["speed_over_float32"] > 1.0
        print(
            f"{name:32s} mAP {row['map_all']:.4f} (drop {row['map_drop']:+.4f})  {row['photos_per_second']:6.1f} photos/s "
            f"({row['speed_over_float32']:.2f}x)  bits differing {row['bits_differing_share']:.2%}  {row['graph_mb']} MB"
        )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
