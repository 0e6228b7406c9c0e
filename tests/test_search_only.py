"""The search-only edition: no PyTorch installed at all (the bundle for people who only index and
search). Every command here runs in a fresh Python whose ``import torch`` fails, as it does there.

What it can do: fit the default unsupervised codes on a folder over the backbone's descriptor graph
(shipped with the bundle), index, search and group; load a model a full install exported
(``fph-desktop export-graph``). What it cannot, and says so in one line: train, evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from index_support import app_dirs, make_photos, make_tiny_model, tiny_model_path, without_torch, write_photo  # noqa: F401


@pytest.fixture
def descriptor_graph(app_dirs):
    """What the bundle ships: the default backbone's descriptor graph (small input, random weights:
    the test needs its plumbing, not ImageNet's features)."""
    from fph_desktop.model.itq_graph import cached_descriptor_path
    from fph_desktop.model.onnx_engine import export_descriptor_graph

    return export_descriptor_graph("efficientnet_lite0", cached_descriptor_path("efficientnet_lite0"), 64, weights=None)


def test_without_pytorch_a_folder_is_fitted_indexed_searched_and_grouped(descriptor_graph, app_dirs, tmp_path):
    folder = tmp_path / "Photos"
    photos = make_photos(folder, 30)
    (folder / "copy.jpg").write_bytes(photos[0].read_bytes())
    done = without_torch("index", str(folder))
    assert done.returncode == 0, done.stderr
    [model] = (app_dirs / "models" / "unsupervised").glob("*.onnx")  # the code graph, no weights file
    query = write_photo(tmp_path / "query.jpg", seed=4, size=(90, 70))
    done = without_torch("search", str(query), "--index", str(folder), "-k", "3", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["engine"].startswith("ONNX Runtime") and len(found["queries"][0]["results"]) == 3
    assert found["model"]["path"].endswith(".onnx")
    done = without_torch("groups", str(folder), "--radius", "0", "--json")
    assert done.returncode == 0, done.stderr
    copies = [m for g in json.loads(done.stdout) for m in g["members"] if m["exact_duplicate"]]
    assert {m["relpath"] for m in copies} == {"copy.jpg", "album0/img_000.jpg"}


def test_the_code_graph_computes_what_the_pytorch_itq_model_computes(app_dirs, tmp_path):
    import torch

    from fph_desktop.imaging import open_image
    from fph_desktop.model import FPHConfig, build_model, fit_itq
    from fph_desktop.model.graph import GraphEncoder
    from fph_desktop.model.info import WeightsInfo
    from fph_desktop.model.itq_graph import DescriptorGraph, compose_code_graph, descriptors
    from fph_desktop.model.onnx_engine import export_descriptor_graph

    torch.manual_seed(0)
    graph = DescriptorGraph(export_descriptor_graph("efficientnet_lite0", tmp_path / "d.onnx", 64, weights=None))
    torch.manual_seed(0)  # the same random backbone again, inside the PyTorch model
    model = build_model(FPHConfig(method="itq", code_bits=16, image_size=64), None).eval()
    photos = make_photos(tmp_path / "Photos", 24)
    features, used = descriptors(graph, photos)
    assert used == list(range(24))
    mean, projection, scale = fit_itq(features, 16)
    model.set_fit(mean, projection, scale)
    info = WeightsInfo(FPHConfig(method="itq", code_bits=16, image_size=64), graph.preprocessing, fingerprint="test")
    code_graph = tmp_path / "itq.onnx"
    code_graph.write_bytes(compose_code_graph(graph, mean, projection, scale, info))
    by_graph = GraphEncoder.from_graph(code_graph)
    assert by_graph.code_bits == 16 and by_graph.info.config.method == "itq"
    images = [open_image(p, 64) for p in photos]
    packed, u = by_graph.encode_images(images)
    with torch.inference_mode():
        reference = model(torch.from_numpy(np.stack([by_graph.to_array(i) for i in images]))).u.numpy()
    assert np.abs(u - reference).max() < 1e-4


def test_without_pytorch_a_model_exported_by_a_full_install_is_used_and_training_says_what_it_needs(
    app_dirs, tmp_path, tiny_model_path
):
    done = subprocess.run(
        [sys.executable, "-m", "fph_desktop", "export-graph", str(tiny_model_path), "--out", str(tmp_path / "birds.onnx")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "Photos"
    make_photos(folder, 6)
    done = without_torch("index", str(folder), "--model", str(tmp_path / "birds.onnx"))
    assert done.returncode == 0, done.stderr
    done = without_torch("encode", str(folder / "album0" / "img_000.jpg"), "--model", str(tmp_path / "birds.onnx"))
    assert done.returncode == 0 and len(done.stdout.split()[0]) == 4, done.stderr  # 16 bits: 4 hex digits
    done = without_torch("index", str(folder), "--model", str(tiny_model_path), "--quiet")  # the graph is beside it now
    assert done.returncode == 0, done.stderr
    other = make_tiny_model(tmp_path / "other.fph", seed=3)  # never exported
    done = without_torch("index", str(folder), "--model", str(other), "--quiet")
    assert done.returncode == 2 and "needs PyTorch" in done.stderr and "export" in done.stderr
    done = without_torch("train", "--data", str(folder), "--out", str(tmp_path / "new.fph"))
    assert done.returncode == 2 and "`fph-desktop train` needs PyTorch, which is not installed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_without_pytorch_the_comparison_shows_both_photos_and_says_why_there_is_no_map(
    app_dirs, tmp_path, tiny_model_path, monkeypatch
):
    from fph_desktop.gui import tasks
    from fph_desktop.index import library as library_module
    from fph_desktop.index.library import Library
    from fph_desktop.model import graph
    from fph_desktop.progress import silent

    folder = tmp_path / "Photos"
    photos = make_photos(folder, 6)
    Library.open(folder, tiny_model_path, device="cpu").update()  # a full install indexed it (graph exported)
    monkeypatch.setattr(graph, "pytorch_available", lambda: False)  # then PyTorch is gone
    monkeypatch.setattr(library_module, "_ENCODER_CACHE", {})
    library = Library.open(folder, tiny_model_path, create=False)
    comparison = tasks.compare(silent(), library, str(photos[0]), str(photos[1]))
    assert comparison.query.heatmaps == {} and "no PyTorch" in comparison.note
    assert comparison.query.photo.shape[2] == 3 and comparison.code_bits == 16
    hits = library.search_images([photos[0]], k=6)[0].results
    assert comparison.distance == next(h.distance for h in hits if h.path == photos[1])
