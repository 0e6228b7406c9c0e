"""The photo viewer (double-click a result): the photo large, zoom and pan, and what its file says:
when it was taken, with which camera and lens, at what exposure, and its size.

Decoding a camera photo takes a tenth of a second or more, so it runs on the thread pool; the window
opens at once with the details (read from the header alone) and the photo follows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

ZOOM_STEP = 1.25
MAX_ZOOM = 8.0  # photo pixels shown 8x: enough to check focus on a feather


class _Signals(QObject):
    loaded = Signal(str, QImage)
    failed = Signal(str, str)


class _Load(QRunnable):
    def __init__(self, path: str, signals: _Signals) -> None:
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        from ..imaging import ImageError, open_image

        try:
            photo = open_image(self.path)
        except ImageError as exc:
            self.signals.failed.emit(self.path, exc.reason)
            return
        data = photo.tobytes()
        image = QImage(data, photo.width, photo.height, 3 * photo.width, QImage.Format.Format_RGB888).copy()
        self.signals.loaded.emit(self.path, image)


class PhotoView(QGraphicsView):
    """Fits the photo to the window until zoomed; the wheel zooms around the pointer, dragging pans."""

    zoomChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 38, 38))  # a neutral dark grey: colours are judged against it, not the theme
        self.fitting = True

    def set_image(self, image: QImage) -> None:
        self.item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(self.item.boundingRect())
        self.fit()

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self.fitting = True
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.zoom)

    def actual_size(self) -> None:
        self.fitting = False
        self.resetTransform()
        self.zoomChanged.emit(self.zoom)

    def zoom_by(self, factor: float) -> None:
        factor = max(min(factor, MAX_ZOOM / self.zoom), 0.05 / self.zoom)
        self.fitting = False
        self.scale(factor, factor)
        self.zoomChanged.emit(self.zoom)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.angleDelta().y():
            self.zoom_by(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.fitting:
            self.fit()


class PhotoViewer(QDialog):
    """One photo, large, with its details beside it. Non-modal: several can be open."""

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ..imaging import ImageError, photo_details

        self.path = str(path)
        self.setWindowTitle(Path(path).name)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.view = PhotoView()
        self.status = QLabel("Loading…")
        self.status.setObjectName("Muted")
        self.zoom_label = QLabel()
        fit = QPushButton("&Fit")
        fit.setToolTip("The whole photo in the window (Ctrl+0)")
        fit.clicked.connect(self.view.fit)
        actual = QPushButton("&100 %")
        actual.setToolTip("One photo pixel per screen pixel (Ctrl+1)")
        actual.clicked.connect(self.view.actual_size)
        for keys, slot in (
            ("Ctrl+0", self.view.fit),
            ("Ctrl+1", self.view.actual_size),
            (QKeySequence.StandardKey.ZoomIn, lambda: self.view.zoom_by(ZOOM_STEP)),
            (QKeySequence.StandardKey.ZoomOut, lambda: self.view.zoom_by(1 / ZOOM_STEP)),
        ):
            QShortcut(QKeySequence(keys), self, activated=slot)

        self.details = QFormLayout()
        self.details.addRow("Name", self._value(Path(path).name, breakable=True))
        self.details.addRow("Folder", self._value(str(Path(path).parent), breakable=True))
        try:
            info = photo_details(path)
        except ImageError as exc:
            self.details.addRow("Problem", self._value(exc.reason))
            info = None
        if info is not None:
            for label, value in (
                ("Taken", info.taken),
                ("Camera", info.camera),
                ("Lens", info.lens),
                ("Exposure", info.exposure),
                ("Size", info.size_text()),
            ):
                self.details.addRow(label, self._value(value or "—"))
        self.info = info
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addLayout(self.details)
        side_layout.addStretch(1)
        side.setMaximumWidth(320)
        bar = QHBoxLayout()
        bar.addWidget(fit)
        bar.addWidget(actual)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        bar.addWidget(self.status)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addLayout(bar)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(side)
        self.resize(1100, 720)

        self._signals = _Signals(self)
        self._signals.loaded.connect(self._loaded)
        self._signals.failed.connect(self._failed)
        self.view.zoomChanged.connect(self._show_zoom)
        QThreadPool.globalInstance().start(_Load(self.path, self._signals))

    def _value(self, text: str, breakable: bool = False) -> QLabel:
        """A selectable value; ``breakable``: a file name or path may wrap after _ - / . (it has no spaces)."""
        shown = text
        if breakable:
            for mark in "_-/\\.":
                shown = shown.replace(mark, mark + "\u200b")
        label = QLabel(shown)
        label.setToolTip(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _loaded(self, path: str, image: QImage) -> None:
        self.view.set_image(image)
        self.status.setText("Scroll to zoom, drag to move")

    def _failed(self, path: str, reason: str) -> None:
        self.status.setText(f"Cannot show this photo: {reason}")

    def _show_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def is_loaded(self) -> bool:
        return not self.view.item.pixmap().isNull()
