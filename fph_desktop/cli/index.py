"""``fph-desktop index`` and ``fph-desktop search``: a folder's index from the command line.

``index FOLDER`` without ``--model`` uses the folder's remembered model, or else the app's own
first-run default (the shipped EfficientNet-Lite0 with unsupervised codes fitted on the folder),
and says so. Failures are :class:`~fph_desktop.errors.UserError` s that ``main`` prints as one line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path

from ..errors import EXIT_OFFLINE, EXIT_OK, EXIT_PARTIAL, BadArgumentError, BadFileError, NoModelError, display_path
from ..index.library import ITQ_HINT, Library, indexes_for_folder, list_indexes, read_index_info, remembered_model
from ..index.ranking import SearchOutcome, search_many
from ..index.store import DB_SUFFIX, IndexStoreError, folder_key, folder_label
from .flags import add_engine_flag, non_negative_int, positive_int
from .progress import ProgressPrinter


def add_index_parser(subparsers) -> None:
    index = subparsers.add_parser(
        "index",
        help="index a photo folder (only new or changed photos are encoded)",
        description="Index the photos under FOLDER with a hashing model, so `search` can find look-alikes. "
        "Re-running encodes only new or changed photos; moved photos keep their codes.",
    )
    index.add_argument("folder", type=Path, help="the photo folder to index (searched recursively)")
    index.add_argument(
        "--model",
        type=Path,
        help="weights file (.fph); default: the model last used for FOLDER, else the "
        "shipped backbone with unsupervised codes fitted on FOLDER (as the app's first run)",
    )
    index.add_argument("--report", action="store_true", help="list the files that were skipped, with the reason")
    index.add_argument("--no-update", action="store_true", help="do not scan; only show the index's state (with --report)")
    index.add_argument("--batch-size", type=positive_int, default=32, help="photos per network batch and per commit (default 32)")
    index.add_argument(
        "--workers", type=positive_int, default=None, help="decoding threads (default: one per CPU core, at most 8)"
    )
    index.add_argument("--include-hidden", action="store_true", help="also index hidden folders and files")
    index.add_argument("--allow-empty", action="store_true", help="accept that an empty FOLDER really has no photos left")
    index.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    index.add_argument("--quiet", action="store_true", help="no progress on stderr")
    index.add_argument(
        "--retry-skipped",
        action="store_true",
        help="try again every file skipped before, even if it did not change (e.g. after fixing permissions)",
    )
    add_engine_flag(index)
    index.set_defaults(func=run_index)


def add_search_parser(subparsers) -> None:
    search = subparsers.add_parser(
        "search",
        help="find the look-alikes of photos in an indexed folder",
        description="Find the indexed photos nearest to each IMAGE (by Hamming distance between codes).",
    )
    search.add_argument("images", nargs="+", type=Path, help="query photos (anywhere on disk)")
    search.add_argument(
        "--index",
        dest="index",
        action="append",
        help="indexed folder, or an index file (.sqlite); default: the most recently updated index. "
        "Give it several times to search those folders as one library (one ranking)",
    )
    search.add_argument("--model", type=Path, help="weights file (.fph); default: the model the index was made with")
    search.add_argument("-k", type=positive_int, default=20, help="results per query (default 20)")
    search.add_argument(
        "--radius", type=non_negative_int, default=None, help="instead of the k nearest: every photo within this Hamming distance"
    )
    search.add_argument(
        "--rerank",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="re-rank the N best Hamming candidates by the stored real-valued outputs, after the query's "
        "edited copies (default 100; 0: by Hamming distance alone)",
    )
    search.add_argument("--backend", choices=("auto", "numpy", "faiss"), default="auto", help="search backend")
    search.add_argument(
        "--hide-duplicates", action="store_true", help="leave out each query itself and byte-identical copies of it"
    )
    search.add_argument(
        "--combined", action="store_true", help="also one ranking for all queries together (sum of their distances)"
    )
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    add_engine_flag(search)
    search.set_defaults(func=run_search)


def _error(message: str) -> None:
    print(f"fph-desktop: {message}", file=sys.stderr)


def _print_skipped(library: Library) -> None:
    skipped = library.skipped_files()
    dirs = library.unreadable_dirs()
    if not skipped and not dirs:
        print("No files were skipped.")
        return
    if skipped:
        print(f"{len(skipped)} file(s) skipped (retried when they change, or with --retry-skipped):")
        for item in skipped:
            print(f"  {display_path(item.relpath)}: {item.reason}")
    if dirs:
        print(f"{len(dirs)} folder(s) not read (their indexed photos are kept):")
        for relpath, reason in dirs:
            print(f"  {display_path(relpath)}/: {reason}")


def _open_for_indexing(args: argparse.Namespace, printer: ProgressPrinter) -> Library:
    """The library to update: the given model, the remembered one, or the first-run default."""
    folder = args.folder
    if not folder.exists() and not indexes_for_folder(folder):  # an indexed folder that is gone is offline
        raise BadArgumentError("no such folder", folder, "check the path (is its drive connected?)")
    if folder.exists() and not folder.is_dir():
        raise BadArgumentError("is a file, not a folder", folder, "give the folder that holds your photos")
    model = args.model
    if args.no_update and model is None and not indexes_for_folder(folder):
        raise IndexStoreError("has not been indexed yet", folder, f"run `fph-desktop index {display_path(folder)}`")
    default = False
    if model is None and remembered_model(folder) is None:
        gone = [i.model_path for i in indexes_for_folder(folder) if i.model_path]
        if gone:
            raise NoModelError(
                f"the model last used for this folder is gone ({display_path(gone[0])})", folder, "pass a model with --model FILE"
            )
        from ..index.default_model import ensure_unsupervised_model

        model = ensure_unsupervised_model(printer.progress(), folder, device=args.device)
        default = True
    library = Library.open(folder, model, device=args.device, engine=args.engine)
    if default:
        printer.message(
            f"no model given: using the shipped EfficientNet-Lite0 with unsupervised {library.encoder.code_bits}-bit "
            f"codes fitted on this folder ({display_path(model)}); for finer matches {ITQ_HINT.split(', or ')[0]}"
        )
    return library


def run_index(args: argparse.Namespace) -> int:
    printer = ProgressPrinter(args.quiet)
    library = _open_for_indexing(args, printer)
    status = EXIT_OK
    if not args.no_update:
        report = library.update(
            printer.progress(),
            batch_size=args.batch_size,
            workers=args.workers,
            include_hidden=args.include_hidden,
            allow_empty=args.allow_empty,
            retry_skipped=args.retry_skipped,
        )
        print(report.summary())
        if report.offline:
            status = EXIT_OFFLINE
    else:
        info = library.info()
        if info.problem:
            raise IndexStoreError(info.problem)
        state = "offline" if info.offline else "online"
        print(
            f"{display_path(info.folder)} ({state}): {info.photos} photos, {info.skipped} skipped, model {info.model_description}"
        )
    print(f"Index: {display_path(library.db_path)}")
    print(f"Engine: {library.encoder.describe_engine()}")
    if args.report:
        _print_skipped(library)
    return status


def _resolve_index(spec: str | None):
    """(folder, remembered model path or None) for ``--index``: a folder, an index file, or the latest."""
    if spec is None:
        infos = [i for i in list_indexes() if i.problem is None]
        if not infos:
            raise IndexStoreError("no folder has been indexed yet", hint="run `fph-desktop index FOLDER` first")
        return infos[0].folder, infos[0].model_path
    if spec.endswith(DB_SUFFIX) and os.path.isfile(spec):
        info = read_index_info(spec)
        if info.problem:
            raise IndexStoreError(info.problem)
        if not info.folder:
            raise IndexStoreError("names no folder (the file was altered)", spec, "index the folder again")
        return info.folder, info.model_path
    if os.path.isfile(spec):
        raise BadArgumentError("is a file, not an indexed folder or an index file (.sqlite)", spec)
    key = folder_key(spec)
    indexes = list_indexes()  # reads every index's metadata: once
    readable = [i for i in indexes if i.folder == key]  # an unreadable index names no folder
    if not os.path.exists(spec) and not readable:
        raise BadArgumentError("no such folder", spec, "give an indexed folder, or its index file (.sqlite)")
    if not readable:
        label = folder_label(spec) + "-"  # index files are named after their folder: db_path_for
        damaged = [i for i in indexes if i.problem and i.db_path.name.startswith(label)]
        if damaged:
            raise IndexStoreError(damaged[0].problem)
        raise IndexStoreError("has not been indexed yet", spec, f"run `fph-desktop index {display_path(spec)}`")
    return key, None


def _search_library(args: argparse.Namespace, specs: list[str]) -> int:
    """Several ``--index``: the folders searched as one library, with the first folder's model."""
    from ..index.collection import Collection

    if args.radius is not None or args.rerank is not None:
        raise BadArgumentError("--radius and --rerank work with one --index, not several")
    resolved = [_resolve_index(spec) for spec in specs]
    model = args.model or next((m for _, m in resolved if m), None) or remembered_model(resolved[0][0])
    libraries = [
        Library.open(folder, model, device=args.device, engine=args.engine, backend=args.backend, create=False, search_only=True)
        for folder, _ in resolved
    ]
    together = Collection(libraries)
    if len(together) == 0:
        raise IndexStoreError("hold no photos yet", together.folder, "index the folders first")
    return _print_outcome(
        search_many(together, [str(p) for p in args.images], args.k, args.hide_duplicates, args.combined), args.json
    )


def run_search(args: argparse.Namespace) -> int:
    for image in args.images:
        if image.is_dir():
            raise BadFileError("is a folder, not a photo", image, "give photo files as queries")
    specs = args.index or [None]
    if len(specs) > 1:
        return _search_library(args, specs)
    folder, model_path = _resolve_index(specs[0])
    model = args.model or model_path  # None: the model remembered for the folder
    library = Library.open(
        folder, model, device=args.device, engine=args.engine, backend=args.backend, create=False, search_only=True
    )
    if len(library) == 0:
        raise IndexStoreError("holds no photos yet", library.folder, f"run `fph-desktop index {library.folder}`")
    if args.hide_duplicates or args.combined:
        if args.radius is not None or args.rerank is not None:
            raise BadArgumentError("--hide-duplicates and --combined work with -k, not with --radius or --rerank")
        return _print_outcome(
            search_many(library, [str(p) for p in args.images], args.k, args.hide_duplicates, args.combined), args.json
        )
    if args.radius is not None:
        results = library.within_radius(args.images, args.radius)
    else:
        results = library.search_images(args.images, k=args.k, rerank_depth=args.rerank)
    failed = sum(r.error is not None for r in results)
    if args.json:
        info = library.info()
        payload = {
            "index": str(library.db_path),
            "folder": str(library.folder),
            "offline": library.offline,
            "model": {"path": str(library.model_path), "description": info.model_description, "fingerprint": info.fingerprint},
            "engine": library.encoder.describe_engine(),
            "updated": _dt.datetime.fromtimestamp(info.updated).isoformat(timespec="seconds") if info.updated else None,
            "queries": [
                {
                    "query": r.query,
                    "error": r.error,
                    "results": [
                        {
                            "rank": m.rank + 1,
                            "distance": m.distance,
                            "soft_distance": m.soft_distance,
                            "relpath": m.relpath,
                            "path": str(m.path),
                            "is_query": m.is_query,
                            "edited_copy": m.edited_copy,
                        }
                        for m in r.results
                    ],
                }
                for r in results
            ],
        }
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        if library.offline:
            print(f"(note: {display_path(library.folder)} is offline; results are from its index)")
        for r in results:
            print(f"{display_path(r.query)}:")
            if r.error:
                print(f"  cannot search: {r.error}")
                continue
            for m in r.results:
                soft = f"  soft {m.soft_distance:.2f}" if m.soft_distance is not None else ""
                own = "  (this photo)" if m.is_query else "  (an edited copy)" if m.edited_copy else ""
                print(f"  {m.rank + 1:3d}  d={m.distance:<3d}{soft}  {display_path(m.path)}{own}")
    for r in results:
        if r.error:
            _error(r.error)
    return EXIT_PARTIAL if failed else EXIT_OK


def _print_outcome(outcome: SearchOutcome, as_json: bool) -> int:
    def hits(rows):
        return [
            {"rank": i + 1, "distance": h.distance, "per_query": list(h.per_query) or None, "relpath": h.relpath, "path": h.path}
            for i, h in enumerate(rows)
        ]

    if as_json:
        payload = {
            "queries": [
                {"query": q.query, "error": q.error, "hidden": q.hidden, "results": hits(q.hits)} for q in outcome.queries
            ],
            "combined": hits(outcome.combined) if outcome.combined is not None else None,
        }
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        for q in outcome.queries:
            print(f"{display_path(q.query)}:" + (f"  ({q.hidden} exact duplicates hidden)" if q.hidden else ""))
            if q.error:
                print(f"  cannot search: {q.error}")
            for i, h in enumerate(q.hits):
                print(f"  {i + 1:3d}  d={h.distance:<3d}  {display_path(h.path)}")
        if outcome.combined is not None:
            print("combined (sum of distances):")
            for i, h in enumerate(outcome.combined):
                print(f"  {i + 1:3d}  d={h.distance:<4d} {list(h.per_query)}  {display_path(h.path)}")
    failed = [q for q in outcome.queries if q.error]
    for q in failed:
        _error(q.error)
    return EXIT_PARTIAL if failed else EXIT_OK


__all__ = ["add_index_parser", "add_search_parser", "run_index", "run_search"]
