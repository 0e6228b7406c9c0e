"""Shared helpers for the index and search tests: a tiny random model, photos written with
Pillow, an encoder that counts what it encodes, and hand-made bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from fph_desktop.model import FPHConfig, build_model
from fph_desktop.model.encoder import Encoder
from fph_desktop.model.weights import save_weights


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64), None)
    save_weights(path, model)
    return path


class CountingEncoder:
    """Wraps an Encoder and counts the images that went through the network."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self.encoded = 0

    def encode_batch(self, batch):
        self.encoded += len(batch)
        return self._encoder.encode_batch(batch)

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def write_photo(path: Path, seed: int, size=(96, 72), fmt: str | None = None) -> Path:
    """A distinct, compressible photo-like image (smooth gradients plus a seeded pattern)."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    freq = rng.uniform(0.02, 0.2, 3)
    pixels = np.stack([(base[c] + 80 * np.sin(freq[c] * (x + seed * 7) + c) + 60 * np.cos(freq[c] * y)) for c in range(3)], -1)
    pixels += rng.normal(0, 12, pixels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format=fmt)
    return path


def make_photos(folder: Path, count: int, start: int = 0, subdirs: int = 3) -> list[Path]:
    return [write_photo(folder / f"album{i % subdirs}" / f"img_{i:03d}.jpg", seed=i) for i in range(start, start + count)]


def write_bomb_png(path: Path, side: int = 40000) -> Path:
    """A tiny PNG whose header claims side x side pixels: over Pillow's decompression-bomb limit."""
    Image.new("L", (1, 1)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def write_truncated_jpeg(path: Path, seed: int = 999) -> Path:
    write_photo(path, seed, size=(200, 150))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# The search-only edition has no PyTorch: a fresh Python whose ``import torch`` fails runs the CLI.
_NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from fph_desktop.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
"""


def without_torch(*args: str):
    """``fph-desktop ARGS`` in a Python where PyTorch cannot be imported (a CompletedProcess)."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


# -- fixtures (imported by the test modules that use them) ---------------------------------------
import pytest  # noqa: E402


@pytest.fixture
def app_dirs(tmp_path, monkeypatch):
    """Indexes and caches go to a fresh temporary directory, never the user's."""
    data = tmp_path / "appdata"
    monkeypatch.setenv("FPH_DESKTOP_DATA_DIR", str(data))
    monkeypatch.setenv("FPH_DESKTOP_CACHE_DIR", str(tmp_path / "appcache"))
    return data


@pytest.fixture(scope="session")
def one_torch_thread():
    """Tiny CPU forwards are far faster on one thread (and do not fight a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.fph", seed=0)


@pytest.fixture(scope="session")
def other_model_path(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "other.fph", seed=1)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_path, one_torch_thread) -> Encoder:
    return Encoder.load(tiny_model_path, device="cpu")
