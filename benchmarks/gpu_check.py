"""GPU check: full fine-tuning of FPH on birds-dev with mixed precision for a fixed number of epochs,
printing training images/s beside a bare backbone training step measured in the same run, and the
test mAP@all at 48 bits. Meant for a CUDA machine; runs (slowly) anywhere.

    python benchmarks/gpu_check.py --backbone efficientnet_lite0 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fph_desktop.device import describe_device, select_device  # noqa: E402
from fph_desktop.model import FPHConfig, build_backbone  # noqa: E402
from fph_desktop.progress import Progress  # noqa: E402
from fph_desktop.train.config import TrainConfig  # noqa: E402
from fph_desktop.train.trainer import train  # noqa: E402


def bare_backbone_images_per_second(name: str, device: torch.device, batch: int, steps: int = 30) -> float:
    """Forward + backward + SGD step of the backbone alone on random pixels, same AMP and layout."""
    backbone = build_backbone(name, "imagenet").to(device).train()
    if device.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(backbone.parameters(), lr=1e-3, momentum=0.9)
    pixels = torch.randn(batch, 3, 224, 224, device=device)
    if device.type == "cuda":
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = backbone(pixels)["C5"].float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "birds-dev"))
    parser.add_argument("--backbone", default="efficientnet_lite0", choices=["resnet18", "efficientnet_lite0"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    device = select_device("auto")
    print(f"device: {describe_device(device)}; torch {torch.__version__}", flush=True)
    config = TrainConfig(
        data=args.data,
        model=FPHConfig(backbone=args.backbone, code_bits=args.bits),
        mode="full",
        epochs=args.epochs,
        workers=args.workers,
        amp=True,
    )
    batch = config.classes_per_batch * config.images_per_class
    bare = bare_backbone_images_per_second(args.backbone, device, batch)
    print(f"bare backbone training step: {bare:.0f} images/s (batch {batch})", flush=True)
    history: list[dict] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            config,
            Path(tmp) / "gpu.fph",
            Path(tmp) / "run",
            Progress(on_partial=lambda r: history.append(r) if r.get("kind") == "epoch" else None),
            resume=False,
        )
    wall = time.monotonic() - started
    images = sum(r["images"] for r in history)
    loop_seconds = sum(r["train_seconds"] for r in history)
    fph = images / loop_seconds
    # The first epoch includes DataLoader start-up and cudnn autotuning; report the steady state too.
    steady = history[1:] or history
    steady_rate = sum(r["images"] for r in steady) / sum(r["train_seconds"] for r in steady)
    print(
        json.dumps(
            {
                "device": describe_device(device),
                "backbone": args.backbone,
                "epochs": args.epochs,
                "bits": args.bits,
                "fph_train_images_per_s": round(fph, 1),
                "fph_train_images_per_s_after_epoch_1": round(steady_rate, 1),
                "bare_backbone_images_per_s": round(bare, 1),
                "ratio_fph_to_bare": round(steady_rate / bare, 3),
                "test_map_all": round(result.test_metrics["map_all"], 4),
                "best_val_map": result.info.training["best_val_map"],
                "wall_seconds": round(wall, 1),
                "val_map_by_epoch": [round(r["val_map"], 4) for r in history],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
