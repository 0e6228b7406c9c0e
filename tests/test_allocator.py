"""The malloc tuning that keeps CPU forward passes from re-faulting their buffers every batch."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import json, os, fph_desktop.allocator as a; print(json.dumps([a.malloc_tuned(), os.environ.get('MALLOC_MMAP_THRESHOLD_')]))"
)


def _probe(**env) -> list:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "FPH_DESKTOP_MALLOC"}
    environment.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_importing_the_package_tunes_glibc_malloc_for_itself_and_its_children_and_can_be_turned_off():
    tuned, inherited = _probe()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        # Spawned workers and child processes get the same thresholds through the environment.
        assert tuned is True and inherited == "1073741824"
    else:  # macOS, Windows, musl: their allocators keep freed large blocks; nothing to tune
        assert tuned is False and inherited is None
    assert _probe(FPH_DESKTOP_MALLOC="default") == [False, None]
