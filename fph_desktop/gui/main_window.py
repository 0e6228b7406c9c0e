"""The main window: menus and toolbar, the drop area and results grid, the comparison view, and a
status bar that says what is loading and what the current index holds.

It holds no model or index logic: every long step is a job from :mod:`fph_desktop.gui.tasks` run
by a :class:`~fph_desktop.gui.workers.JobRunner`. Two runners, so a search is not queued behind a
long indexing run: ``jobs`` (model loading, indexing) and ``lookups`` (searching, comparing).
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar,
    QScrollArea, QSplitter, QStackedWidget, QToolButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from . import resources, tasks
from .comparison import ComparisonView
from .drop_area import DropArea, local_paths
from .first_run import TRAIN_TOOLTIP, FirstRunPanel
from .results_view import ResultsPanel
from .settings import CHOICE_FILE, CHOICE_PRETRAINED, AppSettings, SettingsDialog
from .thumbnails import ThumbnailLoader
from .workers import JobRunner

PAGE_FIRST_RUN, PAGE_MAIN = 0, 1


class MessageBanner(QFrame):
    """A dismissible one-line message above the content (errors a user can act on, notices)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBanner")
        self.icon = QLabel()
        self.icon.setPixmap(resources.icon("warning").pixmap(QSize(18, 18)))
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setIcon(resources.icon("cancel"))
        close.setToolTip("Dismiss this message")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.text.setText(text)
        self.show()


class SkippedDialog(QDialog):
    def __init__(self, folder: str, items: list, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Skipped files")
        self.resize(720, 400)
        intro = QLabel(
            f"{len(items)} item(s) in {folder} could not be indexed. They are retried once they change "
            "(re-save or replace the file, then index the folder again)."
        )
        intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Reason"])
        self.tree.setRootIsDecorated(False)
        for item in items:
            QTreeWidgetItem(self.tree, [item.relpath, item.reason])
        self.tree.resizeColumnToContents(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)


class MainWindow(QMainWindow):
    # For tests and for the training wizard to follow what happens (all in the GUI thread).
    modelReady = Signal(object)  # tasks.ModelSummary
    indexReady = Signal(object)  # tasks.IndexState (also after a cancel, with complete=False)
    searchFinished = Signal(object)  # tasks.SearchOutcome
    comparisonShown = Signal(object)  # tasks.Comparison
    jobFailed = Signal(str, str)  # kind, message
    jobCancelled = Signal(str)  # kind

    def __init__(self, settings: AppSettings | None = None, start_background: bool = True) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.setWindowTitle("fph-desktop")
        self.setWindowIcon(resources.icon("app"))
        self.setAcceptDrops(True)
        self.index_state: tasks.IndexState | None = None
        self.model_summary: tasks.ModelSummary | None = None
        self.query_paths: list[str] = []
        self._search_pending = False
        self._active: dict[int, str] = {}  # job id -> kind, for the progress bar
        self._closing = False
        self._reindex_after_model = False
        self._startup_queries: list[str] = []
        self.wizard = None  # the training wizard, while open

        self.jobs = JobRunner("fph-jobs", self)
        self.lookups = JobRunner("fph-lookups", self)
        for runner in (self.jobs, self.lookups):
            runner.started.connect(self._job_started)
            runner.status.connect(self._job_status)
            runner.progress.connect(self._job_progress)
            runner.partial.connect(self._job_partial)
            runner.finished.connect(self._job_finished)
            runner.failed.connect(self._job_failed)
            runner.cancelled.connect(self._job_cancelled)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.thumbnails.ready.connect(
            lambda path, image: self.drop_area.set_query_image(image) if self.query_paths[:1] == [path] else None
        )

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self._restore_layout()
        self._refresh_recent_menu()
        self._update_actions()
        if self.settings.window_state()[0] is None:
            self.resize(1180, 760)
        # The background work starts after the first paint, so importing torch (which holds the GIL
        # for seconds) never delays it; the fallback covers a window that is shown but never painted.
        self._background_pending = start_background
        if start_background:
            QTimer.singleShot(3000, self._start_background_once)

    # -- construction ---------------------------------------------------------------------------------
    def _action(self, text: str, icon: str | None, tip: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(resources.icon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            tip = f"{tip} ({keys})" if keys else tip
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open photos…", "image-open", "Search with photos from disk", self.open_photos, QKeySequence.StandardKey.Open)
        self.paste_action = self._action("&Paste image", "paste", "Search with the image or files on the clipboard", self.paste, QKeySequence.StandardKey.Paste)
        self.index_action = self._action("&Index folder…", "folder-search", "Pick a photo folder to index and search", self.choose_folder, "Ctrl+I")
        self.reindex_action = self._action("&Update index", None, "Index new and changed photos of the current folder", self.reindex, QKeySequence.StandardKey.Refresh)
        self.cancel_action = self._action("&Cancel", "cancel", "Stop the running work (what is done so far is kept)", self.cancel_work, "Esc")
        self.quit_action = self._action("&Quit", None, "Quit fph-desktop", self.close, QKeySequence.StandardKey.Quit)
        self.pretrained_action = self._action("Use the &pretrained backbone (unsupervised codes)", "pretrained", "EfficientNet-Lite0 shipped with the app; codes are fitted on each folder", lambda: self.choose_model(CHOICE_PRETRAINED))
        self.load_model_action = self._action("&Load weights file…", "weights-file", "Use an FPH weights file (.fph)", lambda: self.choose_model(CHOICE_FILE), "Ctrl+M")
        self.train_action = self._action("&Train a model…", "train", TRAIN_TOOLTIP, self.train_model)
        self.model_info_action = self._action("Model &choices…", "model", "Show the three ways to get a model", self.show_first_run)
        self.settings_action = self._action("&Settings…", "settings", "Search, model and device options", self.open_settings, QKeySequence.StandardKey.Preferences)
        self.compare_action = self._action("&Focus comparison", "compare", "Move the keyboard focus to the comparison view", lambda: self.comparison.layer.setFocus(), "Ctrl+D")
        self.focus_results_action = self._action("Focus &results", None, "Move the keyboard focus to the results grid", lambda: self.results.view.setFocus(), "Ctrl+R")
        self.shortcuts_action = self._action("&Keyboard shortcuts", None, "List the keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self.about_action = self._action("&About fph-desktop", None, "Version and licence", self.show_about)
        self.cancel_action.setEnabled(False)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.open_action, self.paste_action])
        file_menu.addSeparator()
        file_menu.addActions([self.index_action, self.reindex_action])
        self.recent_menu = file_menu.addMenu("&Recent folders")
        file_menu.addSeparator()
        file_menu.addActions([self.cancel_action, self.quit_action])
        model_menu = bar.addMenu("&Model")
        model_menu.addActions([self.pretrained_action, self.load_model_action, self.train_action])
        model_menu.addSeparator()
        model_menu.addAction(self.model_info_action)
        view_menu = bar.addMenu("&View")
        view_menu.addActions([self.focus_results_action, self.compare_action])
        view_menu.addSeparator()
        view_menu.addAction(self.settings_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.shortcuts_action, self.about_action])

    def _build_toolbar(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(20, 20))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addActions([self.index_action, self.open_action, self.paste_action])
        toolbar.addSeparator()
        toolbar.addActions([self.load_model_action, self.train_action])
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addActions([self.cancel_action, self.settings_action])

    def _build_central(self) -> None:
        self.banner = MessageBanner()
        self.first_run = FirstRunPanel()
        self.first_run.chosen.connect(self.choose_model)
        self.first_run.trainRequested.connect(self.train_model)
        first_run_scroll = QScrollArea()
        first_run_scroll.setWidgetResizable(True)
        first_run_scroll.setFrameShape(QFrame.Shape.NoFrame)
        holder = QWidget()  # the panel centred, at its natural height, however large the window
        row = QHBoxLayout()
        row.addStretch(1)
        self.first_run.setMaximumWidth(820)
        row.addWidget(self.first_run, 4)
        row.addStretch(1)
        holder_layout = QVBoxLayout(holder)
        holder_layout.addStretch(1)
        holder_layout.addLayout(row)
        holder_layout.addStretch(2)
        first_run_scroll.setWidget(holder)

        self.drop_area = DropArea()
        self.drop_area.photosDropped.connect(self.set_queries)
        self.drop_area.rejected.connect(self.show_message)
        self.results = ResultsPanel(self.thumbnails, self.settings.top_k, self.settings.hide_duplicates)
        self.results.resultActivated.connect(self.compare_with)
        self.results.optionsChanged.connect(self._results_options_changed)
        self.results.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 8, 0)
        left_layout.addWidget(self.drop_area)
        left_layout.addWidget(self.results, 1)
        self.comparison = ComparisonView(self.settings.overlay_opacity)
        self.comparison.opacityChanged.connect(lambda value: setattr(self.settings, "overlay_opacity", value))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.comparison)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        self.pages = QStackedWidget()
        self.pages.addWidget(first_run_scroll)
        self.pages.addWidget(self.splitter)
        self.pages.setCurrentIndex(PAGE_MAIN if self.settings.model_choice else PAGE_FIRST_RUN)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel("Starting…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(200)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(self.cancel_action)
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.hide()
        self.index_label = QLabel("No folder indexed")
        self.index_label.setTextFormat(Qt.TextFormat.RichText)
        self.index_label.linkActivated.connect(self._index_link)
        self.index_label.setToolTip("The current index")
        self.model_label = QLabel("No model")
        self.model_label.setObjectName("Muted")
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.progress_bar)
        bar.addWidget(self.cancel_button)
        bar.addPermanentWidget(self.index_label)
        bar.addPermanentWidget(self.model_label)

    def _restore_layout(self) -> None:
        geometry, state, splitter = self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if splitter is not None:
            self.splitter.restoreState(splitter)

    # -- start-up ---------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self._background_pending:
            QTimer.singleShot(0, self._start_background_once)

    def _start_background_once(self) -> None:
        if self._background_pending and not self._closing:
            self._background_pending = False
            self.start_background()
            if self._startup_queries:
                self.search_with_paths(self._startup_queries)
                self._startup_queries = []

    def start_background(self) -> None:
        """After the first paint: import torch and load the model in the worker, and reopen the last index."""
        choice = self.settings.model_choice
        folder = self.settings.last_folder
        if choice == CHOICE_FILE and self.settings.model_path:
            self._submit(self.jobs, "model", tasks.load_model, self.settings.model_path, self.settings.device)
            if folder:
                self._submit(self.jobs, "open", tasks.open_index, folder, self.settings.model_path, self.settings.device)
        else:
            self._submit(self.jobs, "warmup", tasks.warm_up)
            if choice == CHOICE_PRETRAINED and folder:
                model = tasks.unsupervised_model_path(folder, self.settings.unsupervised_bits)
                if model.is_file():
                    self._submit(self.jobs, "open", tasks.open_index, folder, str(model), self.settings.device)
        if choice is None:
            self.status_label.setText("Loading PyTorch in the background… Choose how to get a model meanwhile.")
        self._update_model_label()

    # -- model --------------------------------------------------------------------------------------
    def show_first_run(self) -> None:
        self.pages.setCurrentIndex(PAGE_FIRST_RUN)

    def choose_model(self, choice: str) -> None:
        if choice == CHOICE_FILE:
            start = str(Path(self.settings.model_path).parent) if self.settings.model_path else ""
            path, _ = QFileDialog.getOpenFileName(self, "Load FPH weights file", start, "fph-desktop weights (*.fph);;All files (*)")
            if path:
                self.use_model_file(path)
            return
        self.settings.model_choice = choice
        self.pages.setCurrentIndex(PAGE_MAIN)
        self._update_model_label()
        if choice == CHOICE_PRETRAINED:
            self.status_label.setText("Pretrained backbone chosen: index a folder (Ctrl+I) and its codes are fitted on its photos.")
            if self.index_state is None:
                QTimer.singleShot(0, self._suggest_folder)

    def use_model_file(self, path: str, reindex: bool = False) -> None:
        """Load ``path`` and make it the model for every folder; with ``reindex``, index the current
        folder with it once it is loaded (the training wizard's "use this model now")."""
        self._reindex_after_model = reindex
        self._submit(self.jobs, "model", tasks.load_model, path, self.settings.device, replace=True)

    def train_model(self) -> None:
        """Open the training wizard (or bring the open one to the front): it trains on its own worker
        thread, so this window stays usable meanwhile."""
        if self.wizard is None:
            from .training_wizard import TrainingWizard

            self.wizard = TrainingWizard(self, self)
            self.wizard.setWindowModality(Qt.WindowModality.NonModal)
            self.wizard.finished.connect(self._wizard_closed)
        self.wizard.show()
        self.wizard.raise_()
        self.wizard.activateWindow()

    def _wizard_closed(self) -> None:
        wizard, self.wizard = self.wizard, None
        if wizard is not None:
            wizard.deleteLater()

    def _suggest_folder(self) -> None:
        if self.settings.last_folder:
            self.status_label.setText(f"Index a folder (Ctrl+I), e.g. {self.settings.last_folder} again with the new model.")

    def _update_model_label(self) -> None:
        choice = self.settings.model_choice
        # Once an index is open, the index label names its model and code length.
        self.model_label.setVisible(self.index_state is None)
        if self.index_state is not None:
            text = self.index_state.model_description
        elif self.model_summary is not None:
            text = self.model_summary.description
        elif choice == CHOICE_PRETRAINED:
            text = f"Pretrained EfficientNet-Lite0 + unsupervised {self.settings.unsupervised_bits}-bit codes"
        elif choice == CHOICE_FILE and self.settings.model_path:
            text = f"Loading {Path(self.settings.model_path).name}…"
        else:
            text = "No model chosen"
        self.model_label.setText(text)
        self.model_label.setToolTip(self.settings.model_path or "" if choice == CHOICE_FILE else "")

    # -- folders and indexing -------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.settings.last_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Index a photo folder", start)
        if folder:
            self.index_folder(folder)

    def reindex(self) -> None:
        folder = self.index_state.folder if self.index_state else self.settings.last_folder
        if folder:
            self.index_folder(folder)
        else:
            self.choose_folder()

    def index_folder(self, folder: str, batch_size: int = 16) -> int | None:
        """Index (or update the index of) ``folder`` with the chosen model; returns the job id.
        Batches of 16 (the CLI uses 32) keep a cancel quick on a CPU: the indexer checks between batches."""
        choice = self.settings.model_choice
        if choice is None:
            self.show_first_run()
            self.show_message("Choose how to get a model first: the pretrained backbone works at once.")
            return None
        if choice == CHOICE_FILE and not self.settings.model_path:
            self.show_message("Load an FPH weights file first (Model › Load weights file…).")
            return None
        self.pages.setCurrentIndex(PAGE_MAIN)
        self.settings.add_recent_folder(str(folder))
        self._refresh_recent_menu()
        model = self.settings.model_path if choice == CHOICE_FILE else None
        bits = self.settings.unsupervised_bits if choice == CHOICE_PRETRAINED else None
        self.index_label.setText(f"Indexing <b>{Path(folder).name}</b>…")
        return self._submit(
            self.jobs, "index", tasks.index_folder, str(folder), model, self.settings.device,
            unsupervised_bits=bits, batch_size=batch_size, replace=True,
        )

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_folders
        for i, folder in enumerate(recent):
            action = self.recent_menu.addAction(f"&{i + 1}  {folder}")
            action.setToolTip(f"Index {folder} again (only new and changed photos are encoded)")
            action.triggered.connect(lambda _=False, f=folder: self.index_folder(f))
        self.recent_menu.setEnabled(bool(recent))

    def _set_index_state(self, state: tasks.IndexState) -> None:
        self.index_state = state
        name = Path(state.folder).name or state.folder
        parts = [f"<b>{name}</b>", f"{state.photos:,} photos", state.model_description]
        if state.skipped:
            parts.append(f'<a href="skipped">{state.skipped} skipped</a>')
        if state.offline:
            parts.append("offline")
        if not state.complete:
            parts.append("incomplete")
        self.index_label.setText(" · ".join(parts))
        self.index_label.setToolTip(
            f"Folder: {state.folder}\nPhotos indexed: {state.photos}\nModel: {state.model_description}\n"
            f"Code length: {state.code_bits} bits\nModel file: {state.model_path}\nSkipped: {state.skipped}"
            + ("" if state.complete else "\nThe last update did not finish: Update index (F5) continues it.")
        )
        self._update_model_label()
        self._update_actions()
        self.indexReady.emit(state)

    def _index_link(self, link: str) -> None:
        if link == "skipped" and self.index_state is not None:
            self._submit(self.lookups, "skipped", tasks.skipped_files, self.index_state.library)

    # -- queries ----------------------------------------------------------------------------------------
    def open_photos(self) -> None:
        from .drop_area import image_suffixes

        pattern = " ".join(f"*{s}" for s in sorted(image_suffixes()))
        paths, _ = QFileDialog.getOpenFileNames(self, "Search with photos", self.settings.last_folder or "", f"Photos ({pattern});;All files (*)")
        if paths:
            self.search_with_paths(paths)

    def search_with_paths(self, paths: list[str]) -> None:
        """Photos (or folders of them) from a dialog or the command line; what is not a photo is named."""
        from .drop_area import split_dropped

        photos, rejected = split_dropped(paths)
        if rejected:
            self.show_message("; ".join(rejected))
        if photos:
            self.set_queries(photos)

    def search_when_ready(self, paths: list[str]) -> None:
        """``fph-desktop PHOTO…`` ("Open with" in a file manager): search once the last index has
        been reopened in the background."""
        if self._background_pending:
            self._startup_queries = list(paths)
        else:
            self.search_with_paths(paths)

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and local_paths(mime):
            self.drop_area.handle_mime(mime)
            return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_message("The clipboard holds no image. Copy a photo (or photo files) first, then paste.")
            return
        from .. import paths

        folder = paths.cache_dir() / "pasted"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"pasted-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"
        if not image.save(str(target), "PNG"):
            self.show_message(f"Could not save the pasted image to {target}; is the cache folder writable?")
            return
        self.set_queries([str(target)])

    def set_queries(self, paths: list[str]) -> None:
        self.query_paths = list(paths)
        self.drop_area.show_queries(self.query_paths)
        self.drop_area.set_query_image(self.thumbnails.cached(self.query_paths[0]) if self.query_paths else None)
        if self.query_paths:
            self.thumbnails.request(self.query_paths[0])
        self.comparison.clear()
        self.run_search()

    def run_search(self) -> int | None:
        if not self.query_paths:
            return None
        if self.index_state is None:
            if self.jobs.is_busy("index") or self.jobs.is_busy("open"):
                self._search_pending = True
                self.status_label.setText("The search will run as soon as the index is ready.")
            else:
                self._search_pending = True
                self.show_message("Index a folder first (File › Index folder…, Ctrl+I); the search runs when it is ready.")
            return None
        self._search_pending = False
        self.settings.top_k = self.results.top_k.value()
        self.settings.hide_duplicates = self.results.hide_duplicates.isChecked()
        return self._submit(
            self.lookups, "search", tasks.search, self.index_state.library, list(self.query_paths),
            self.results.top_k.value(), self.results.hide_duplicates.isChecked(), len(self.query_paths) > 1,
            replace=True,
        )

    def _results_options_changed(self) -> None:
        if self.results.outcome is not None:
            self.run_search()

    def compare_with(self, match_path: str) -> None:
        query = self.results.query_for(match_path)
        if self.index_state is None or query is None:
            return
        self.comparison.show_loading(query, match_path)
        self._submit(self.lookups, "compare", tasks.compare, self.index_state.library, query, match_path, replace=True)

    # -- jobs -----------------------------------------------------------------------------------------
    def _submit(self, runner: JobRunner, kind: str, fn, *args, replace: bool = False, **kwargs) -> int | None:
        if self._closing:
            return None
        job_id = runner.submit(kind, fn, *args, replace=replace, **kwargs)
        self._active[job_id] = kind
        self._update_actions()
        return job_id

    def _job_started(self, job_id: int, kind: str) -> None:
        if kind in ("index", "model", "open"):
            self.progress_bar.setRange(0, 0)
            self.progress_bar.show()
            self.cancel_button.setVisible(kind == "index")

    def _job_status(self, job_id: int, text: str) -> None:
        self.status_label.setText(text)

    def _job_progress(self, job_id: int, done: int, total: int) -> None:
        if self._active.get(job_id) == "index":
            self.progress_bar.setRange(0, max(total, 1))
            self.progress_bar.setValue(done)
            self.progress_bar.setFormat(f"{done}/{total}")

    def _job_partial(self, job_id: int, result) -> None:
        if isinstance(result, tasks.IndexState):  # a cancelled update: what is committed is usable
            self._set_index_state(result)
        elif hasattr(result, "done") and hasattr(result, "total"):
            self.status_label.setText(f"Indexing: {result.done} of {result.total} new or changed photos done")

    def _job_ended(self, job_id: int) -> None:
        self._active.pop(job_id, None)
        if not any(kind in ("index", "model", "open") for kind in self._active.values()):
            self.progress_bar.hide()
            self.cancel_button.hide()
        self._update_actions()

    def _job_finished(self, job_id: int, kind: str, result) -> None:
        self._job_ended(job_id)
        if kind == "warmup":
            if self.settings.model_choice is None:
                self.status_label.setText("PyTorch loaded. Choose how to get a model to start.")
            elif self.index_state is None and not self._active:
                self.status_label.setText("Ready. Index a folder (Ctrl+I) to search it.")
        elif kind == "model":
            self.model_summary = result
            self.settings.model_choice = CHOICE_FILE
            self.settings.model_path = result.path
            self.pages.setCurrentIndex(PAGE_MAIN)
            if self.index_state is not None and Path(self.index_state.model_path) != Path(result.path):
                self.status_label.setText(f"Model ready: {result.description}. Index a folder to use it (Ctrl+I).")
            else:
                self.status_label.setText(f"Model ready: {result.description} on {result.device}.")
            self._update_model_label()
            self.modelReady.emit(result)
            folder = self.index_state.folder if self.index_state else self.settings.last_folder
            if self._reindex_after_model and folder:
                self.index_folder(folder)
            self._reindex_after_model = False
        elif kind in ("index", "open"):
            search_again = self._search_pending or (kind == "index" and bool(self.query_paths))
            self.status_label.setText(result.summary or "Index ready.")
            self._set_index_state(result)
            if search_again:
                self.run_search()
        elif kind == "search":
            self.results.show_outcome(result)
            errors = [q.error for q in result.queries if q.error]
            if errors:
                self.show_message("; ".join(errors[:3]))
            count = sum(len(q.hits) for q in result.queries)
            self.status_label.setText(f"Found {count} look-alikes for {len(result.queries)} quer{'y' if len(result.queries) == 1 else 'ies'}.")
            self.searchFinished.emit(result)
        elif kind == "compare":
            self.comparison.show_comparison(result)
            self.status_label.setText(
                f"{Path(result.match.path).name}: {result.distance} of {result.code_bits} bits differ from the query."
            )
            self.comparisonShown.emit(result)
        elif kind == "skipped":
            SkippedDialog(self.index_state.folder if self.index_state else "", result, self).open()

    def _job_failed(self, job_id: int, kind: str, message: str) -> None:
        self._job_ended(job_id)
        if kind == "open":  # the last folder's index is gone or was made with another model: not an error
            self.status_label.setText("Index a folder (Ctrl+I) to search it.")
        else:
            what = {"index": "Indexing failed", "model": "Could not load the model", "search": "Search failed",
                    "compare": "Could not compare", "warmup": "Could not load PyTorch"}.get(kind, "Failed")
            self.show_message(f"{what}: {message}")
            self.status_label.setText(what)
            if kind == "index" and self.index_state is None:
                self.index_label.setText("No folder indexed")
        self.jobFailed.emit(kind, message)

    def _job_cancelled(self, job_id: int, kind: str) -> None:
        self._job_ended(job_id)
        if kind == "index":
            done = f"{self.index_state.photos} photos are indexed so far; " if self.index_state else ""
            self.status_label.setText(f"Indexing cancelled. {done}Update index (F5) continues where it stopped.")
            if self.index_state is None:
                self.index_label.setText("No folder indexed")
        self.jobCancelled.emit(kind)

    def cancel_work(self) -> None:
        self.jobs.cancel(kind="index")
        self.jobs.cancel(kind="model")
        self.lookups.cancel()
        self.status_label.setText("Cancelling…")

    def _update_actions(self) -> None:
        self.cancel_action.setEnabled(any(kind in ("index", "search", "compare") for kind in self._active.values()))
        self.reindex_action.setEnabled(self.index_state is not None or bool(self.settings.last_folder))

    # -- messages and dialogs ---------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.banner.show_message(text)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.results.top_k.setValue(self.settings.top_k)
            self.results.hide_duplicates.setChecked(self.settings.hide_duplicates)
            self._update_model_label()

    def show_shortcuts(self) -> None:
        rows = []
        for action in self.findChildren(QAction):
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                rows.append(f"<tr><td><b>{keys}</b></td><td>{action.text().replace('&', '')}</td></tr>")
        QMessageBox.information(self, "Keyboard shortcuts", "<table cellspacing=4>" + "".join(sorted(set(rows))) + "</table>"
                                "<p>Tab moves between areas; arrow keys move in the results; Alt + the underlined letter opens a menu.</p>")

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About fph-desktop", f"<b>fph-desktop {__version__}</b><p>Find fine-grained look-alikes in your "
                          "photo folders with Feature Pyramid Hashing (Yang et al., ICMR 2019).</p><p>Apache-2.0</p>")

    # -- drops onto the whole window ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self.drop_area.dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.drop_area.dropEvent(event)

    # -- closing ----------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel the running work and wait for the worker threads: the index keeps every whole batch."""
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save the layout, cancel all work and wait for the threads. Safe to call more than once
        (closing the window, then the application quitting)."""
        if self._closing:
            return
        self._closing = True
        if self._active:
            self.status_label.setText("Stopping the running work…")
            QGuiApplication.processEvents()
        self.settings.save_window_state(self.saveGeometry(), self.saveState(), self.splitter.saveState())
        self.settings.top_k = self.results.top_k.value()
        self.settings.hide_duplicates = self.results.hide_duplicates.isChecked()
        self.settings.sync()
        if self.wizard is not None:
            self.wizard.shutdown()  # training stops at its next step; the checkpoint stays for a resume
        self.jobs.shutdown()
        self.lookups.shutdown()
        self.thumbnails.shutdown()
