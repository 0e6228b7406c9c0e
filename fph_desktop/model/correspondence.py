"""Why two photos matched, region by region: which cells of the query's low-layer grid agree with
which cells of the match's, and how strongly (numpy only; the maps come from ``Encoder.explain``).

On the horizontal pyramid's common grid, every cell of each photo is described by the low layers'
features there (one layer, or the fused map). Two cells agree as much as their features point the
same way (cosine similarity), weighted by how strongly the network responds in both (so two patches
of plain sky, which look alike to any layer, do not count as the reason for a bird's match). Each
cell's agreement is its best partner's score in the other photo, shown from the two photos' median
cell (0) to their best pair (1); the strongest *mutual* best pairs
(each cell the other's best partner), spread over the photo, are the numbered pairs the view draws.

"All detail layers together" uses the trained fused map where the model has one (an FPH with the
horizontal pyramid); for a model without it (vertical-only FPH, ITQ) it is the consensus of the
layers: the mean of their similarity matrices. Either way it is what the low layers see in common,
which for those models is shown but is not what their code is made of (the view says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FUSED = "fused"
# Cells are compared on a grid of at most this many per side: finer cells (28 x 28 on a 224-pixel crop)
# are too small to be a part of a bird, and their best partners are noise.
MAX_CELLS = 14


@dataclass(frozen=True)
class Pair:
    """Two cells that are each other's best partner: (row, col) on the grid, and their agreement (0..1)."""

    query_cell: tuple[int, int]
    match_cell: tuple[int, int]
    score: float


@dataclass
class Correspondence:
    query_agreement: np.ndarray  # (h, w) 0..1: each query cell's best agreement with the match
    match_agreement: np.ndarray  # (h, w) 0..1: the same, for the match's cells
    pairs: list[Pair] = field(default_factory=list)  # strongest first

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.query_agreement.shape)


def _unit_cells(features: np.ndarray) -> np.ndarray:
    """(C, h, w) to (h*w, C) rows of length 1 (a cell with no response stays 0)."""
    cells = features.reshape(features.shape[0], -1).T.astype(np.float32)
    norms = np.linalg.norm(cells, axis=1, keepdims=True)
    return cells / np.maximum(norms, 1e-8)


def _response(features: list[np.ndarray]) -> np.ndarray:
    """How strongly the network responds in each cell, 0..1 (each layer's energy over its own maximum, averaged)."""
    energies = []
    for f in features:
        energy = np.linalg.norm(f.reshape(f.shape[0], -1), axis=0)
        energies.append(energy / max(float(energy.max()), 1e-8))
    return np.mean(energies, axis=0)


def similarity(query: list[np.ndarray], match: list[np.ndarray]) -> np.ndarray:
    """(h*w, h*w) cosine similarity of the cells, averaged over the given maps (each (C, h, w))."""
    return np.mean([_unit_cells(q) @ _unit_cells(m).T for q, m in zip(query, match, strict=True)], axis=0)


def correspond(query: list[np.ndarray], match: list[np.ndarray], top: int = 5, spread: int | None = None) -> Correspondence:
    """The agreement maps and the ``top`` strongest mutual pairs of two photos' grid features (lists of
    (C, h, w) maps on one grid; several maps are averaged). Pairs are more than ``spread`` cells apart
    in the query (default: a seventh of the grid), so they point at different parts of the photo."""
    h, w = query[0].shape[-2:]
    spread = max(1, round(min(h, w) / 7)) if spread is None else spread
    if any(m.shape[-2:] != (h, w) for m in (*query, *match)):
        raise ValueError("the maps must share one grid")
    weight = np.sqrt(np.outer(_response(query), _response(match)))  # both cells must respond
    scores = np.clip(similarity(query, match), 0.0, 1.0) * weight
    best_for_query, best_for_match = scores.argmax(axis=1), scores.argmax(axis=0)
    query_best, match_best = scores.max(axis=1), scores.max(axis=0)
    # Shown relative to these two photos: from the median cell (nothing glows) to the best pair (full).
    # Every cell has *some* best partner, so without the floor a whole photo would glow faintly.
    floor = float(np.median(np.concatenate([query_best, match_best])))
    top_score = max(float(query_best.max()), float(match_best.max()))
    scale = max(top_score - floor, 1e-8)
    mutual = [i for i in range(h * w) if best_for_match[best_for_query[i]] == i]
    mutual.sort(key=lambda i: -query_best[i])
    pairs: list[Pair] = []
    for i in mutual:
        row, col = divmod(i, w)
        if any(abs(row - p.query_cell[0]) <= spread and abs(col - p.query_cell[1]) <= spread for p in pairs):
            continue
        pairs.append(Pair((row, col), divmod(int(best_for_query[i]), w), float(np.clip((query_best[i] - floor) / scale, 0, 1))))
        if len(pairs) == top:
            break
    query_agreement = np.clip((query_best - floor) / scale, 0, 1).reshape(h, w)
    match_agreement = np.clip((match_best - floor) / scale, 0, 1).reshape(h, w)
    return Correspondence(query_agreement, match_agreement, pairs)


def pooled(features: np.ndarray, max_cells: int = MAX_CELLS) -> np.ndarray:
    """(C, h, w) averaged over square blocks down to at most ``max_cells`` a side (when they tile it)."""
    h, w = features.shape[-2:]
    factor = -(-max(h, w) // max_cells)
    if factor <= 1 or h % factor or w % factor:
        return features
    c = features.shape[0]
    return features.reshape(c, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def correspondences(
    query_maps: dict[str, np.ndarray], match_maps: dict[str, np.ndarray], top: int = 5
) -> dict[str, Correspondence]:
    """One :class:`Correspondence` per layer both photos have (``C2``…, and ``fused``: the fused map
    where there is one, else the consensus of the layers)."""
    query_maps = {k: pooled(v) for k, v in query_maps.items()}
    match_maps = {k: pooled(v) for k, v in match_maps.items()}
    layers = [k for k in query_maps if k != FUSED and k in match_maps]
    found = {k: correspond([query_maps[k]], [match_maps[k]], top) for k in layers}
    if FUSED in query_maps and FUSED in match_maps:
        found[FUSED] = correspond([query_maps[FUSED]], [match_maps[FUSED]], top)
    elif layers:
        found[FUSED] = correspond([query_maps[k] for k in layers], [match_maps[k] for k in layers], top)
    return found
