"""The two engines behind the encoder: PyTorch (the reference) and ONNX Runtime on the CPU.

Codes must not depend on the engine: a bit may differ only where the network's output is within
float noise of zero. The graph is exported from the weights file, verified, cached beside it, and
refused when it was exported from another model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from index_support import app_dirs, make_photos, make_tiny_model, tiny_model_path  # noqa: F401

from fph_desktop.errors import MissingDependencyError
from fph_desktop.imaging import open_image
from fph_desktop.index.library import Library
from fph_desktop.model import onnx_engine
from fph_desktop.model.encoder import Encoder


def _encode_both(model_path, photos):
    images = [open_image(p, min_side=64) for p in photos]
    by_torch = Encoder.load(model_path, "cpu", engine="torch")
    by_onnx = Encoder.load(model_path, "cpu", engine="onnx")
    assert by_torch.engine == "torch" and by_onnx.engine == "onnx"
    return by_torch.encode_images(images), by_onnx.encode_images(images)


def test_both_engines_give_the_same_codes_on_real_photos(app_dirs, tmp_path, tiny_model_path):
    photos = make_photos(tmp_path / "photos", 24)
    (packed_t, u_t), (packed_o, u_o) = _encode_both(tiny_model_path, photos)
    assert np.abs(u_t - u_o).max() < 1e-4
    differing = np.unpackbits(packed_t ^ packed_o, axis=1).astype(bool)
    assert (np.abs(u_t[differing]) < 1e-4).all()  # only bits whose output is float noise away from 0
    assert differing.mean() <= 0.0005


def test_auto_prefers_onnx_runtime_on_the_cpu_and_says_which_engine_ran(app_dirs, tiny_model_path):
    encoder = Encoder.load(tiny_model_path, "cpu")
    assert encoder.engine == "onnx" and encoder.describe_engine().startswith("ONNX Runtime (ONNX Runtime ")
    assert tiny_model_path.with_name(tiny_model_path.name + ".onnx").is_file()  # cached beside the weights


def test_without_onnxruntime_auto_falls_back_to_pytorch_and_onnx_says_how_to_install(app_dirs, tiny_model_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: import raises ImportError
    encoder = Encoder.load(tiny_model_path, "cpu")
    assert encoder.engine == "torch" and encoder.describe_engine() == "PyTorch (ONNX Runtime is not installed)"
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime onnx"):
        Encoder.load(tiny_model_path, "cpu", engine="onnx")


def test_a_graph_exported_from_another_model_is_refused_and_exported_again(app_dirs, tmp_path):
    first = make_tiny_model(tmp_path / "birds.fph", seed=0)
    Encoder.load(first, "cpu", engine="onnx")
    graph = first.with_name("birds.fph.onnx")
    old_graph = graph.read_bytes()
    make_tiny_model(first, seed=5)  # retrained in place: same file name, other weights
    retrained = Encoder.load(first, "cpu", engine="torch")
    with pytest.raises(onnx_engine.StaleGraphError, match="was exported from model"):
        onnx_engine.OnnxSession(graph, retrained.fingerprint)
    encoder = Encoder.load(first, "cpu", engine="onnx")  # refused, exported again, verified
    assert graph.read_bytes() != old_graph and encoder.engine == "onnx"
    batch = torch.randn(4, 3, 64, 64)
    np.testing.assert_allclose(encoder.encode_batch(batch)[1], retrained.encode_batch(batch)[1], atol=1e-4)


def test_the_index_does_not_depend_on_the_engine(app_dirs, tmp_path, tiny_model_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 8)
    by_onnx = Library.open(folder, tiny_model_path, device="cpu", engine="onnx")
    by_onnx.update()
    by_torch = Library.open(folder, tiny_model_path, device="cpu", engine="torch")
    assert by_torch.db_path == by_onnx.db_path and len(by_torch) == 8
    query = folder / "album0" / "img_003.jpg"
    [from_onnx], [from_torch] = by_onnx.search_images([query], k=8), by_torch.search_images([query], k=8)
    assert [r.relpath for r in from_onnx.results] == [r.relpath for r in from_torch.results]


@pytest.mark.parametrize("kind", ["full FPH", "horizontal only", "ITQ"])
def test_every_model_kind_exports_and_agrees_behind_efficientnet_lite(kind, tmp_path):
    """Lite0's input-dependent padding hid the map sizes from the exporter's adaptive pooling."""
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.weights import save_weights

    settings = {"full FPH": {"use_horizontal": True}, "horizontal only": {"use_horizontal": True, "use_vertical": False},
                "ITQ": {"method": "itq"}}[kind]  # fmt: skip
    torch.manual_seed(0)
    model = build_model(FPHConfig(backbone="efficientnet_lite0", code_bits=16, image_size=64, **settings), None)
    save_weights(tmp_path / "m.fph", model)
    batch = torch.randn(3, 3, 64, 64)
    by_onnx = Encoder.load(tmp_path / "m.fph", "cpu", engine="onnx")
    by_torch = Encoder.load(tmp_path / "m.fph", "cpu", engine="torch")
    np.testing.assert_allclose(by_onnx.encode_batch(batch)[1], by_torch.encode_batch(batch)[1], atol=1e-4)
