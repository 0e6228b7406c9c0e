"""Shared fixtures: isolated app folders, and tiny real photo collections cut from birds-dev."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(2)

BIRDS_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"


@pytest.fixture(autouse=True)
def isolated_app_dirs(tmp_path):
    """No test reads or writes the real user's data, cache or torch hub folders. Its own patcher, so
    a test's ``monkeypatch.undo()`` cannot lift the isolation."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FPH_DESKTOP_DATA_DIR", str(tmp_path / "app-data"))
        patch.setenv("FPH_DESKTOP_CACHE_DIR", str(tmp_path / "app-cache"))
        patch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
        yield


def birds_dev() -> Path:
    if not (BIRDS_DEV / "manifest.csv").is_file():
        pytest.skip(f"birds-dev photos not found at {BIRDS_DEV}")
    return BIRDS_DEV


def make_tiny_birds(root: Path, classes: int = 3, train: int = 6, test: int = 3, side: int = 72) -> Path:
    """A split-folders collection of real bird photos, shrunk so that tests stay fast."""
    source = birds_dev()
    class_dirs = sorted(p for p in (source / "train").iterdir() if p.is_dir())[:classes]
    for class_dir in class_dirs:
        for split, count in (("train", train), ("test", test)):
            files = sorted((source / split / class_dir.name).glob("*.jpg"))[:count]
            out = root / split / class_dir.name
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                with Image.open(f) as image:
                    image.thumbnail((side * 2, side * 2))
                    scale = side / min(image.size)
                    image = image.resize((round(image.width * scale), round(image.height * scale)))
                    image.save(out / f.name, quality=90)
    return root


@pytest.fixture(scope="session")
def tiny_birds(tmp_path_factory) -> Path:
    return make_tiny_birds(tmp_path_factory.mktemp("tiny-birds"))


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A small random-init FPH (resnet18 at 64 px, 16 bits) saved as a real weights file."""
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.weights import save_weights

    torch.manual_seed(0)
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64), backbone_weights=None)
    path = tmp_path_factory.mktemp("models") / "tiny.fph"
    save_weights(path, model, ["a", "b"], {"note": "random init for tests"})
    return path


@pytest.fixture(autouse=True)
def collect_cycles_in_the_main_thread():
    """Once a worker layer exists, automatic cycle collection is off (see gui/gc_guard.py) and its
    timer only runs inside an event loop; tests that never spin one are collected here instead."""
    yield
    import gc

    if not gc.isenabled():
        gc.collect()
