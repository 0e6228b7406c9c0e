#!/usr/bin/env bash
# One prepared GPU check (issue #2): full fine-tuning with mixed precision on birds-dev, images/s beside a bare
# backbone training step, and mAP@all at 48 bits, in well under 8 minutes on one modern GPU.
# Run from the repository root on a CUDA machine, with ../shared/data/birds-dev beside the checkout
# (or pass DATA=/path/to/birds-dev). The device tool sends only the repo: copy birds-dev into an ignored
# folder of the repo and set DATA to it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/birds-dev}
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name(0))"
python3 -m pip install -q --no-deps -e . 2>/dev/null || true
timeout 470 python3 benchmarks/gpu_check.py --data "$DATA" --backbone "${BACKBONE:-efficientnet_lite0}" --epochs "${EPOCHS:-8}" --bits 48
