"""Launch time of the desktop app against a bare PySide6 "hello window", in the same run.

Each launch is a fresh process started with ``QT_QPA_PLATFORM=offscreen``; the time is from just
before the process is spawned to the window's first paint, read from the wall-clock time the child
writes at that moment (``FPH_DESKTOP_LAUNCH_PROBE`` in :mod:`fph_desktop.gui.app`; the hello window
does the same). The app is launched through its real entry point, ``python -m fph_desktop`` (the
``fph-desktop`` script calls the same ``cli.main``). Runs alternate between the two, so machine load
hits both alike; the median of each is reported with their ratio.

Launch to first results (issue #9): a folder is indexed first with the app's default model (the
shipped EfficientNet-Lite0 with codes fitted on the folder; ``fph-desktop index FOLDER``), the
settings point the app at it, and the app is started with a photo from outside the folder, as
"Open with" does; the time runs to the moment the results reach the window (``searchFinished``).
Alternating with it, the same launch without the model's exported graph (moved aside for that run),
which is how every launch searched before: after ``import torch`` and loading the weights.

    python benchmarks/launch_time.py [--runs 7] [--folder ../shared/data/birds-dev | --folder none]
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


def launch(command: list[str], work: Path, until: str = "painted") -> tuple[float, dict]:
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
    if until not in record:
        raise RuntimeError(f"the app never got to {until!r}: {record}")
    return record[until] - start, record


def first_results(folder: Path, work: Path, runs: int) -> dict:
    """Index ``folder`` with the default model, then time launches with a query photo."""
    env = dict(os.environ, FPH_DESKTOP_DATA_DIR=str(work / "data"), FPH_DESKTOP_CACHE_DIR=str(work / "cache"))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-m", "fph_desktop", "index", str(folder), "--quiet"], env=env, check=True, timeout=1800)
    env["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, str(REPO))
    from fph_desktop.index.default_model import unsupervised_model_path

    os.environ.update(FPH_DESKTOP_DATA_DIR=env["FPH_DESKTOP_DATA_DIR"])
    model = unsupervised_model_path(folder)
    graph = model.with_name(model.name + ".onnx")
    if not graph.is_file():
        raise RuntimeError(f"indexing did not export the graph {graph}")
    settings = work / "data" / "settings.ini"
    settings.write_text(f"[model]\nchoice=pretrained\n\n[folders]\nrecent={folder.resolve()}\n", encoding="utf-8")
    photo = next(p for p in sorted(folder.rglob("*.jpg")))
    query = work / "query.jpg"  # outside the folder, so it is decoded and encoded, not looked up
    query.write_bytes(photo.read_bytes())
    command = [sys.executable, "-m", "fph_desktop", str(query)]
    times: dict[str, list[float]] = {"graph": [], "torch": []}
    torch_at_results = {"graph": False, "torch": False}
    launch(command, work, "results")  # warm the file cache
    for _ in range(runs):
        for mode in ("graph", "torch"):
            aside = graph.with_name(graph.name + ".aside")
            if mode == "torch":
                graph.rename(aside)
            try:
                seconds, record = launch(command, work, "results")
            finally:
                if mode == "torch":
                    graph.unlink(missing_ok=True)  # the app exported it again after loading PyTorch
                    aside.rename(graph)
            times[mode].append(seconds)
            torch_at_results[mode] |= record["torch_loaded_at_results"]
            if not record.get("hits"):
                raise RuntimeError("the search found nothing")
    graph_s, torch_s = statistics.median(times["graph"]), statistics.median(times["torch"])
    for mode, label, median in (("graph", "exported graph", graph_s), ("torch", "PyTorch first: ", torch_s)):
        print(f"launch -> first results, {label}: median {median:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in times[mode])})")
    print(f"ratio PyTorch first / graph: {torch_s / graph_s:.2f}; target: under 1.5 s -> {'met' if graph_s < 1.5 else 'NOT met'}")
    print(f"torch loaded before the first results: graph {torch_at_results['graph']}, PyTorch first {torch_at_results['torch']}")
    return {
        "folder": str(folder),
        "graph_median_s": round(graph_s, 3),
        "torch_first_median_s": round(torch_s, 3),
        "graph_runs_s": [round(t, 3) for t in times["graph"]],
        "torch_first_runs_s": [round(t, 3) for t in times["torch"]],
        "torch_loaded_before_results": torch_at_results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--folder", default=str(REPO.parent / "shared" / "data" / "birds-dev"), help="'none' to skip")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "launch.json")
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
    record = {"hello_median_s": round(hello, 3), "window_median_s": round(app, 3), "torch_loaded_at_paint": torch_at_paint}
    if args.folder != "none" and Path(args.folder).is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            record["first_results"] = first_results(Path(args.folder), Path(tmp), args.runs)
    record["cpus"] = os.cpu_count()
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
