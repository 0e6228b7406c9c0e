"""The comparison view: why these two photos matched. Query and match side by side, each glowing
where its detail layers agree with the other photo (all detail layers together, or one of them), the
strongest corresponding regions numbered alike on both, a legend, and how many code bits agree. The
pixels, maps and pairs come from :func:`fph_desktop.gui.tasks.compare`, run in the worker; this module
only draws them.

The photo panes have a fixed shape (square, as wide as the pane), so a portrait match never moves
the controls below them; a model that gives no map (or not every layer's) shows the photos alone
and says so, in words a photographer knows (the technical names are in the tooltips).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import resources

# Key -> (what the menu says, what the tooltip adds for those who know the network).
LAYER_LABELS = {
    "fused": (
        "All detail layers together",
        "The consensus of the low layers C2–C4, aligned on one grid (the horizontal pyramid's fused map)",
    ),
    "C2": ("Finest detail (edges, texture)", "Layer C2 alone, at a quarter of the photo's resolution"),
    "C3": ("Fine detail (small parts)", "Layer C3 alone, at an eighth of the photo's resolution"),
    "C4": ("Coarser detail (shapes)", "Layer C4 alone, at a sixteenth of the photo's resolution"),
}
PANE_MAX_SIDE = 520  # the photo panes are square: as wide as the view allows, up to this many pixels


def rgb_image(array) -> QImage:
    """(H, W, 3) uint8 to a QImage that owns its pixels."""
    height, width = array.shape[:2]
    return QImage(array.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def rgba_image(array) -> QImage:
    height, width = array.shape[:2]
    return QImage(array.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


class ElidedLabel(QLabel):
    """One line of text that never widens its layout: what does not fit is elided (``mode``), and
    the whole text is in the tooltip. A ``prefix`` ("Query: ") always stays whole."""

    def __init__(
        self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self._prefix = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.set_full_text(text)

    def set_full_text(self, text: str, tooltip: str | None = None, prefix: str = "") -> None:
        self._full, self._prefix = text, prefix
        self.setToolTip(prefix + text if tooltip is None else tooltip)
        self._elide()

    def full_text(self) -> str:
        return self._prefix + self._full

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        width = max(10, self.contentsRect().width() - metrics.horizontalAdvance(self._prefix))
        super().setText(self._prefix + elide_text(metrics, self._full, self._mode, width))


def elide_text(metrics, text: str, mode: Qt.TextElideMode, width: int) -> str:
    """``text`` elided to ``width`` pixels. A folder path elided at its start loses whole folders
    ("…/test/017.Cardinal"), never half a name; anything else is elided by characters."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    separators = [i for i, c in enumerate(text) if c in "/\\"]
    if mode == Qt.TextElideMode.ElideLeft and separators:
        for i in separators:
            candidate = "…" + text[i:]
            if metrics.horizontalAdvance(candidate) <= width:
                return candidate
    return metrics.elidedText(text, mode, width)


# The numbered pairs' colours (the same number, the same colour on both photos): distinct, and legible
# on dark and light photos with their white ring.
PAIR_COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#e377c2", "#8c564b", "#7f7f7f")


class OverlayImage(QWidget):
    """A photo scaled to fit a square pane, with a heat map over the region the model saw and the
    numbered markers of the strongest corresponding regions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.photo: QImage | None = None
        self.heat: QImage | None = None
        self.markers: list[tuple[float, float, int]] = []
        self.crop_box = (0.0, 0.0, 0.0, 0.0)
        self.opacity = 0.55
        self.placeholder = "Select a result to compare"
        self.setMinimumSize(120, 120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)  # square whatever the photo: the controls below never move
        self.setSizePolicy(policy)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
        return max(120, min(PANE_MAX_SIDE, width))

    def set_content(self, photo: QImage | None, heat: QImage | None, crop_box=(0.0, 0.0, 0.0, 0.0)) -> None:
        self.photo, self.heat, self.crop_box = photo, heat, crop_box
        self.markers = []
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def set_heat(self, heat: QImage | None) -> None:
        self.heat = heat
        self.update()

    def set_markers(self, markers: list[tuple[float, float, int]]) -> None:
        """(x, y, number) with x, y fractions of the crop the model saw."""
        self.markers = list(markers)
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

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(320, 320)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.photo_rect()
        if target.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder
            )
            return
        painter.drawImage(target, self.photo)
        scale = target.width() / self.photo.width()
        left, top, right, bottom = self.crop_box
        crop = QRectF(target.x() + left * scale, target.y() + top * scale, (right - left) * scale, (bottom - top) * scale)
        if self.heat is not None and not self.heat.isNull() and self.opacity > 0:
            painter.setOpacity(self.opacity)
            painter.drawImage(crop, self.heat)
            painter.setOpacity(1.0)
            pen = QPen(QColor(255, 255, 255, 150), 1, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(crop)
        if self.markers and self.opacity > 0:
            self._paint_markers(painter, crop)

    def _paint_markers(self, painter: QPainter, crop: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        radius = max(7.0, min(11.0, crop.width() / 30))
        font = painter.font()
        font.setBold(True)
        font.setPixelSize(int(radius * 1.2))
        painter.setFont(font)
        for x, y, number in self.markers:
            centre = crop.topLeft() + QPointF(x * crop.width(), y * crop.height())
            painter.setPen(QPen(QColor("white"), 2))
            painter.setBrush(QColor(PAIR_COLOURS[(number - 1) % len(PAIR_COLOURS)]))
            painter.drawEllipse(centre, radius, radius)
            painter.drawText(
                QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius),
                Qt.AlignmentFlag.AlignCenter,
                str(number),
            )


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
        self.setToolTip(f"{len(differing)} of {bits} bits differ (bits counted from 0): {listing}" if bits else "")
        self.setAccessibleDescription(self.toolTip())
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(400, 26)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self.bits:
            return
        colours = resources.theme()
        diff, same = QColor(colours["diff_bit"]), QColor(colours["same_bit"])
        painter = QPainter(self)
        cell = (self.width() - 8) / self.bits
        for i in range(self.bits):
            rect = QRectF(4 + i * cell + 0.5, 4, max(1.0, cell - 1.0), self.height() - 8)
            painter.fillRect(rect, diff if i in self.differing else same)


class AgreementLegend(QWidget):
    """The colour ramp with its meaning: from the photo untouched (weak) to glowing (strong agreement)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colours: list[QColor] = []
        self.setFixedHeight(30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Where the colour is, the two photos' detail layers see the same thing; the brighter, the more alike")

    def set_colours(self, rgba) -> None:
        self.colours = [QColor(int(r), int(g), int(b), int(a)) for r, g, b, a in rgba]
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(260, 30)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self.colours:
            return
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        weak, strong = "weaker", "stronger agreement"
        left = metrics.horizontalAdvance(weak) + 8
        right = self.width() - metrics.horizontalAdvance(strong) - 8
        bar = QRectF(left, 8, max(20, right - left), 12)
        painter.fillRect(bar, self.palette().base())  # what "transparent" looks like: the ramp fades into it
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for i, colour in enumerate(self.colours):
            gradient.setColorAt(i / max(1, len(self.colours) - 1), colour)
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().placeholderText().color())
        painter.drawText(QRectF(0, 0, left - 4, 28), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, weak)
        painter.drawText(QRectF(right + 4, 0, self.width() - right, 28), Qt.AlignmentFlag.AlignVCenter, strong)


class PhotoCaption(QWidget):
    """Under a photo: its file name in full where it fits (else the start is elided, so the end of
    the name stays), and its folder below, elided at the start (the nearest folders stay)."""

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.name = ElidedLabel(mode=Qt.TextElideMode.ElideLeft)
        self.folder = ElidedLabel(mode=Qt.TextElideMode.ElideLeft)
        self.folder.setObjectName("Muted")
        for label in (self.name, self.folder):
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.name)
        layout.addWidget(self.folder)
        self.clear()

    def set_path(self, path: str) -> None:
        full = f"{self.role}: {path}"
        self.name.set_full_text(Path(path).name, full, prefix=f"{self.role}: ")
        self.folder.set_full_text(str(Path(path).parent), full, prefix="in ")

    def clear(self) -> None:
        self.name.set_full_text(self.role, "")
        self.folder.set_full_text(" ", "")

    def text(self) -> str:
        return f"{self.name.full_text()} {self.folder.full_text()}".strip()


class ComparisonView(QWidget):
    """Query | match, the heat-map controls and the bit comparison."""

    opacityChanged = Signal(int)

    def __init__(self, opacity: int = 55, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison = None
        self._photos: dict[str, QImage] = {}
        self.title = ElidedLabel("Comparison")
        self.title.setObjectName("Heading")
        self.query_view = OverlayImage()
        self.match_view = OverlayImage()
        self.query_view.setAccessibleName("Query photo with activation overlay")
        self.match_view.setAccessibleName("Matching photo with activation overlay")
        self.query_caption = PhotoCaption("Query")
        self.match_caption = PhotoCaption("Match")
        images = QGridLayout()
        images.addWidget(self.query_view, 0, 0)
        images.addWidget(self.match_view, 0, 1)
        images.addWidget(self.query_caption, 1, 0)
        images.addWidget(self.match_caption, 1, 1)
        images.setColumnStretch(0, 1)
        images.setColumnStretch(1, 1)

        self.layer = QComboBox()
        for key, (label, detail) in LAYER_LABELS.items():
            self.layer.addItem(label, key)
            self.layer.setItemData(self.layer.count() - 1, detail, Qt.ItemDataRole.ToolTipRole)
        self.layer.setToolTip(
            "Which of the network's detail layers the colours show. Technically: the low layers C2–C4, "
            "fused as the horizontal pyramid does, or one of them before fusion."
        )
        self.layer.setMinimumContentsLength(6)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.currentIndexChanged.connect(self._apply_layer)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(opacity)
        self.opacity.setToolTip("How strongly the colours cover the photo (0: the photo only)")
        self.opacity.setAccessibleName("Heat map opacity")
        self.opacity.valueChanged.connect(self._apply_opacity)
        self.opacity_value = QLabel()
        self.opacity_value.setMinimumWidth(self.opacity_value.fontMetrics().horizontalAdvance("100 %") + 4)
        self.legend = AgreementLegend()
        from .tasks import legend_colours

        self.legend.set_colours(legend_colours())
        layer_label = QLabel("&Map")
        layer_label.setBuddy(self.layer)
        opacity_label = QLabel("O&pacity")
        opacity_label.setBuddy(self.opacity)
        # Two rows in a grid (labels aligned): side by side they made the window too wide for small screens.
        controls = QGridLayout()
        controls.addWidget(layer_label, 0, 0)
        controls.addWidget(self.layer, 0, 1, 1, 2)
        controls.addWidget(opacity_label, 1, 0)
        controls.addWidget(self.opacity, 1, 1)
        controls.addWidget(self.opacity_value, 1, 2)
        controls.setColumnStretch(1, 1)

        self.map_note = QLabel()
        self.map_note.setObjectName("Muted")
        self.map_note.setWordWrap(True)
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
        layout.addWidget(self.legend)
        layout.addWidget(self.map_note)
        layout.addWidget(self.bits_label)
        layout.addWidget(self.bit_strip)
        layout.addStretch(1)
        self._apply_opacity(opacity)
        self.clear()

    def show_loading(self, query: str, match: str) -> None:
        """A new pair was asked for: its names at once, the old photos gone (never beside new names)."""
        self.comparison = None
        self.title.set_full_text(f"Comparing with {Path(match).name}…")
        self.query_caption.set_path(query)
        self.match_caption.set_path(match)
        for view in (self.query_view, self.match_view):
            view.set_content(None, None)
            view.set_placeholder("Loading…")
        self.bits_label.setText("Codes: comparing…")
        self.bits_label.setToolTip("")
        self.bit_strip.set_bits(0, [])
        self.map_note.clear()

    def clear(self, message: str = "Select a result to compare") -> None:
        self.comparison = None
        self._photos = {}
        for view in (self.query_view, self.match_view):
            view.set_content(None, None)
            view.set_placeholder(message)
        self.query_caption.clear()
        self.match_caption.clear()
        self.bits_label.setText("Codes: select a result")
        self.bits_label.setToolTip("")
        self.bit_strip.set_bits(0, [])
        self.map_note.clear()
        self.title.set_full_text("Comparison")

    def show_error(self, message: str) -> None:
        """The comparison could not be made: nothing of an earlier one stays on screen."""
        self.clear("No comparison")
        self.title.set_full_text("Could not compare")
        self.map_note.setText(message)

    def show_comparison(self, comparison) -> None:
        """Show a :class:`~fph_desktop.gui.tasks.Comparison`."""
        self.comparison = comparison
        self._photos = {"query": rgb_image(comparison.query.photo), "match": rgb_image(comparison.match.photo)}
        self.title.set_full_text(f"Why {Path(comparison.match.path).name} matched")
        self.query_caption.set_path(comparison.query.path)
        self.match_caption.set_path(comparison.match.path)
        available = set(comparison.query.heatmaps) & set(comparison.match.heatmaps)
        for row in range(self.layer.count()):
            self.layer.model().item(row).setEnabled(self.layer.itemData(row) in available)
        if available and self.layer.currentData() not in available:
            first = next(row for row in range(self.layer.count()) if self.layer.itemData(row) in available)
            self.layer.blockSignals(True)
            self.layer.setCurrentIndex(first)
            self.layer.blockSignals(False)
        self.layer.setEnabled(bool(available))
        self.opacity.setEnabled(bool(available))
        self.legend.setVisible(bool(available))
        if not available:
            note = getattr(comparison, "note", "") or "This model gives no activation map, so the photos are shown as they are."
        elif getattr(comparison, "maps_feed_code", True):
            note = (
                "The glow marks where the two photos' detail layers see the same thing, and the numbers the "
                "strongest such places: 1 on the query answers 1 on the match. The code is made from these layers."
            )
        else:
            note = (
                "The glow marks where the two photos' detail layers see the same thing, and the numbers the "
                "strongest such places: 1 on the query answers 1 on the match. This model makes its code from "
                "its overall impression of the photo, not from these layers."
            )
        self.map_note.setText(note)
        self._apply_layer()
        differing = comparison.differing_bits
        listing = ", ".join(str(i) for i in differing) or "none"
        agree = comparison.code_bits - len(differing)
        self.bits_label.setText(
            f"<b>{agree} of {comparison.code_bits} bits agree</b>"
            + (": the codes are identical" if not differing else " (the more, the more alike)")
        )
        self.bits_label.setToolTip(f"Hamming distance {len(differing)}. Differing bits (counted from 0): {listing}")
        self.bit_strip.set_bits(comparison.code_bits, differing)

    def _apply_layer(self) -> None:
        if self.comparison is None:
            return
        key = self.layer.currentData()
        for side, view, photo in (
            (self.comparison.query, self.query_view, "query"),
            (self.comparison.match, self.match_view, "match"),
        ):
            heat = side.heatmaps.get(key)
            view.set_content(self._photos[photo], rgba_image(heat) if heat is not None else None, side.crop_box)
            view.set_markers(getattr(side, "markers", {}).get(key, []))

    def _apply_opacity(self, value: int) -> None:
        self.opacity_value.setText(f"{value} %")
        for view in (self.query_view, self.match_view):
            view.set_opacity(value / 100)
        self.opacityChanged.emit(value)
