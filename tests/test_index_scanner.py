"""Walking photo folders: what is found, what is skipped, and what the walk survives."""

from __future__ import annotations

import os

import pytest
from index_support import app_dirs, write_photo  # noqa: F401

from fph_desktop.index import scanner
from fph_desktop.index.scanner import scan_folder


def relpaths(result):
    return [f.relpath for f in result.files]


def test_finds_photos_recursively_sorted_with_size_and_mtime(app_dirs, tmp_path):
    root = tmp_path / "root"
    write_photo(root / "b.jpg", 1)
    write_photo(root / "a" / "deep" / "c.png", 2, fmt="PNG")
    write_photo(root / "a" / "d.webp", 3, fmt="WEBP")
    write_photo(root / "e.gif", 4, fmt="GIF")
    (root / "notes.txt").write_text("not a photo")
    (root / "model.fph").write_bytes(b"weights are not photos")
    result = scan_folder(root)
    assert relpaths(result) == ["a/d.webp", "a/deep/c.png", "b.jpg", "e.gif"]
    first = result.files[0]
    assert (first.size, first.mtime_ns) == ((root / "a/d.webp").stat().st_size, (root / "a/d.webp").stat().st_mtime_ns)


def test_hidden_folders_and_clutter_are_skipped_by_default(app_dirs, tmp_path):
    root = tmp_path / "root"
    write_photo(root / "keep.jpg", 1)
    write_photo(root / ".thumbnails" / "t.jpg", 2)
    write_photo(root / "album" / ".hidden.jpg", 3)
    write_photo(root / "@eaDir" / "SYNOFILE_THUMB.jpg", 4)
    assert relpaths(scan_folder(root)) == ["keep.jpg"]
    assert relpaths(scan_folder(root, include_hidden=True)) == [".thumbnails/t.jpg", "album/.hidden.jpg", "keep.jpg"]


def test_app_data_directory_inside_the_folder_is_skipped(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("FPH_DESKTOP_DATA_DIR", str(root / "fph-data"))
    monkeypatch.setenv("FPH_DESKTOP_CACHE_DIR", str(root / "fph-cache"))
    write_photo(root / "keep.jpg", 1)
    write_photo(root / "fph-cache" / "thumb.jpg", 2)
    assert relpaths(scan_folder(root)) == ["keep.jpg"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_is_survived_and_each_folder_walked_once(app_dirs, tmp_path):
    root = tmp_path / "root"
    write_photo(root / "a" / "x.jpg", 1)
    os.symlink(root, root / "a" / "loop")  # a -> root -> a -> ...
    os.symlink(root / "a", root / "alias")  # the same folder under a second name
    (root / "dangling.jpg").symlink_to(root / "missing.jpg")
    assert relpaths(scan_folder(root)) == ["a/x.jpg"]


def test_unreadable_directory_is_recorded_and_the_walk_goes_on(app_dirs, tmp_path, monkeypatch):
    """As root, chmod cannot deny a read, so the OS error is injected where the walk lists a folder."""
    root = tmp_path / "root"
    write_photo(root / "locked" / "x.jpg", 1)
    write_photo(root / "open" / "y.jpg", 2)
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(root / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(scanner.os, "scandir", scandir)
    result = scan_folder(root)
    assert relpaths(result) == ["open/y.jpg"]
    assert result.unreadable_dirs == [("locked", "permission denied")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads through chmod 000 (tests run as root here)")
def test_unreadable_directory_by_permissions(app_dirs, tmp_path):
    root = tmp_path / "root"
    write_photo(root / "locked" / "x.jpg", 1)
    write_photo(root / "y.jpg", 2)
    (root / "locked").chmod(0)
    try:
        result = scan_folder(root)
    finally:
        (root / "locked").chmod(0o755)
    assert relpaths(result) == ["y.jpg"] and result.unreadable_dirs[0][0] == "locked"


def test_missing_root_raises_so_the_caller_can_call_it_offline(app_dirs, tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_folder(tmp_path / "unplugged")
