"""The training wizard: data → model → train → finish, on the same worker layer as indexing.

Its jobs (``training_tasks``) run on the wizard's own :class:`JobRunner`, so the main window keeps
indexing and searching while a model trains. Closing the wizard, or the app, mid-run cancels at the
next training step; the last finished epoch's checkpoint stays on disk, and the next time the wizard
opens it offers to resume that run (``train/runs.py`` finds it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from .. import errors
from ..fileio import atomic_write
from . import resources, training_tasks
from .training_plot import TrainingPlot
from .workers import JobHandle, JobRunner

PAGE_DATA, PAGE_MODEL, PAGE_TRAIN, PAGE_FINISH = range(4)

BACKBONE_LABELS = {  # the first is the default: the best measured one that works offline
    "efficientnet_lite0": "EfficientNet-Lite0 (ships with the app, works offline)",
    "resnet18": "ResNet-18 (the paper's)",
    "resnet50": "ResNet-50 (slower, stronger)",
}
WEIGHT_SOURCES = [("imagenet", "ImageNet pretrained"), ("none", "Random (train from scratch)"), ("file", "From a file…")]
VARIANTS = [  # label, use_vertical, use_horizontal; the first is the default (the best measured here)
    ("Vertical pyramid (best measured on a frozen backbone)", True, False),
    ("FPH: vertical + horizontal pyramids (the paper's)", True, True),
    ("Horizontal pyramid only (details; ablation)", False, True),
]
FUSION_LABELS = {"mean": "Mean (the paper's consensus)", "max": "Max", "learned": "Learned weights"}
MODE_LABELS = {"fast": "Fast: frozen backbone, cached features (CPU)", "full": "Full fine-tuning (GPU)"}


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def _took(seconds) -> str:
    from .tasks import duration

    return duration(float(seconds)) if isinstance(seconds, (int, float)) else "?"


def _note(object_name: str = "Muted") -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setObjectName(object_name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class StepSpinBox(QSpinBox):
    """A spin box that holds multiples of its single step only: typing 50 with step 8 is not a value
    until it is one (Enter or leaving the box rounds it to the nearest multiple), so no slot ever
    sees a length the model cannot have."""

    def validate(self, text: str, pos: int):
        state, text, pos = super().validate(text, pos)
        if state == QValidator.State.Acceptable and self.valueFromText(text) % self.singleStep():
            state = QValidator.State.Intermediate
        return state, text, pos

    def fixup(self, text: str) -> str:
        digits = "".join(c for c in text if c.isdigit())
        return self.textFromValue(self.nearest(int(digits)) if digits else self.value())

    def nearest(self, value: int) -> int:
        step = self.singleStep()
        return min(self.maximum() // step * step, max(-(-self.minimum() // step) * step, round(value / step) * step))

    def setValue(self, value: int) -> None:  # noqa: N802 - Qt's name; code that sets it gets a multiple too
        super().setValue(self.nearest(value))


# The search-only bundle leaves PyTorch out (it would make it ten times larger); training needs it.
NO_PYTORCH_TEXT = (
    "<b>Training needs PyTorch, which this search-only edition of fph-desktop leaves out.</b><br>"
    "To train a model: install the full app (<code>pip install fph-desktop</code>, or its full bundle), train "
    "there, and run <code>fph-desktop export-graph MODEL.fph</code>; then open the <code>MODEL.fph.onnx</code> it "
    "writes here (<i>Load weights file</i>). Indexing and searching need no PyTorch."
)


class DataPage(QWizardPage):
    inspected = Signal(object)  # the DataSummary, or None when the folder could not be read at all

    TYPING_PAUSE_MS = 700  # a typed path is read once the typing rests this long (or on Enter / leaving the field)

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.summary: training_tasks.DataSummary | None = None
        self._job: JobHandle | None = None
        self._inspected_text: str | None = None
        self.setTitle("Your labelled photos")
        self.setSubTitle(
            "One sub-folder per kind (optionally inside train/ and test/), or CUB-200-2011 or Stanford Dogs as downloaded."
        )

        self.resume_box = QFrame()
        self.resume_box.setObjectName("Banner")
        self.resume_label = QLabel()
        self.resume_label.setWordWrap(True)
        self.resume_button = QPushButton("&Resume it")
        self.resume_button.setToolTip("Continue the interrupted run from its last finished epoch")
        self.resume_button.clicked.connect(self._resume)
        self.discard_button = QPushButton("&Discard")
        self.discard_button.setToolTip("Delete its checkpoints and start a new run")
        self.discard_button.clicked.connect(self._discard)
        row = QHBoxLayout(self.resume_box)
        row.addWidget(self.resume_label, 1)
        row.addWidget(self.resume_button)
        row.addWidget(self.discard_button)

        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Folder of labelled photos")
        self.folder_edit.setToolTip("Type or paste a path (it is read as soon as it names a folder), or browse")
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(self.TYPING_PAUSE_MS)
        self._typing.timeout.connect(lambda: self._inspect_typed(only_folders=True))
        self.folder_edit.textEdited.connect(self._typing.start)
        self.folder_edit.editingFinished.connect(self._inspect_typed)  # Enter, or the focus leaving it
        browse = QPushButton("&Browse…")
        browse.setToolTip("Choose the folder of labelled photos")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)

        self.layout_label = _note("")
        self.busy = QProgressBar()
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.classes = QTreeWidget()
        self.classes.setHeaderLabels(["Class", "Train", "Test"])
        self.classes.setRootIsDecorated(False)
        self.classes.setAlternatingRowColors(True)
        header = self.classes.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
            self.classes.headerItem().setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
        self.error_label = _note("Error")
        self.warning_label = _note("Warning")
        self.skipped_label = _note("Muted")
        self.skipped_list = QTreeWidget()
        self.skipped_list.setHeaderLabels(["Unreadable file (skipped)", "Why"])
        self.skipped_list.setRootIsDecorated(False)
        self.skipped_list.setMaximumHeight(110)
        self.skipped_list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        from ..model.graph import pytorch_available

        self.no_pytorch = not pytorch_available()
        self.no_pytorch_label = _note("Warning")
        self.no_pytorch_label.setTextFormat(Qt.TextFormat.RichText)
        self.no_pytorch_label.setText(NO_PYTORCH_TEXT)
        self.no_pytorch_label.setVisible(self.no_pytorch)
        self._folder_widgets = (self.folder_edit, browse)

        layout = QVBoxLayout(self)
        layout.addWidget(self.no_pytorch_label)
        layout.addWidget(self.resume_box)
        layout.addLayout(folder_row)
        layout.addWidget(self.busy)
        layout.addWidget(self.layout_label)
        layout.addWidget(self.classes, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped_list)
        self.offered = None
        self.resume_box.hide()
        self._show(None)
        if self.no_pytorch:  # nothing to choose: the note alone, at the top
            for widget in (*self._folder_widgets, self.layout_label, self.classes):
                widget.hide()
            layout.addStretch(1)

    # -- the interrupted run, if any ---------------------------------------------------------------------
    def refresh_resume_offer(self) -> None:
        job = self.wiz.submit("runs", training_tasks.interrupted_runs, replace=True)
        if job is not None:
            job.finished.connect(self.show_resume_offer)

    def show_resume_offer(self, runs: list) -> None:
        self.offered = runs[0] if runs else None
        self.resume_box.setVisible(self.offered is not None)
        if self.offered is not None:
            more = f" ({len(runs) - 1} older one{'s' if len(runs) > 2 else ''} too)" if len(runs) > 1 else ""
            self.resume_label.setText(f"An interrupted training run can be resumed: {self.offered.describe()}{more}.")

    def _resume(self) -> None:
        self.wiz.runner.cancel(kind="inspect")  # training must not queue behind a folder check
        self._typing.stop()
        self._job = None
        self.busy.hide()
        self.wiz.resume_record = self.offered
        self.completeChanged.emit()
        self.wiz.next()

    def _discard(self) -> None:
        from ..train.runs import discard_run

        if self.offered is not None:
            try:
                discard_run(self.offered.run_dir)
            except OSError as exc:
                self.error_label.setText(f"Could not delete {self.offered.run_dir}: {exc.strerror or exc}")
                self.error_label.show()
        self.refresh_resume_offer()

    # -- the folder --------------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of labelled photos", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.inspect(folder)

    def _inspect_typed(self, only_folders: bool = False) -> None:
        """The field's text takes effect without Enter: after a pause in typing when it names a
        folder, and when editing finishes (Enter, or the focus leaving) whatever it says."""
        self._typing.stop()
        text = self.folder_edit.text().strip()
        if not text or text == self._inspected_text or (only_folders and not os.path.isdir(text)):
            return
        self.inspect(text)

    def inspect(self, folder: str) -> None:
        folder = folder.strip()
        if not folder:
            return
        self._typing.stop()
        self._inspected_text = folder
        self.wiz.resume_record = None
        self.summary = None
        self._show(None)
        self.layout_label.setText(f"Reading {folder}…")
        self.busy.setRange(0, 0)
        self.busy.show()
        job = self._job = self.wiz.submit("inspect", training_tasks.inspect_data, folder, replace=True)
        if job is not None:
            job.progress.connect(self.on_progress)
            job.finished.connect(lambda result: self.on_finished(job, result))
            job.failed.connect(lambda message: self.on_failed(job, message))
        self.completeChanged.emit()

    def on_progress(self, done: int, total: int) -> None:
        self.busy.setRange(0, total)
        self.busy.setValue(done)

    def on_finished(self, job: JobHandle, result) -> None:
        if job is not self._job:
            return  # a newer folder was asked for meanwhile
        self._job = None
        self.busy.hide()
        self.summary = result
        self._show(result)
        self.completeChanged.emit()
        self.inspected.emit(result)

    def on_failed(self, job: JobHandle, message: str) -> None:
        if job is not self._job:
            return
        self._job = None
        self.busy.hide()
        self.layout_label.setText("")
        self.error_label.setText(message)
        self.error_label.show()
        self.inspected.emit(None)

    def _show(self, summary: training_tasks.DataSummary | None) -> None:
        self.classes.clear()
        self.skipped_list.clear()
        for label in (self.error_label, self.warning_label, self.skipped_label):
            label.hide()
        self.skipped_list.hide()
        self.classes.setVisible(bool(summary and summary.counts))
        if summary is None:
            self.layout_label.setText("Choose a folder to see its classes.")
            return
        if summary.dataset is not None:
            names = {
                "split-folders": "class folders with train/ and test/",
                "class-folders": "class folders (30% held out for testing)",
                "cub-200-2011": "CUB-200-2011",
                "stanford-dogs": "Stanford Dogs",
            }
            self.layout_label.setText(
                f"Found <b>{names.get(summary.layout, summary.layout)}</b>: {len(summary.counts)} classes, "
                f"{summary.train_images} training and {summary.test_images} test photos."
            )
        else:
            self.layout_label.setText("")
        for name, train, test in summary.counts:
            item = QTreeWidgetItem([name, str(train), str(test)])
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            if train < training_tasks.FEW_IMAGES:
                item.setIcon(0, resources.icon("warning"))
                item.setToolTip(0, f"Only {train} training photos")
            self.classes.addTopLevelItem(item)
        if summary.error:
            self.error_label.setText(f"{summary.error}.".replace("..", "."))
            self.error_label.show()
        if summary.warnings:
            self.warning_label.setText("\n".join(summary.warnings))
            self.warning_label.show()
        if summary.skipped:
            self.skipped_label.setText(f"{len(summary.skipped)} file(s) could not be read and will be left out:")
            self.skipped_label.show()
            for path, reason in summary.skipped:
                item = QTreeWidgetItem([path, reason])
                item.setToolTip(0, path)
                self.skipped_list.addTopLevelItem(item)
            self.skipped_list.show()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        if self.no_pytorch:
            return False
        return self.wiz.resume_record is not None or bool(self.summary and self.summary.trainable)

    def nextId(self) -> int:  # noqa: N802
        return PAGE_TRAIN if self.wiz.resume_record is not None else PAGE_MODEL


class ModelPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.devices: list[training_tasks.DeviceChoice] = []
        self.last_estimate = None
        self._estimate_job: JobHandle | None = None
        self.setTitle("The model")
        self.setSubTitle("The defaults are the best measured ones; on a computer without a GPU the fast mode trains in minutes.")

        self.backbone = QComboBox()
        for name, label in BACKBONE_LABELS.items():
            self.backbone.addItem(label, name)
        self.backbone.setToolTip("The pretrained network whose layers feed the two pyramids")
        self.weights = QComboBox()
        for key, label in WEIGHT_SOURCES:
            self.weights.addItem(label, key)
        self.weights.setToolTip(
            "ResNet ImageNet weights download once to PyTorch's cache; offline, pick a file or EfficientNet-Lite0"
        )
        self.weights_file = QLineEdit()
        self.weights_file.setPlaceholderText("Backbone state-dict file (.pth)")
        self.weights_browse = QPushButton("Browse…")
        self.weights_browse.clicked.connect(self._browse_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(self.weights_file, 2)
        weights_row.addWidget(self.weights_browse)
        self.bits = StepSpinBox()
        self.bits.setRange(8, 256)
        self.bits.setSingleStep(8)
        self.bits.setValue(48)
        self.bits.setSuffix(" bits")
        self.bits.setToolTip(
            "Code length, in multiples of 8: 16, 32, 48 or 64 are the paper's; longer codes tell more kinds apart"
        )
        self.variant = QComboBox()
        for label, _, _ in VARIANTS:
            self.variant.addItem(label)
        self.fusion = QComboBox()
        for key, label in FUSION_LABELS.items():
            self.fusion.addItem(label, key)
        self.fusion.setToolTip("How the horizontal pyramid merges its low layers (consensus fusion)")
        self.device = QComboBox()
        self.device.addItem("Looking for a GPU…", "auto")
        self.mode = QComboBox()
        for key, label in MODE_LABELS.items():
            self.mode.addItem(label, key)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setToolTip("Passes over the training photos; the best epoch on a validation split is kept")
        self.image_size = QSpinBox()
        self.image_size.setRange(64, 512)
        self.image_size.setSingleStep(32)
        self.image_size.setValue(224)
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip("Photos are resized to this square; 224 is the paper's")
        self.estimate_label = _note("")

        form = QFormLayout(self)
        form.addRow("&Backbone:", self.backbone)
        weights_label = QLabel("Backbone &weights:")
        weights_label.setBuddy(self.weights)  # a row that is a layout gets no buddy by itself
        form.addRow(weights_label, weights_row)
        form.addRow("&Code length:", self.bits)
        form.addRow("FPH &variant:", self.variant)
        form.addRow("Consensus &fusion:", self.fusion)
        form.addRow("&Device:", self.device)
        form.addRow("Training &mode:", self.mode)
        form.addRow("&Epochs:", self.epochs)
        form.addRow("&Image size:", self.image_size)
        form.addRow("Expected time:", self.estimate_label)

        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(400)
        self._estimate_timer.timeout.connect(self._estimate)
        self.device.currentIndexChanged.connect(self._device_changed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.backbone.currentIndexChanged.connect(self._backbone_changed)
        self.weights.currentIndexChanged.connect(self._weights_changed)
        self.variant.currentIndexChanged.connect(lambda: self.fusion.setEnabled(VARIANTS[self.variant.currentIndex()][2]))
        self.fusion.setEnabled(VARIANTS[self.variant.currentIndex()][2])  # fusion is the horizontal pyramid's
        for widget in (self.bits, self.epochs, self.image_size):
            widget.valueChanged.connect(self._changed)
        for widget in (self.backbone, self.variant, self.fusion):
            widget.currentIndexChanged.connect(self._changed)
        self.weights_file.textChanged.connect(self.completeChanged)
        self._epochs_edited = False
        self.epochs.valueChanged.connect(self._epochs_set)
        self._weights_changed()

    def initializePage(self) -> None:  # noqa: N802
        if not self.devices:
            devices = self.wiz.submit("devices", training_tasks.list_devices, replace=True)
            if devices is not None:
                devices.finished.connect(self.set_devices)
                devices.failed.connect(self._devices_failed)
            notes = self.wiz.submit("backbones", training_tasks.backbone_notes, replace=True)
            if notes is not None:
                notes.finished.connect(self.set_backbone_notes)
        self._changed()

    def _devices_failed(self, message: str) -> None:
        """Without the list, the CPU (always there) is offered, and the reason is shown."""
        self.set_devices([training_tasks.DeviceChoice("cpu", f"CPU ({os.cpu_count() or 1} cores)", False)])
        self.estimate_label.setText(f"Could not look for a GPU: {message}")

    def set_devices(self, devices: list[training_tasks.DeviceChoice]) -> None:
        self.devices = devices
        self.device.blockSignals(True)
        self.device.clear()
        for choice in devices:
            self.device.addItem(choice.label, choice.id)
        self.device.blockSignals(False)
        self._device_changed()
        self._mode_changed()
        self.completeChanged.emit()

    def _device_changed(self) -> None:
        gpu = any(d.gpu and d.id == self.device.currentData() for d in self.devices)
        self.mode.setCurrentIndex(self.mode.findData("full" if gpu else "fast"))
        self._changed()

    def _epochs_set(self) -> None:
        if not self._setting_default:
            self._epochs_edited = True

    _setting_default = False

    def _mode_changed(self) -> None:
        """Each mode's default epochs, until the user chose a number. Imports torch, so only once the
        device list (which loaded it in the worker) is in."""
        if self.devices and not self._epochs_edited:
            from ..train.config import TrainConfig

            self._setting_default = True
            self.epochs.setValue(TrainConfig(data="").epochs_for(self.mode.currentData()))
            self._setting_default = False
        self._changed()

    def _backbone_changed(self) -> None:
        if self.backbone.currentData() == "efficientnet_lite0" and self.weights.currentData() == "file":
            self.weights.setCurrentIndex(0)

    def _weights_changed(self) -> None:
        from_file = self.weights.currentData() == "file"
        self.weights_file.setVisible(from_file)
        self.weights_browse.setVisible(from_file)
        self.completeChanged.emit()
        self._changed()

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights", "", "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.weights_file.setText(path)

    def isComplete(self) -> bool:  # noqa: N802 - the device list must be in, or "auto" would hide a GPU
        return bool(self.devices) and (self.weights.currentData() != "file" or bool(self.weights_file.text().strip()))

    def config(self):
        from ..model.config import FPHConfig
        from ..train.config import TrainConfig

        _, vertical, horizontal = VARIANTS[self.variant.currentIndex()]
        source = self.weights.currentData()
        weights = {"imagenet": "imagenet", "none": None}.get(source, self.weights_file.text().strip())
        model = FPHConfig(
            backbone=self.backbone.currentData(),
            code_bits=self.bits.value(),
            image_size=self.image_size.value(),
            use_vertical=vertical,
            use_horizontal=horizontal,
            fusion=self.fusion.currentData(),
        )
        return TrainConfig(
            data=self.wiz.data_page.summary.folder if self.wiz.data_page.summary else "",
            model=model,
            mode=self.mode.currentData(),
            backbone_weights=weights,
            epochs=self.epochs.value(),
            device=self.device.currentData() or "auto",
        )

    def _changed(self) -> None:
        if self.isVisible() and self.wiz.data_page.summary is not None and self.devices:
            self._estimate_job = self.last_estimate = None  # an estimate still running is for the old settings
            self.estimate_label.setText("Estimating…")
            self._estimate_timer.start()

    def _estimate(self) -> None:
        """The timer's slot: it never raises (settings that cannot work are said, not thrown)."""
        summary = self.wiz.data_page.summary
        if summary is None or summary.dataset is None:
            return
        try:
            config = self.config()
        except errors.UserError as exc:
            self.estimate_label.setText(f"These settings cannot work: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a timer's slot must not raise; a bug gets its crash report
            self.estimate_label.setText(f"Could not estimate the time: {errors.message_for(exc, 'building the config')}")
            return
        photos = [item.path for item in summary.dataset.items[:: max(1, len(summary.dataset.items) // 8)][:8]]
        job = self._estimate_job = self.wiz.submit(
            "estimate",
            training_tasks.estimate,
            config,
            summary.train_images,
            summary.test_images,
            len(summary.counts),
            photos,
            replace=True,
        )
        if job is not None:
            job.finished.connect(lambda result: self._estimated(job, result))
            job.failed.connect(lambda message: self._estimate_failed(job, message))

    def stop_estimating(self) -> None:
        self._estimate_timer.stop()
        self._estimate_job = None
        self.wiz.runner.cancel(kind="estimate")

    def validatePage(self) -> bool:  # noqa: N802 - Next: only settings that can work start a run
        try:
            self.config()
        except errors.UserError as exc:
            self.estimate_label.setText(f"These settings cannot work: {exc}")
            return False
        return True

    def set_backbone_notes(self, notes: dict[str, str | None]) -> None:
        """Mark the backbones whose weights would need a download, so none is picked unawares."""
        for index in range(self.backbone.count()):
            name = self.backbone.itemData(index)
            note = notes.get(name)
            label = BACKBONE_LABELS[name] + (" — weights need a download" if note else "")
            self.backbone.setItemText(index, label)
            self.backbone.setItemData(index, note or "", Qt.ItemDataRole.ToolTipRole)

    def _estimated(self, job: JobHandle, result) -> None:
        if job is self._estimate_job:  # else the settings changed since
            self.last_estimate = result
            text = result.describe()
            self.estimate_label.setText(text[0].upper() + text[1:] + ".")

    def _estimate_failed(self, job: JobHandle, message: str) -> None:
        if job is self._estimate_job:
            self.estimate_label.setText(f"Could not time a training step: {message}")


class TrainPage(QWizardPage):
    runEnded = Signal(str)  # "finished", "failed" or "cancelled", once the page has shown it

    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.job: JobHandle | None = None
        self.result = None
        self.config = None
        self.output = ""
        self.setTitle("Training")
        self.setSubTitle("Every epoch is checkpointed: cancel, close or even quit at any time and resume later.")
        self.status = _note("")
        self.progress = QProgressBar()
        self.plot = TrainingPlot()
        self.times = _note("Muted")
        self.epoch_label = _note("")
        self.message = _note("Error")
        self.message.hide()
        self.cancel_button = QPushButton(resources.icon("cancel"), "&Cancel training")
        self.cancel_button.setToolTip("Stop at the next step; the last finished epoch is kept for a resume")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("&Resume")
        self.resume_button.setToolTip("Continue from the last finished epoch")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.discard_button = QPushButton("&Discard run")
        self.discard_button.setToolTip("Delete this run's checkpoints and start over from the first page")
        self.discard_button.clicked.connect(self._discard)
        buttons = QHBoxLayout()
        buttons.addWidget(self.times, 1)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.epoch_label)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._started = 0.0
        self._phase = ""  # "train" for the epochs, else the status text (e.g. the feature pass)
        self._baseline: tuple[float, int] | None = None  # (time, count) at the phase's first progress
        self._done_total = (0, 0)
        self.run_dir: Path | None = None
        self.kept_epoch = 0  # the last epoch whose checkpoint is on disk

    @property
    def running(self) -> bool:
        return self.job is not None

    def initializePage(self) -> None:  # noqa: N802
        from ..train.trainer import default_run_dir

        record = self.wiz.resume_record
        self.wiz.model_page.stop_estimating()
        if record is not None:
            self.config, self.output, self.run_dir, self.kept_epoch = (
                record.config,
                str(record.output),
                record.run_dir,
                record.epoch,
            )
        else:
            self.config = self.wiz.model_page.config()
            self.output = str(training_tasks.default_weights_path(self.config))
            self.run_dir, self.kept_epoch = default_run_dir(self.config), 0
        self.result = None
        self.plot.clear()
        self.epoch_label.clear()
        self.start(resume=record is not None)

    def cleanupPage(self) -> None:  # noqa: N802 - Back: stop, keeping the checkpoint
        self.cancel()

    def start(self, resume: bool) -> None:
        """A new run (``resume=False``: an old checkpoint of the same settings is overwritten) or the
        continuation of this one from its last finished epoch."""
        if self.running:
            return
        if not Path(self.config.data).is_dir():
            self.status.setText("Training cannot go on.")
            self.message.setText(
                f"The photos of this run are no longer in {self.config.data}. Move them back and resume, or discard the run."
            )
            self.message.show()
            self._offer_resume()
            return
        dataset = None
        summary = self.wiz.data_page.summary
        if not resume and summary is not None and summary.folder == self.config.data:
            dataset = summary.dataset  # already read and checked: no second pass over the photos
        self.message.hide()
        self.resume_button.hide()
        self.discard_button.hide()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.status.setText("Starting…")
        self._started = time.monotonic()
        self._phase, self._baseline = "", None
        self._clock.start()
        job = self.job = self.wiz.submit(
            "train", training_tasks.train_model, self.config, self.output, str(self.run_dir), resume, dataset, late_cancel=False
        )
        if job is None:
            return
        job.status.connect(self.on_status)
        job.progress.connect(self.on_progress)
        job.partial.connect(self.on_partial)
        job.finished.connect(self.on_finished)
        job.failed.connect(self.on_failed)
        job.cancelled.connect(self.on_cancelled)
        self._update_buttons()

    def _discard(self) -> None:
        from ..train.runs import discard_run

        try:
            discard_run(self.run_dir)
        except OSError as exc:
            self.message.setText(f"Could not delete {self.run_dir}: {exc.strerror or exc}")
            self.message.show()
            return
        self.wiz.resume_record = None
        self.wiz.restart()

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping at the next step…")

    def _update_buttons(self) -> None:
        self.completeChanged.emit()
        self.apply_back_policy()

    def apply_back_policy(self) -> None:
        """No Back while training runs. QWizard re-enables Back whenever any page's completeness
        changes, so the wizard calls this after each of those too."""
        if self.wiz.currentId() == PAGE_TRAIN and self.running:
            self.wiz.button(QWizard.WizardButton.BackButton).setEnabled(False)

    # -- from the worker ----------------------------------------------------------------------------------
    def on_status(self, text: str) -> None:
        self.status.setText(text)
        phase = "train" if text.startswith(("Epoch", "Resuming")) else text
        if phase != self._phase:
            self._phase, self._baseline = phase, None

    def on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self._done_total = (done, total)
        if self._baseline is None:
            self._baseline = (time.monotonic(), done)
        if self._phase == "train":
            self.plot.set_total_steps(total)

    def on_partial(self, record) -> None:
        if not isinstance(record, dict):
            return
        if record["kind"] == "step":
            self.plot.set_total_steps(record["steps"])
            self.plot.add_loss(record["step"], record["loss"])
        else:
            self.kept_epoch = record["epoch"]
            self.plot.add_loss(record["step"], record["loss"])
            self.plot.add_epoch(record["step"], record["val_map"], record["epoch"])
            if self.plot.map_points:
                best = max(v for _, v, _ in self.plot.map_points)
                score = f"validation mAP {record['val_map']:.3f} (best so far {best:.3f})"
            else:
                score = "no validation split (too few photos per class), so the last epoch is kept"
            self.epoch_label.setText(
                f"Epoch {record['epoch']} of {record['epochs']}: loss {record['loss']:.4f}, {score}, {record['seconds']:.1f} s"
            )

    def _tick(self) -> None:
        """Elapsed time, and what is left of the current stage at its pace so far (for the epochs
        that pace includes each epoch's validation pass)."""
        now = time.monotonic()
        done, total = self._done_total
        left = ""
        if self.running and self._baseline is not None and done > self._baseline[1] and now - self._baseline[0] > 1:
            rate = (done - self._baseline[1]) / (now - self._baseline[0])
            stage = "of training" if self._phase == "train" else "of this stage"
            left = f" · about {_clock((total - done) / rate)} left {stage}"
            estimate = self.wiz.model_page.last_estimate
            if self._phase != "train" and estimate is not None and self.wiz.resume_record is None:
                left += f", then about {_clock(estimate.epochs * estimate.epoch_seconds)} of training (estimated)"
        self.times.setText(f"Elapsed {_clock(now - self._started)}{left}")

    def on_finished(self, result) -> None:
        self._stop_clock()
        self.result = result
        self.progress.setValue(self.progress.maximum())
        test_map = result.test_metrics.get("map_all")
        self.status.setText(
            "Training finished"
            + (f": test mAP {test_map:.3f}." if test_map is not None else ".")
            + " Press Next to save and use it."
        )
        self.cancel_button.hide()
        self.wiz.resume_record = None
        self.kept_epoch = 0
        self._update_buttons()
        self.wiz.modelTrained.emit(result)
        self.runEnded.emit("finished")

    def on_cancelled(self) -> None:
        self._stop_clock()
        if self.kept_epoch:
            self.status.setText(
                f"Training stopped after epoch {self.kept_epoch}. "
                "Resume continues from there, now or the next time the wizard opens."
            )
        else:
            self.status.setText(
                "Training stopped before its first epoch ended, so there is no epoch to resume from. "
                "Start again runs it from the beginning."
            )
        self._offer_resume()
        self.runEnded.emit("cancelled")

    def on_failed(self, message: str) -> None:
        self._stop_clock()
        self.status.setText("Training stopped.")
        self.message.setText(message[0].upper() + message[1:])
        self.message.show()
        self._offer_resume()
        self.runEnded.emit("failed")

    def _stop_clock(self) -> None:
        self.job = None
        self._clock.stop()
        self._tick()

    def _offer_resume(self) -> None:
        self.cancel_button.hide()
        resumable = self.kept_epoch > 0 or (self.run_dir is not None and (self.run_dir / "last.pt").is_file())
        self.resume_button.setText("&Resume" if resumable else "&Start again")
        self.resume_button.setToolTip(
            "Continue from the last finished epoch" if resumable else "Run the training again from the beginning"
        )
        self.resume_button.show()
        self.discard_button.setVisible(self.run_dir is not None and (self.run_dir / "last.pt").is_file())
        self._update_buttons()

    def isComplete(self) -> bool:  # noqa: N802
        return self.result is not None and not self.running


class FinishPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.setTitle("Your model")
        self.setSubTitle("Measured once, on the test photos the training never saw (query = test, database = train).")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Measure", "Value"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.saved_label = _note("")
        self.save_as = QPushButton("&Save a copy as…")
        self.save_as.setToolTip("Write the weights file somewhere else too (e.g. to share it)")
        self.save_as.clicked.connect(self._save_copy)
        save_row = QHBoxLayout()
        save_row.addWidget(self.saved_label, 1)
        save_row.addWidget(self.save_as)
        self.use_now = QCheckBox("&Use this model now")
        self.use_now.setChecked(True)
        self.reindex = QCheckBox("&Re-index the current folder with it")
        self.use_now.toggled.connect(self.reindex.setEnabled)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(save_row)
        layout.addWidget(self.use_now)
        layout.addWidget(self.reindex)

    def initializePage(self) -> None:  # noqa: N802
        result = self.wiz.train_page.result
        summary = result.info.training if result.info else {}
        rows = [
            ("mAP@all (test)", result.test_metrics.get("map_all")),
            ("mAP@100 (test)", result.test_metrics.get("map@100")),
            ("mAP@10 (test)", result.test_metrics.get("map@10")),
            ("Precision@10 (test)", result.test_metrics.get("precision@10")),
            ("Best validation mAP", summary.get("best_val_map")),
            ("Best epoch", f"{summary.get('best_epoch')} of {summary.get('epochs')}"),
            ("Code length", f"{result.info.config.code_bits} bits" if result.info else ""),
            ("Model", result.info.describe() if result.info else ""),
            (
                "Photos",
                f"{summary.get('train_images')} train, {summary.get('validation_images')} validation, "
                f"{summary.get('test_images')} test",
            ),
            ("Trained on", f"{summary.get('device')}, {summary.get('mode')} mode, in {_took(summary.get('seconds'))}"),
        ]
        self.table.setRowCount(0)
        for name, value in rows:
            if value is None:
                continue
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(f"{value:.4f}" if isinstance(value, float) else str(value))
            item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, item)
        self.saved_label.setText(f"Saved as <b>{result.weights_path}</b>")
        folder = self.wiz.current_folder()
        self.reindex.setVisible(bool(folder))
        self.reindex.setChecked(bool(folder))
        if folder:
            self.reindex.setText(f"&Re-index {Path(folder).name} with it")
        self.use_now.setVisible(self.wiz.window_ is not None)
        self.reindex.setVisible(bool(folder) and self.wiz.window_ is not None)

    def _save_copy(self) -> None:
        source = Path(self.wiz.train_page.result.weights_path)
        target, _ = QFileDialog.getSaveFileName(
            self, "Save the weights file as", str(Path.home() / source.name), "fph-desktop weights (*.fph)"
        )
        if target:
            self.save_copy(target)

    def save_copy(self, target: str) -> bool:
        source = Path(self.wiz.train_page.result.weights_path)
        try:
            with atomic_write(target) as handle:
                handle.write(source.read_bytes())
        except OSError as exc:
            QMessageBox.warning(
                self,
                "Not saved",
                f"Could not write {target}: {exc.strerror or exc}. Free some disk space or choose another folder; "
                f"the model stays saved as {source}.",
            )
            return False
        self.saved_label.setText(f"Saved as <b>{source}</b> and <b>{target}</b>")
        return True

    def validatePage(self) -> bool:  # noqa: N802 - Finish
        window = self.wiz.window_
        if window is not None and self.use_now.isChecked():
            window.use_model_file(
                str(self.wiz.train_page.result.weights_path), reindex=self.reindex.isChecked() and self.reindex.isVisible()
            )
        return True


class TrainingWizard(QWizard):
    """``window``: the main window to hand the finished model to (None: a stand-alone wizard)."""

    modelTrained = Signal(object)  # the TrainResult

    def __init__(self, window=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.resume_record = None
        self.setWindowTitle("Train an FPH model")
        self.setWindowIcon(resources.icon("train"))
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage)
        self.setMinimumSize(760, 600)
        self.runner = JobRunner("fph-training", self)
        self._closing = False
        self.data_page = DataPage(self)
        self.model_page = ModelPage(self)
        self.train_page = TrainPage(self)
        self.finish_page = FinishPage(self)
        for page_id, page in (
            (PAGE_DATA, self.data_page),
            (PAGE_MODEL, self.model_page),
            (PAGE_TRAIN, self.train_page),
            (PAGE_FINISH, self.finish_page),
        ):
            self.setPage(page_id, page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Finish")
        self.runner.idle.connect(self._close_if_stopped)
        for page in (self.data_page, self.model_page, self.train_page, self.finish_page):
            page.completeChanged.connect(self.train_page.apply_back_policy)  # after QWizard's own update
        self.currentIdChanged.connect(self._page_changed)
        self._closed = False
        self.data_page.refresh_resume_offer()

    def _page_changed(self, page_id: int) -> None:
        if page_id == PAGE_DATA:
            self.data_page.refresh_resume_offer()  # a run may have stopped (or finished) since
        self.train_page.apply_back_policy()

    def current_folder(self) -> str:
        window = self.window_
        if window is None:
            return ""
        return window.index_state.folder if window.index_state else (window.settings.last_folder or "")

    # -- jobs ---------------------------------------------------------------------------------------------
    def submit(self, kind: str, fn, *args, **kwargs) -> JobHandle | None:
        """Start a job on the wizard's worker; the page that asks connects to the handle it gets.
        None once the wizard is shutting down (no new work then)."""
        if self._closing:
            return None
        try:
            job = self.runner.submit(kind, fn, *args, **kwargs)
        except RuntimeError:  # the worker was shut down
            return None
        job.ended.connect(self._close_if_stopped)  # a close asked for while it ran happens now
        return job

    # -- closing ------------------------------------------------------------------------------------------
    def reject(self) -> None:
        """Cancel, Esc or the close box: stop training at its next step (the checkpoint stays), then
        close once the worker has let go, so the window never blocks on it."""
        self._closing = True
        self.runner.cancel()
        if self.runner.running_kind() is not None:
            if self.train_page.running:
                self.train_page.status.setText("Stopping; the last finished epoch is kept for a resume…")
            self.setEnabled(False)
            return  # the worker's idle signal closes the wizard
        self._close_if_stopped()

    def _close_if_stopped(self) -> None:
        if self._closing and not self._closed and self.runner.running_kind() is None:
            self._closed = True
            self.shutdown()
            super().reject()

    def accept(self) -> None:
        self.shutdown()
        super().accept()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - the close box
        if self._closing:
            event.accept()
        else:
            event.ignore()
            self.reject()

    def shutdown(self) -> None:
        """Cancel everything and wait for the worker thread (the app quitting calls this too)."""
        self._closing = True
        self.runner.shutdown()
