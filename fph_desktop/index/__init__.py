"""Photo library indexes and Hamming search: scan a folder, encode new or changed photos into
packed codes kept in SQLite (one database per folder and model), and find look-alikes exactly.

Headless and Qt-free: the GUI and the ``fph-desktop index`` / ``search`` commands drive the same
objects. Start from :class:`Library`; :class:`SearchIndex` is the pure in-memory search.
"""
from __future__ import annotations

from .indexer import BatchCommitted, UpdateReport, update_index
from .library import (
    IndexInfo, Library, NoModelError, QueryResult, SearchResult, indexes_for_folder, list_indexes,
    load_encoder, read_index_info, remembered_model,
)
from .scanner import ScannedFile, ScanResult, scan_folder
from .search import SearchIndex, asymmetric_distances, faiss_available, hamming_radius, hamming_topk, select_smallest
from .store import IndexStore, IndexStoreError, SkippedFile, db_path_for, folder_key

__all__ = [
    "BatchCommitted", "IndexInfo", "IndexStore", "IndexStoreError", "Library", "NoModelError", "QueryResult",
    "ScanResult", "ScannedFile", "SearchIndex", "SearchResult", "SkippedFile", "UpdateReport",
    "asymmetric_distances", "db_path_for", "faiss_available", "folder_key", "hamming_radius", "hamming_topk",
    "indexes_for_folder", "list_indexes", "load_encoder", "read_index_info", "remembered_model", "scan_folder",
    "select_smallest", "update_index",
]
