"""Exact Hamming search over packed codes held in memory, with a stable order.

Order is (Hamming distance, then file order) everywhere, for every backend: ties at short codes
decide a lot, so they must never depend on a heap's whims or a thread's timing.

* numpy (default, always available): codes are padded to whole machine words (8 bytes for 33..64
  bits, so 1M 64-bit codes take 8 MB) and compared with XOR + popcount (:mod:`fph_desktop.codes`), in blocks of
  queries x codes that stay in cache, on a few threads (numpy releases the GIL). The k nearest of
  the first block are chosen from a histogram of its distances (distances are small integers, so
  counting beats ``argpartition`` several-fold); after that a block only contributes codes strictly
  closer than the current k-th best, which are rare, and are merged in by one sort.
* faiss (optional extra ``faiss-cpu``): ``IndexBinaryFlat`` in its counting mode, whose results
  are then put in the same stable order; both backends return identical ids and distances.

Re-ranking: the Hamming candidates can be reordered by the asymmetric distance between the query's
real-valued tanh output ``u`` and each candidate's bits ``b``: ``(q - u.b) / 2``, which equals the
Hamming distance when ``u`` is itself binary, and otherwise lets stronger evidence break ties.

Ranked search (:meth:`SearchIndex.ranked`, what a library searches with by default): when the index
holds each photo's own real-valued outputs, the best :data:`DEFAULT_RERANK_DEPTH` Hamming candidates
are reordered by the distance between the two outputs (:func:`~.copies.output_distances`), and the
query's edited copies (:mod:`.copies`: perceptual hash and code both close, looked for in the whole
index, not only among the candidates) come first. On birds-dev's edited-copies benchmark this puts
every copy in its original's top 5 (99.7 % with three times the look-alikes), against 96 % (87 %) by
Hamming distance, and look-alike search gains too: mAP@all 0.546 -> 0.600 (``benchmarks/edited_copies.py``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..codes import as_words, distance_dtype, hamming_distances, popcount, word_layout  # noqa: F401 (re-exported)
from ..errors import BadArgumentError, MissingDependencyError
from .copies import COPY_PHOTO_RADIUS, copy_code_radius, output_distances

BACKENDS = ("auto", "numpy", "faiss")

# Hamming candidates that a ranked search reorders by the stored outputs. On the edited-copies
# benchmark 20, 100 and all of 1,500 photos rank the copies alike (within 0.5 %); 100 leaves room for
# a larger library at a cost of microseconds a query.
DEFAULT_RERANK_DEPTH = 100

# Elements (queries x codes) compared per block: 128K keeps the XOR buffer (1 MB) in L2 (measured best).
_BLOCK_ELEMENTS = 1 << 17
_QUERY_BLOCK = 64


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


_distance_dtype = distance_dtype


class _Scratch:
    """Per-thread buffers reused across blocks, so the hot loop allocates nothing big."""

    def __init__(self, rows: int, cols: int, word_dtype: np.dtype, dist_dtype: np.dtype) -> None:
        self.xor = np.empty((rows, cols), dtype=word_dtype)
        self.dist = np.empty((rows, cols), dtype=dist_dtype)
        self.count = np.empty((rows, cols), dtype=np.uint8)
        self.mask = np.empty((rows, cols), dtype=bool)

    def distances(self, queries: np.ndarray, block: np.ndarray) -> np.ndarray:
        """(rows, cols) distances between ``queries`` (rows, W) and ``block`` (cols, W)."""
        rows, cols = len(queries), len(block)
        xor, dist = self.xor[:rows, :cols], self.dist[:rows, :cols]
        for w in range(block.shape[1]):
            column = block[:, w] if block.shape[1] == 1 else np.ascontiguousarray(block[:, w])
            np.bitwise_xor(queries[:, w : w + 1], column[None, :], out=xor)
            if w == 0:
                popcount(xor, out=dist)
            else:
                count = self.count[:rows, :cols]
                popcount(xor, out=count)
                np.add(dist, count, out=dist, casting="unsafe")
        return dist


def select_smallest(distances: np.ndarray, k: int, max_distance: int) -> np.ndarray:
    """Positions of the ``k`` smallest entries of a 1-D distance array in (distance, position) order.

    A histogram of the distances (they are integers in 0..max_distance) gives the k-th distance t;
    everything below t is taken, then the first entries at exactly t. No full sort, no argpartition.
    """
    k = min(k, len(distances))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    counts = np.bincount(distances, minlength=max_distance + 1)
    threshold = int(np.searchsorted(np.cumsum(counts), k))
    below = np.flatnonzero(distances < threshold)
    at = np.flatnonzero(distances == threshold)[: k - len(below)]
    chosen = np.concatenate([below, at])
    return chosen[np.argsort(distances[chosen], kind="stable")]


def _sort_rows(dists: np.ndarray, ids: np.ndarray, k: int, id_limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (distance, id) and keep k: one argsort on a combined int64 key."""
    key = dists.astype(np.int64) * (id_limit + 1) + ids
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dists, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _topk_range(queries: np.ndarray, words: np.ndarray, start: int, stop: int, k: int, code_bits: int):
    """Top-k of ``queries`` among codes[start:stop]; ids are global. Returns (dists, ids) (Q, k')."""
    n_queries, total = len(queries), stop - start
    k = min(k, total)
    dist_dtype = _distance_dtype(code_bits)
    cols = max(k, min(total, max(4096, _BLOCK_ELEMENTS // max(1, n_queries))))
    scratch = _Scratch(n_queries, cols, words.dtype, dist_dtype)
    best_d = np.empty((n_queries, k), dtype=np.int32)
    best_i = np.empty((n_queries, k), dtype=np.int64)

    first = scratch.distances(queries, words[start : start + cols])
    for row in range(n_queries):
        chosen = select_smallest(first[row], k, code_bits)
        best_d[row] = first[row, chosen]
        best_i[row] = chosen + start
    threshold = best_d[:, -1:].astype(dist_dtype)  # strictly closer codes can still enter

    for offset in range(start + cols, stop, cols):
        block = words[offset : min(offset + cols, stop)]
        dist = scratch.distances(queries, block)
        mask = scratch.mask[:, : len(block)]
        np.less(dist, threshold, out=mask)
        if not mask.any():
            continue
        # 1-D flatnonzero is several times faster than 2-D nonzero on a mostly-False mask.
        flat = np.flatnonzero(mask)
        rows, positions = np.divmod(flat, len(block))
        touched = np.unique(rows)
        all_rows = np.concatenate([np.repeat(touched, k), rows])
        all_d = np.concatenate([best_d[touched].ravel(), dist[rows, positions].astype(np.int32)])
        all_i = np.concatenate([best_i[touched].ravel(), positions + offset])
        key = (all_rows.astype(np.int64) * (code_bits + 2) + all_d) * (stop + 1) + all_i
        order = np.argsort(key, kind="stable")
        sorted_rows = all_rows[order]
        group_start = np.searchsorted(sorted_rows, touched)
        keep = order[group_start[:, None] + np.arange(k)]
        best_d[touched] = all_d[keep]
        best_i[touched] = all_i[keep]
        threshold[touched, 0] = best_d[touched, -1]
    return best_d, best_i


def hamming_topk(
    query_words: np.ndarray, code_words: np.ndarray, k: int, code_bits: int, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest codes of each query: ``(distances (Q, k) int32, ids (Q, k) int64)``, each row
    in (distance, id) order. Inputs are word arrays from :func:`as_words`. ``k`` is capped at N."""
    n_codes = len(code_words)
    k = min(int(k), n_codes)
    n_queries = len(query_words)
    if k <= 0 or n_queries == 0:
        return np.zeros((n_queries, 0), np.int32), np.zeros((n_queries, 0), np.int64)
    threads = threads or default_threads()
    query_blocks = [(q, min(q + _QUERY_BLOCK, n_queries)) for q in range(0, n_queries, _QUERY_BLOCK)]
    # Few queries: split the codes between threads instead, and merge the partial top-k lists.
    splits = 1 if len(query_blocks) >= threads else min(threads, max(1, n_codes // max(k, 65536)))
    bounds = np.linspace(0, n_codes, splits + 1).astype(np.int64)
    ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]
    tasks = [(qb, r) for qb in query_blocks for r in ranges]

    def run(task):
        (q0, q1), (c0, c1) = task
        return _topk_range(query_words[q0:q1], code_words, c0, c1, k, code_bits)

    if len(tasks) == 1 or threads == 1:
        parts = [run(t) for t in tasks]
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(tasks))) as pool:
            parts = list(pool.map(run, tasks))

    dists = np.empty((n_queries, k), np.int32)
    ids = np.empty((n_queries, k), np.int64)
    per_block = len(ranges)
    for b, (q0, q1) in enumerate(query_blocks):
        pieces = parts[b * per_block : (b + 1) * per_block]
        if len(pieces) == 1:
            dists[q0:q1], ids[q0:q1] = pieces[0]
        else:
            dists[q0:q1], ids[q0:q1] = _sort_rows(
                np.concatenate([p[0] for p in pieces], axis=1), np.concatenate([p[1] for p in pieces], axis=1), k, n_codes
            )
    return dists, ids


def hamming_radius(
    query_words: np.ndarray, code_words: np.ndarray, radius: int, code_bits: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every code within ``radius`` (inclusive) of each query: a list of ``(ids, distances)``, each in
    (distance, id) order. The result can be as large as the index for a wide radius."""
    n_queries = len(query_words)
    found_rows, found_ids, found_d = [], [], []
    cols = max(4096, _BLOCK_ELEMENTS // max(1, min(n_queries, _QUERY_BLOCK)))
    for q0 in range(0, n_queries, _QUERY_BLOCK):
        queries = query_words[q0 : q0 + _QUERY_BLOCK]
        scratch = _Scratch(len(queries), min(cols, max(1, len(code_words))), code_words.dtype, _distance_dtype(code_bits))
        for offset in range(0, len(code_words), cols):
            block = code_words[offset : offset + cols]
            dist = scratch.distances(queries, block)
            rows, positions = np.nonzero(dist <= radius)
            found_rows.append(rows + q0)
            found_ids.append(positions + offset)
            found_d.append(dist[rows, positions].astype(np.int32))
    rows = np.concatenate(found_rows) if found_rows else np.empty(0, np.int64)
    ids = np.concatenate(found_ids) if found_ids else np.empty(0, np.int64)
    dists = np.concatenate(found_d) if found_d else np.empty(0, np.int32)
    return _group_by_query(rows, ids, dists, n_queries, len(code_words), code_bits)


def _group_by_query(rows, ids, dists, n_queries, n_codes, code_bits):
    key = (rows.astype(np.int64) * (code_bits + 2) + dists) * (n_codes + 1) + ids
    order = np.argsort(key, kind="stable")
    rows, ids, dists = rows[order], ids[order].astype(np.int64), dists[order].astype(np.int32)
    bounds = np.searchsorted(rows, np.arange(n_queries + 1))
    return [(ids[bounds[q] : bounds[q + 1]], dists[bounds[q] : bounds[q + 1]]) for q in range(n_queries)]


def asymmetric_distances(query_real: np.ndarray, candidate_packed: np.ndarray, code_bits: int) -> np.ndarray:
    """``(q - u.b) / 2`` between one query's tanh output ``u`` (q,) and candidate codes (R, q/8): the
    Hamming distance when ``u`` is binary, a finer one when it is not (lower = closer)."""
    bits = np.unpackbits(np.asarray(candidate_packed, np.uint8), axis=1, count=code_bits).astype(np.float32)
    return (code_bits - (bits * 2 - 1) @ np.asarray(query_real, np.float32)) / 2


@dataclass(frozen=True)
class RankedHits:
    """One query's ranked results, best first: ids (rows), Hamming distances, output distances
    (``None`` when not re-ranked) and which are edited copies of the query."""

    ids: np.ndarray
    distances: np.ndarray
    soft: np.ndarray | None
    copies: np.ndarray


class SearchIndex:
    """The packed codes of one index in memory, searchable by Hamming distance.

    ``packed_codes`` is (N, q/8) uint8 in file order; ids returned are row numbers into it. The
    object is read-only after construction, so one instance may serve several threads.
    ``real_codes`` (N, q) (float16 as stored) and ``photo_hashes`` ((N,) uint64, with the mask
    ``photo_hash_valid``) are what :meth:`ranked` uses when they are given.
    """

    def __init__(
        self,
        packed_codes: np.ndarray,
        code_bits: int,
        backend: str = "auto",
        threads: int | None = None,
        *,
        real_codes: np.ndarray | None = None,
        photo_hashes: np.ndarray | None = None,
        photo_hash_valid: np.ndarray | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise BadArgumentError(f"search backend must be one of {BACKENDS}, not {backend!r}")
        if code_bits % 8:
            raise ValueError(f"code length {code_bits} is not a whole number of bytes")
        self.code_bits = code_bits
        self.code_bytes = code_bits // 8
        packed_codes = np.asarray(packed_codes, dtype=np.uint8).reshape(-1, self.code_bytes)
        self.words = as_words(packed_codes, self.code_bytes)
        self.threads = threads or default_threads()
        if backend == "auto":
            backend = "numpy"  # numpy is as fast here and keeps one copy of the codes; faiss on request
        self.backend = backend
        self._faiss = None
        if backend == "faiss":
            try:
                import faiss
            except ImportError:
                raise MissingDependencyError(
                    "faiss-cpu", "the faiss search backend", "faiss-cpu", "search with --backend numpy (as fast here)"
                ) from None

            self._faiss = faiss.IndexBinaryFlat(code_bits)
            self._faiss.use_heap = False  # counting selection: ties come out in id order
            if len(packed_codes):
                self._faiss.add(np.ascontiguousarray(packed_codes))
        n_codes = len(packed_codes)
        if real_codes is not None and np.shape(real_codes) != (n_codes, code_bits):
            raise ValueError(f"real-valued outputs of shape {np.shape(real_codes)} for {n_codes} codes of {code_bits} bits")
        self.real_codes = real_codes
        if photo_hashes is not None:
            photo_hashes = np.asarray(photo_hashes, dtype=np.uint64).reshape(n_codes)
            valid = np.ones(n_codes, bool) if photo_hash_valid is None else np.asarray(photo_hash_valid, bool)
            photo_hashes = photo_hashes if valid.any() else None
        self.photo_hashes = photo_hashes
        self.photo_hash_valid = valid if photo_hashes is not None else None

    def __len__(self) -> int:
        return len(self.words)

    @property
    def nbytes(self) -> int:
        """Memory held by the codes (the faiss copy included when that backend is on)."""
        return self.words.nbytes + (len(self) * self.code_bytes if self._faiss is not None else 0)

    def packed(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Packed (·, q/8) codes of ``ids`` (all when None)."""
        rows = self.words if ids is None else self.words[np.asarray(ids)]
        return rows.view(np.uint8).reshape(len(rows), -1)[:, : self.code_bytes]

    def _query_packed(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.uint8)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.shape[1] != self.code_bytes:
            raise ValueError(f"query codes have {queries.shape[1] * 8} bits, the index has {self.code_bits}")
        return np.ascontiguousarray(queries)

    def topk(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances (Q, k) int32, ids (Q, k) int64)`` in (distance, file order) order."""
        queries = self._query_packed(queries)
        k = min(int(k), len(self))
        if self._faiss is None:
            return hamming_topk(as_words(queries, self.code_bytes), self.words, k, self.code_bits, self.threads)
        if k <= 0:
            return np.zeros((len(queries), 0), np.int32), np.zeros((len(queries), 0), np.int64)
        dists, ids = self._faiss.search(queries, k)
        return _sort_rows(dists.astype(np.int32), ids.astype(np.int64), k, len(self))

    def within_radius(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, ``(ids, distances)`` of every code at distance <= ``radius``."""
        queries = self._query_packed(queries)
        if self._faiss is None:
            return hamming_radius(as_words(queries, self.code_bytes), self.words, int(radius), self.code_bits)
        # faiss keeps distances strictly below its radius, hence + 1.
        lims, dists, ids = self._faiss.range_search(queries, int(radius) + 1)
        rows = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
        keep = dists <= radius
        return _group_by_query(rows[keep], ids[keep], dists[keep], len(queries), len(self), self.code_bits)

    def rerank(self, query_real: np.ndarray, ids: np.ndarray, dists: np.ndarray):
        """Reorder one query's candidates by asymmetric distance, then Hamming, then file order.
        Returns ``(ids, hamming distances, asymmetric distances)``."""
        soft = asymmetric_distances(query_real, self.packed(ids), self.code_bits)
        order = np.lexsort((ids, dists, soft))
        return ids[order], dists[order], soft[order]

    def search(self, queries: np.ndarray, k: int, query_real: np.ndarray | None = None, rerank_depth: int = 0):
        """Top-k per query; with ``query_real`` (Q, q) and ``rerank_depth`` > 0 the best
        ``max(k, rerank_depth)`` Hamming candidates are re-ranked asymmetrically first.

        Returns ``(dists, ids, soft)``: lists of arrays per query; ``soft`` is None without re-ranking."""
        queries = self._query_packed(queries)
        if query_real is None or rerank_depth <= 0:
            dists, ids = self.topk(queries, k)
            return list(dists), list(ids), None
        dists, ids = self.topk(queries, max(k, rerank_depth))
        out_d, out_i, out_s = [], [], []
        for row in range(len(queries)):
            i, d, s = self.rerank(np.asarray(query_real)[row], ids[row], dists[row])
            out_d.append(d[:k])
            out_i.append(i[:k])
            out_s.append(s[:k])
        return out_d, out_i, out_s

    def copies_of(self, query: np.ndarray, query_photo_hash: int | None) -> np.ndarray:
        """Ids of the query's edited copies in file order: perceptual hashes within
        :data:`~.copies.COPY_PHOTO_RADIUS` and codes within :func:`~.copies.copy_code_radius`. The
        whole index is scanned (one 64-bit word a photo), so a copy is found however many look-alikes
        are nearer by code."""
        if query_photo_hash is None or self.photo_hashes is None:
            return np.empty(0, np.int64)
        photo_distance = popcount(self.photo_hashes ^ np.uint64(query_photo_hash))
        near = np.flatnonzero((photo_distance <= COPY_PHOTO_RADIUS) & self.photo_hash_valid)
        if not len(near):
            return near.astype(np.int64)
        code_distance = hamming_distances(as_words(self._query_packed(query), self.code_bytes), self.words[near], self.code_bits)[
            0
        ]
        return near[code_distance <= copy_code_radius(self.code_bits)].astype(np.int64)

    def ranked(
        self,
        query: np.ndarray,
        k: int,
        query_real: np.ndarray | None = None,
        query_photo_hash: int | None = None,
        depth: int = DEFAULT_RERANK_DEPTH,
        copies_first: bool = True,
    ) -> RankedHits:
        """One query's ``k`` best: its edited copies first (with ``copies_first`` and a
        ``query_photo_hash``), then the best ``max(k, depth)`` Hamming candidates by the distance
        between outputs (the stored ones when the index has them, else the asymmetric distance to
        the codes; by Hamming distance alone without ``query_real``); ties by Hamming distance, then
        file order."""
        query = self._query_packed(query)[:1]
        k = min(int(k), len(self))
        if k <= 0:
            empty = np.empty(0, np.int64)
            return RankedHits(empty, np.empty(0, np.int32), None, np.empty(0, bool))
        dists, ids = self.topk(query, max(k, int(depth)))
        ids, dists = ids[0], dists[0]
        copies = self.copies_of(query[0], query_photo_hash) if copies_first else np.empty(0, np.int64)
        extra = np.setdiff1d(copies, ids)
        if len(extra):  # copies farther by code than every candidate
            far = hamming_distances(as_words(query, self.code_bytes), self.words[extra], self.code_bits)[0]
            ids, dists = np.concatenate([ids, extra]), np.concatenate([dists, far.astype(np.int32)])
        if query_real is None:
            soft = None
        elif self.real_codes is not None:
            soft = output_distances(query_real, self.real_codes[ids])
        else:
            soft = asymmetric_distances(query_real, self.packed(ids), self.code_bits)
        is_copy = np.isin(ids, copies)
        order = np.lexsort((ids, dists, dists if soft is None else soft, ~is_copy))[:k]
        return RankedHits(ids[order], dists[order], None if soft is None else soft[order], is_copy[order])
