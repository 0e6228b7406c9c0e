"""The fault battery: what a user sees when things go wrong, run as a user runs it.

Each case runs ``python -m fph_desktop …`` as a subprocess (or ``main`` in-process where the fault
must be injected) and checks the exit code (README, "Exit codes"), that the failure is said in one
line that names the file and the next step, that no traceback reaches the terminal, and that
nothing was lost.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from index_support import app_dirs, make_photos, tiny_model_path, write_photo  # noqa: F401
from PIL import Image

from fph_desktop.cli import main
from fph_desktop.errors import EXIT_BUG, EXIT_OFFLINE, EXIT_OK, EXIT_STORAGE, EXIT_USER
from fph_desktop.index.library import Library, indexes_for_folder
from fph_desktop.index.store import IndexStore


def cli(*args, fsize_limit: int | None = None, env: dict | None = None, wrap_rss: bool = False):
    """Run the command as a user would; returns (exit code, stdout, stderr)."""

    def limit():  # a file-size limit makes writes fail as on a full disk (EFBIG, not a signal)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    argv = [str(a) if not isinstance(a, bytes) else os.fsdecode(a) for a in args]
    if wrap_rss:  # the child reports its own peak memory after the command
        code = (
            "import resource, sys; from fph_desktop.cli import main; rc = main(sys.argv[1:]); "
            "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
        )
        command = [sys.executable, "-c", code, *argv]
    else:
        command = [sys.executable, "-m", "fph_desktop", *argv]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=300,
        preexec_fn=limit if fsize_limit else None,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


def in_process(capsys, *args):
    """The same command through ``main`` in this process (faster; for faults that need no isolation)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The one line that says what went wrong; fails if there is a traceback or several."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "Photos"
    make_photos(folder, 5)
    return folder


def indexed(folder, model) -> None:
    """The setting-up indexing, in-process (the faults under test come after it)."""
    report = Library.open(folder, model).update()
    assert not report.offline and report.failed == 0


# -- files and folders ---------------------------------------------------------------------------------
def test_a_file_name_that_is_not_utf8_is_indexed_beside_the_others(app_dirs, photos, tiny_model_path):
    odd = os.path.join(os.fsencode(photos), b"bad\xff\xfename.jpg")
    with open(odd, "wb") as handle:
        handle.write((photos / "album0" / "img_000.jpg").read_bytes()[:-2] + b"\xff\xd9")  # a distinct, valid copy
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet")
    assert code == EXIT_OK, err
    assert "6 photos" in out and "could not be read" not in out
    code, out, err = cli("search", os.fsdecode(odd), "--index", photos, "-k", "2")
    assert code == EXIT_OK, err
    assert "bad\\xff\\xfename.jpg  (this photo)" in out  # printed escaped, found as itself


def test_a_16_bit_grey_png_is_a_real_grey_photo_not_white(app_dirs, photos, tiny_model_path):
    ramp = np.tile(np.linspace(0, 65535, 120), (90, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(photos / "scan16.png")
    assert Image.open(photos / "scan16.png").mode.startswith("I")
    from fph_desktop.imaging import open_image

    grey = np.asarray(open_image(photos / "scan16.png"))
    assert 100 < grey.mean() < 155 and grey.min() < 10 and grey.max() > 245  # the ramp, not solid white
    indexed(photos, tiny_model_path)
    library = Library.open(photos, tiny_model_path)
    assert library.relpath_of(photos / "scan16.png") == "scan16.png"


def test_a_2gb_file_named_jpg_is_skipped_without_being_read_into_memory(app_dirs, photos, tiny_model_path, tmp_path):
    def peak_mb(err: str) -> float:
        return int(err.split("PEAK_RSS_KB")[1].split()[0]) / 1024

    code, _, err = cli("index", photos, "--model", tiny_model_path, "--quiet", wrap_rss=True)
    assert code == EXIT_OK, err
    baseline = peak_mb(err)  # the same command's own peak without the big file
    with open(photos / "huge.jpg", "wb") as handle:  # sparse: takes no disk space
        handle.truncate(2 * 1024**3)
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet", "--report", wrap_rss=True)
    assert code == EXIT_OK, err
    assert "5 unchanged" in out and "huge.jpg: not an image" in out
    assert peak_mb(err) - baseline < 512, f"peak {peak_mb(err):.0f} MB against {baseline:.0f} MB: the 2 GB file was read whole"


def test_pipes_dangling_links_and_heic_are_passed_over_with_a_reason(app_dirs, photos, tiny_model_path, monkeypatch):
    os.mkfifo(photos / "pipe.jpg")
    os.symlink(photos / "gone.jpg", photos / "dangling.jpg")
    (photos / "IMG_0001.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet", "--report")
    assert code == EXIT_OK, err
    assert "passed over" in out
    assert "pipe.jpg: not a regular file" in out and "dangling.jpg: a link to a file that does not exist" in out
    import fph_desktop.imaging as imaging

    if ".heic" not in imaging.IMAGE_SUFFIXES:  # a platform without pillow-heif's wheels: said, not silent
        assert "IMG_0001.heic: a HEIC photo, which needs the heif extra" in out
    else:  # HEIC is read out of the box: this one is only a damaged file
        assert "IMG_0001.heic:" in out and "passed over" in out


def test_heic_photos_are_indexed_and_searched_out_of_the_box(app_dirs, tmp_path, tiny_model_path):
    """iPhone photos: pillow-heif is installed with the app wherever it has wheels (as here)."""
    import pillow_heif  # noqa: F401 - a dependency on this platform: its absence is a packaging bug
    from PIL import Image

    import fph_desktop.imaging as imaging

    folder = tmp_path / "iPhone"
    folder.mkdir()
    for i, jpeg in enumerate(make_photos(tmp_path / "jpegs", 3)):
        Image.open(jpeg).save(folder / f"IMG_{i:04d}.HEIC", format="HEIF")
    code, out, err = cli("index", folder, "--model", tiny_model_path, "--quiet")
    assert code == EXIT_OK and "3 photos, 3 encoded" in out, err + out
    assert ".heic" in imaging.IMAGE_SUFFIXES
    code, out, err = cli("search", folder / "IMG_0001.HEIC", "--index", folder, "-k", "1")
    assert code == EXIT_OK and "IMG_0001.HEIC  (this photo)" in out, err + out


def test_a_link_to_the_root_is_not_followed_out_of_the_folder(app_dirs, photos, tiny_model_path):
    os.symlink("/", photos / "everything")
    os.symlink(photos / "album1", photos / "favourites")  # a link inside the folder is followed (once)
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet", "--report")
    assert code == EXIT_OK, err
    assert "5 photos" in out and "everything/: a link to a folder outside the indexed folder; not followed" in out


def test_a_folder_given_as_a_query_is_named_as_a_folder(app_dirs, photos, tiny_model_path, capsys):
    indexed(photos, tiny_model_path)
    code, _, err = in_process(capsys, "search", photos / "album0", "--index", photos)
    assert code == EXIT_USER
    assert "album0: is a folder, not a photo" in one_error_line(err)


def test_out_of_range_arguments_are_refused_before_anything_runs(app_dirs, photos, capsys):
    for argv in (
        ["search", "q.jpg", "-k", "0"],
        ["search", "q.jpg", "-k", "-1"],
        ["search", "q.jpg", "--hide-duplicates", "-k", "-1"],
        ["search", "q.jpg", "--radius", "-1"],
        ["search", "q.jpg", "--rerank", "-5"],
        ["train", "--data", str(photos), "--image-size", "0"],
        ["index", str(photos), "--batch-size", "0"],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == EXIT_USER, argv
        err = capsys.readouterr().err
        assert "must be at least" in one_error_line(err) and len(err.strip().splitlines()) == 1, err


# -- the index file ------------------------------------------------------------------------------------
def _db(folder) -> Path:
    [info] = indexes_for_folder(folder)
    return info.db_path


def test_a_damaged_index_file_is_called_damaged_and_not_a_missing_model(app_dirs, photos, tiny_model_path, capsys):
    indexed(photos, tiny_model_path)
    db = _db(photos)
    db.write_bytes(b"this is not a database" * 100)
    for wal in db.parent.glob(db.name + "-*"):
        wal.unlink()
    code, _, err = in_process(capsys, "search", photos / "album0" / "img_000.jpg", "--index", db)
    line = one_error_line(err)
    assert code == EXIT_USER and "damaged" in line and str(db) in line and "no model given" not in line
    code, _, err = in_process(capsys, "index", photos, "--model", tiny_model_path, "--quiet")
    assert code == EXIT_USER and "the index file is damaged; move it aside" in one_error_line(err)


def test_tampered_code_lengths_are_refused_with_the_file_named(app_dirs, photos, tiny_model_path, capsys):
    indexed(photos, tiny_model_path)
    with sqlite3.connect(_db(photos)) as db:
        db.execute("UPDATE files SET code = x'00' WHERE relpath = 'album0/img_000.jpg'")
    code, _, err = in_process(capsys, "search", photos / "album1" / "img_001.jpg", "--index", photos)
    line = one_error_line(err)
    assert code == EXIT_USER and "img_000.jpg has 1 bytes, the model gives 2 (the file was altered)" in line


def test_a_full_disk_while_indexing_keeps_every_batch_and_says_so(app_dirs, photos, tiny_model_path):
    indexed(photos, tiny_model_path)
    make_photos(photos, 40, start=100)
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet", "--batch-size", "1", fsize_limit=40_000)
    line = one_error_line(err)
    assert code == EXIT_STORAGE and "writing to the disk failed while saving" in line
    assert "the index holds every batch saved before" in line and "delete" not in line
    with sqlite3.connect(_db(photos)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    assert 5 <= saved < 45
    code, out, err = cli("index", photos, "--model", tiny_model_path, "--quiet")  # space freed
    assert code == EXIT_OK and "45 photos" in out and f"{45 - saved} encoded" in out, (out, err)


def test_read_only_index_storage_still_searches_and_refuses_to_index_in_one_line(
    app_dirs, photos, tiny_model_path, monkeypatch, capsys
):
    indexed(photos, tiny_model_path)

    def read_only(self):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(IndexStore, "_set_up", read_only)
    assert main(["search", str(photos / "album0" / "img_000.jpg"), "--index", str(photos), "-k", "1"]) == EXIT_OK
    assert "img_000.jpg  (this photo)" in capsys.readouterr().out
    assert main(["index", str(photos), "--quiet"]) == EXIT_STORAGE
    assert "storage is read-only, so opening the index is not possible" in one_error_line(capsys.readouterr().err)


def test_a_second_index_run_waits_for_the_first(app_dirs, photos, tiny_model_path):
    from fph_desktop.index.lock import index_lock
    from fph_desktop.progress import Progress

    library = Library.open(photos, tiny_model_path)
    said, finished = [], threading.Event()
    with index_lock(library.db_path):
        worker = threading.Thread(target=lambda: (library.update(Progress(on_status=said.append)), finished.set()))
        worker.start()
        worker.join(timeout=3)
        assert not finished.is_set() and any("Another fph-desktop is indexing this folder" in s for s in said)
    worker.join(timeout=120)
    assert finished.is_set() and len(library) == 5


def test_a_file_skipped_for_its_permissions_is_retried_once_readable(app_dirs, photos, tiny_model_path, capsys):
    indexed(photos, tiny_model_path)
    extra = write_photo(photos / "locked.jpg", seed=77)
    st = extra.stat()
    from fph_desktop.index.store import FileRecord

    with IndexStore(_db(photos)) as store:  # as left by a run that met "permission denied"; fixed since, mtime unchanged
        store.write_records([FileRecord("locked.jpg", st.st_size, st.st_mtime_ns, None, error="permission denied")])
    assert main(["index", str(photos), "--quiet"]) == EXIT_OK
    assert "1 encoded" in capsys.readouterr().out


def test_index_with_retry_skipped_reads_skipped_files_again(app_dirs, photos, tiny_model_path, capsys):
    indexed(photos, tiny_model_path)
    photo = photos / "album0" / "img_000.jpg"
    st = photo.stat()
    from fph_desktop.index.store import FileRecord

    with IndexStore(_db(photos)) as store:
        store.write_records([FileRecord("album0/img_000.jpg", st.st_size, st.st_mtime_ns, None, error="not an image")])
    assert main(["index", str(photos), "--quiet"]) == EXIT_OK
    assert "1 skipped as before" in capsys.readouterr().out
    assert main(["index", str(photos), "--quiet", "--retry-skipped"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "skipped as before" not in out and ("1 reused" in out or "1 encoded" in out)


def test_an_offline_folder_keeps_its_index(app_dirs, photos, tiny_model_path, tmp_path, capsys):
    indexed(photos, tiny_model_path)
    photos.rename(tmp_path / "unplugged")
    code, out, err = in_process(capsys, "index", photos, "--quiet")
    assert code == EXIT_OFFLINE and "offline" in out and "Traceback" not in err


# -- models, training, optional packages ----------------------------------------------------------------
def test_train_out_on_a_full_disk_keeps_the_old_model_and_leaves_no_part_file(app_dirs, photos, tmp_path):
    make_photos(photos, 12, start=200)
    out = tmp_path / "models" / "itq.fph"
    out.parent.mkdir()
    out.write_bytes(b"the old model")
    args = (
        "train",
        "--method",
        "itq",
        "--data",
        photos,
        "--out",
        out,
        "--backbone",
        "resnet18",
        "--backbone-weights",
        "none",
        "--bits",
        "8",
        "--image-size",
        "32",
        "--quiet",
    )
    code, _, err = cli(*args, fsize_limit=30_000_000)  # under the model's 45 MB, over the loader's shared memory
    line = one_error_line(err)
    assert code == EXIT_STORAGE and "while saving the model" in line and str(out) in line
    assert out.read_bytes() == b"the old model" and not list(out.parent.glob("*.part"))


def test_a_save_killed_midway_leaves_no_part_file_for_long(tmp_path):
    from fph_desktop.fileio import atomic_write

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "birds.fph"
    leftover = tmp_path / f"birds.fph.{dead.pid}.x1y2.part"  # what a writer killed with -9 leaves
    leftover.write_bytes(b"half a model")
    with atomic_write(target) as handle:
        handle.write(b"model")
    assert target.read_bytes() == b"model" and not leftover.exists()


def test_training_that_cannot_start_says_why_in_one_line(tmp_path, tiny_birds):
    import shutil

    one_class = tmp_path / "one"
    shutil.copytree(sorted((tiny_birds / "train").iterdir())[0], one_class / "only-class")
    code, _, err = cli(
        "train",
        "--data",
        one_class,
        "--backbone",
        "resnet18",
        "--backbone-weights",
        "none",
        "--image-size",
        "32",
        "--bits",
        "8",
        "--quiet",
    )
    assert code == EXIT_USER and "only one class" in one_error_line(err)


def test_the_faiss_backend_without_faiss_says_how_to_install_it(app_dirs, photos, tiny_model_path, tmp_path):
    indexed(photos, tiny_model_path)
    blocker = tmp_path / "no-faiss"
    blocker.mkdir()
    (blocker / "faiss.py").write_text("raise ImportError('No module named faiss')\n")
    code, _, err = cli(
        "search",
        photos / "album0" / "img_000.jpg",
        "--index",
        photos,
        "--backend",
        "faiss",
        env={"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])},
    )
    line = one_error_line(err)
    assert code == EXIT_USER and "pip install faiss-cpu" in line and "--backend numpy" in line


def test_a_bug_is_reported_as_a_bug_with_a_crash_report(app_dirs, photos, monkeypatch, capsys, tmp_path):
    import fph_desktop.cli.index as index_commands

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(index_commands, "run_index", broken)
    assert main(["index", str(photos)]) == EXIT_BUG
    line = one_error_line(capsys.readouterr().err)
    assert "internal error (a bug in fph-desktop): ZeroDivisionError" in line and "please report it" in line
    report = Path(line.split("details are in ")[1].split("; please")[0])
    assert "Traceback" in report.read_text() and "ZeroDivisionError" in report.read_text()


# -- found by trying the command line as a new user --------------------------------------------------
def test_another_programs_database_given_as_an_index_is_refused_untouched(app_dirs, photos, tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    code, _, err = in_process(capsys, "search", photos / "album0" / "img_000.jpg", "--index", other)
    assert code == EXIT_USER and "is not an fph-desktop index" in one_error_line(err)
    assert other.read_bytes() == before and not list(tmp_path.glob("other.sqlite-*"))


def test_index_arguments_that_name_the_wrong_thing_say_what_they_are(app_dirs, photos, tiny_model_path, tmp_path, capsys):
    query = photos / "album0" / "img_000.jpg"
    for spec, said in ((query, "is a file, not an indexed folder"), (tmp_path / "nowhere", "no such folder"),
                       (photos, "has not been indexed yet; run `fph-desktop index")):  # fmt: skip
        code, _, err = in_process(capsys, "search", query, "--index", spec)
        assert code == EXIT_USER and said in one_error_line(err), err
    code, _, err = in_process(capsys, "index", photos, "--no-update")
    assert code == EXIT_USER and "has not been indexed yet" in one_error_line(err)
    assert not indexes_for_folder(photos)  # --no-update fitted and wrote nothing
    code, _, err = in_process(capsys, "index", photos, "--model", tiny_model_path, "--device", "tpu")
    assert code == EXIT_USER and "unknown device 'tpu'; use auto, cpu, cuda" in one_error_line(err)


def test_outputs_that_would_destroy_a_file_or_cannot_be_written_are_refused_before_any_work(photos, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    train = ["train", "--data", photos, "--backbone", "resnet18", "--backbone-weights", "none", "--quiet"]
    code, _, err = in_process(capsys, *train, "--out", notes)
    assert code == EXIT_USER and "exists and is not a weights file (.fph)" in one_error_line(err)
    code, _, err = in_process(capsys, *train, "--out", notes / "m.fph")
    assert code == EXIT_USER and "notes.txt is a file, not a folder" in one_error_line(err)
    assert notes.read_text() == "my notes"
    code, _, err = in_process(capsys, *train, "--lr", "nan")
    assert code == EXIT_USER and "lr must be a finite number" in one_error_line(err)
    code, _, err = in_process(capsys, "eval", "--model", notes, "--data", photos, "--json", tmp_path / "no" / "r.json")
    assert code == EXIT_USER and "the folder" in one_error_line(err) and "does not exist" in err


def test_an_app_folder_that_is_a_file_is_named_not_reported_as_a_bug(photos, tiny_model_path, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "data-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("FPH_DESKTOP_DATA_DIR", str(blocker))
    code, _, err = in_process(capsys, "index", photos, "--model", tiny_model_path, "--quiet")
    line = one_error_line(err)
    assert code == EXIT_USER and "data-is-a-file: cannot be used as the app's data folder" in line
    assert "FPH_DESKTOP_DATA_DIR" in line


def test_queries_that_are_not_photos_get_their_real_reason(photos, tiny_model_path, tmp_path, capsys):
    from fph_desktop.errors import display_path

    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    code, _, err = in_process(capsys, "encode", "--model", tiny_model_path, "--engine", "torch",
                              tmp_path / "nothere.jpg", tmp_path / "pipe.jpg", tmp_path / "dangling.jpg")  # fmt: skip
    assert code == 1 and "Traceback" not in err
    assert "nothere.jpg: no such file" in err and "pipe.jpg: not a regular file" in err
    assert "dangling.jpg: a link to a file that does not exist" in err
    assert display_path("new\nline.jpg") == "new\\nline.jpg"  # one name, one line


def test_a_training_run_that_collapses_warns_and_exits_1_and_one_that_diverges_stops(tiny_birds, tmp_path, capsys):
    base = ["train", "--data", tiny_birds, "--backbone", "resnet18", "--backbone-weights", "none", "--bits", "16",
            "--image-size", "64", "--epochs", "1", "--mode", "fast", "--workers", "0", "--quiet"]  # fmt: skip
    code, out, err = in_process(capsys, *base, "--lr", "1e6", "--out", tmp_path / "wild.fph", "--run-dir", tmp_path / "r1")
    assert "Traceback" not in err
    if code == EXIT_USER:  # diverged: no model is written
        assert "training diverged: the loss became" in one_error_line(err) and not (tmp_path / "wild.fph").exists()
    else:  # collapsed: written, but said to be useless
        assert code == 1 and "warning: training collapsed: every photo gets the same code" in err


def test_a_108_megapixel_phone_jpeg_is_decoded_small_but_a_png_that_size_is_refused(tmp_path):
    from fph_desktop.imaging import ImageError, open_image

    Image.new("L", (12000, 9000), 128).save(tmp_path / "phone108mp.jpg", quality=80)
    photo = open_image(tmp_path / "phone108mp.jpg", min_side=256)
    assert min(photo.size) >= 256 and max(photo.size) <= 12000 // 4  # reduced inside the decoder
    from index_support import write_bomb_png

    write_bomb_png(tmp_path / "big.png", side=10000)  # 100 MP claimed by a PNG: refused, never decoded
    with pytest.raises(ImageError, match="image too large"):
        open_image(tmp_path / "big.png", min_side=256)
