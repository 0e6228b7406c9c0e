"""Photo library indexes and Hamming search: scan a folder, encode new or changed photos into
packed codes kept in SQLite (one database per folder and model), and find look-alikes exactly.

Headless and Qt-free: the GUI and the ``fph-desktop index`` / ``search`` commands drive the same
objects. Start from :class:`Library`; :class:`SearchIndex` is the pure in-memory search.

Names are imported lazily, so ``fph_desktop.index.search`` (numpy only) can be used without
loading torch, e.g. by a process that only searches codes.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "indexer": ("BatchCommitted", "UpdateReport", "update_index"),
    "library": (
        "IndexInfo",
        "Library",
        "NoModelError",
        "QueryResult",
        "SearchResult",
        "indexes_for_folder",
        "list_indexes",
        "load_encoder",
        "read_index_info",
        "remembered_model",
    ),
    "scanner": ("ScannedFile", "ScanResult", "scan_folder"),
    "search": ("SearchIndex", "asymmetric_distances", "faiss_available", "hamming_radius", "hamming_topk", "select_smallest"),
    "store": ("IndexStore", "IndexStoreError", "SkippedFile", "db_path_for", "folder_key"),
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted(_names)
