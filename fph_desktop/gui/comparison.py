"""The comparison view: query and match side by side, each with the low-layer activation map as a
heat map over the photo (fused consensus map, or one low layer's own map), and the code bits in
which the two differ. The pixels and maps come from :func:`fph_desktop.gui.tasks.compare`, run in
the worker; this module only draws them.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget,
)

from . import resources

LAYER_LABELS = {
    "fused": "Fused low layers (consensus)",
    "C2": "C2 only (stride 4)",
    "C3": "C3 only (stride 8)",
    "C4": "C4 only (stride 16)",
}


def rgb_image(array) -> QImage:
    """(H, W, 3) uint8 to a QImage that owns its pixels."""
    height, width = array.shape[:2]
    return QImage(array.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def rgba_image(array) -> QImage:
    height, width = array.shape[:2]
    return QImage(array.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


class OverlayImage(QWidget):
    """A photo scaled to fit, with a heat map drawn over the region the model saw."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.photo: QImage | None = None
        self.heat: QImage | None = None
        self.crop_box = (0.0, 0.0, 0.0, 0.0)
        self.opacity = 0.55
        self.setMinimumSize(120, 120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)  # as tall as the photo needs at this width, no empty bands
        self.setSizePolicy(policy)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if self.photo is None or self.photo.isNull():
            return max(120, width * 3 // 4)
        return max(120, min(900, round(width * self.photo.height() / self.photo.width())))

    def set_content(self, photo: QImage | None, heat: QImage | None, crop_box=(0.0, 0.0, 0.0, 0.0)) -> None:
        resized = (photo is None) != (self.photo is None) or (photo is not None and photo.size() != self.photo.size())
        self.photo, self.heat, self.crop_box = photo, heat, crop_box
        if resized:
            self.updateGeometry()
        self.update()

    def set_heat(self, heat: QImage | None) -> None:
        self.heat = heat
        self.update()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = opacity
        self.update()

    def has_overlay(self) -> bool:
        return self.photo is not None and self.heat is not None and not self.heat.isNull() and self.opacity > 0

    def photo_rect(self) -> QRectF:
        if self.photo is None or self.photo.isNull():
            return QRectF()
        scale = min(self.width() / self.photo.width(), self.height() / self.photo.height())
        w, h = self.photo.width() * scale, self.photo.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def sizeHint(self) -> QSize:
        return QSize(360, 300)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.photo_rect()
        if target.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Select a result to compare")
            return
        painter.drawImage(target, self.photo)
        if self.heat is not None and not self.heat.isNull() and self.opacity > 0:
            scale = target.width() / self.photo.width()
            left, top, right, bottom = self.crop_box
            crop = QRectF(target.x() + left * scale, target.y() + top * scale, (right - left) * scale, (bottom - top) * scale)
            painter.setOpacity(self.opacity)
            painter.drawImage(crop, self.heat)
            painter.setOpacity(1.0)
            pen = QPen(QColor(255, 255, 255, 150), 1, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(crop)


class BitStrip(QWidget):
    """The two codes' bits as a row of cells: cells where they differ are marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("BitStrip")
        self.bits = 0
        self.differing: set[int] = set()
        self.setMinimumHeight(26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_bits(self, bits: int, differing: list[int]) -> None:
        self.bits, self.differing = bits, set(differing)
        listing = ", ".join(str(i) for i in sorted(differing)) or "none"
        self.setToolTip(f"{len(differing)} of {bits} bits differ (bits counted from 0): {listing}")
        self.setAccessibleDescription(self.toolTip())
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(400, 26)

    def paintEvent(self, event) -> None:
        if not self.bits:
            return
        colours = resources.theme()
        diff, same = QColor(colours["diff_bit"]), QColor(colours["same_bit"])
        painter = QPainter(self)
        cell = (self.width() - 8) / self.bits
        for i in range(self.bits):
            rect = QRectF(4 + i * cell + 0.5, 4, max(1.0, cell - 1.0), self.height() - 8)
            painter.fillRect(rect, diff if i in self.differing else same)


class ComparisonView(QWidget):
    """Query | match, the heat-map controls and the bit comparison."""

    opacityChanged = Signal(int)

    def __init__(self, opacity: int = 55, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison = None
        self._photos: dict[str, QImage] = {}
        self.title = QLabel("Comparison")
        self.title.setObjectName("Heading")
        self.query_view = OverlayImage()
        self.match_view = OverlayImage()
        self.query_view.setAccessibleName("Query photo with activation overlay")
        self.match_view.setAccessibleName("Matching photo with activation overlay")
        self.query_caption = QLabel("Query")
        self.match_caption = QLabel("Match")
        for caption in (self.query_caption, self.match_caption):
            caption.setObjectName("Muted")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setWordWrap(True)
        images = QGridLayout()
        images.addWidget(self.query_view, 0, 0)
        images.addWidget(self.match_view, 0, 1)
        images.addWidget(self.query_caption, 1, 0)
        images.addWidget(self.match_caption, 1, 1)
        images.setAlignment(self.query_view, Qt.AlignmentFlag.AlignTop)
        images.setAlignment(self.match_view, Qt.AlignmentFlag.AlignTop)

        self.layer = QComboBox()
        for key, label in LAYER_LABELS.items():
            self.layer.addItem(label, key)
        self.layer.setToolTip(
            "The fused map is what the horizontal pyramid pools: the consensus of the low layers, aligned "
            "on one grid. Each low layer's own map shows what it responds to before fusion."
        )
        self.layer.setMinimumContentsLength(8)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.currentIndexChanged.connect(self._apply_layer)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(opacity)
        self.opacity.setToolTip("Heat-map opacity (0: photo only)")
        self.opacity.setAccessibleName("Heat map opacity")
        self.opacity.valueChanged.connect(self._apply_opacity)
        layer_label = QLabel("&Map")
        layer_label.setBuddy(self.layer)
        opacity_label = QLabel("O&pacity")
        opacity_label.setBuddy(self.opacity)
        controls = QHBoxLayout()
        controls.addWidget(layer_label)
        controls.addWidget(self.layer, 1)
        controls.addSpacing(12)
        controls.addWidget(opacity_label)
        controls.addWidget(self.opacity, 1)

        self.bits_label = QLabel("Codes: select a result")
        self.bits_label.setWordWrap(True)
        self.bits_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bit_strip = BitStrip()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(images)
        layout.addSpacing(6)
        layout.addLayout(controls)
        layout.addWidget(self.bits_label)
        layout.addWidget(self.bit_strip)
        layout.addStretch(1)
        self._apply_opacity(opacity)

    def show_loading(self, query: str, match: str) -> None:
        self.title.setText(f"Comparing {Path(query).name} with {Path(match).name}…")

    def clear(self) -> None:
        self.comparison = None
        self.query_view.set_content(None, None)
        self.match_view.set_content(None, None)
        self.bits_label.setText("Codes: select a result")
        self.bit_strip.set_bits(0, [])
        self.title.setText("Comparison")

    def show_comparison(self, comparison) -> None:
        """Show a :class:`~fph_desktop.gui.tasks.Comparison`."""
        self.comparison = comparison
        self._photos = {"query": rgb_image(comparison.query.photo), "match": rgb_image(comparison.match.photo)}
        self.title.setText(f"{Path(comparison.query.path).name}  ↔  {Path(comparison.match.path).name}")
        self.query_caption.setText(f"Query: {comparison.query.path}")
        self.match_caption.setText(f"Match: {comparison.match.path}")
        available = set(comparison.query.heatmaps) & set(comparison.match.heatmaps)
        for row in range(self.layer.count()):
            item = self.layer.model().item(row)
            item.setEnabled(self.layer.itemData(row) in available)
        self._apply_layer()
        differing = comparison.differing_bits
        listing = ", ".join(str(i) for i in differing[:24]) + (" …" if len(differing) > 24 else "")
        self.bits_label.setText(
            f"<b>{len(differing)} of {comparison.code_bits} bits differ</b> (Hamming distance)"
            + (f": bits {listing}" if differing else ": the codes are identical")
        )
        self.bit_strip.set_bits(comparison.code_bits, differing)

    def _apply_layer(self) -> None:
        if self.comparison is None:
            return
        key = self.layer.currentData()
        for side, view in ((self.comparison.query, self.query_view), (self.comparison.match, self.match_view)):
            heat = side.heatmaps.get(key)
            view.set_content(self._photos["query" if view is self.query_view else "match"], rgba_image(heat) if heat is not None else None, side.crop_box)

    def _apply_opacity(self, value: int) -> None:
        for view in (self.query_view, self.match_view):
            view.set_opacity(value / 100)
        self.opacityChanged.emit(value)
