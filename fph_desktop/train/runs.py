"""What a training run folder says about itself, so that an app started later can offer to resume.

Each run folder holds ``run.json`` beside its checkpoints: the training config, where the weights go,
how far it got and whether it finished. A run that is not finished and has a checkpoint is
*interrupted*: a cancel, a closed window, a crash or a killed process all leave one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..fileio import atomic_write
from .config import TrainConfig

RUN_FILE = "run.json"
CHECKPOINT_FILE = "last.pt"


def runs_dir() -> Path:
    return paths.data_dir() / "runs"


@dataclass
class RunRecord:
    run_dir: Path
    config: TrainConfig
    output: Path
    epoch: int  # finished epochs
    epochs: int
    state: str  # "running" or "finished"
    updated: float  # time.time() of the last write

    @property
    def resumable(self) -> bool:
        return self.state != "finished" and (self.run_dir / CHECKPOINT_FILE).is_file()

    def describe(self) -> str:
        model = self.config.model
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.updated))
        return (
            f"{Path(self.config.data).name or self.config.data}: {model.backbone}, {model.code_bits} bits, "
            f"stopped after epoch {self.epoch} of {self.epochs} ({when})"
        )


def write_record(run_dir: Path, config: TrainConfig, output: Path, epoch: int, epochs: int, state: str) -> None:
    data = {
        "config": config.to_dict(),
        "output": str(output),
        "epoch": epoch,
        "epochs": epochs,
        "state": state,
        "updated": time.time(),
    }
    with atomic_write(Path(run_dir) / RUN_FILE) as handle:
        handle.write(json.dumps(data, indent=1).encode())


def read_record(run_dir: Path) -> RunRecord | None:
    """None for a folder without a readable record (an older or foreign folder is simply not offered)."""
    try:
        data = json.loads((Path(run_dir) / RUN_FILE).read_text())
        return RunRecord(
            Path(run_dir),
            TrainConfig.from_dict(data["config"]),
            Path(data["output"]),
            int(data["epoch"]),
            int(data["epochs"]),
            str(data["state"]),
            float(data["updated"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def interrupted_runs(root: Path | None = None) -> list[RunRecord]:
    """Resumable runs, the most recently updated first."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    records = [read_record(d) for d in root.iterdir() if d.is_dir()]
    return sorted((r for r in records if r is not None and r.resumable), key=lambda r: r.updated, reverse=True)


def discard_run(run_dir: Path) -> None:
    """Forget an interrupted run: its checkpoints go, the photos and any saved weights stay."""
    run_dir = Path(run_dir)
    if (run_dir / RUN_FILE).is_file():
        shutil.rmtree(run_dir)
