"""Where the app keeps its files: per-user data, cache and config directories (platformdirs)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

APP_NAME = "fph-desktop"
APP_AUTHOR = "fph-desktop"


def _override(env: str) -> Path | None:
    value = os.environ.get(env)
    return Path(value) if value else None


def file_stem(name: str, fallback: str) -> str:
    """``name`` made safe as part of a file name on every platform (at most 40 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or fallback


def _ensure(path: Path, what: str, env: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .errors import BadFolderError, storage_error

        error = storage_error(exc, path, f"creating the app's {what} folder")
        if error is None:
            error = BadFolderError(
                f"cannot be used as the app's {what} folder ({exc.strerror or exc})", path,
                f"remove what is in the way, or set {env} to a writable folder",
            )  # fmt: skip
        raise error from None
    return path


def data_dir() -> Path:
    """Indexes and trained models. ``FPH_DESKTOP_DATA_DIR`` overrides it (tests, portable installs)."""
    path = _override("FPH_DESKTOP_DATA_DIR") or Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    return _ensure(path, "data", "FPH_DESKTOP_DATA_DIR")


def cache_dir() -> Path:
    """Thumbnails and cached backbone features: safe to delete. ``FPH_DESKTOP_CACHE_DIR`` overrides it."""
    path = _override("FPH_DESKTOP_CACHE_DIR") or Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))
    return _ensure(path, "cache", "FPH_DESKTOP_CACHE_DIR")
