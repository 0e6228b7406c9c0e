"""First run with no model: the three ways forward, in one place. The choice is remembered by the
main window (settings ``model/choice``)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from . import resources
from .settings import CHOICE_FILE, CHOICE_PRETRAINED

TRAIN_TOOLTIP = "Train FPH on a folder of labelled photos, with live progress"


class _ChoiceCard(QFrame):
    def __init__(self, icon: str, title: str, text: str, button: QPushButton) -> None:
        super().__init__()
        self.setObjectName("ChoiceCard")
        image = QLabel()
        image.setPixmap(resources.icon(icon).pixmap(QSize(28, 28)))
        heading = QLabel(title)
        heading.setObjectName("ChoiceTitle")
        body = QLabel(text)
        body.setObjectName("ChoiceText")
        body.setWordWrap(True)
        column = QVBoxLayout()
        column.addWidget(heading)
        column.addWidget(body)
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 12, 14, 12)
        row.addWidget(image, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(column, 1)
        row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)


class FirstRunPanel(QFrame):
    """Emits ``chosen(choice)`` with one of the settings' CHOICE_* values, or ``trainRequested``."""

    chosen = Signal(str)
    trainRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FirstRunPanel")
        title = QLabel("Choose how fph-desktop should see your photos")
        title.setObjectName("FirstRunTitle")
        intro = QLabel(
            "fph-desktop turns each photo into a short binary code; photos whose codes differ in few bits "
            "look alike in fine detail. It needs a model to make those codes. You can change this later "
            "in the Model menu."
        )
        intro.setWordWrap(True)
        intro.setObjectName("Muted")

        self.pretrained_button = QPushButton("&Use it")
        self.pretrained_button.setProperty("primary", True)
        self.pretrained_button.setToolTip("Works offline at once; codes are fitted on each folder you index")
        self.pretrained_button.clicked.connect(lambda: self.chosen.emit(CHOICE_PRETRAINED))
        self.file_button = QPushButton("&Load file…")
        self.file_button.setToolTip("Open an FPH weights file (.fph) made with `fph-desktop train`")
        self.file_button.clicked.connect(lambda: self.chosen.emit(CHOICE_FILE))
        self.train_button = QPushButton("&Train…")
        self.train_button.setToolTip(TRAIN_TOOLTIP)
        self.train_button.clicked.connect(self.trainRequested)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.setSpacing(10)
        layout.addWidget(title)
        layout.addWidget(intro)
        pretrained_card = _ChoiceCard(
            "pretrained",
            "Pretrained model — works at once",
            "A network trained on a million everyday photos ships with the app (no download); its codes "
            "are fitted on the photos of each folder you index. No labels needed. Good for near-duplicates "
            "and look-alikes; a trained model is sharper at telling similar kinds apart.",
            self.pretrained_button,
        )
        pretrained_card.setToolTip("EfficientNet-Lite0 pretrained on ImageNet, with unsupervised ITQ codes fitted on each folder")
        layout.addWidget(pretrained_card)
        layout.addWidget(
            _ChoiceCard(
                "weights-file",
                "Load an FPH weights file",
                "A Feature Pyramid Hashing model trained for your kind of photos (birds, dogs, …), e.g. with "
                "`fph-desktop train --data FOLDER`. Its codes work for every folder you index.",
                self.file_button,
            )
        )
        train_card = _ChoiceCard(
            "train",
            "Train a model with the wizard",
            "Teach FPH your own categories from a folder of labelled photos (one sub-folder per kind). "
            "On a computer without a GPU the fast mode trains in minutes; you can stop and resume.",
            self.train_button,
        )
        train_card.setToolTip(TRAIN_TOOLTIP)
        layout.addWidget(train_card)
