"""The on-disk index: one SQLite file per (indexed folder, model fingerprint).

Why SQLite: one file, transactions, readable by any tool, and safe against a kill. The database is
in WAL mode with ``synchronous=FULL``, and the indexer commits once per batch, so a process killed
mid-index (SIGKILL, power loss) leaves every batch committed before the kill, and the next run
continues from there. The schema carries a version (``PRAGMA user_version``) and is brought up to
date by the migrations below; a file written by a newer app is refused, not damaged.

Codes are stored packed (q/8 bytes a code, ``np.packbits`` order). Beside each code (schema 2):
the network's real-valued outputs behind it (``real_code``: q float16, what re-ranks the Hamming
candidates) and the photo's perceptual hash (``photo_hash``: 8 bytes, NULL for a photo without
structure); together they tell a photo's edited copies from its look-alikes (:mod:`.copies`). An index
made before them (schema 1) is migrated in place; its rows have neither until the next update encodes
them again, and until then it is searched by the codes alone, as before. Paths are relative to the
folder root, so a drive mounted under another letter or mount point still matches.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..errors import BadIndexError, ReadOnlyStorageError, StorageError, UserError, display_path, sqlite_error

SCHEMA_VERSION = 2
DB_SUFFIX = ".sqlite"

STATUS_OK = "ok"
STATUS_ERROR = "error"


class IndexStoreError(BadIndexError):
    """An index file that cannot be used; the message names the file and what to do."""


def to_db_path(relpath: str) -> str | bytes:
    """A relpath as stored: text, or, for a file name that is not valid UTF-8 (Python holds its
    undecodable bytes as surrogates), the raw bytes as a BLOB, so every name round-trips exactly."""
    try:
        relpath.encode("utf-8")
        return relpath
    except UnicodeEncodeError:
        return relpath.encode("utf-8", "surrogateescape")


def from_db_path(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, (bytes, memoryview)) else value


def _create_v1(db: sqlite3.Connection) -> None:
    # Separate execute() calls, not executescript(), which would commit the migration's transaction.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """
        CREATE TABLE files (
            relpath      TEXT PRIMARY KEY NOT NULL,
            size         INTEGER NOT NULL,
            mtime_ns     INTEGER NOT NULL,
            content_hash BLOB,
            status       TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error        TEXT,
            code         BLOB,
            indexed_at   REAL NOT NULL,
            CHECK ((status = 'ok') = (code IS NOT NULL))
        )
        """
    )
    db.execute("CREATE INDEX files_by_hash ON files (content_hash)")
    db.execute("CREATE TABLE unreadable_dirs (relpath TEXT PRIMARY KEY, reason TEXT NOT NULL)")


def _add_outputs_v2(db: sqlite3.Connection) -> None:
    """Schema 2: each encoded photo's real-valued outputs and perceptual hash. Existing rows get NULL
    (the next update fills them); nothing is rewritten, so the migration is instant on any index."""
    db.execute("ALTER TABLE files ADD COLUMN real_code BLOB")
    db.execute("ALTER TABLE files ADD COLUMN photo_hash BLOB")


# MIGRATIONS[v] brings a database at schema version v to v + 1 (0 = a brand-new, empty file).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _create_v1, 1: _add_outputs_v2}


def folder_key(folder: str | Path) -> str:
    """The identity of an indexed folder: absolute and normalised, symlinks *not* resolved, so the
    key is the same whether or not its drive is plugged in."""
    return os.path.normcase(os.path.normpath(os.path.abspath(os.fspath(folder))))


def indexes_dir() -> Path:
    directory = paths.data_dir() / "indexes"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def db_path_for(folder: str | Path, fingerprint: str) -> Path:
    """Where the index of ``folder`` under the model ``fingerprint`` lives. The folder's name is in
    the file name for people browsing the data directory; the hash keeps two "Photos" folders apart."""
    safe_fingerprint = re.sub(r"[^A-Za-z0-9]", "", fingerprint)[:32]
    return indexes_dir() / f"{folder_label(folder)}-{safe_fingerprint}{DB_SUFFIX}"


def folder_label(folder: str | Path) -> str:
    """``name-hash`` of a folder for file names: its name for people browsing the data directory,
    a hash of its full path to keep two "Photos" folders apart."""
    key = folder_key(folder)
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{paths.file_stem(os.path.basename(key) or 'root', 'folder')}-{digest}"


@dataclass(frozen=True)
class FileState:
    """What the store knows of one file, enough to decide whether it must be read again."""

    size: int
    mtime_ns: int
    status: str
    content_hash: bytes | None
    has_outputs: bool = True  # an encoded photo's real-valued outputs are stored (False: indexed before schema 2)


@dataclass(frozen=True)
class FileRecord:
    """One row to write: an encoded photo (``code`` set, with ``real_code`` and ``photo_hash`` when
    known) or a skipped file (``error`` set)."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: bytes | None
    code: bytes | None = None
    error: str | None = None
    real_code: bytes | None = None  # float16 tanh outputs (q of them)
    photo_hash: bytes | None = None  # perceptual hash (8 bytes); None for a photo without structure


@dataclass(frozen=True)
class KnownCode:
    """What an encoded photo's content gives a copy of it that needs no decoding."""

    relpath: str
    code: bytes
    real_code: bytes
    photo_hash: bytes | None


@dataclass(frozen=True)
class StoredOutputs:
    """An indexed photo's code with what was stored beside it (``None``: not stored)."""

    size: int
    mtime_ns: int
    code: bytes
    real_code: bytes | None
    photo_hash: bytes | None


@dataclass(frozen=True)
class SearchData:
    """Everything a search needs, in file order: relpaths, packed codes (N, q/8), the real-valued
    outputs (N, q) float16 or ``None`` when some photo lacks them (an index not yet updated since
    schema 2), and the perceptual hashes ((N,) uint64, with a mask of the photos that have one)."""

    relpaths: list[str]
    packed: np.ndarray
    real: np.ndarray | None
    photo_hashes: np.ndarray
    photo_hash_valid: np.ndarray


@dataclass(frozen=True)
class SkippedFile:
    relpath: str
    reason: str
    size: int
    mtime_ns: int


class IndexStore:
    """An open index database. Not shared between threads: the indexer writes from one thread."""

    def __init__(self, db_path: str | Path, *, create: bool = False) -> None:
        self.path = Path(db_path)
        self.read_only = False
        self.version = SCHEMA_VERSION  # what the open file holds: an older one on read-only storage
        if not create and not self.path.is_file():
            raise IndexStoreError("no such index file", self.path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._translate(exc, "opening the index") from None
        if not create:
            self._refuse_foreign_file()
        try:
            self._set_up()
        except sqlite3.Error as exc:
            self.db.close()
            error = self._translate(exc, "opening the index")
            if create or not isinstance(error, StorageError):
                raise error from None
            # Read-only storage (or a file we may not write): the codes can still be searched.
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True, isolation_level=None)
            self.read_only = True
            with self._guard("reading the index"):
                self.version = self.db.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(self.version)
        with self._guard("reading the index"):
            self.db.execute("SELECT COUNT(*) FROM meta").fetchone()  # a damaged file fails here, not mid-search

    def _refuse_foreign_file(self) -> None:
        """Before anything is written: a database that is not an index (another program's, or an empty
        file) is refused untouched, never migrated into an index."""
        with self._guard("reading the index"):
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 or "meta" not in tables or "files" not in tables:
            self.db.close()
            raise IndexStoreError(
                "is not an fph-desktop index", self.path, "give an indexed folder, or the .sqlite file `index` made for it"
            )

    def _set_up(self) -> None:
        self.db.execute("PRAGMA busy_timeout = 30000")
        mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a network file system without shared memory
            self.db.execute("PRAGMA journal_mode = DELETE")
        # FULL: a committed batch survives a power cut, not only a killed process.
        self.db.execute("PRAGMA synchronous = FULL")
        self._migrate()

    def _translate(self, exc: sqlite3.Error, doing: str) -> UserError:
        found = sqlite_error(exc, self.path, doing, kept="the index holds every batch saved before")
        if isinstance(found, BadIndexError):
            return IndexStoreError(found.message, found.path, found.hint)
        return found or IndexStoreError(
            f"cannot be used as an index ({exc})",
            self.path,
            "move it aside (or delete it) and index the folder again; your photos are not affected",
        )

    @contextmanager
    def _guard(self, doing: str):
        """SQLite's errors, as the error model's: a full disk, read-only storage, a damaged file."""
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # our own bad statement or record: a bug, not the file's fault
        except sqlite3.Error as exc:
            raise self._translate(exc, doing) from None

    # -- schema -------------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        self._check_version(version)
        while version < SCHEMA_VERSION:
            with self.transaction():
                MIGRATIONS[version](self.db)
                version += 1
                self.db.execute(f"PRAGMA user_version = {version}")

    def _outputs(self) -> str:
        """The schema-2 columns to select: NULLs from an older file that could not be migrated
        (read-only storage), which is then searched by its codes alone."""
        return "real_code, photo_hash" if self.version >= 2 else "NULL, NULL"

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise IndexStoreError(
                f"written by a newer fph-desktop (index schema {version}, this one reads up to {SCHEMA_VERSION})",
                self.path,
                "update fph-desktop, or delete the file to index the folder again",
            )

    def transaction(self):
        """``with store.transaction():`` one atomic unit (BEGIN IMMEDIATE … COMMIT / ROLLBACK)."""
        if self.read_only:
            raise ReadOnlyStorageError(
                "the index is on read-only storage (or may not be written), so it cannot be updated",
                self.path,
                "searching it still works; set FPH_DESKTOP_DATA_DIR to a writable folder to index",
            )
        return _Transaction(self, self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metadata -----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._guard("reading the index"):
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else default

    def meta(self) -> dict[str, str]:
        with self._guard("reading the index"):
            return dict(self.db.execute("SELECT key, value FROM meta"))

    def set_meta(self, **values: object) -> None:
        with self._guard("updating the index"):
            with self.transaction():
                self.db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [(k, str(v)) for k, v in values.items()],
                )

        # -- files --------------------------------------------------------------------------------

    def file_states(self) -> dict[str, FileState]:
        has_outputs = "status != 'ok' OR real_code IS NOT NULL" if self.version >= 2 else "status != 'ok'"
        with self._guard("reading the index"):
            return {
                from_db_path(relpath): FileState(size, mtime_ns, status, content_hash, bool(outputs))
                for relpath, size, mtime_ns, status, content_hash, outputs in self.db.execute(
                    f"SELECT relpath, size, mtime_ns, status, content_hash, {has_outputs} FROM files"
                )
            }

    def encoded_file(self, relpath: str) -> StoredOutputs | None:
        """What is stored of an encoded file, or None."""
        with self._guard("reading the index"):
            row = self.db.execute(
                f"SELECT size, mtime_ns, code, {self._outputs()} FROM files WHERE relpath = ? AND status = 'ok'",
                (to_db_path(relpath),),
            ).fetchone()
        return None if row is None else StoredOutputs(*row[:3], *(None if v is None else bytes(v) for v in row[3:]))

    def codes_by_hash(self) -> dict[bytes, KnownCode]:
        """content hash -> what one encoded file holding it stored: lets a moved, copied or merely
        touched file take its code without decoding it again. Rows without real-valued outputs
        (indexed before schema 2) are left out: their content is encoded again."""
        with self._guard("reading the index"):
            found: dict[bytes, KnownCode] = {}
            for content_hash, relpath, code, real_code, photo_hash in self.db.execute(
                f"SELECT content_hash, relpath, code, {self._outputs()} FROM files"
                " WHERE status = 'ok' AND content_hash IS NOT NULL ORDER BY relpath"
            ):
                if real_code is None:
                    continue
                found.setdefault(
                    bytes(content_hash),
                    KnownCode(
                        from_db_path(relpath), bytes(code), bytes(real_code), None if photo_hash is None else bytes(photo_hash)
                    ),
                )
            return found

    def write_records(self, records: Iterable[FileRecord]) -> None:
        """Insert or replace ``records`` in one transaction (one indexer batch)."""
        with self._guard("saving a batch of codes"):
            now = time.time()
            rows = [
                (
                    to_db_path(r.relpath),
                    r.size,
                    r.mtime_ns,
                    r.content_hash,
                    STATUS_OK if r.code is not None else STATUS_ERROR,
                    None if r.code is not None else (r.error or "unknown error"),
                    r.code,
                    now,
                    r.real_code if r.code is not None else None,
                    r.photo_hash if r.code is not None else None,
                )
                for r in records
            ]
            with self.transaction():
                self.db.executemany(
                    "INSERT OR REPLACE INTO files"
                    " (relpath, size, mtime_ns, content_hash, status, error, code, indexed_at, real_code, photo_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def delete_files(self, relpaths: Iterable[str]) -> int:
        with self._guard("updating the index"):
            relpaths = list(relpaths)
            with self.transaction():
                self.db.executemany("DELETE FROM files WHERE relpath = ?", [(to_db_path(p),) for p in relpaths])
            return len(relpaths)

    def set_unreadable_dirs(self, dirs: Iterable[tuple[str, str]]) -> None:
        with self._guard("updating the index"):
            with self.transaction():
                self.db.execute("DELETE FROM unreadable_dirs")
                self.db.executemany(
                    "INSERT OR REPLACE INTO unreadable_dirs (relpath, reason) VALUES (?, ?)",
                    [(to_db_path(d), reason) for d, reason in dirs],
                )

    def unreadable_dirs(self) -> list[tuple[str, str]]:
        with self._guard("reading the index"):
            return [
                (from_db_path(d), reason)
                for d, reason in self.db.execute("SELECT relpath, reason FROM unreadable_dirs ORDER BY relpath")
            ]

    def skipped_files(self) -> list[SkippedFile]:
        with self._guard("reading the index"):
            return [
                SkippedFile(from_db_path(row[0]), *row[1:])
                for row in self.db.execute(
                    "SELECT relpath, error, size, mtime_ns FROM files WHERE status = 'error' ORDER BY relpath"
                )
            ]

    def counts(self) -> tuple[int, int]:
        """(photos with a code, files skipped with an error)."""
        with self._guard("reading the index"):
            counts = dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
            return counts.get(STATUS_OK, 0), counts.get(STATUS_ERROR, 0)

    def _altered(self, relpath, what: str, value: bytes | None, size: int) -> IndexStoreError:
        return IndexStoreError(
            f"the {what} of {display_path(from_db_path(relpath))} has {0 if value is None else len(value)} "
            f"bytes, the model gives {size} (the file was altered)",
            self.path,
            "move it aside (or delete it) and index the folder again; your photos are not affected",
        )

    def load_codes(self, code_bytes: int) -> tuple[list[str], np.ndarray]:
        """Every encoded photo in file order (relpath, byte order) and their packed codes as one
        contiguous (N, code_bytes) uint8 array. File order is what breaks Hamming ties."""
        with self._guard("reading the codes"):
            relpaths: list[str] = []
            blobs: list[bytes] = []
            for relpath, code in self.db.execute("SELECT relpath, code FROM files WHERE status = 'ok' ORDER BY relpath"):
                if code is None or len(code) != code_bytes:
                    raise self._altered(relpath, "code", code, code_bytes)
                relpaths.append(from_db_path(relpath))
                blobs.append(code)
            packed = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(relpaths), code_bytes).copy()
            return relpaths, packed

    def load_search_data(self, code_bits: int) -> SearchData:
        """:meth:`load_codes` with the real-valued outputs and perceptual hashes stored beside the
        codes (see :class:`SearchData`); a stored output of the wrong length is refused as a code is."""
        from .copies import photo_hash_array

        code_bytes, real_bytes = code_bits // 8, 2 * code_bits
        relpaths: list[str] = []
        blobs: list[bytes] = []
        reals: list[bytes] | None = []
        hashes: list[bytes | None] = []
        with self._guard("reading the codes"):
            for relpath, code, real_code, photo_hash in self.db.execute(
                f"SELECT relpath, code, {self._outputs()} FROM files WHERE status = 'ok' ORDER BY relpath"
            ):
                if code is None or len(code) != code_bytes:
                    raise self._altered(relpath, "code", code, code_bytes)
                if real_code is not None and len(real_code) != real_bytes:
                    raise self._altered(relpath, "stored output", real_code, real_bytes)
                relpaths.append(from_db_path(relpath))
                blobs.append(code)
                if real_code is None:
                    reals = None  # one photo without them: the outputs cannot rank this index (yet)
                elif reals is not None:
                    reals.append(real_code)
                hashes.append(None if photo_hash is None else bytes(photo_hash))
        n = len(relpaths)
        packed = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(n, code_bytes).copy()
        real = None if reals is None else np.frombuffer(b"".join(reals), dtype="<f2").reshape(n, code_bits).copy()
        words, valid = photo_hash_array(hashes)
        return SearchData(relpaths, packed, real, words, valid)

    def encoded_files(self) -> dict[str, tuple[int, bytes | None]]:
        """relpath -> (size in bytes, content hash) of every encoded photo: beside :meth:`load_codes`,
        what tells byte-identical copies (one hash) from photos that merely share a code."""
        with self._guard("reading the index"):
            return {
                from_db_path(relpath): (size, None if content_hash is None else bytes(content_hash))
                for relpath, size, content_hash in self.db.execute(
                    "SELECT relpath, size, content_hash FROM files WHERE status = 'ok'"
                )
            }


class _Transaction:
    def __init__(self, store: IndexStore, db: sqlite3.Connection) -> None:
        self.store = store
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        with self.store._guard("updating the index"):
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        with self.store._guard("saving to the index"):
            if exc_type is None:
                self.db.execute("COMMIT")
            elif self.db.in_transaction:
                self.db.execute("ROLLBACK")
