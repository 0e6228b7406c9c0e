"""Why two photos matched, region by region: the correspondence of their low-layer grid cells."""

from __future__ import annotations

import numpy as np
import pytest
from index_support import app_dirs, make_photos  # noqa: F401

from fph_desktop.model.correspondence import correspond, correspondences


def _grid(cells: dict[tuple[int, int], np.ndarray], size: int = 7, channels: int = 16, seed: int = 0) -> np.ndarray:
    """Weak random background, with the given feature vectors at the given cells."""
    features = np.random.default_rng(seed).uniform(0, 0.05, (channels, size, size)).astype(np.float32)
    for (row, col), vector in cells.items():
        features[:, row, col] = vector
    return features


def test_the_same_detail_in_two_places_is_paired_and_glows_in_both_photos():
    rng = np.random.default_rng(1)
    beak, wing = rng.uniform(0, 1, 16), rng.uniform(0, 1, 16)
    beak[:8], wing[8:] = 0, 0  # two distinct details
    query = _grid({(1, 1): beak, (5, 4): wing}, seed=2)
    match = _grid({(4, 5): beak, (0, 2): wing}, seed=3)  # the same details elsewhere (the bird moved)
    found = correspond([query], [match], top=5)
    pairs = {(p.query_cell, p.match_cell) for p in found.pairs[:2]}
    assert pairs == {((1, 1), (4, 5)), ((5, 4), (0, 2))}
    assert found.query_agreement[1, 1] > 0.9 and found.match_agreement[4, 5] > 0.9
    assert np.median(found.query_agreement) < 0.3  # the background does not glow
    assert found.pairs == sorted(found.pairs, key=lambda p: -p.score)


def test_without_a_trained_fusion_all_layers_together_is_their_consensus():
    rng = np.random.default_rng(4)
    detail = rng.uniform(0.5, 1, 16)
    layers_q = {"C2": _grid({(2, 2): detail}, seed=5), "C3": _grid({(2, 2): detail}, seed=6)}
    layers_m = {"C2": _grid({(3, 3): detail}, seed=7), "C3": _grid({(3, 3): detail}, seed=8)}
    found = correspondences(layers_q, layers_m)
    assert set(found) == {"C2", "C3", "fused"}
    assert found["fused"].pairs[0].query_cell == (2, 2) and found["fused"].pairs[0].match_cell == (3, 3)
    with pytest.raises(ValueError, match="one grid"):
        correspond([layers_q["C2"]], [np.zeros((16, 5, 5), np.float32)])


@pytest.mark.parametrize("kind", ["full FPH", "vertical only", "horizontal only", "ITQ"])
def test_every_model_kind_explains_a_match_off_the_gui_thread(kind, app_dirs, tmp_path):
    import torch

    from fph_desktop.gui import tasks
    from fph_desktop.index.library import Library
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.weights import save_weights
    from fph_desktop.progress import silent

    settings = {"full FPH": {"use_horizontal": True}, "vertical only": {}, "ITQ": {"method": "itq"},
                "horizontal only": {"use_horizontal": True, "use_vertical": False}}[kind]  # fmt: skip
    torch.manual_seed(0)
    save_weights(tmp_path / "m.fph", build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64, **settings), None))
    folder = tmp_path / "Photos"
    photos = make_photos(folder, 4)
    library = Library.open(folder, tmp_path / "m.fph", device="cpu")
    library.update()
    comparison = tasks.compare(silent(), library, str(photos[0]), str(photos[1]))
    assert set(comparison.query.heatmaps) == set(comparison.match.heatmaps) >= {"fused", "C2", "C3", "C4"}
    assert comparison.pairs["fused"] and comparison.query.markers["fused"]
    heat = comparison.query.heatmaps["fused"]
    assert heat.shape == (64, 64, 4) and heat[..., 3].min() < heat[..., 3].max()  # opacity rises with agreement
    assert comparison.maps_feed_code == (kind in ("full FPH", "horizontal only"))
