"""Bringing an index up to date with its folder: encode only what is new or changed.

How one update runs, and why:

1. Scan the folder (size + mtime of every photo; cheap). A missing folder is *offline*: the index
   is left exactly as it was, because a removable drive that is unplugged must not empty it.
2. Compare with the store. Unchanged files (same size and mtime_ns) are not opened, except photos
   indexed before the index stored each code's real-valued outputs and perceptual hash (schema 2):
   they are encoded once more, so an index made by an older version gains what the search needs to
   find edited copies at its first update (:mod:`.copies`). Files that
   failed before and have not changed are not retried, unless the failure was of the file's access
   rather than its content (permission denied, unreadable, passed over) or ``retry_skipped`` asks;
   their reason stays on record. Files passed over by the scan (a HEIC photo without the extra, a
   pipe, a dangling link) are recorded as skipped with their reason.
   One indexer per index at a time (:mod:`.lock`): a second run waits, then finds nothing to do.
3. Every other file is read once (streamed when it is larger than 64 MB), in a thread pool that runs
   ahead of the network: the bytes are hashed (SHA-256) and, when that content already has a code in
   this index (a file moved, renamed, copied, or only touched), the code is reused without decoding.
   Otherwise the same bytes are decoded with JPEG draft reduction, hashed perceptually and
   preprocessed, still in the pool.
4. The main thread encodes each batch (``inference_mode``, on the GPU when there is one) and
   commits the batch's codes, their real-valued outputs (float16), the perceptual hashes and the
   errors in one transaction. A cancel or a kill loses at most the
   batch in flight; the next run starts where this one stopped.
5. Only after every batch is in are the rows of vanished files dropped (in one transaction), so a
   moved file found late in the run can still take its old code. Files under a directory that
   could not be listed this time are kept, not dropped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import display_path
from ..imaging import MAX_IN_MEMORY_BYTES, ImageError, open_image
from ..progress import Progress, silent
from .copies import photo_hash, real_code_bytes
from .lock import index_lock
from .scanner import ScannedFile, scan_folder
from .store import (
    STATUS_ERROR,
    FileRecord,
    FileState,
    IndexStore,
    IndexStoreError,
    KnownCode,
    db_path_for,
    folder_key,
    indexes_dir,
)

DEFAULT_BATCH_SIZE = 32


@dataclass
class UpdateReport:
    """What one update did; ``offline`` means nothing was touched because the folder is absent."""

    folder: str
    db_path: Path
    offline: bool = False
    offline_reason: str = ""
    scanned: int = 0  # photos found on disk
    unchanged: int = 0  # same size and mtime as indexed: not opened
    encoded: int = 0  # decoded and run through the network
    upgraded: int = 0  # unchanged photos indexed before schema 2, given their outputs (once; counted above too)
    reused: int = 0  # code taken from identical content already indexed (copies, touched files)
    moved: int = 0  # code taken from a file that vanished from its old path (renames, moves)
    deleted: int = 0  # rows dropped because their file is gone
    failed: int = 0  # files that could not be used this run (reasons in the store)
    still_skipped: int = 0  # files that failed before and have not changed: not retried
    passed_over: int = 0  # named like photos but not readable as photos here (reasons in the store)
    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.offline:
            return f"{display_path(self.folder)}: offline ({self.offline_reason}); the index was left as it was"
        parts = [
            f"{self.scanned} photos",
            f"{self.encoded} encoded",
            f"{self.unchanged} unchanged",
        ]
        for label, value in (
            ("upgraded once for the new search", self.upgraded),
            ("moved", self.moved),
            ("reused", self.reused),
            ("removed", self.deleted),
            ("could not be read", self.failed),
            ("skipped as before", self.still_skipped),
            ("passed over (see --report)", self.passed_over),
        ):
            if value:
                parts.append(f"{value} {label}")
        if self.unreadable_dirs:
            parts.append(f"{len(self.unreadable_dirs)} folders unreadable")
        return f"{display_path(self.folder)}: " + ", ".join(parts) + f" ({self.seconds:.1f} s)"


@dataclass(frozen=True)
class BatchCommitted:
    """Sent through ``Progress.partial`` after each committed batch (the GUI may refresh)."""

    done: int
    total: int
    relpaths: tuple[str, ...]


@dataclass
class _Prepared:
    """One file after the worker pool: pixels to encode, a code to reuse, or an error."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: bytes | None = None
    pixels: np.ndarray | None = None  # (3, H, W) float32, normalised
    code: bytes | None = None
    real_code: bytes | None = None
    photo_hash: bytes | None = None
    code_from: str | None = None
    error: str | None = None


def _prepare(root: Path, item: ScannedFile, known_codes: dict[bytes, KnownCode], encoder) -> _Prepared:
    """Read, hash, and decode one file. Never raises: every failure becomes ``error``."""
    path = root / item.relpath
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_size <= MAX_IN_MEMORY_BYTES:
                data = handle.read()
                content_hash = hashlib.sha256(data).digest()
            else:  # never hold a huge file in memory: hash it in chunks, let the decoder read the file
                data = None
                content_hash = hashlib.file_digest(handle, "sha256").digest()
    except FileNotFoundError:
        return _Prepared(item.relpath, item.size, item.mtime_ns, error="file vanished before it could be read")
    except PermissionError:
        return _Prepared(item.relpath, item.size, item.mtime_ns, error="permission denied")
    except OSError as exc:
        return _Prepared(item.relpath, item.size, item.mtime_ns, error=f"could not be read ({exc.strerror or exc})")
    # Size and mtime of the bytes actually read, so the row describes the content it encodes.
    prepared = _Prepared(item.relpath, st.st_size, st.st_mtime_ns, content_hash=content_hash)
    known = known_codes.get(prepared.content_hash)
    if known is not None:
        prepared.code_from, prepared.code = known.relpath, known.code
        prepared.real_code, prepared.photo_hash = known.real_code, known.photo_hash
        return prepared
    try:
        image = open_image(path, encoder.decode_side, data=data)
        prepared.photo_hash = photo_hash(image)
        prepared.pixels = encoder.to_array(image)
    except ImageError as exc:
        prepared.error = exc.reason
    except Exception as exc:  # noqa: BLE001 - a decoder's bug on one file must cost that file, not the run; the type is kept
        prepared.error = f"could not be decoded ({exc.__class__.__name__}: {exc})"
    return prepared


# Failures of a file's access or of this installation, not of its content: retried on every run,
# since fixing them (permissions, a reconnected share, the heif extra) does not change the file.
RETRIED_REASONS = (
    "permission denied",
    "file vanished",
    "could not be read",
    "not a regular file",
    "a link to a file that does not exist",
    "a HEIC photo",
    "a HEIF photo",
    "an AVIF photo",
)


def _needs_work(item: ScannedFile, state: FileState | None, reason: str | None, retry_skipped: bool) -> bool:
    if state is None or state.size != item.size or state.mtime_ns != item.mtime_ns or not state.has_outputs:
        return True
    return state.status == STATUS_ERROR and (retry_skipped or (reason or "").startswith(RETRIED_REASONS))


def _under(relpath: str, directories: list[str]) -> bool:
    return any(d == "." or relpath.startswith(d.rstrip("/") + "/") for d in directories)


def write_index_meta(store: IndexStore, folder: str | Path, encoder, model_path: str | Path | None) -> None:
    """Record which folder and model this index belongs to (and, for a later run without
    ``--model``, where the model file was)."""
    recorded = store.get_meta("fingerprint")
    if recorded is not None and recorded != encoder.fingerprint:
        raise IndexStoreError(
            f"{store.path}: holds codes of model {recorded}, not of {encoder.fingerprint}; codes of two models "
            "must never mix, so delete this file or index into the database made for this model"
        )
    values = {
        "root": folder_key(folder),
        "fingerprint": encoder.fingerprint,
        "code_bits": encoder.code_bits,
        "model_description": encoder.info.describe(),
    }
    if model_path is not None:
        values["model_path"] = os.path.abspath(os.fspath(model_path))
    if store.get_meta("created") is None:
        values["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    store.set_meta(**values)


def update_index(
    folder: str | Path,
    encoder,
    progress: Progress | None = None,
    *,
    model_path: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    include_hidden: bool = False,
    allow_empty: bool = False,
    retry_skipped: bool = False,
) -> UpdateReport:
    """Bring the index of ``folder`` under ``encoder``'s model up to date and return what it did.

    ``workers`` decode threads (default: one per CPU core, at most 8) run ahead of the network by two
    batches. A :class:`~fph_desktop.progress.Cancelled` from ``progress`` propagates after the
    batches so far are committed. ``allow_empty``: accept that a folder which now has no entries at
    all really lost every photo (otherwise it is treated as an unmounted drive: offline). ``retry_skipped``:
    read again every file skipped before, changed or not.
    """
    progress = progress or silent()
    started = time.monotonic()
    root = Path(folder)
    report = UpdateReport(folder=folder_key(folder), db_path=db_path_for(folder, encoder.fingerprint))
    indexes_dir()  # the data folder exists (or its error is said) before the lock file is made there
    with index_lock(report.db_path, progress):
        progress.set_status(f"Looking for photos in {display_path(root)}…")
        try:
            scan = scan_folder(root, progress, include_hidden=include_hidden)
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            report.offline = True
            report.offline_reason = "folder not found" if isinstance(exc, FileNotFoundError) else str(exc.strerror or exc)
            report.seconds = time.monotonic() - started
            return report
        report.scanned = len(scan.files)
        report.unreadable_dirs = scan.unreadable_dirs
        _update_store(root, scan, encoder, progress, report, model_path, batch_size, workers, allow_empty, retry_skipped)
    report.seconds = time.monotonic() - started
    progress.set_status(report.summary())
    return report


def _update_store(root, scan, encoder, progress, report, model_path, batch_size, workers, allow_empty, retry_skipped) -> None:
    with IndexStore(report.db_path, create=True) as store:
        write_index_meta(store, root, encoder, model_path)
        states = store.file_states()
        if scan.root_is_empty and states and not allow_empty:
            report.offline = True
            report.offline_reason = "the folder is empty (is its drive unmounted?)"
            return
        reasons = {s.relpath: s.reason for s in store.skipped_files()} if states else {}
        work: list[ScannedFile] = []
        upgrades: set[str] = set()
        for item in scan.files:
            state = states.get(item.relpath)
            if not _needs_work(item, state, reasons.get(item.relpath), retry_skipped):
                if state.status == STATUS_ERROR:
                    report.still_skipped += 1
                else:
                    report.unchanged += 1
            else:
                work.append(item)
                if state is not None and not state.has_outputs and (state.size, state.mtime_ns) == (item.size, item.mtime_ns):
                    upgrades.add(item.relpath)
        passed = [
            FileRecord(relpath, size, mtime, None, error=reason)
            for relpath, reason, size, mtime in scan.passed_over
            if reasons.get(relpath) != reason or states[relpath].size != size or states[relpath].mtime_ns != mtime
        ]
        if passed:
            store.write_records(passed)
        report.passed_over = len(scan.passed_over)
        on_disk = {item.relpath for item in scan.files} | {relpath for relpath, *_ in scan.passed_over}
        unreadable = [d for d, _ in scan.unreadable_dirs]
        vanished = {p for p in states if p not in on_disk and not _under(p, unreadable)}
        known_codes = store.codes_by_hash()

        if work:
            if upgrades:
                progress.set_status(
                    f"Encoding {len(work)} photos ({len(upgrades)} of them again, once: this version also stores "
                    "what finds edited copies)…"
                )
            else:
                progress.set_status(f"Encoding {len(work)} new or changed photos…")
            _encode_all(root, work, encoder, store, known_codes, vanished, report, progress, batch_size, workers, upgrades)

        if vanished:
            report.deleted = store.delete_files(sorted(vanished))
        store.set_unreadable_dirs(scan.unreadable_dirs)
        store.set_meta(updated=time.time(), last_update_complete=1)


def _encode_all(root, work, encoder, store, known_codes, vanished, report, progress, batch_size, workers, upgrades) -> None:
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    total, done = len(work), 0
    pending = iter(work)
    window: deque = deque()
    progress.set_progress(0, total)
    store.set_meta(last_update_complete=0)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fph-decode") as pool:

        def fill() -> None:
            while len(window) < 2 * batch_size:
                item = next(pending, None)
                if item is None:
                    return
                window.append(pool.submit(_prepare, root, item, known_codes, encoder))

        try:
            fill()
            while window:
                batch: list[_Prepared] = []
                while window and len(batch) < batch_size:
                    batch.append(window.popleft().result())
                    fill()
                progress.check()
                to_encode = [p for p in batch if p.pixels is not None]
                if to_encode:
                    packed, real = encoder.encode_batch(np.stack([p.pixels for p in to_encode]))
                    for p, code, u in zip(to_encode, packed, real, strict=True):
                        p.code = code.tobytes()
                        p.real_code = real_code_bytes(u)
                        p.pixels = None
                records = []
                for p in batch:
                    records.append(
                        FileRecord(p.relpath, p.size, p.mtime_ns, p.content_hash, p.code, p.error, p.real_code, p.photo_hash)
                    )
                    report.upgraded += p.error is None and p.relpath in upgrades
                    if p.error is not None:
                        report.failed += 1
                    elif p.code_from is None:
                        report.encoded += 1
                    elif p.code_from in vanished:
                        report.moved += 1
                    else:
                        report.reused += 1
                    if p.code is not None and p.content_hash is not None:
                        known_codes.setdefault(p.content_hash, KnownCode(p.relpath, p.code, p.real_code, p.photo_hash))
                store.write_records(records)
                done += len(batch)
                progress.set_progress(done, total)
                progress.partial(BatchCommitted(done, total, tuple(p.relpath for p in batch)))
                progress.check()
        finally:
            # On cancel or error: drop queued reads; running ones finish (each is one file).
            for future in window:
                future.cancel()
