"""Retrieval metrics for binary hash codes, in pure numpy.

Protocol (the project's method note):

* Every query is ranked against the whole database; a database item is relevant
  when its class label equals the query's label (single-label, 1-D labels).
* Ranking order is ``(distance, database index)``: a *stable* sort of each
  distance row, so tied items keep database order. No item is dropped from a
  ranking, and NaN distances are rejected because they cannot be ranked.
* A query with no relevant item in the database scores 0 and stays in the mean.
* Distances are either Hamming distances between packed codes
  (:func:`hamming_distance_matrix`) or any precomputed (Q, N) matrix, so the same
  functions serve real-valued (e.g. asymmetric) distances.

Work is done in chunks of query rows so that full benchmarks (about 6,000 x
6,000) stay within a few hundred megabytes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence

import numpy as np

from ..codes import as_words, popcount

__all__ = [
    "hamming_distance_matrix",
    "mean_average_precision",
    "tie_aware_mean_average_precision",
    "precision_at_k",
    "precision_recall_by_radius",
    "evaluate_codes",
]

NORMALIZATIONS = ("retrieved", "min_rk")


# Matrix elements handled per chunk; the kernels keep about ten such arrays alive.
_CHUNK_ELEMENTS = 1 << 20


def _query_chunks(num_queries: int, elements_per_query: int) -> Iterator[slice]:
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(1, elements_per_query))
    for start in range(0, num_queries, rows_per_chunk):
        yield slice(start, min(start + rows_per_chunk, num_queries))


# --------------------------------------------------------------------------- inputs


def _check_packed(packed, name: str) -> np.ndarray:
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        # Unpacked 0/1 arrays would give silently wrong distances.
        raise TypeError(f"{name} must be np.packbits output (uint8), got {packed.dtype}")
    if packed.ndim != 2:
        raise ValueError(f"{name} must have shape (num_codes, code_bits / 8), got {packed.shape}")
    return packed


def _check_labels(query_labels, db_labels, num_queries: int, num_db: int):
    query_labels = np.asarray(query_labels)
    db_labels = np.asarray(db_labels)
    if query_labels.ndim != 1 or db_labels.ndim != 1:
        raise ValueError("labels must be 1-D arrays of class ids (single-label)")
    if query_labels.shape[0] != num_queries or db_labels.shape[0] != num_db:
        raise ValueError(
            f"labels ({query_labels.shape[0]}, {db_labels.shape[0]}) do not match the distance matrix ({num_queries}, {num_db})"
        )
    return query_labels, db_labels


def _check_distances(distances, query_labels, db_labels):
    distances = np.asarray(distances)
    if distances.ndim != 2:
        raise ValueError(f"distances must have shape (num_queries, num_db), got {distances.shape}")
    num_queries, num_db = distances.shape
    if num_queries == 0 or num_db == 0:
        raise ValueError("need at least one query and one database item")
    if distances.dtype.kind not in "iuf":
        raise TypeError(f"distances must be integer or float, got {distances.dtype}")
    if distances.dtype.kind == "f" and np.isnan(distances).any():
        raise ValueError("distances contain NaN, which has no place in a ranking")
    query_labels, db_labels = _check_labels(query_labels, db_labels, num_queries, num_db)
    return distances, query_labels, db_labels


def _check_k(k, num_db: int) -> int:
    k = operator.index(k)
    if not 1 <= k <= num_db:
        raise ValueError(f"k must be between 1 and the database size {num_db}, got {k}")
    return k


def _check_code_bits(code_bits) -> int:
    code_bits = operator.index(code_bits)
    if code_bits < 0:
        raise ValueError(f"code_bits must be >= 0, got {code_bits}")
    return code_bits


def _check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    return normalization


# ------------------------------------------------------------------------- distances


def hamming_distance_matrix(query_packed, db_packed) -> np.ndarray:
    """Hamming distances (int32, shape (Q, N)) between np.packbits-packed codes.

    XOR + popcount over machine words, from :mod:`fph_desktop.codes` (the search's own
    kernel, with its numpy < 2 fallback). Padding bits from packbits are zero on both
    sides, so codes whose length is not a multiple of 8 are handled too.
    """
    query_packed = _check_packed(query_packed, "query_packed")
    db_packed = _check_packed(db_packed, "db_packed")
    if query_packed.shape[1] != db_packed.shape[1]:
        raise ValueError(f"code lengths differ: {query_packed.shape[1]} vs {db_packed.shape[1]} bytes")
    query_words, db_words = as_words(query_packed), as_words(db_packed)
    num_queries, num_db = query_packed.shape[0], db_packed.shape[0]
    distances = np.empty((num_queries, num_db), dtype=np.int32)
    for rows in _query_chunks(num_queries, num_db * db_words.shape[1]):
        differing = query_words[rows, None, :] ^ db_words[None, :, :]
        distances[rows] = popcount(differing).sum(axis=2, dtype=np.int32)
    return distances


# --------------------------------------------------------------------------- ranking


def _sort_keys(distances: np.ndarray) -> np.ndarray:
    """Small non-negative integers as uint16: numpy's stable sort then uses radix sort (~8x faster)."""
    if distances.dtype.kind in "iu" and distances.itemsize > 2 and distances.size:
        if distances.min() >= 0 and distances.max() <= np.iinfo(np.uint16).max:
            return distances.astype(np.uint16)
    return distances


def _rank(distances: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray):
    """Stable ranking of each row: returns (order, relevance in ranked order)."""
    order = np.argsort(_sort_keys(distances), axis=1, kind="stable")
    relevant_ranked = db_labels[order] == query_labels[:, None]
    return order, relevant_ranked


# ------------------------------------------------------------------ per-query kernels


def _average_precision(relevant_ranked: np.ndarray, k: int | None, normalization: str) -> np.ndarray:
    """AP@k per query (k=None: whole ranking); 0 where the denominator is 0."""
    cutoff = relevant_ranked.shape[1] if k is None else k
    hits = relevant_ranked[:, :cutoff]
    hits_so_far = np.cumsum(hits, axis=1, dtype=np.int64)
    precision_sum = np.where(hits, hits_so_far / np.arange(1, cutoff + 1), 0.0).sum(axis=1)
    if normalization == "retrieved":
        denominator = hits_so_far[:, -1]
    else:
        total_relevant = np.count_nonzero(relevant_ranked, axis=1)
        denominator = np.minimum(total_relevant, cutoff)
    return np.divide(precision_sum, denominator, out=np.zeros_like(precision_sum), where=denominator > 0)


def _tie_aware_average_precision(sorted_distances: np.ndarray, relevant_ranked: np.ndarray) -> np.ndarray:
    """Expected AP@all over all orderings within tie groups (McSherry & Najork 2008), exact.

    Take a tie group of n items with r relevant, occupying 1-based ranks c+1..c+n
    after R_b relevant items. A slot is relevant with probability r/n; given that,
    the other r-1 relevant items fill the other n-1 slots uniformly, so the
    expected relevant count through rank p is R_b + 1 + (p-c-1) * s with
    s = (r-1)/(n-1) (s = 0 when n = 1). Summing (r/n) * that / p over the group:
        (r/n) * [(R_b + 1 - (c+1) s) * (H(c+n) - H(c)) + s n],   H = harmonic numbers.
    Expected AP = sum over groups / R.
    """
    num_rows, num_db = relevant_ranked.shape
    starts_group = np.ones((num_rows, num_db), dtype=bool)
    starts_group[:, 1:] = sorted_distances[:, 1:] != sorted_distances[:, :-1]
    ends_group = np.ones((num_rows, num_db), dtype=bool)
    ends_group[:, :-1] = starts_group[:, 1:]
    # Row-major order pairs the k-th group start with the k-th group end.
    group_row, group_first = np.nonzero(starts_group)
    _, group_last = np.nonzero(ends_group)

    hits_through = np.cumsum(relevant_ranked, axis=1, dtype=np.int64)
    relevant_before = hits_through[group_row, group_first] - relevant_ranked[group_row, group_first]
    relevant_in_group = hits_through[group_row, group_last] - relevant_before
    group_size = group_last - group_first + 1
    others_relevant_share = np.divide(
        relevant_in_group - 1,
        group_size - 1,
        out=np.zeros(group_size.shape),
        where=group_size > 1,
    )
    harmonic = np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, num_db + 1))))
    reciprocal_rank_sum = harmonic[group_last + 1] - harmonic[group_first]
    group_terms = (relevant_in_group / group_size) * (
        (relevant_before + 1 - (group_first + 1) * others_relevant_share) * reciprocal_rank_sum
        + others_relevant_share * group_size
    )

    precision_sum = np.bincount(group_row, weights=group_terms, minlength=num_rows)
    total_relevant = hits_through[:, -1]
    return np.divide(precision_sum, total_relevant, out=np.zeros_like(precision_sum), where=total_relevant > 0)


def _precision_at_k(relevant_ranked: np.ndarray, k: int) -> np.ndarray:
    return np.count_nonzero(relevant_ranked[:, :k], axis=1) / k


def _radius_precision_recall_sums(distances: np.ndarray, relevant: np.ndarray, code_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-radius sums over these queries of precision and recall of {distance <= r}.

    Histogram trick: item -> bin ceil(d) (clipped to 0..code_bits+1), then a
    cumulative sum over bins counts {d <= r} for every integer radius at once.
    Empty retrieved set -> precision 0; no relevant item -> recall 0.
    """
    num_rows = distances.shape[0]
    num_bins = code_bits + 2  # last bin collects distances beyond code_bits
    if distances.dtype.kind == "f":
        bins = np.clip(np.ceil(distances), 0, code_bits + 1).astype(np.int64)
    else:
        bins = np.clip(distances, 0, code_bits + 1).astype(np.int64)
    flat_bins = bins + (np.arange(num_rows) * num_bins)[:, None]
    size = num_rows * num_bins
    retrieved = np.bincount(flat_bins.ravel(), minlength=size).reshape(num_rows, num_bins)
    retrieved_relevant = np.bincount(flat_bins[relevant], minlength=size).reshape(num_rows, num_bins)
    retrieved = np.cumsum(retrieved, axis=1)[:, : code_bits + 1]
    retrieved_relevant = np.cumsum(retrieved_relevant, axis=1)[:, : code_bits + 1]
    total_relevant = np.count_nonzero(relevant, axis=1)[:, None]

    precision = np.divide(retrieved_relevant, retrieved, out=np.zeros(retrieved.shape), where=retrieved > 0)
    recall = np.divide(
        retrieved_relevant,
        np.broadcast_to(total_relevant, retrieved.shape),
        out=np.zeros(retrieved.shape),
        where=total_relevant > 0,
    )
    return precision.sum(axis=0), recall.sum(axis=0)


def _mean_over_ranked_chunks(distances, query_labels, db_labels, ranked_metric) -> float:
    """Run ranked_metric(distances_chunk, order, relevant_ranked) chunkwise; mean over queries."""
    num_queries, num_db = distances.shape
    per_query = np.empty(num_queries)
    for rows in _query_chunks(num_queries, num_db):
        order, relevant_ranked = _rank(distances[rows], query_labels[rows], db_labels)
        per_query[rows] = ranked_metric(distances[rows], order, relevant_ranked)
    return float(per_query.mean())


# ------------------------------------------------------------------------ public API


def mean_average_precision(distances, query_labels, db_labels, k: int | None = None, normalization: str = "retrieved") -> float:
    """mAP over the stable (distance, database index) ranking; k=None means mAP@all.

    AP@k = sum over relevant ranks i <= k of precision@i, divided by
    "retrieved": the number of relevant items in the top k (common convention), or
    "min_rk": min(R, k), R = relevant items in the whole database (stricter).
    For k=None both equal R. Queries with nothing to normalise by score 0.
    """
    _check_normalization(normalization)
    distances, query_labels, db_labels = _check_distances(distances, query_labels, db_labels)
    if k is not None:
        k = _check_k(k, distances.shape[1])
    return _mean_over_ranked_chunks(
        distances,
        query_labels,
        db_labels,
        lambda _d, _order, relevant_ranked: _average_precision(relevant_ranked, k, normalization),
    )


def tie_aware_mean_average_precision(distances, query_labels, db_labels) -> float:
    """Expected mAP@all over all orderings of tied distances (McSherry & Najork 2008), exact.

    Coarse Hamming distances tie a lot; this removes the dependence on database order.
    """

    def tie_aware(row_distances, order, relevant_ranked):
        sorted_distances = np.take_along_axis(row_distances, order, axis=1)
        return _tie_aware_average_precision(sorted_distances, relevant_ranked)

    distances, query_labels, db_labels = _check_distances(distances, query_labels, db_labels)
    return _mean_over_ranked_chunks(distances, query_labels, db_labels, tie_aware)


def precision_at_k(distances, query_labels, db_labels, k: int) -> float:
    """Mean over queries of (relevant items in the top k of the stable ranking) / k."""
    distances, query_labels, db_labels = _check_distances(distances, query_labels, db_labels)
    k = _check_k(k, distances.shape[1])
    return _mean_over_ranked_chunks(
        distances,
        query_labels,
        db_labels,
        lambda _d, _order, relevant_ranked: _precision_at_k(relevant_ranked, k),
    )


def precision_recall_by_radius(distances, query_labels, db_labels, code_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hamming-ball precision and recall for radii r = 0..code_bits, averaged over queries.

    Retrieved set of a query = {db items with distance <= r}. A query whose
    retrieved set is empty has precision 0; a query with no relevant item has
    recall 0; both stay in the mean. Returns (radii, mean_precision, mean_recall).
    """
    code_bits = _check_code_bits(code_bits)
    distances, query_labels, db_labels = _check_distances(distances, query_labels, db_labels)
    num_queries, num_db = distances.shape
    precision_sum = np.zeros(code_bits + 1)
    recall_sum = np.zeros(code_bits + 1)
    for rows in _query_chunks(num_queries, num_db):
        relevant = query_labels[rows, None] == db_labels[None, :]
        chunk_precision, chunk_recall = _radius_precision_recall_sums(distances[rows], relevant, code_bits)
        precision_sum += chunk_precision
        recall_sum += chunk_recall
    return np.arange(code_bits + 1), precision_sum / num_queries, recall_sum / num_queries


def evaluate_codes(
    query_packed,
    query_labels,
    db_packed,
    db_labels,
    ks: Sequence[int] = (10, 100),
    code_bits: int | None = None,
) -> dict:
    """All metrics for packed codes in one pass (one distance chunk and one sort per query chunk).

    Keys: "map_all", "map_tie_aware", and for each k "map@k" (retrieved
    normalisation), "map@k_min_rk", "precision@k"; "pr_curve" is a list of
    {"radius", "precision", "recall"} dicts for r = 0..code_bits
    (code_bits defaults to 8 * bytes per code).
    """
    query_packed = _check_packed(query_packed, "query_packed")
    db_packed = _check_packed(db_packed, "db_packed")
    num_queries, num_db = query_packed.shape[0], db_packed.shape[0]
    if num_queries == 0 or num_db == 0:
        raise ValueError("need at least one query and one database item")
    query_labels, db_labels = _check_labels(query_labels, db_labels, num_queries, num_db)
    # Cut-offs beyond the database size say nothing new: they are left out rather than clamped.
    ks = [_check_k(k, num_db) for k in ks if k <= num_db]
    code_bits = _check_code_bits(8 * db_packed.shape[1] if code_bits is None else code_bits)

    per_query = {name: np.empty(num_queries) for name in ("map_all", "map_tie_aware")}
    for k in ks:
        for name in (f"map@{k}", f"map@{k}_min_rk", f"precision@{k}"):
            per_query[name] = np.empty(num_queries)
    precision_sum = np.zeros(code_bits + 1)
    recall_sum = np.zeros(code_bits + 1)

    for rows in _query_chunks(num_queries, num_db):
        distances = hamming_distance_matrix(query_packed[rows], db_packed)
        order, relevant_ranked = _rank(distances, query_labels[rows], db_labels)
        sorted_distances = np.take_along_axis(distances, order, axis=1)
        per_query["map_all"][rows] = _average_precision(relevant_ranked, None, "retrieved")
        per_query["map_tie_aware"][rows] = _tie_aware_average_precision(sorted_distances, relevant_ranked)
        for k in ks:
            per_query[f"map@{k}"][rows] = _average_precision(relevant_ranked, k, "retrieved")
            per_query[f"map@{k}_min_rk"][rows] = _average_precision(relevant_ranked, k, "min_rk")
            per_query[f"precision@{k}"][rows] = _precision_at_k(relevant_ranked, k)
        relevant = query_labels[rows, None] == db_labels[None, :]
        chunk_precision, chunk_recall = _radius_precision_recall_sums(distances, relevant, code_bits)
        precision_sum += chunk_precision
        recall_sum += chunk_recall

    results: dict = {name: float(values.mean()) for name, values in per_query.items()}
    results["pr_curve"] = [
        {"radius": radius, "precision": float(precision), "recall": float(recall)}
        for radius, precision, recall in zip(
            range(code_bits + 1), precision_sum / num_queries, recall_sum / num_queries, strict=True
        )
    ]
    return results
