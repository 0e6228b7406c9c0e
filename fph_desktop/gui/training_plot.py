"""The training page's live plot: the loss by step (left axis) and the validation mAP after each
epoch (right axis, 0–1), painted with QPainter so no chart module is needed."""

from __future__ import annotations

import math
from itertools import pairwise

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from . import resources


class TrainingPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_points: list[tuple[int, float]] = []  # (step, loss)
        self.map_points: list[tuple[int, float, int]] = []  # (step, validation mAP, epoch)
        self.total_steps = 0  # unknown until training reports it
        self.setMinimumSize(QSize(360, 200))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Training loss and validation mAP")

    def clear(self) -> None:
        self.loss_points.clear()
        self.map_points.clear()
        self.total_steps = 0
        self.update()

    def set_total_steps(self, steps: int) -> None:
        self.total_steps = max(0, steps)
        self.update()

    def axis_title(self) -> str:
        """The x axis's title: its length once training has said how many steps it takes."""
        return f"training steps (of {self.total_steps:,})" if self.total_steps > 0 else "training steps"

    def add_loss(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.loss_points = [p for p in self.loss_points if p[0] < step] + [(step, loss)]  # a resume replays from its epoch
            self.update()

    def add_epoch(self, step: int, val_map: float, epoch: int) -> None:
        self.map_points = [p for p in self.map_points if p[2] < epoch]
        if math.isfinite(val_map):
            self.map_points.append((step, val_map, epoch))
        self.update()

    # -- painting ---------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        colors = resources.theme()
        muted, border = QColor(colors["muted"]), QColor(colors["border"])
        loss_color, map_color = QColor(colors["accent"]), QColor(colors["diff_bit"])
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(colors["base"]))
        metrics = painter.fontMetrics()
        left, right = metrics.horizontalAdvance("0.000") + 14, metrics.horizontalAdvance("1.00") + 14
        top, bottom = metrics.height() + 10, metrics.height() + 12
        area = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))

        painter.setPen(QPen(border, 1))
        painter.drawRect(area)
        losses = [loss for _, loss in self.loss_points]
        low, high = (min(losses), max(losses)) if losses else (0.0, 1.0)
        if high - low < 1e-6:
            low, high = low - 0.5, high + 0.5
        low = min(0.0, low) if low >= 0 and low < 0.25 * high else low

        span = max(1, self.total_steps, max((p[0] for p in self.loss_points), default=0))

        def x_at(step: float) -> float:
            return area.left() + area.width() * min(step, span) / span

        def y_at(value: float, lo: float, hi: float) -> float:
            return area.bottom() - area.height() * (value - lo) / (hi - lo)

        # Grid and axis labels: loss on the left, mAP on the right.
        for i in range(5):
            fraction = i / 4
            y = area.bottom() - area.height() * fraction
            painter.setPen(QPen(border, 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            painter.setPen(loss_color)
            painter.drawText(
                QRectF(0, y - 8, left - 6, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{low + (high - low) * fraction:.3g}",
            )
            painter.setPen(map_color)
            painter.drawText(
                QRectF(area.right() + 6, y - 8, right, 16),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{fraction:.2f}",
            )
        painter.setPen(muted)
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), bottom), Qt.AlignmentFlag.AlignCenter, self.axis_title()
        )
        painter.setPen(loss_color)
        painter.drawText(
            QRectF(area.left(), 0, area.width() / 2, top), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "— loss"
        )
        painter.setPen(map_color)
        painter.drawText(
            QRectF(area.center().x(), 0, area.width() / 2, top),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            "● validation mAP",
        )

        if self.loss_points:
            path = QPainterPath(QPointF(x_at(self.loss_points[0][0]), y_at(self.loss_points[0][1], low, high)))
            for step, loss in self.loss_points[1:]:
                path.lineTo(x_at(step), y_at(loss, low, high))
            painter.setPen(QPen(loss_color, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
        if self.map_points:
            painter.setPen(QPen(map_color, 2))
            points = [QPointF(x_at(step), y_at(value, 0.0, 1.0)) for step, value, _ in self.map_points]
            for a, b in pairwise(points):
                painter.drawLine(a, b)
            painter.setBrush(map_color)
            for point in points:
                painter.drawEllipse(point, 3.5, 3.5)
        if not self.loss_points and not self.map_points:
            painter.setPen(muted)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "The loss appears here as soon as training starts")
        painter.end()
