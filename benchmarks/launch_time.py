"""Launch time of the desktop app against a bare PySide6 "hello window", in the same run.

Each launch is a fresh process started with ``QT_QPA_PLATFORM=offscreen``; the time is from just
before the process is spawned to the window's first paint, read from the wall-clock time the child
writes at that moment (``FPH_DESKTOP_LAUNCH_PROBE`` in :mod:`fph_desktop.gui.app`; the hello window
does the same). The app is launched through its real entry point, ``python -m fph_desktop`` (the
``fph-desktop`` script calls the same ``cli.main``). Runs alternate between the two, so machine load
hits both alike; the median of each is reported with their ratio.

    python benchmarks/launch_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HELLO = r"""
import json, os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

class Probe(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
            self.done = True
            json.dump({"painted": time.time(), "torch_loaded_at_paint": "torch" in sys.modules},
                      open(os.environ["FPH_DESKTOP_LAUNCH_PROBE"], "w"))
            QTimer.singleShot(0, obj.close)
        return False

app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setCentralWidget(QLabel("hello"))
probe = Probe(window)
window.installEventFilter(probe)
window.show()
sys.exit(app.exec())
"""


def launch(command: list[str], work: Path) -> tuple[float, dict]:
    probe = work / "probe.json"
    probe.unlink(missing_ok=True)
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        FPH_DESKTOP_LAUNCH_PROBE=str(probe),
        FPH_DESKTOP_DATA_DIR=str(work / "data"),
        FPH_DESKTOP_CACHE_DIR=str(work / "cache"),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    start = time.time()
    subprocess.run(command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180, check=True)
    record = json.loads(probe.read_text())
    return record["painted"] - start, record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    app_cmd = [sys.executable, "-m", "fph_desktop"]
    hello_cmd = [sys.executable, "-c", HELLO]
    times: dict[str, list[float]] = {"hello": [], "app": []}
    torch_at_paint = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        launch(hello_cmd, work)  # warm the file cache for both
        launch(app_cmd, work)
        for _ in range(args.runs):
            times["hello"].append(launch(hello_cmd, work)[0])
            seconds, record = launch(app_cmd, work)
            times["app"].append(seconds)
            torch_at_paint |= record["torch_loaded_at_paint"]
    hello, app = statistics.median(times["hello"]), statistics.median(times["app"])
    print(f"bare PySide6 hello window: median {hello:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in times['hello'])})")
    print(f"fph-desktop main window:   median {app:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in times['app'])})")
    print(f"ratio app / hello: {app / hello:.2f}; target: app under 1.5 s -> {'met' if app < 1.5 else 'NOT met'}")
    print(f"torch imported before the first paint: {'yes' if torch_at_paint else 'no'}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
