"""The app's remembered state (QSettings): the model choice, recent folders, search options, window
layout. One typed accessor per key; a ``settings_version`` key lets later releases migrate old values.

Tests and portable installs get their own settings file: when ``FPH_DESKTOP_DATA_DIR`` is set, the
settings live in an INI file there instead of the user's registry / config folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

SETTINGS_VERSION = 1
MAX_RECENT = 8

# How the user chose to get a model (the first-run panel's three ways forward).
CHOICE_PRETRAINED = "pretrained"  # offline EfficientNet-Lite0 + unsupervised ITQ codes fitted per folder
CHOICE_FILE = "file"  # an FPH weights file
CHOICE_TRAIN = "train"  # the training wizard (a later issue)
CHOICES = (CHOICE_PRETRAINED, CHOICE_FILE, CHOICE_TRAIN)


def _qsettings() -> QSettings:
    override = os.environ.get("FPH_DESKTOP_DATA_DIR")
    if override:
        return QSettings(str(Path(override) / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings("fph-desktop", "fph-desktop")


class AppSettings:
    """Typed access to the settings; every value has a default, so a fresh install needs nothing."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or _qsettings()
        self._migrate()

    def _migrate(self) -> None:
        version = int(self.store.value("settings_version", 0) or 0)
        # Version 0 -> 1: nothing to convert (the first release); later migrations go here, in order.
        if version < SETTINGS_VERSION:
            self.store.setValue("settings_version", SETTINGS_VERSION)

    def _get(self, key: str, default, kind=str):
        value = self.store.value(key, default)
        if value is None:
            return default
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    # -- model -----------------------------------------------------------------------------------
    @property
    def model_choice(self) -> str | None:
        value = self._get("model/choice", "")
        return value if value in CHOICES else None

    @model_choice.setter
    def model_choice(self, value: str | None) -> None:
        self.store.setValue("model/choice", value or "")

    @property
    def model_path(self) -> str | None:
        return self._get("model/path", "") or None

    @model_path.setter
    def model_path(self, value: str | None) -> None:
        self.store.setValue("model/path", value or "")

    @property
    def unsupervised_bits(self) -> int:
        return min(256, max(8, self._get("model/unsupervised_bits", 48, int) // 8 * 8))

    @unsupervised_bits.setter
    def unsupervised_bits(self, value: int) -> None:
        self.store.setValue("model/unsupervised_bits", int(value))

    # -- folders ---------------------------------------------------------------------------------
    @property
    def recent_folders(self) -> list[str]:
        value = self.store.value("folders/recent", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent_folder(self, folder: str) -> None:
        folders = [folder] + [f for f in self.recent_folders if f != folder]
        self.store.setValue("folders/recent", folders[:MAX_RECENT])

    @property
    def last_folder(self) -> str | None:
        recent = self.recent_folders
        return recent[0] if recent else None

    # -- the library: the folders searched together ------------------------------------------------
    @property
    def library_folders(self) -> list[str]:
        value = self.store.value("library/folders", None)
        if value is None:  # settings from before libraries: the folder last worked in
            return [self.last_folder] if self.last_folder else []
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def add_library_folder(self, folder: str) -> None:
        folders = self.library_folders
        if folder not in folders:
            self.store.setValue("library/folders", folders + [folder])

    def remove_library_folder(self, folder: str) -> None:
        self.store.setValue("library/folders", [f for f in self.library_folders if f != folder])

    # -- search ----------------------------------------------------------------------------------
    @property
    def top_k(self) -> int:
        return min(500, max(1, self._get("search/top_k", 24, int)))

    @top_k.setter
    def top_k(self, value: int) -> None:
        self.store.setValue("search/top_k", int(value))

    @property
    def hide_duplicates(self) -> bool:
        return self._get("search/hide_duplicates", True, bool)

    @hide_duplicates.setter
    def hide_duplicates(self, value: bool) -> None:
        self.store.setValue("search/hide_duplicates", bool(value))

    @property
    def overlay_opacity(self) -> int:
        return min(100, max(0, self._get("compare/overlay_opacity", 55, int)))

    @overlay_opacity.setter
    def overlay_opacity(self, value: int) -> None:
        self.store.setValue("compare/overlay_opacity", int(value))

    @property
    def device(self) -> str:
        value = self._get("model/device", "auto")
        return value if value in ("auto", "cpu", "cuda", "mps") else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.store.setValue("model/device", value)

    # -- window ----------------------------------------------------------------------------------
    def window_state(self):
        return self.store.value("window/geometry"), self.store.value("window/state"), self.store.value("window/splitter")

    def save_window_state(self, geometry, state, splitter) -> None:
        self.store.setValue("window/geometry", geometry)
        self.store.setValue("window/state", state)
        self.store.setValue("window/splitter", splitter)

    def sync(self) -> None:
        self.store.sync()


class SettingsDialog(QDialog):
    """Search and model options; usable before the model has loaded."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout()
        self.top_k = QSpinBox(minimum=1, maximum=500, value=settings.top_k)
        self.top_k.setToolTip("How many look-alikes to show for each query photo")
        form.addRow("&Results per query:", self.top_k)
        self.hide_duplicates = QCheckBox("Hide the query photo and byte-identical copies of it")
        self.hide_duplicates.setChecked(settings.hide_duplicates)
        form.addRow("", self.hide_duplicates)
        self.bits = QSpinBox(minimum=8, maximum=256, singleStep=8, value=settings.unsupervised_bits)
        self.bits.setToolTip(
            "Code length of the unsupervised codes fitted on a folder (needs more photos than bits); "
            "applies to folders indexed from now on"
        )
        form.addRow("Pretrained model's &code length (bits):", self.bits)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("Where the network runs; auto picks a GPU when there is one (takes effect on the next model load)")
        form.addRow("&Device:", self.device)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        note = QLabel("Window layout and recent folders are remembered automatically.")
        note.setObjectName("Muted")
        layout.addWidget(note)
        layout.addWidget(buttons)

    def accept(self) -> None:
        self.settings.top_k = self.top_k.value()
        self.settings.hide_duplicates = self.hide_duplicates.isChecked()
        self.settings.unsupervised_bits = self.bits.value()
        self.settings.device = self.device.currentText()
        super().accept()
