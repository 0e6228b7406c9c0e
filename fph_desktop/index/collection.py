"""A photo library of several folders under one model, searched as one: each folder keeps its own
index (one SQLite file per folder and model, updated on its own, an unplugged drive's left as it
was), and a search ranks the photos of all of them together.

:class:`Collection` answers what a single :class:`~fph_desktop.index.library.Library` answers for
searching (``len``, ``encoder``, ``search_images``, ``search_codes``), so the ranking code and the
GUI's search job take either. Results name photos by their full path (``relpath`` too), so two
folders' ``IMG_0001.jpg`` stay apart in a combined ranking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BadArgumentError
from ..progress import Progress, silent


class Collection:
    """Several :class:`~fph_desktop.index.library.Library` objects made with one model."""

    def __init__(self, libraries: Sequence) -> None:
        libraries = list(libraries)
        if not libraries:
            raise BadArgumentError("a library needs at least one indexed folder")
        fingerprints = {lib.encoder.fingerprint for lib in libraries}
        if len(fingerprints) > 1:
            raise BadArgumentError(
                "the folders were indexed with different models; index them all with one model to search them together"
            )
        self.libraries = libraries
        self.encoder = libraries[0].encoder

    @property
    def folder(self) -> Path:
        """For messages: the first folder (a library is named by its folders in the GUI)."""
        return self.libraries[0].folder

    @property
    def folders(self) -> list[Path]:
        return [lib.folder for lib in self.libraries]

    def __len__(self) -> int:
        return sum(len(lib) for lib in self.libraries)

    def search_images(self, queries, k: int = 20, *, progress: Progress | None = None, **options):
        """Each folder's ``k`` nearest, merged into one ranking of ``k`` (the query itself first, then
        by the folders' own order of distance). A query that one folder could not read is reported once."""
        progress = progress or silent()
        queries = list(queries)
        per_folder = [lib.search_images(queries, k=k, progress=progress, **options) for lib in self.libraries]
        merged = []
        for slot in range(len(queries)):
            results = [folder_results[slot] for folder_results in per_folder]
            candidates = [(r, lib) for result, lib in zip(results, self.libraries, strict=True) for r in result.results]
            candidates.sort(key=lambda pair: (not pair[0].is_query, _rank_key(pair[0])))
            first = results[0]
            hits = [dataclasses.replace(r, rank=rank, relpath=str(r.path)) for rank, (r, _) in enumerate(candidates[:k])]
            merged.append(dataclasses.replace(first, results=hits, error=next((r.error for r in results if r.error), None)))
        return merged

    def search_codes(self, packed: np.ndarray, k: int = 20, real: np.ndarray | None = None, rerank_depth: int = 0):
        """:meth:`Library.search_codes` over every folder, merged by distance."""
        per_folder = [lib.search_codes(packed, k, real, rerank_depth) for lib in self.libraries]
        merged = []
        for slot in range(len(per_folder[0])):
            candidates = sorted((r for results in per_folder for r in results[slot]), key=_rank_key)
            merged.append([dataclasses.replace(r, rank=rank, relpath=str(r.path)) for rank, r in enumerate(candidates[:k])])
        return merged


def _rank_key(result) -> tuple:
    """Edited copies first (when the index marks them), then by distance (the re-ranked one when there is one)."""
    soft = result.soft_distance
    return (not getattr(result, "edited_copy", False), result.distance if soft is None else soft, result.distance)


def library_of(libraries: Sequence):
    """One folder's Library as it is, several as a :class:`Collection`."""
    libraries = list(libraries)
    return libraries[0] if len(libraries) == 1 else Collection(libraries)


__all__ = ["Collection", "library_of"]
