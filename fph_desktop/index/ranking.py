"""Searching several photos at once, as a person wants the answer: each query's nearest photos with
the query itself and byte-identical copies of it hidden (its edited copies first, then its
look-alikes: ``Library.search_images``' default ranking), or one combined ranking of the whole index
by the sum of the queries' distances. The GUI and ``fph-desktop search`` both use this."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..progress import Progress, silent
from .store import IndexStoreError


@dataclass(frozen=True)
class Hit:
    path: str
    relpath: str
    distance: int  # Hamming distance (combined: the sum over the queries)
    per_query: tuple[int, ...] = ()  # combined ranking: each query's distance
    edited_copy: bool = False  # an edited copy of the query (resized, recompressed, …), ranked first


@dataclass
class QueryHits:
    query: str
    hits: list[Hit]
    error: str | None = None
    hidden: int = 0  # results hidden as the query itself or a byte-identical copy


@dataclass
class SearchOutcome:
    queries: list[QueryHits]
    combined: list[Hit] | None = None
    code_bits: int = 0
    database_size: int = 0


def _content_hash(path: str | Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    except OSError:
        return None


def search_many(
    library,
    queries: Sequence[str],
    k: int = 24,
    hide_duplicates: bool = True,
    combined: bool = False,
    progress: Progress | None = None,
) -> SearchOutcome:
    """The ``k`` nearest indexed photos of each query; with ``combined`` also one ranking of the whole
    index by the sum of each query's distance (ties keep the first query's order)."""
    progress = progress or silent()
    size = len(library)
    if size == 0:
        raise IndexStoreError("holds no photos yet", library.folder, "index the folder first")
    progress.set_status(f"Searching {size} photos…")
    depth = size if combined else min(size, k + (8 if hide_duplicates else 0))
    raw = library.search_images(list(queries), k=depth, progress=progress)
    progress.check()
    out = SearchOutcome([], code_bits=library.encoder.code_bits, database_size=size)
    for query, result in zip(queries, raw, strict=True):
        hits, hidden = [], 0
        digest = _content_hash(query) if hide_duplicates else None
        for r in result.results:
            if hide_duplicates and (r.is_query or (r.distance == 0 and digest is not None and _content_hash(r.path) == digest)):
                hidden += 1
                continue
            hits.append(Hit(str(r.path), r.relpath, r.distance, edited_copy=r.edited_copy))
        out.queries.append(QueryHits(str(query), hits if combined else hits[:k], result.error, hidden))
    if combined:
        usable = [q for q in out.queries if q.error is None]
        totals: dict[str, list] = {}
        for qi, q in enumerate(usable):
            for h in q.hits:
                entry = totals.setdefault(h.relpath, [h.path, [None] * len(usable)])
                entry[1][qi] = h.distance
        # Photos hidden for one query (the query itself) are left out of the combined ranking too.
        ranked = [Hit(path, relpath, sum(d), tuple(d)) for relpath, (path, d) in totals.items() if all(x is not None for x in d)]
        ranked.sort(key=lambda h: h.distance)  # stable: ties keep the first query's ranking order
        out.combined = ranked[:k]
        for q in out.queries:
            q.hits = q.hits[:k]
    return out
