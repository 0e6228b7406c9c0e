"""The object a front end holds: one indexed folder under one model.

A :class:`Library` ties together the folder, the encoder, the SQLite index and the in-memory
:class:`~fph_desktop.index.search.SearchIndex`. The GUI and the CLI both use it: list the indexes,
open the one for (folder, model), update it with a Progress, search with photos from anywhere,
list what was skipped and why, and tell whether the folder is offline. No Qt here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import NoModelError
from ..imaging import ImageError, open_image
from ..progress import Progress, silent
from .copies import photo_hash, photo_hash_word
from .indexer import UpdateReport, update_index, write_index_meta
from .search import DEFAULT_RERANK_DEPTH, SearchIndex
from .store import DB_SUFFIX, IndexStore, IndexStoreError, SkippedFile, db_path_for, folder_key, indexes_dir

# How search_images orders the nearest photos (see SearchIndex.ranked):
# "default": the query's edited copies first, then the Hamming candidates by the stored outputs;
# "outputs": the Hamming candidates by the stored outputs, copies not put first;
# "hamming": by Hamming distance alone, ties in file order (every index before schema 2).
RANKINGS = ("default", "outputs", "hamming")

ITQ_HINT = (
    "train one with `fph-desktop train` (labelled folders), or make an unsupervised one with "
    "`fph-desktop train --method itq`, then pass it with --model FILE"
)


@dataclass(frozen=True)
class IndexInfo:
    """One index on disk, as listed for the user (cheap: reads only the metadata and counts)."""

    db_path: Path
    folder: str
    fingerprint: str
    code_bits: int
    model_path: str | None
    model_description: str
    photos: int
    skipped: int
    updated: float | None  # seconds since the epoch of the last finished update
    complete: bool  # the last update ran to its end (not cancelled or killed)
    problem: str | None = None  # why the file could not be read, when it could not

    @property
    def offline(self) -> bool:
        """The folder (or the drive it is on) is not there now; the index is intact."""
        return not os.path.isdir(self.folder)


def read_index_info(db_path: str | Path) -> IndexInfo:
    db_path = Path(db_path)
    try:
        with IndexStore(db_path) as store:
            meta = store.meta()
            photos, skipped = store.counts()
    except IndexStoreError as exc:
        return IndexInfo(db_path, "", "", 0, None, "", 0, 0, None, False, problem=str(exc))
    return IndexInfo(
        db_path=db_path,
        folder=meta.get("root", ""),
        fingerprint=meta.get("fingerprint", ""),
        code_bits=int(meta.get("code_bits", 0) or 0),
        model_path=meta.get("model_path"),
        model_description=meta.get("model_description", ""),
        photos=photos,
        skipped=skipped,
        updated=float(meta["updated"]) if "updated" in meta else None,
        complete=meta.get("last_update_complete") == "1",
    )


def list_indexes() -> list[IndexInfo]:
    """Every index in the data directory, most recently updated first."""
    infos = [read_index_info(p) for p in sorted(indexes_dir().glob("*" + DB_SUFFIX))]
    return sorted(infos, key=lambda i: -(i.updated or 0.0))


def indexes_for_folder(folder: str | Path) -> list[IndexInfo]:
    key = folder_key(folder)
    return [info for info in list_indexes() if info.folder == key]


def remembered_model(folder: str | Path) -> Path | None:
    """The model file of the folder's most recently updated index, if that file still exists."""
    for info in indexes_for_folder(folder):
        if info.model_path and os.path.isfile(info.model_path):
            return Path(info.model_path)
    return None


def load_encoder(
    model: str | Path | None, folder: str | Path | None = None, device=None, engine: str = "auto", search_only: bool = False
):
    """The encoder for ``model``, or for the model remembered for ``folder``; a clear
    :class:`NoModelError` when there is neither.

    ``search_only``: the caller only encodes a few query photos, so the graph exported from this
    weights file is used when there is one (ONNX Runtime on the CPU), without loading PyTorch at
    all; the search can start seconds sooner after launch. Not with ``engine="torch"`` or a GPU asked for.
    """

    if model is None and folder is not None:
        model = remembered_model(folder)
        if model is None:
            known = [i for i in indexes_for_folder(folder) if i.model_path]
            if known:
                raise NoModelError(
                    f"the model last used for {folder} is gone ({known[0].model_path}); "
                    f"pass the model file with --model FILE, or {ITQ_HINT}"
                )
    if model is None:
        where = f" for {folder}" if folder is not None else ""
        raise NoModelError(f"no model given and none remembered{where}: {ITQ_HINT}")
    model = Path(model)
    try:
        st = model.stat()
        key = (os.path.abspath(model), st.st_size, st.st_mtime_ns, str(device), engine)
    except OSError:
        key = None  # let Encoder.load say what is wrong with the file
    graph_ok = search_only and engine in ("auto", "onnx") and device in (None, "auto", "cpu")
    with _ENCODER_CACHE_LOCK:
        encoder = _ENCODER_CACHE.pop(key, None) if key else None
        if encoder is None and key and graph_ok:
            for cached_key, cached in _ENCODER_CACHE.items():  # a full encoder on ONNX Runtime serves searches too
                if cached_key[:3] == key[:3] and cached_key[3] != "graph" and cached.engine == "onnx":
                    return cached, model
            key = (*key[:3], "graph", "onnx")
            encoder = _ENCODER_CACHE.pop(key, None)
    if encoder is None:
        encoder = _graph_encoder(model, graph_ok, device, engine)
    if encoder is None:
        from ..model.encoder import Encoder

        key = key and (*key[:3], str(device), engine)
        encoder = Encoder.load(model, device=device, engine=engine)
    if key:
        with _ENCODER_CACHE_LOCK:
            _ENCODER_CACHE[key] = encoder  # most recent last
            while len(_ENCODER_CACHE) > _ENCODER_CACHE_SIZE:
                _ENCODER_CACHE.pop(next(iter(_ENCODER_CACHE)))
    return encoder, model


def _graph_encoder(model: Path, graph_ok: bool, device, engine: str):
    """The encoder of an exported graph for ``model`` when one serves (``None``: PyTorch loads the
    weights): a code graph given as the model itself, the graph beside a weights file for a search,
    or, in an install without PyTorch, always that graph (and a clear error when there is none)."""
    from ..errors import BadArgumentError, MissingDependencyError
    from ..model.graph import SUFFIX, GraphEncoder, pytorch_available

    is_graph = model.suffix == SUFFIX
    if is_graph or not pytorch_available():
        if engine == "torch" or device not in (None, "auto", "cpu"):
            raise BadArgumentError(
                f"{model.name} runs on ONNX Runtime on the CPU" if is_graph else "this install has no PyTorch",
                hint="leave out --engine torch and --device",
            )
        if is_graph:
            return GraphEncoder.from_graph(model)
        encoder = GraphEncoder.for_weights(model)
        if encoder is None:
            raise MissingDependencyError(
                "PyTorch", f"reading the weights file {model.name} (its exported graph {model.name}{SUFFIX} is not beside it)",
                "torch torchvision", "open it once with a full install, which exports the graph beside it",
            )  # fmt: skip
        return encoder
    return GraphEncoder.for_weights(model) if graph_ok else None


# Reopening a library (or switching between two) should not rebuild the network each time; the
# key includes size and mtime, so a retrained file at the same path is loaded afresh.
_ENCODER_CACHE: dict[tuple, object] = {}
_ENCODER_CACHE_SIZE = 2
_ENCODER_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Loaded:
    index: SearchIndex
    relpaths: list[str]
    ids: dict[str, int]


@dataclass(frozen=True)
class SearchResult:
    rank: int  # 0-based position in the list
    relpath: str  # relative to the indexed folder, "/" separators
    path: Path  # absolute path (may not exist when the folder is offline)
    distance: int  # Hamming distance to the query's code
    soft_distance: float | None = None  # the distance it was re-ranked by (outputs, or asymmetric)
    is_query: bool = False  # the query photo itself (the GUI may hide it)
    edited_copy: bool = False  # an edited copy of the query (or its original): same picture, other file


@dataclass
class QueryResult:
    query: str  # the query's path, or "<image N>" for an in-memory image
    results: list[SearchResult]
    error: str | None = None  # why this query could not be searched (its other siblings still were)


class Library:
    """One folder indexed under one model. Searching is thread-safe; update from one thread."""

    def __init__(self, folder: str | Path, encoder, model_path: str | Path | None = None, backend: str = "auto") -> None:
        self.folder = Path(folder_key(folder))
        self.encoder = encoder
        self.model_path = Path(model_path) if model_path is not None else None
        self.backend = backend
        self.db_path = db_path_for(self.folder, encoder.fingerprint)
        # (search index, relpaths in file order, relpath -> id), replaced as a whole by reload(),
        # so a search running in another thread always sees one consistent snapshot.
        self._loaded: _Loaded | None = None

    @classmethod
    def open(
        cls,
        folder: str | Path,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        engine: str = "auto",
        backend: str = "auto",
        create: bool = True,
        search_only: bool = False,
    ) -> Library:
        """The library for ``folder`` under ``model`` (a weights file; ``None``: the model remembered
        for the folder). ``create=False`` raises :class:`IndexStoreError` when it was never indexed.
        ``search_only``: see :func:`load_encoder` (the library can still be updated, on the CPU)."""
        encoder, model_path = load_encoder(model, folder, device, engine, search_only)
        library = cls(folder, encoder, model_path, backend)
        if not library.db_path.is_file():
            if not create:
                raise IndexStoreError(
                    f"{library.folder} has not been indexed with this model ({encoder.info.describe()}); "
                    f"run `fph-desktop index {library.folder} --model {model_path}` first"
                )
            with IndexStore(library.db_path, create=True) as store:
                write_index_meta(store, library.folder, encoder, model_path)
        return library

    def explaining_encoder(self, device=None):
        """The PyTorch encoder of this library's model: the overlays need the network's
        intermediate maps, which an exported graph does not give. Loaded on first use (the
        library may have been opened with the graph alone)."""
        if hasattr(self.encoder, "explain") or self.model_path is None:
            return self.encoder
        from ..errors import BadFileError, MissingDependencyError
        from ..model.graph import SUFFIX, pytorch_available

        if not pytorch_available():
            raise MissingDependencyError("PyTorch", "showing the activation maps", "torch torchvision")
        if self.model_path.suffix == SUFFIX:
            raise BadFileError(
                "is an exported graph; the activation maps need the weights file (.fph) it came from", self.model_path
            )
        encoder, _ = load_encoder(self.model_path, None, device)
        if encoder.fingerprint != self.encoder.fingerprint:
            raise NoModelError(f"{self.model_path} changed since this index was opened; open the folder again")
        return encoder

    # -- state ---------------------------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return not self.folder.is_dir()

    def info(self) -> IndexInfo:
        return read_index_info(self.db_path)

    def skipped_files(self) -> list[SkippedFile]:
        with IndexStore(self.db_path) as store:
            return store.skipped_files()

    def unreadable_dirs(self) -> list[tuple[str, str]]:
        with IndexStore(self.db_path) as store:
            return store.unreadable_dirs()

    # -- indexing ------------------------------------------------------------------------------
    def update(self, progress: Progress | None = None, **options) -> UpdateReport:
        """Run :func:`~fph_desktop.index.indexer.update_index`, then reload the codes; also after a
        cancel (:class:`~fph_desktop.progress.Cancelled` propagates), so the batches committed before
        it are searchable at once."""
        try:
            return update_index(self.folder, self.encoder, progress, model_path=self.model_path, **options)
        finally:
            if self.db_path.is_file():
                self.reload()

    def reload(self) -> None:
        """Read the codes (and the outputs and perceptual hashes beside them) from the database again
        (after an update, possibly by another process)."""
        with IndexStore(self.db_path) as store:
            data = store.load_search_data(self.encoder.code_bits)
        index = SearchIndex(
            data.packed,
            self.encoder.code_bits,
            backend=self.backend,
            real_codes=data.real,
            photo_hashes=data.photo_hashes,
            photo_hash_valid=data.photo_hash_valid,
        )
        self._loaded = _Loaded(index, data.relpaths, {p: i for i, p in enumerate(data.relpaths)})

    def _snapshot(self) -> _Loaded:
        if self._loaded is None:
            self.reload()
        return self._loaded

    @property
    def search_index(self) -> SearchIndex:
        return self._snapshot().index

    def __len__(self) -> int:
        return len(self.search_index)

    # -- searching -----------------------------------------------------------------------------
    def relpath_of(self, path: str | Path) -> str | None:
        """The indexed relpath of ``path`` when it lies in this folder and is indexed, else None."""
        ids = self._snapshot().ids
        for candidate in {os.path.abspath(path), os.path.realpath(path)}:
            for root in {str(self.folder), os.path.realpath(self.folder)}:
                try:
                    relative = Path(candidate).relative_to(root).as_posix()
                except ValueError:
                    continue
                if relative in ids:
                    return relative
        return None

    def _stored_if_current(self, path: str | Path, relpath: str):
        """What is stored of an indexed query file (a :class:`~.store.StoredOutputs`), if the file is
        unchanged since indexing: then the query is guaranteed to find itself at distance 0."""
        with IndexStore(self.db_path) as store:
            row = store.encoded_file(relpath)
        try:
            st = os.stat(path)
        except OSError:
            return None
        if row is None or (row.size, row.mtime_ns) != (st.st_size, st.st_mtime_ns):
            return None
        return row

    def search_images(
        self,
        queries: Sequence[str | Path | Image.Image],
        k: int = 20,
        *,
        rerank_depth: int | None = None,
        ranking: str = "default",
        progress: Progress | None = None,
    ) -> list[QueryResult]:
        """The ``k`` nearest indexed photos of each query (paths anywhere on disk, or PIL images).

        A query file that is itself indexed comes first, at distance 0, marked ``is_query``. Then,
        with the ``default`` ranking (:data:`RANKINGS`), the query's edited copies (``edited_copy``),
        then the best ``rerank_depth`` Hamming candidates (default
        :data:`~.search.DEFAULT_RERANK_DEPTH`) by the distance between the query's real-valued outputs
        and those stored for each photo (``soft_distance``), then the rest by Hamming distance.
        ``rerank_depth=0`` or ``ranking="hamming"``: by Hamming distance alone, ties in file order;
        that is also how an index not yet updated since this version stored the outputs is searched,
        except that ``rerank_depth`` > 0 then re-ranks by the asymmetric distance to the codes.
        A query that cannot be read gets ``error`` set; the others are still searched.
        """
        if ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {RANKINGS}, not {ranking!r}")
        loaded = self._snapshot()
        if rerank_depth == 0:
            ranking = "hamming"
        by_outputs = ranking != "hamming" and loaded.index.real_codes is not None
        need_real = by_outputs or (rerank_depth or 0) > 0
        results, packed_rows, real_rows, hash_rows, self_ids = self._encode_queries(loaded, queries, need_real, progress)
        for slot, result in enumerate(results):
            if packed_rows[slot] is None:
                continue
            if by_outputs:
                hits = loaded.index.ranked(
                    packed_rows[slot],
                    k,
                    real_rows[slot],
                    hash_rows[slot],
                    depth=DEFAULT_RERANK_DEPTH if rerank_depth is None else rerank_depth,
                    copies_first=ranking == "default",
                )
                result.results = self._place_query_first(loaded, hits, k, self_ids[slot])
            else:
                depth = rerank_depth or 0
                result.results = self._search_one(loaded, packed_rows[slot], real_rows[slot], k, depth, self_ids[slot])
        return results

    def within_radius(
        self, queries: Sequence[str | Path | Image.Image], radius: int, progress: Progress | None = None
    ) -> list[QueryResult]:
        """Every indexed photo within Hamming ``radius`` (inclusive) of each query, nearest first."""
        loaded = self._snapshot()
        results, packed_rows, _, _, self_ids = self._encode_queries(loaded, queries, False, progress)
        slots = [slot for slot, code in enumerate(packed_rows) if code is not None]
        if slots:
            hits = loaded.index.within_radius(np.stack([packed_rows[s] for s in slots]), radius)
            for slot, (ids, dists) in zip(slots, hits, strict=True):
                ids, dists = list(ids), list(dists)
                own = self_ids[slot]
                if own is not None and own in ids:  # the query itself first, as in search_images
                    at = ids.index(own)
                    ids.insert(0, ids.pop(at))
                    dists.insert(0, dists.pop(at))
                results[slot].results = self._records(loaded, ids, dists, [None] * len(ids), own)
        return results

    def _encode_queries(self, loaded: _Loaded, queries, need_real: bool, progress: Progress | None):
        """Codes (and real-valued outputs, perceptual hashes) of the queries, 32 at a time. An
        indexed, unchanged query file uses what is stored for it (no decoding unless the real-valued
        output is needed and was not stored: an index not yet updated since schema 2)."""
        progress = progress or silent()
        queries = list(queries)
        results: list[QueryResult] = []
        packed_rows: list[np.ndarray | None] = []
        real_rows: list[np.ndarray | None] = []
        hash_rows: list[int | None] = []
        self_ids: list[int | None] = []
        for start in range(0, len(queries), 32):
            progress.check()
            arrays, slots = [], []
            for slot in range(start, min(start + 32, len(queries))):
                query = queries[slot]
                name = f"<image {slot}>" if isinstance(query, Image.Image) else os.fspath(query)
                results.append(QueryResult(name, []))
                packed_rows.append(None)
                real_rows.append(None)
                hash_rows.append(None)
                self_ids.append(None)
                try:
                    if isinstance(query, Image.Image):
                        image = query
                    else:
                        relpath = self.relpath_of(query)
                        relpath = relpath if relpath in loaded.ids else None
                        if relpath is not None:
                            stored = self._stored_if_current(query, relpath)
                            if stored is not None:
                                packed_rows[slot] = np.frombuffer(stored.code, dtype=np.uint8)
                                hash_rows[slot] = photo_hash_word(stored.photo_hash)
                                self_ids[slot] = loaded.ids[relpath]
                                if stored.real_code is not None:
                                    real_rows[slot] = np.frombuffer(stored.real_code, dtype="<f2").astype(np.float32)
                                if not need_real or real_rows[slot] is not None:
                                    continue  # what is stored is the query: nothing to decode
                        if not os.path.exists(query):
                            raise ImageError(query, "no such file")
                        image = open_image(query, self.encoder.decode_side)
                    if hash_rows[slot] is None:
                        hash_rows[slot] = photo_hash_word(photo_hash(image))
                    arrays.append(self.encoder.to_array(image))
                    slots.append(slot)
                except ImageError as exc:
                    results[slot].error = f"{exc.path}: {exc.reason}"
            if arrays:
                packed, real = self.encoder.encode_batch(np.stack(arrays))
                for slot, code, u in zip(slots, packed, real, strict=True):
                    if packed_rows[slot] is None:
                        packed_rows[slot] = code
                    real_rows[slot] = u
            progress.set_progress(min(start + 32, len(queries)), len(queries))
        return results, packed_rows, real_rows, hash_rows, self_ids

    def search_codes(
        self, packed: np.ndarray, k: int = 20, real: np.ndarray | None = None, rerank_depth: int = 0
    ) -> list[list[SearchResult]]:
        """Search with codes the caller already has (packed (Q, q/8); ``real`` (Q, q) for re-ranking)."""
        packed = np.atleast_2d(np.asarray(packed, dtype=np.uint8))
        reals = [None] * len(packed) if real is None else list(np.atleast_2d(real))
        loaded = self._snapshot()
        return [self._search_one(loaded, p, u, k, rerank_depth, None) for p, u in zip(packed, reals, strict=True)]

    def _search_one(self, loaded, packed, real, k, rerank_depth, self_id) -> list[SearchResult]:
        depth = rerank_depth if real is not None else 0
        dists, ids, soft = loaded.index.search(packed[None], k, None if real is None else real[None], depth)
        ids, dists = list(ids[0]), list(dists[0])
        softs = list(soft[0]) if soft is not None else [None] * len(ids)
        if self_id is not None and k > 0:
            if self_id in ids:
                at = ids.index(self_id)
                own = (ids.pop(at), dists.pop(at), softs.pop(at))
            else:
                own = (self_id, 0, None)
                if len(ids) >= k:
                    ids, dists, softs = ids[: k - 1], dists[: k - 1], softs[: k - 1]
            ids.insert(0, own[0])
            dists.insert(0, int(own[1]))
            softs.insert(0, own[2])
        return self._records(loaded, ids, dists, softs, self_id)

    def _place_query_first(self, loaded, hits, k, self_id) -> list[SearchResult]:
        """A ranked search's results as records, an indexed query file itself first."""
        softs = [None] * len(hits.ids) if hits.soft is None else [float(s) for s in hits.soft]
        rows = [(int(i), int(d), s, bool(c)) for i, d, s, c in zip(hits.ids, hits.distances, softs, hits.copies, strict=True)]
        if self_id is not None and k > 0:
            own = [row for row in rows if row[0] == self_id]
            rows = [(self_id, 0, own[0][2] if own else None, False)] + [row for row in rows if row[0] != self_id][: k - 1]
        ids, dists, softs, copies = (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [])
        return self._records(loaded, ids, dists, softs, self_id, copies)

    def _records(self, loaded, ids, dists, softs, self_id, copies=None) -> list[SearchResult]:
        relpaths = loaded.relpaths
        copies = copies or [False] * len(ids)
        return [
            SearchResult(
                rank=rank,
                relpath=relpaths[i],
                path=self.folder / relpaths[i],
                distance=int(d),
                soft_distance=None if s is None else float(s),
                is_query=bool(self_id is not None and int(i) == self_id),
                edited_copy=bool(c),
            )
            for rank, (i, d, s, c) in enumerate(zip(ids, dists, softs, copies, strict=True))
        ]
