"""A real indexing process killed with SIGKILL mid-run leaves a readable index holding every batch
committed before the kill, and the next run continues from there without re-encoding them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from index_support import CountingEncoder, app_dirs, make_photos, one_torch_thread, tiny_encoder, tiny_model_path  # noqa: F401

from fph_desktop.index import db_path_for, update_index

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
import torch
torch.set_num_threads(1)
from fph_desktop.model.encoder import Encoder
from fph_desktop.index import update_index
from fph_desktop.progress import Progress

def committed(batch):
    print(f"committed {batch.done}", flush=True)
    time.sleep(0.3)  # leave the parent time to kill us between batches, or during the next one

encoder = Encoder.load(sys.argv[2], device="cpu")
update_index(sys.argv[1], encoder, Progress(on_partial=committed), batch_size=4, workers=2)
print("finished", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_killed_indexing_resumes_without_loss(app_dirs, tmp_path, tiny_model_path, tiny_encoder):
    photos = tmp_path / "Photos"
    make_photos(photos, 24)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(photos), str(tiny_model_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = []
    try:
        for line in child.stdout:
            seen.append(line.strip())
            if line.startswith("committed 8"):
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, (seen, child.stderr.read())
    assert "finished" not in seen

    db_path = db_path_for(photos, tiny_encoder.fingerprint)
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        kept = dict(db.execute("SELECT relpath, code FROM files WHERE status = 'ok'"))
    # Every batch reported committed is there; only whole batches are.
    assert 8 <= len(kept) < 24 and len(kept) % 4 == 0

    encoder = CountingEncoder(tiny_encoder)
    report = update_index(photos, encoder, batch_size=4)
    assert encoder.encoded == 24 - len(kept) and report.unchanged == len(kept)
    with sqlite3.connect(db_path) as db:
        after = dict(db.execute("SELECT relpath, code FROM files WHERE status = 'ok'"))
    assert len(after) == 24
    assert {k: after[k] for k in kept} == kept
