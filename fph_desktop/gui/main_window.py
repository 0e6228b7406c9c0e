"""The main window: menus and toolbar, the drop area and results grid, the comparison view, and a
status bar that says what is loading and what the current index holds.

It holds no model or index logic: every long step is a job from :mod:`fph_desktop.gui.tasks` run
by a :class:`~fph_desktop.gui.workers.JobRunner`. Two runners, so a search is not queued behind a
long indexing run: ``jobs`` (model loading, indexing) and ``lookups`` (searching, comparing). Each
job's handle is connected to the handlers of that job when it is submitted, so a result can only
reach the code that asked for it.

The index the user works in stays current until another one is ready: a folder that cannot be
indexed (no photos, unreadable) leaves it, its status-bar label and the remembered folder as they
were. The progress bar and the cancel button are permanent status-bar widgets, so a status tip
(the mouse resting on a toolbar button) never hides them.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import resources, tasks
from .comparison import ComparisonView, ElidedLabel
from .drop_area import DropArea, local_paths
from .first_run import TRAIN_TOOLTIP, FirstRunPanel
from .results_view import ResultsPanel
from .settings import CHOICE_FILE, CHOICE_PRETRAINED, AppSettings, SettingsDialog
from .thumbnails import ThumbnailLoader
from .workers import JobHandle, JobRunner

# The folder is checked for new, changed and deleted photos when the window comes back to the front,
# and every few minutes while it is open, but not more often than this (an unchanged folder's check
# is a listing of it: under a second for thousands of photos, benchmarks/reindex_unchanged.py).
REFRESH_AFTER_S = 60.0
REFRESH_EVERY_MS = 5 * 60 * 1000

PAGE_FIRST_RUN, PAGE_MAIN = 0, 1
BUSY_KINDS = ("index", "model", "open")  # jobs that show the status bar's progress bar
CANCELLABLE_KINDS = ("index", "refresh", "search", "compare")

# Topics of the banner's messages: a message goes once what it asked for is done.
TOPIC_MODEL, TOPIC_INDEX, TOPIC_SEARCH = "model", "index", "search"


def model_words(description: str, path: str = "") -> str:
    """The model as the status bar names it: no backbone names or code lengths (those are in the
    tooltip)."""
    if description.startswith("ITQ"):
        return "pretrained model"
    return f"model {Path(path).stem}" if path else "trained model"


class StatusText(ElidedLabel):
    """The status bar's message: elided to the room it has (whole in the tooltip), so a long
    message never squeezes the index and model labels. ``text()`` is the whole message."""

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self.set_full_text(text)

    def text(self) -> str:
        return self.full_text()


class MessageBanner(QFrame):
    """A dismissible one-line message above the content (errors a user can act on, notices).
    A message may carry a topic; :meth:`clear` with that topic takes it away once it is out of date."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBanner")
        self.topic: str | None = None
        self.icon = QLabel()
        self.icon.setPixmap(resources.icon("warning").pixmap(QSize(18, 18)))
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
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

    def show_message(self, text: str, topic: str | None = None) -> None:
        self.topic = topic
        self.text.setText(text)
        self.show()

    def clear(self, topic: str) -> None:
        if self.topic == topic:
            self.topic = None
            self.hide()


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
    photoViewerOpened = Signal(object)  # viewer.PhotoViewer
    jobFailed = Signal(str, str)  # kind, message (after the window has shown it)
    jobCancelled = Signal(str)  # kind
    jobSubmitted = Signal(object)  # each JobHandle the window starts, once the window's handlers are connected

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
        self._active: dict[int, JobHandle] = {}  # the jobs this window started that have not ended
        self._closing = False
        self._reindex_after_model = False
        self._pending_folder: str | None = None  # asked to index before a model was chosen
        self._startup_queries: list[str] = []
        self._deferred_start = None  # loading torch and the model, after the start-up index and search
        self.folder_states: dict[str, tasks.IndexState] = {}  # the library's folders opened or indexed
        self._index_queue: list[str] = []  # library folders waiting to be indexed (after a model change)
        self._last_refresh = time.monotonic()  # the index's folder was last checked (or indexed) then
        self._refresh_timer = QTimer(self, interval=REFRESH_EVERY_MS, timeout=self.refresh_if_stale)
        self._refresh_timer.start()
        self.wizard = None  # the training wizard, while open

        self.jobs = JobRunner("fph-jobs", self)
        self.lookups = JobRunner("fph-lookups", self)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.thumbnails.ready.connect(
            lambda path, image: self.drop_area.set_query_image(image) if self.query_paths[:1] == [path] else None
        )

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central()
        self._build_library_panel()
        self._build_status_bar()
        self._restore_layout()
        self._refresh_recent_menu()
        self._update_actions()
        self._update_model_label()
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
        action.setStatusTip(tip)  # shown over the status text only: the progress bar is permanent
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action(
            "&Open photos…", "image-open", "Search with photos from disk", self.open_photos, QKeySequence.StandardKey.Open
        )
        self.paste_action = self._action(
            "&Paste image", "paste", "Search with the image or files on the clipboard", self.paste, QKeySequence.StandardKey.Paste
        )
        self.index_action = self._action(
            "&Index folder…", "folder-search", "Pick a photo folder to index and search", self.choose_folder, "Ctrl+I"
        )
        self.reindex_action = self._action(
            "&Update index",
            None,
            "Index new and changed photos of the current folder",
            self.reindex,
            QKeySequence.StandardKey.Refresh,
        )
        self.groups_action = self._action(
            "Find look-alike &groups…", "compare", "Group the look-alikes of the current folder", self.show_groups, "Ctrl+G"
        )
        self.groups_action.setIconText("Look-alike groups")
        self.cancel_action = self._action(
            "&Cancel", "cancel", "Stop the running work (what is done so far is kept)", self.cancel_work, "Esc"
        )
        self.quit_action = self._action("&Quit", None, "Quit fph-desktop", self.close, QKeySequence.StandardKey.Quit)
        self.pretrained_action = self._action(
            "Use the &pretrained model (works at once)",
            "pretrained",
            "A network that ships with the app; its codes are fitted on each folder you index",
            lambda: self.choose_model(CHOICE_PRETRAINED),
        )
        self.load_model_action = self._action(
            "&Load weights file…",
            "weights-file",
            "Use an FPH weights file (.fph)",
            lambda: self.choose_model(CHOICE_FILE),
            "Ctrl+M",
        )
        self.train_action = self._action("&Train a model…", "train", TRAIN_TOOLTIP, self.train_model)
        self.model_info_action = self._action(
            "Model &choices…", "model", "Show the three ways to get a model", self.show_first_run
        )
        self.settings_action = self._action(
            "&Settings…", "settings", "Search, model and device options", self.open_settings, QKeySequence.StandardKey.Preferences
        )
        self.compare_action = self._action(
            "&Focus comparison",
            "compare",
            "Move the keyboard focus to the comparison view",
            lambda: self.comparison.layer.setFocus(),
            "Ctrl+D",
        )
        self.focus_results_action = self._action(
            "Focus &results", None, "Move the keyboard focus to the results grid", lambda: self.results.view.setFocus(), "Ctrl+R"
        )
        self.shortcuts_action = self._action(
            "&Keyboard shortcuts", None, "List the keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents
        )
        self.about_action = self._action("&About fph-desktop", None, "Version and licence", self.show_about)
        self.cancel_action.setEnabled(False)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.open_action, self.paste_action])
        file_menu.addSeparator()
        file_menu.addActions([self.index_action, self.reindex_action, self.groups_action])
        self.recent_menu = file_menu.addMenu("&Recent folders")
        file_menu.addSeparator()
        file_menu.addActions([self.cancel_action, self.quit_action])
        model_menu = bar.addMenu("&Model")
        model_menu.addActions([self.pretrained_action, self.load_model_action, self.train_action])
        model_menu.addSeparator()
        model_menu.addAction(self.model_info_action)
        view_menu = self.view_menu = bar.addMenu("&View")
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
        toolbar.addActions([self.index_action, self.open_action, self.paste_action, self.groups_action])
        toolbar.addSeparator()
        toolbar.addActions([self.load_model_action, self.train_action])
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addActions([self.cancel_action, self.settings_action])
        self.toolbar = toolbar

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
        self.results.resultOpened.connect(self.view_photo)
        self.view_menu.insertAction(self.compare_action, self.results.view_action)
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

    def _build_library_panel(self) -> None:
        from .library_panel import LibraryPanel

        self.library_panel = LibraryPanel()
        self.library_panel.addRequested.connect(self.choose_folder)
        self.library_panel.updateRequested.connect(self.index_folder)
        self.library_panel.removeRequested.connect(self.remove_folder)
        self.library_panel.revealRequested.connect(self._reveal_folder)
        self.library_panel.folderSelected.connect(self.select_folder)
        self.library_dock = QDockWidget("Library", self)
        self.library_dock.setObjectName("LibraryDock")
        self.library_dock.setWidget(self.library_panel)
        self.library_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.library_dock)
        toggle = self.library_dock.toggleViewAction()
        toggle.setText("&Library (folders searched together)")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        self.view_menu.insertAction(self.view_menu.actions()[0], toggle)
        self.library_dock.setVisible(len(self.settings.library_folders) > 1)  # shown once there is a library to see

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = StatusText("Starting…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(200)
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
        # Only the status text is a normal widget (a status tip may cover it for a moment); what
        # shows running work and the current index is permanent.
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cancel_button)
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
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
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
        """After the first paint: reopen the last index, and then import torch and load the model in
        the worker. The index opens with the model's exported graph when there is one, so a photo
        opened with the app is searched before torch, which holds the GIL for seconds, is loaded."""
        choice = self.settings.model_choice
        folder = self.settings.last_folder
        index_model = None
        if choice == CHOICE_FILE and self.settings.model_path:
            path = self.settings.model_path
            self._deferred_start = lambda: self._load_model(path, quiet=True)
            index_model = path
        else:
            self._deferred_start = lambda: self._submit(
                self.jobs, "warmup", tasks.warm_up, on_finished=self._warmed_up, on_failed=self._warm_up_failed
            )
            if choice == CHOICE_PRETRAINED and folder:
                model = tasks.existing_unsupervised_model(folder, self.settings.unsupervised_bits)
                index_model = str(model) if model is not None else None
        if folder and index_model:
            for other in self.settings.library_folders:
                if other != folder:
                    self._open_index(other, index_model)
            self._open_index(folder, index_model)
        else:
            self._run_deferred_start()
        if choice is None:
            self.status_label.setText("Getting ready in the background… Choose how to get a model meanwhile.")
        self._update_model_label()

    def _run_deferred_start(self) -> None:
        """Load torch and the model once the start-up index and search are done (or at once)."""
        start, self._deferred_start = self._deferred_start, None
        if start is not None and not self._closing:
            start()

    def _warmed_up(self, result) -> None:
        if self.settings.model_choice is None:
            self.status_label.setText("Ready. Choose how to get a model to start.")
        elif self.index_state is None and not self._active:
            self.status_label.setText("Ready. Index a folder (Ctrl+I) to search it.")

    def _warm_up_failed(self, handle: JobHandle, message: str) -> None:
        self.show_message(f"Could not start the model library: {message}")
        self.status_label.setText("Could not start the model library")

    # -- model --------------------------------------------------------------------------------------
    def show_first_run(self) -> None:
        self.pages.setCurrentIndex(PAGE_FIRST_RUN)

    def choose_model(self, choice: str) -> None:
        if choice == CHOICE_FILE:
            start = str(Path(self.settings.model_path).parent) if self.settings.model_path else ""
            path, _ = QFileDialog.getOpenFileName(
                self, "Load FPH weights file", start, "fph-desktop models (*.fph *.onnx);;All files (*)"
            )
            if path:
                self.use_model_file(path)
            return
        self.settings.model_choice = choice
        self.pages.setCurrentIndex(PAGE_MAIN)
        self._update_model_label()
        if choice == CHOICE_PRETRAINED:
            self.status_label.setText("Pretrained model chosen: index a folder (Ctrl+I) and its codes are fitted on its photos.")
            self._model_chosen()
            if self.index_state is None and self._pending_folder is None:
                QTimer.singleShot(0, self._suggest_folder)

    def _model_chosen(self) -> None:
        """A model can now make codes: messages asking for one go, and a folder the user asked to
        index before there was one is indexed now."""
        self.banner.clear(TOPIC_MODEL)
        folder, self._pending_folder = self._pending_folder, None
        if folder:
            self.index_folder(folder)

    def use_model_file(self, path: str, reindex: bool = False) -> None:
        """Load ``path`` and make it the model for every folder; with ``reindex``, index the current
        folder with it once it is loaded (the training wizard's "use this model now")."""
        self._reindex_after_model = reindex
        self._load_model(path, replace=True)

    def _load_model(self, path: str, replace: bool = False, quiet: bool = False) -> JobHandle | None:
        """``quiet``: the start-up load of the remembered model, which keeps the status line (the
        search that ran meanwhile said what it found)."""
        return self._submit(
            self.jobs,
            "model",
            tasks.load_model,
            path,
            self.settings.device,
            replace=replace,
            on_finished=lambda result: self._model_loaded(result, quiet),
            on_failed=self._model_failed,
        )

    def _model_loaded(self, result: tasks.ModelSummary, quiet: bool = False) -> None:
        self.model_summary = result
        self.settings.model_choice = CHOICE_FILE
        self.settings.model_path = result.path
        self.pages.setCurrentIndex(PAGE_MAIN)
        name = model_words(result.description, result.path)
        if self.index_state is not None and Path(self.index_state.model_path) != Path(result.path):
            self.status_label.setText(f"The {name} is ready. Index a folder to use it (Ctrl+I).")
        elif not (quiet and self.index_state is not None):
            self.status_label.setText(f"The {name} is ready.")
        self._update_model_label()
        self.modelReady.emit(result)
        reindex, self._reindex_after_model = self._reindex_after_model, False
        folder = self.index_state.folder if self.index_state else self.settings.last_folder
        self._model_chosen()
        if reindex and folder and not self._indexing():
            self.reindex_library(first=folder)  # one model for the whole library: every folder, this one first

    def _model_failed(self, handle: JobHandle, message: str) -> None:
        self._reindex_after_model = False
        self.show_message(f"Could not load the model: {message}", TOPIC_MODEL)
        self.status_label.setText("Could not load the model")
        self._update_model_label()

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
        if self.settings.last_folder and self.index_state is None and not self._indexing():
            self.status_label.setText(f"Index a folder (Ctrl+I), e.g. {self.settings.last_folder} again with the new model.")

    def _has_model(self) -> bool:
        choice = self.settings.model_choice
        return choice == CHOICE_PRETRAINED or (choice == CHOICE_FILE and bool(self.settings.model_path))

    def _update_model_label(self) -> None:
        choice = self.settings.model_choice
        # Once an index is open, the index label names its model.
        self.model_label.setVisible(self.index_state is None)
        if self.model_summary is not None:
            text = model_words(self.model_summary.description, self.model_summary.path).capitalize()
            tip = f"{self.model_summary.description}\n{self.model_summary.path}\nRuns on: {self.model_summary.device}"
        elif choice == CHOICE_PRETRAINED:
            text = "Pretrained model (codes fitted on each folder)"
            bits = self.settings.unsupervised_bits
            tip = f"EfficientNet-Lite0 (ImageNet) with unsupervised {bits}-bit ITQ codes fitted on each folder"
        elif choice == CHOICE_FILE and self.settings.model_path:
            text = f"Loading {Path(self.settings.model_path).name}…"
            tip = self.settings.model_path
        else:
            text, tip = "No model chosen", "Model › Model choices… shows the three ways to get one"
        self.model_label.setText(text)
        self.model_label.setToolTip(tip)

    # -- folders and indexing -------------------------------------------------------------------------
    def choose_folder(self) -> None:
        """*Index folder…*: asks for the model first when there is none (the folder dialog would only
        lead to a refusal), and never while an index runs."""
        if not self._has_model():
            self._ask_for_model("then pick the folder to index (Ctrl+I).")
            return
        if self._indexing():
            self._refuse_second_index()
            return
        start = self.settings.last_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Index a photo folder", start)
        if folder:
            self.index_folder(folder)

    def reindex(self) -> None:
        folder = self.index_state.folder if self.index_state else self.settings.last_folder
        if folder:
            self.index_folder(folder)

    def _indexing(self) -> bool:
        return any(h.kind == "index" and not h.cancel_requested for h in self._active.values())

    def _ask_for_model(self, then: str) -> None:
        self.show_first_run()
        self.show_message(f"Choose how to get a model first (the pretrained model works at once); {then}", TOPIC_MODEL)

    def _refuse_second_index(self) -> None:
        self.show_message("A folder is being indexed: wait for it to finish, or cancel it (Esc) first.", TOPIC_INDEX)

    def index_folder(self, folder: str, batch_size: int = 16, quiet: bool = False) -> JobHandle | None:
        """Index (or update the index of) ``folder`` with the chosen model; returns the job's handle.
        Without a model, the folder is remembered and indexed once one is chosen. Batches of 16 (the
        CLI uses 32) keep a cancel quick on a CPU: the indexer checks between batches. ``quiet``: the
        automatic check for new photos, which speaks only when it found something."""
        folder = str(folder)
        if quiet:
            self._last_refresh = time.monotonic()
            return self._submit(
                self.jobs, "refresh", tasks.index_folder, folder, **self._model_arguments(folder),
                batch_size=batch_size, on_finished=self._refreshed,
            )  # fmt: skip
        if not self._has_model():
            self._pending_folder = folder
            self._ask_for_model(f"{tasks.folder_name(folder)} is indexed as soon as you have.")
            return None
        if self._indexing():
            self._refuse_second_index()
            return None
        self.pages.setCurrentIndex(PAGE_MAIN)
        self.jobs.cancel(kind="open")  # reopening the last index at start-up is superseded
        self.jobs.cancel(kind="refresh")  # the user's own indexing does the same and more
        self.index_label.setText(f"Indexing <b>{tasks.folder_name(folder)}</b>…")
        handle = self._submit(
            self.jobs,
            "index",
            tasks.index_folder,
            folder,
            **self._model_arguments(folder),
            batch_size=batch_size,
            on_finished=self._index_finished,
            on_failed=self._index_failed,
            on_cancelled=self._index_cancelled,
            on_partial=self._index_partial,
        )
        self.status_label.setText(f"Indexing {tasks.folder_name(folder)}…")
        if handle is not None:
            handle.folder = folder  # the library panel shows it as being indexed
            self._update_library_panel()
        return handle

    def _model_arguments(self, folder: str | None = None) -> dict:
        """``model_path``, ``device`` and ``unsupervised_bits`` for :func:`tasks.index_folder`, from the
        settings. One model for the whole library: with the pretrained choice, a folder added to a
        library takes the codes fitted on the library's first folder, so they are searched together."""
        choice = self.settings.model_choice
        model = self.settings.model_path if choice == CHOICE_FILE else None
        bits = self.settings.unsupervised_bits if choice == CHOICE_PRETRAINED else None
        if choice == CHOICE_PRETRAINED and folder is not None:
            others = [s for f, s in self.folder_states.items() if f != folder and s.model_path]
            own = tasks.existing_unsupervised_model(folder, bits)
            if others and own is None:
                model, bits = others[0].model_path, None
        return {"model_path": model, "device": self.settings.device, "unsupervised_bits": bits}

    # -- staying current -----------------------------------------------------------------------------
    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            QTimer.singleShot(0, self.refresh_if_stale)

    def refresh_if_stale(self) -> list[JobHandle]:
        """Pick up photos added, changed or deleted in the library's folders since they were last
        checked, without the user asking: when the window comes to the front, and every few minutes."""
        if self.index_state is None or self._closing or not self._has_model():
            return []
        if time.monotonic() - self._last_refresh < REFRESH_AFTER_S:
            return []
        if any(h.kind in ("index", "open", "refresh", "model") for h in self._active.values()):
            return []
        folders = [f for f, state in self.folder_states.items() if not state.offline and Path(f).is_dir()]
        return [h for h in (self.index_folder(f, quiet=True) for f in folders) if h is not None]

    def _refreshed(self, state: tasks.IndexState) -> None:
        if state.folder not in self.folder_states or self._indexing():
            return  # removed from the library, or being indexed by the user: this result is of no use
        if self.index_state is not None and state.folder == self.index_state.folder:
            self._set_index_state(state)
        else:
            self.folder_states[state.folder] = state
            self._update_library_panel()
        if state.changes:
            self.status_label.setText(state.summary)
            if self.query_paths:
                self.run_search(announce=False)

    def _open_index(self, folder: str, model_path: str) -> JobHandle | None:
        return self._submit(
            self.jobs,
            "open",
            tasks.open_index,
            folder,
            model_path,
            self.settings.device,
            on_finished=self._index_opened,
            on_failed=self._open_failed,
        )

    def _index_partial(self, result) -> None:
        if isinstance(result, tasks.Step):  # a new step: its words, and a bar that starts over
            self.status_label.setText(result.describe())
            self.progress_bar.setRange(0, 0)
        elif isinstance(result, tasks.IndexState):  # a cancelled update: what is committed is usable
            self._set_index_state(result)

    def _index_finished(self, state: tasks.IndexState) -> None:
        before = self.settings.library_folders
        self.settings.add_library_folder(state.folder)
        self.settings.add_recent_folder(state.folder)  # only a folder that was indexed is remembered
        if len(before) == 1 and state.folder not in before:
            self.library_dock.show()  # a second folder: from now on they are searched together
        self._refresh_recent_menu()
        self._set_index_state(state)
        self.banner.clear(TOPIC_INDEX)
        self.status_label.setText(state.summary or "Index ready.")
        if self._search_pending or self.query_paths:
            self.run_search(announce=False)  # the finish message stays; the results say what was found
        if self._index_queue:
            QTimer.singleShot(0, self._index_next_in_queue)

    def _index_next_in_queue(self) -> None:
        while self._index_queue and not self._indexing():
            folder = self._index_queue.pop(0)
            if Path(folder).is_dir() and self.index_folder(folder) is not None:
                return

    def _index_opened(self, state: tasks.IndexState) -> None:
        self._set_index_state(state)
        self.status_label.setText(state.summary or "Index ready.")
        if self._search_pending:
            self.run_search(announce=False)

    def _open_failed(self, handle: JobHandle, message: str) -> None:
        self._show_index_label()
        if handle.user_error:  # the last folder's index is gone or was made with another model: not an error
            self.status_label.setText("Index a folder (Ctrl+I) to search it.")
        else:
            self.show_message(f"Could not open the last index: {message}")
        self._run_deferred_start()

    def _index_failed(self, handle: JobHandle, message: str) -> None:
        self._show_index_label()  # the index the user works in stays the current one
        self.show_message(f"Indexing failed: {message}", TOPIC_INDEX)
        if self.index_state is not None:
            self.status_label.setText(f"Indexing failed; you are still searching {tasks.folder_name(self.index_state.folder)}.")
        else:
            self.status_label.setText("Indexing failed.")

    def _index_cancelled(self, handle: JobHandle) -> None:
        self._show_index_label()
        if self.index_state is not None and not self.index_state.complete:
            self.settings.add_recent_folder(self.index_state.folder)  # its finished batches are kept
            self._refresh_recent_menu()
            self._update_actions()
        done = f"{self.index_state.photos:,} photos are indexed so far; " if self.index_state else ""
        self.status_label.setText(f"Indexing cancelled. {done}Update index (F5) continues where it stopped.")

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_folders
        for i, folder in enumerate(recent):
            action = self.recent_menu.addAction(f"&{i + 1}  {folder}")
            action.setToolTip(f"Index {folder} again (only new and changed photos are analysed)")
            action.triggered.connect(lambda _=False, f=folder: self.index_folder(f))
        self.recent_menu.setEnabled(bool(recent))

    def _set_index_state(self, state: tasks.IndexState) -> None:
        if self.index_state is None or self.index_state.folder != state.folder:
            self._last_refresh = time.monotonic()  # a folder just opened or indexed is current
        self.folder_states[state.folder] = state
        self.index_state = state
        self._update_library_panel()
        self._show_index_label()
        self._update_model_label()
        self._update_actions()
        self.indexReady.emit(state)

    def _show_index_label(self) -> None:
        state = self.index_state
        if state is None:
            self.index_label.setText("No folder indexed")
            self.index_label.setToolTip("Index a folder (Ctrl+I) to search it")
            return
        parts = [
            f"<b>{tasks.folder_name(state.folder)}</b>",
            f"{state.photos:,} photos",
            model_words(state.model_description, state.model_path),
        ]
        searched = self.searched_folders()
        if len(searched) > 1:  # a library: say what a search covers
            parts.insert(2, f"searching {len(searched)} folders, {sum(s.photos for s in searched):,} photos")
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

    def _index_link(self, link: str) -> None:
        if link == "skipped" and self.index_state is not None:
            folder = self.index_state.folder
            self._submit(
                self.lookups,
                "skipped",
                tasks.skipped_files,
                self.index_state.library,
                on_finished=lambda items: SkippedDialog(folder, items, self).open(),
                on_failed=lambda handle, message: self.show_message(f"Could not list the skipped files: {message}"),
            )

    # -- the library -----------------------------------------------------------------------------------
    def _update_library_panel(self) -> None:
        from .library_panel import FolderRow

        searched = {s.folder for s in self.searched_folders()}
        indexing = {getattr(h, "folder", None) for h in self._active.values() if h.kind == "index"}
        rows = []
        for folder in self.settings.library_folders:
            state = self.folder_states.get(folder)
            if folder in indexing:
                kind = "indexing"
            elif state is None:
                kind = "waiting" if Path(folder).is_dir() else "offline"
            elif state.offline or not Path(folder).is_dir():
                kind = "offline"
            elif folder not in searched:
                kind = "other-model"
            else:
                kind = "ready" if state.complete else "incomplete"
            current = self.index_state is not None and self.index_state.folder == folder
            rows.append(FolderRow(folder, state.photos if state else 0, state.skipped if state else 0, kind, current))
        self.library_panel.set_rows(rows)

    def remove_folder(self, folder: str) -> None:
        """Stop searching ``folder``: out of the library; its photos and its index file stay."""
        self.settings.remove_library_folder(folder)
        self.folder_states.pop(folder, None)
        if self.index_state is not None and self.index_state.folder == folder:
            self.index_state = next(iter(self.folder_states.values()), None)
            self._show_index_label()
            self._update_actions()
        self._update_library_panel()
        self.status_label.setText(f"{tasks.folder_name(folder)} is no longer searched; its photos and index are untouched.")
        if self.query_paths and self.index_state is not None:
            self.run_search(announce=False)
        elif self.index_state is None:
            self.results.clear("Index a folder (Ctrl+I) to search it.")
            self.comparison.clear()

    def select_folder(self, folder: str) -> None:
        """Make ``folder`` the current one (the status bar's, the one Update index and groups work on)."""
        state = self.folder_states.get(folder)
        if state is not None:
            self._set_index_state(state)

    def _reveal_folder(self, folder: str) -> None:
        from .results_view import reveal_in_file_manager

        reveal_in_file_manager(folder)

    def reindex_library(self, first: str | None = None) -> None:
        """Index every folder of the library again, one after the other (after the model changed)."""
        folders = ([first] if first else []) + [f for f in self.settings.library_folders if f != first]
        self._index_queue = folders
        self._index_next_in_queue()

    def show_groups(self) -> None:
        from .groups_view import show_groups_window

        show_groups_window(self)

    # -- queries ----------------------------------------------------------------------------------------
    def open_photos(self) -> None:
        from .drop_area import image_suffixes

        pattern = " ".join(f"*{s}" for s in sorted(image_suffixes()))
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Search with photos", self.settings.last_folder or "", f"Photos ({pattern});;All files (*)"
        )
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
        self.lookups.cancel(kind="compare")
        self.comparison.clear()
        self.run_search()

    def run_search(self, announce: bool = True) -> JobHandle | None:
        """Search with the current queries. ``announce``: say in the status bar what was found
        (not when the search only refreshes the results after an index update, whose message stays)."""
        if not self.query_paths:
            return None
        if self.index_state is None:
            self._search_pending = True
            if any(h.kind in ("index", "open") and not h.cancel_requested for h in self._active.values()):
                self.status_label.setText("The search will run as soon as the index is ready.")
            else:
                self.show_message(
                    "Index a folder first (File › Index folder…, Ctrl+I); the search runs when it is ready.", TOPIC_INDEX
                )
            return None
        self._search_pending = False
        self.settings.top_k = self.results.top_k.value()
        self.settings.hide_duplicates = self.results.hide_duplicates.isChecked()
        return self._submit(
            self.lookups,
            "search",
            tasks.search,
            self._search_library(),
            list(self.query_paths),
            self.results.top_k.value(),
            self.results.hide_duplicates.isChecked(),
            len(self.query_paths) > 1,
            replace=True,
            on_finished=lambda outcome: self._search_finished(outcome, announce),
            on_failed=self._search_failed,
        )

    def searched_folders(self) -> list[tasks.IndexState]:
        """The library's folders a search covers: those indexed with the current folder's model."""
        current = self.index_state
        if current is None:
            return []
        fingerprint = current.library.encoder.fingerprint
        states = [s for s in self.folder_states.values() if s.library.encoder.fingerprint == fingerprint and len(s.library)]
        return states or [current]

    def _search_library(self):
        from ..index.collection import library_of

        return library_of([s.library for s in self.searched_folders()])

    def _search_finished(self, outcome, announce: bool) -> None:
        self.banner.clear(TOPIC_INDEX)
        self.banner.clear(TOPIC_SEARCH)
        self.results.show_outcome(outcome)
        errors = [q.error for q in outcome.queries if q.error]
        if errors:
            self.show_message("; ".join(errors[:3]), TOPIC_SEARCH)
        if self.results.selected_path() is None:
            self.comparison.clear()
        if announce:
            count = sum(len(q.hits) for q in outcome.queries)
            queries = len(outcome.queries)
            self.status_label.setText(f"Found {count} look-alikes for {queries} quer{'y' if queries == 1 else 'ies'}.")
        self.searchFinished.emit(outcome)

    def _search_failed(self, handle: JobHandle, message: str) -> None:
        self.show_message(f"Search failed: {message}", TOPIC_SEARCH)
        self.status_label.setText("Search failed")
        self.results.clear("The search failed; the message above says why.")
        self.comparison.clear()

    def _results_options_changed(self) -> None:
        if self.results.outcome is not None:
            self.run_search()

    def view_photo(self, path: str) -> None:
        """The photo large, with its date, camera and size (a window of its own; several may be open)."""
        from .viewer import PhotoViewer

        viewer = PhotoViewer(path, self)
        viewer.show()
        self.photoViewerOpened.emit(viewer)

    def compare_with(self, match_path: str) -> None:
        query = self.results.query_for(match_path)
        if self.index_state is None or query is None:
            return
        self.comparison.show_loading(query, match_path)
        self._submit(
            self.lookups,
            "compare",
            tasks.compare,
            self.index_state.library,
            query,
            match_path,
            replace=True,
            on_finished=self._comparison_ready,
            on_failed=self._comparison_failed,
        )

    def _comparison_ready(self, result: tasks.Comparison) -> None:
        if self.results.selected_path() != result.match.path:
            return  # the selection moved on (or the results were replaced) while it was computed
        self.comparison.show_comparison(result)
        self.status_label.setText(
            f"{Path(result.match.path).name}: {result.agreeing_bits} of {result.code_bits} bits agree with the query."
        )
        self.comparisonShown.emit(result)

    def _comparison_failed(self, handle: JobHandle, message: str) -> None:
        self.comparison.show_error(message)
        self.status_label.setText("Could not compare")

    # -- jobs -----------------------------------------------------------------------------------------
    def _submit(
        self,
        runner: JobRunner,
        kind: str,
        fn,
        *args,
        replace: bool = False,
        on_finished=None,
        on_failed=None,
        on_cancelled=None,
        on_partial=None,
        **kwargs,
    ) -> JobHandle | None:
        """Start a job and connect its handle: first the window's own bookkeeping, then the job's
        handlers (``on_failed(handle, message)``), then the window's signals for observers."""
        if self._closing:
            return None
        handle = runner.submit(kind, fn, *args, replace=replace, **kwargs)
        self._active[handle.id] = handle
        handle.finished.connect(lambda _result: self._job_ended(handle))
        handle.failed.connect(lambda _message: self._job_ended(handle))
        handle.cancelled.connect(lambda: self._job_ended(handle))
        if kind in BUSY_KINDS:
            handle.started.connect(lambda: self._busy_job_started(handle))
            handle.status.connect(self.status_label.setText)
            handle.progress.connect(self._busy_job_progress)
        if on_partial is not None:
            handle.partial.connect(on_partial)
        if on_finished is not None:
            handle.finished.connect(on_finished)
        if on_failed is not None:
            handle.failed.connect(lambda message: on_failed(handle, message))
        if on_cancelled is not None:
            handle.cancelled.connect(lambda: on_cancelled(handle))
        handle.failed.connect(lambda message: self.jobFailed.emit(kind, message))
        handle.cancelled.connect(lambda: self.jobCancelled.emit(kind))
        self._update_actions()
        self.jobSubmitted.emit(handle)
        return handle

    def _busy_job_started(self, handle: JobHandle) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.cancel_button.setVisible(any(h.kind == "index" for h in self._active.values()))

    def _busy_job_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done:,}/{total:,}")

    def _job_ended(self, handle: JobHandle) -> None:
        self._active.pop(handle.id, None)
        if handle.kind == "index":
            QTimer.singleShot(0, self._update_library_panel)
        if self._deferred_start is not None and not self._search_pending:
            if not any(h.kind in ("open", "search") for h in self._active.values()):
                QTimer.singleShot(0, self._run_deferred_start)  # after the job's own handlers ran
        if not any(h.kind in BUSY_KINDS for h in self._active.values()):
            self.progress_bar.hide()
            self.cancel_button.hide()
        self._update_actions()

    def cancel_work(self) -> None:
        self.jobs.cancel(kind="index")
        self.jobs.cancel(kind="refresh")
        self.jobs.cancel(kind="model")
        self.lookups.cancel()
        self.status_label.setText("Cancelling…")

    def _update_actions(self) -> None:
        kinds = {h.kind for h in self._active.values() if not h.cancel_requested}
        indexing = "index" in kinds
        self.cancel_action.setEnabled(bool(kinds & set(CANCELLABLE_KINDS)))
        self.index_action.setEnabled(not indexing)
        self.reindex_action.setEnabled(not indexing and (self.index_state is not None or bool(self.settings.last_folder)))
        self.recent_menu.setEnabled(not indexing and bool(self.settings.recent_folders))
        self.groups_action.setEnabled(self.index_state is not None)

    # -- messages and dialogs ---------------------------------------------------------------------------
    def show_message(self, text: str, topic: str | None = None) -> None:
        self.banner.show_message(text, topic)

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
        QMessageBox.information(
            self,
            "Keyboard shortcuts",
            "<table cellspacing=4>" + "".join(sorted(set(rows))) + "</table>"
            "<p>Tab moves between areas; arrow keys move in the results; Alt + the underlined letter opens a menu.</p>",
        )

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(
            self,
            "About fph-desktop",
            f"<b>fph-desktop {__version__}</b><p>Find fine-grained look-alikes in your "
            "photo folders with Feature Pyramid Hashing (Yang et al., ICMR 2019).</p><p>Apache-2.0</p>",
        )

    # -- drops onto the whole window ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        self.drop_area.dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self.drop_area.dropEvent(event)

    # -- closing ----------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
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
