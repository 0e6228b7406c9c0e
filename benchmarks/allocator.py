"""The malloc tuning's effect on CPU encoding: the same model, batch and photos, forward passes timed
in two child processes, one with the app's tuned allocator and one with glibc's defaults
(``FPH_DESKTOP_MALLOC=default``), alternated so that the shared machine's noise hits both.

    python benchmarks/allocator.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, json
sys.path.insert(0, {root!r})
import torch
from fph_desktop.allocator import malloc_tuned
from fph_desktop.model import FPHConfig, build_model
torch.set_num_threads({threads})
model = build_model(FPHConfig(backbone={backbone!r}), "imagenet").eval()
x = torch.randn({batch}, 3, 224, 224)
with torch.inference_mode():
    for _ in range(2):
        model.backbone(x)
    started = time.perf_counter()
    for _ in range({repeats}):
        model.backbone(x)
    seconds = time.perf_counter() - started
print(json.dumps({{"tuned": malloc_tuned(), "photos_per_s": {batch} * {repeats} / seconds}}))
"""


def run(tuned: bool, args) -> dict:
    env = dict(os.environ)
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(key, None)
    env["FPH_DESKTOP_MALLOC"] = "tuned" if tuned else "default"
    code = CHILD.format(root=str(ROOT), threads=args.threads, backbone=args.backbone, batch=args.batch, repeats=args.repeats)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "allocator.json"))
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        for tuned in (False, True):
            result = run(tuned, args)
            rows.append({"round": round_, **result})
            print(
                f"round {round_}: {'tuned  ' if result['tuned'] else 'default'} {result['photos_per_s']:.1f} photos/s", flush=True
            )
    default = [r["photos_per_s"] for r in rows if not r["tuned"]]
    tuned = [r["photos_per_s"] for r in rows if r["tuned"]]
    ratio = (sum(tuned) / len(tuned)) / (sum(default) / len(default)) if default and tuned else float("nan")
    print(f"tuned / default = {ratio:.2f}x (means of {args.rounds} rounds each)")
    Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows, "ratio": round(ratio, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
