"""Event-loop heartbeat while the app indexes a folder with a real model (the test does the same
with a tiny model): a 10 ms QTimer runs in the GUI thread; the longest gap between beats is what a
person would feel as a stall.

    python benchmarks/heartbeat.py --model FILE.fph --photos DIR [--limit 120]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--photos", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=120)
    parser.add_argument(
        "--warm",
        action="store_true",
        help="load torch and the model first (as the app does at start-up), then time only the indexing",
    )
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="fph-heartbeat-"))
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(work / "data")
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(work / "cache")
    folder = work / "photos"
    folder.mkdir()
    for path in sorted(args.photos.rglob("*.jpg"))[: args.limit]:
        shutil.copy(path, folder / path.name)

    from PySide6.QtCore import QTimer

    from fph_desktop.gui.app import create_app
    from fph_desktop.gui.main_window import MainWindow
    from fph_desktop.gui.settings import CHOICE_FILE, AppSettings

    app = create_app()
    settings = AppSettings()
    settings.model_choice, settings.model_path = CHOICE_FILE, str(args.model)
    window = MainWindow(settings, start_background=False)
    window.show()
    if args.warm:
        ready = []
        window.modelReady.connect(ready.append)
        window.use_model_file(str(args.model))
        while not ready:
            app.processEvents()
            time.sleep(0.01)
    beats, done = [], []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    window.indexReady.connect(done.append)
    window.jobFailed.connect(lambda kind, message: (print(message), done.append(None)))
    timer.start()
    started = time.perf_counter()
    window.index_folder(str(folder))
    while not done:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    gaps = sorted(b - a for a, b in zip(beats, beats[1:], strict=True))
    print(
        f"indexed {done[0].photos} photos with {done[0].model_description} in {time.perf_counter() - started:.1f} s "
        f"(model load included); {len(beats)} beats; gap median {gaps[len(gaps) // 2] * 1000:.0f} ms, "
        f"p99 {gaps[int(len(gaps) * 0.99)] * 1000:.0f} ms, max {gaps[-1] * 1000:.0f} ms"
    )
    window.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
