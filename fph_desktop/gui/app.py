"""``run_app()``: the entry point of the desktop app (``fph-desktop`` with no arguments).

The window is shown before anything heavy is imported: this module and everything it imports at
module level use only PySide6 and the standard library; torch is imported by the first worker job.
"""

from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from . import resources

DESKTOP_ID = "io.github.fph_desktop.FphDesktop"  # packaging/linux/<id>.desktop, .metainfo.xml and the icons


def apply_theme(app: QApplication) -> None:
    """Light or dark, following the system; called again when the system scheme changes. The
    palette is set too, so what the stylesheet does not cover (scroll bars, arrows) matches."""
    resources.clear_icon_cache()
    colours = resources.theme()
    palette = QPalette()
    for role, token in (
        (QPalette.ColorRole.Window, "window"),
        (QPalette.ColorRole.WindowText, "text"),
        (QPalette.ColorRole.Base, "base"),
        (QPalette.ColorRole.AlternateBase, "panel"),
        (QPalette.ColorRole.Text, "text"),
        (QPalette.ColorRole.Button, "button"),
        (QPalette.ColorRole.ButtonText, "text"),
        (QPalette.ColorRole.Highlight, "accent"),
        (QPalette.ColorRole.HighlightedText, "on_accent"),
        (QPalette.ColorRole.ToolTipBase, "panel"),
        (QPalette.ColorRole.ToolTipText, "text"),
        (QPalette.ColorRole.PlaceholderText, "muted"),
        (QPalette.ColorRole.Mid, "border"),
    ):
        palette.setColor(role, QColor(colours[token]))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colours["muted"]))
    app.setPalette(palette)
    app.setStyleSheet(resources.stylesheet())


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName("fph-desktop")
        QCoreApplication.setApplicationName("fph-desktop")
        app = QApplication(sys.argv[:1] if argv is None else argv)
        app.setApplicationDisplayName("fph-desktop")
        app.setDesktopFileName(DESKTOP_ID)  # Wayland matches the window to its menu entry and icon by this
        app.setStyle("Fusion")  # the same look on every platform; the stylesheet refines it
    apply_theme(app)
    app.styleHints().colorSchemeChanged.connect(lambda *_: apply_theme(app))
    return app


class _LaunchProbe(QObject):
    """For ``benchmarks/launch_time.py``: when ``FPH_DESKTOP_LAUNCH_PROBE`` names a file, write the
    wall-clock times of the window's first show and first paint (and whether torch was loaded by
    then), then close the window. With ``until_results``, wait for the first search's results (a
    photo given on the command line) and record that time too (and whether torch was loaded)."""

    def __init__(self, window, target: str, until_results: bool = False) -> None:
        super().__init__(window)
        self.window, self.target, self.until_results = window, target, until_results
        self.record: dict = {}
        window.installEventFilter(self)
        if until_results:
            window.searchFinished.connect(self._results)
            QTimer.singleShot(120_000, self._write_and_close)  # never hang a benchmark

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Show and "shown" not in self.record:
            self.record["shown"] = time.time()
        elif kind == QEvent.Type.Paint and "painted" not in self.record:
            self.record.update(painted=time.time(), torch_loaded_at_paint="torch" in sys.modules)
            if not self.until_results:
                self._write_and_close()
        return False

    def _results(self, outcome) -> None:
        if "results" not in self.record:
            hits = sum(len(q.hits) for q in outcome.queries)
            self.record.update(results=time.time(), hits=hits, torch_loaded_at_results="torch" in sys.modules)
            self._write_and_close()

    def _write_and_close(self) -> None:
        with open(self.target, "w", encoding="utf-8") as handle:
            json.dump(self.record, handle)
        QTimer.singleShot(0, self.window.close)


def bring_forward(window, photos: list[str]) -> None:
    """Another launch handed photos (or nothing) to this window: show it and search with them."""
    if window.isMinimized():
        window.showNormal()
    window.raise_()
    window.activateWindow()
    if photos:
        window.search_when_ready(photos)


def run_app(argv: list[str] | None = None, queries: list[str] | None = None) -> int:
    """``queries``: photos given on the command line (a file manager's "Open with"), searched at once;
    by the window already running, when there is one (:mod:`.single_instance`)."""
    app = create_app(argv)
    from .single_instance import InstanceServer, send_to_running_instance

    if send_to_running_instance([os.path.abspath(q) for q in queries or []]):
        return 0
    from .main_window import MainWindow

    window = MainWindow()
    if queries:
        window.search_when_ready(queries)
    server = InstanceServer(window)
    server.photosReceived.connect(lambda photos: bring_forward(window, photos))
    app.aboutToQuit.connect(window.shutdown)  # quitting without closing the window (log-out) also stops the threads
    probe = os.environ.get("FPH_DESKTOP_LAUNCH_PROBE")
    if probe:
        _LaunchProbe(window, probe, until_results=bool(queries))
    window.show()
    return app.exec()
