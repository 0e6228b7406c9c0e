"""The two engines behind the encoder: PyTorch (the reference) and ONNX Runtime on the CPU.

Codes must not depend on the engine: a bit may differ only where the network's output is within
float noise of zero. The graph is exported from the weights file, verified, cached beside it, and
refused when it was exported from another model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from index_support import app_dirs, make_photos, make_tiny_model, tiny_model_path, without_torch, write_photo  # noqa: F401

from fph_desktop.errors import MissingDependencyError
from fph_desktop.imaging import open_image
from fph_desktop.index.library import Library
from fph_desktop.model.encoder import Encoder
from fph_desktop.model.graph import GraphEncoder, OnnxSession, StaleGraphError


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
    with pytest.raises(StaleGraphError, match="was exported from model"):
        OnnxSession(graph, retrained.fingerprint)
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


# -- searching with the exported graph alone, before (or without) PyTorch --------------------------
def test_a_search_needs_no_pytorch_once_the_graph_is_exported(app_dirs, tmp_path, tiny_model_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 10)
    library = Library.open(folder, tiny_model_path, device="cpu", engine="onnx")  # exports the graph
    library.update()
    query = write_photo(tmp_path / "query.jpg", seed=3, size=(90, 70))  # not in the folder: encoded
    [expected] = library.search_images([query], k=5)
    done = without_torch("search", str(query), "--index", str(folder), "-k", "5", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["engine"].startswith("ONNX Runtime") and "graph tiny.fph.onnx" in found["engine"]
    hits = found["queries"][0]["results"]
    assert [(r["relpath"], r["distance"]) for r in hits] == [(r.relpath, r.distance) for r in expected.results]


def test_without_a_graph_for_this_very_file_pytorch_loads_the_weights(app_dirs, tmp_path):
    weights = make_tiny_model(tmp_path / "birds.fph", seed=0)
    Encoder.load(weights, "cpu", engine="onnx")
    assert GraphEncoder.for_weights(weights) is not None
    make_tiny_model(weights, seed=5)  # retrained in place: the graph beside it is of the old file
    assert GraphEncoder.for_weights(weights) is None
    folder = tmp_path / "Photos"
    make_photos(folder, 4)
    Library.open(folder, weights, device="cpu", engine="torch").update()
    library = Library.open(folder, weights, device="cpu", create=False, search_only=True)
    assert library.encoder.engine == "onnx" and hasattr(library.encoder, "explain")  # re-exported by PyTorch
    assert GraphEncoder.for_weights(weights) is not None  # and the next launch searches without it


def test_a_graph_of_the_first_format_is_exported_again(app_dirs, tmp_path, tiny_model_path):
    import onnx

    Encoder.load(tiny_model_path, "cpu", engine="onnx")
    graph = tiny_model_path.with_name(tiny_model_path.name + ".onnx")
    proto = onnx.load(graph)
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key == "fph_desktop.fingerprint"]
    del proto.metadata_props[:]
    for key, value in kept:  # what the first release wrote: the fingerprint alone
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, graph)
    assert GraphEncoder.for_weights(tiny_model_path) is None
    Encoder.load(tiny_model_path, "cpu", engine="onnx")
    assert GraphEncoder.for_weights(tiny_model_path) is not None


def test_the_graph_encoder_gives_the_codes_of_the_pytorch_one(app_dirs, tmp_path, tiny_model_path):
    photos = make_photos(tmp_path / "photos", 12)
    images = [open_image(p, min_side=64) for p in photos]
    by_torch = Encoder.load(tiny_model_path, "cpu", engine="torch")
    Encoder.load(tiny_model_path, "cpu", engine="onnx")
    graph = GraphEncoder.for_weights(tiny_model_path)
    assert graph.fingerprint == by_torch.fingerprint and graph.code_bits == 16
    assert graph.describe_engine().startswith("ONNX Runtime (ONNX Runtime ")
    (packed_t, u_t), (packed_g, u_g) = by_torch.encode_images(images), graph.encode_images(images)
    assert np.abs(u_t - u_g).max() < 1e-4
    assert (np.unpackbits(packed_t ^ packed_g, axis=1).astype(bool) <= (np.abs(u_t) < 1e-4)).all()


def test_a_library_opened_with_the_graph_alone_still_explains_a_match(app_dirs, tmp_path, tiny_model_path, monkeypatch):
    from fph_desktop.gui import tasks
    from fph_desktop.index import library as library_module
    from fph_desktop.progress import silent

    folder = tmp_path / "Photos"
    photos = make_photos(folder, 6)
    Library.open(folder, tiny_model_path, device="cpu").update()
    monkeypatch.setattr(library_module, "_ENCODER_CACHE", {})  # as in a fresh process
    library = Library.open(folder, tiny_model_path, create=False, search_only=True)
    assert isinstance(library.encoder, GraphEncoder)
    comparison = tasks.compare(silent(), library, str(photos[0]), str(photos[1]))
    assert comparison.query.heatmaps and comparison.code_bits == 16
    hits = library.search_images([photos[0]], k=6)[0].results
    assert comparison.distance == next(h.distance for h in hits if h.path == photos[1])  # the bits the search counted
