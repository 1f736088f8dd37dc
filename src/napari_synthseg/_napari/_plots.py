"""Tiny QPainter plots for the docks (no matplotlib: it is not a runtime dependency)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

_MARGIN = 28


class _PlotBase(QWidget):
    def __init__(self, title: str = "", parent=None):
        super().__init__(parent)
        self.title = title
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def _frame(self, painter: QPainter) -> QRectF:
        painter.fillRect(self.rect(), QColor(38, 41, 48))
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(6, 14, self.title)
        return QRectF(_MARGIN, 20, max(self.width() - _MARGIN - 8, 10), max(self.height() - 38, 10))


class LinePlot(_PlotBase):
    """Plots one or more named series against step (e.g. training and validation loss)."""

    COLORS = (QColor(90, 170, 255), QColor(255, 170, 60), QColor(120, 220, 120))

    def __init__(self, title: str = "", parent=None):
        super().__init__(title, parent)
        self.series: dict[str, list[tuple[float, float]]] = {}

    def add_point(self, name: str, x: float, y: float | None) -> None:
        if y is None or not np.isfinite(y):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        try:
            box = self._frame(painter)
            points = [p for s in self.series.values() for p in s]
            if not points:
                return
            xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
            x0, x1 = float(xs.min()), float(max(xs.max(), xs.min() + 1))
            y0, y1 = float(min(ys.min(), 0.0)), float(max(ys.max(), 1e-6))
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(2, int(box.top()) + 10, f"{y1:.2g}")
            painter.drawText(2, int(box.bottom()), f"{y0:.2g}")
            painter.drawText(int(box.right()) - 40, self.height() - 4, f"{x1:.0f}")
            painter.setRenderHint(QPainter.Antialiasing)
            for (name, series), color in zip(self.series.items(), self.COLORS):
                poly = QPolygonF(
                    [
                        QPointF(
                            box.left() + (x - x0) / (x1 - x0) * box.width(),
                            box.bottom() - (y - y0) / (y1 - y0) * box.height(),
                        )
                        for x, y in series
                    ]
                )
                painter.setPen(QPen(color, 1.5))
                painter.drawPolyline(poly)
                painter.drawText(int(box.right()) - 90, int(box.top()) + 12 * (1 + list(self.series).index(name)), name)
        finally:
            painter.end()


class Histogram(_PlotBase):
    """A histogram of values (e.g. object sizes), with the bin range written under it."""

    def __init__(self, title: str = "", bins: int = 30, parent=None):
        super().__init__(title, parent)
        self.bins = bins
        self.counts = np.zeros(0, dtype=int)
        self.edges = np.zeros(0)

    def set_values(self, values: Sequence[float]) -> None:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if values.size:
            self.counts, self.edges = np.histogram(values, bins=self.bins)
        else:
            self.counts, self.edges = np.zeros(0, dtype=int), np.zeros(0)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        try:
            box = self._frame(painter)
            if self.counts.size == 0:
                painter.setPen(QColor(150, 150, 150))
                painter.drawText(box, Qt.AlignCenter, "no data")
                return
            top = max(int(self.counts.max()), 1)
            width = box.width() / len(self.counts)
            painter.setPen(Qt.NoPen)
            painter.setBrush(QColor(90, 170, 255))
            for i, count in enumerate(self.counts):
                height = count / top * box.height()
                painter.drawRect(QRectF(box.left() + i * width, box.bottom() - height, max(width - 1, 1), height))
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(2, int(box.top()) + 10, str(top))
            painter.drawText(int(box.left()), self.height() - 4, f"{self.edges[0]:.3g}")
            painter.drawText(int(box.right()) - 40, self.height() - 4, f"{self.edges[-1]:.3g}")
        finally:
            painter.end()
