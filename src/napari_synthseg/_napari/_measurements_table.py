"""A sortable table of a Labels layer's ``features`` whose selected row and selected label follow each other."""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

#: Columns of ``features`` the table leaves out (napari's own copy of the label id).
HIDDEN_COLUMNS = ("index",)
#: Columns that give an object's place in data pixels (see ``measure.measurement_columns``).
BBOX_COLUMNS = ("bbox_min_row_px", "bbox_min_col_px", "bbox_max_row_px", "bbox_max_col_px")


class _Cell(QTableWidgetItem):
    """A read-only cell that sorts numbers as numbers (text after numbers, empty cells last)."""

    def __init__(self, value):
        number = _as_number(value)
        text = "" if value is None or (number is not None and math.isnan(number)) else (
            f"{number:.4g}" if isinstance(value, float) else str(value))
        super().__init__(text)
        self.value = value
        self.sort_key = (0, number, "") if number is not None and not math.isnan(number) else (
            (1, 0.0, text) if text else (2, 0.0, ""))
        self.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)

    def __lt__(self, other):
        return self.sort_key < getattr(other, "sort_key", (1, 0.0, other.text()))


def _as_number(value) -> float | None:
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


class MeasurementsTable(QTableWidget):
    """One row per object of a Labels layer (its ``features``), sortable by clicking a header.

    Clicking a row selects that object in the layer (``selected_label``) and centres the view on
    it; choosing a label in the layer (e.g. with napari's label picker) selects its row.
    ``refreshed`` is emitted after the table is filled again (new layer or new features).
    """

    refreshed = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(0, 0, parent)
        self._viewer = viewer
        self._layer = None
        self._syncing = False  # a selection we make ourselves must not echo back
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(120)
        self.itemSelectionChanged.connect(self._on_row_chosen)

    @property
    def layer(self):
        """The Labels layer shown, or None."""
        return self._layer

    def set_layer(self, layer) -> None:
        """Show ``layer``'s features (None: an empty table) and follow its changes."""
        if layer is self._layer:
            return
        if self._layer is not None:
            self._layer.events.features.disconnect(self.refresh)
            self._layer.events.selected_label.disconnect(self._on_label_selected)
        self._layer = layer
        if layer is not None:
            layer.events.features.connect(self.refresh)
            layer.events.selected_label.connect(self._on_label_selected)
        self.refresh()

    def columns(self) -> list[str]:
        """The column names shown, in order."""
        return [self.horizontalHeaderItem(i).text() for i in range(self.columnCount())]

    def refresh(self, event=None) -> None:
        """Fill the table from the layer's current features."""
        try:
            features = self._layer.features if self._layer is not None else None
            names = [] if features is None else [str(c) for c in features.columns if c not in HIDDEN_COLUMNS]
            labels = self._label_column(features)
            self.setSortingEnabled(False)
            self.clearContents()
            self.setColumnCount(len(names))
            self.setHorizontalHeaderLabels(names)
            self.setRowCount(0 if labels is None else len(labels))
            if labels is not None:
                for column, name in enumerate(names):
                    for row, value in enumerate(features[name].tolist()):
                        cell = _Cell(value)
                        cell.setData(Qt.UserRole, int(labels[row]))
                        self.setItem(row, column, cell)
            self.setSortingEnabled(True)
            self.refreshed.emit()
        except RuntimeError:  # the Qt side was deleted (dock closed)
            return

    @staticmethod
    def _label_column(features):
        if features is None or len(features) == 0:
            return None
        for name in ("label", "index"):
            if name in features.columns:
                return features[name].to_numpy()
        return None

    def label_at(self, row: int) -> int | None:
        """The label id of a table row (as shown, after sorting)."""
        item = self.item(row, 0)
        return None if item is None else int(item.data(Qt.UserRole))

    def row_of(self, label: int) -> int | None:
        """The first row (as shown) of object ``label``, or None."""
        for row in range(self.rowCount()):
            if self.label_at(row) == int(label):
                return row
        return None

    def _on_row_chosen(self) -> None:
        if self._syncing or self._layer is None:
            return
        rows = self.selectionModel().selectedRows()
        if not rows:
            return
        row = rows[0].row()
        label = self.label_at(row)
        if label is None:
            return
        self._syncing = True
        try:
            self._layer.selected_label = label
        finally:
            self._syncing = False
        self._centre_on(row)

    def _on_label_selected(self, event=None) -> None:
        if self._syncing or self._layer is None:
            return
        try:
            row = self.row_of(self._layer.selected_label)
            self._syncing = True
            try:
                if row is None:
                    self.clearSelection()
                else:
                    self.selectRow(row)
                    self.scrollToItem(self.item(row, 0))
            finally:
                self._syncing = False
        except RuntimeError:  # the Qt side was deleted (dock closed)
            return

    def _cell_value(self, row: int, name: str):
        names = self.columns()
        if name not in names:
            return None
        item = self.item(row, names.index(name))
        return None if item is None or item.sort_key[0] == 2 else item.value

    def _centre_on(self, row: int) -> None:
        """Move the view to the object of ``row``: its plane, and the camera on its bounding box's centre."""
        layer = self._layer
        box = [self._cell_value(row, name) for name in BBOX_COLUMNS]
        if any(value is None for value in box):
            return
        r0, c0, r1, c1 = (float(value) for value in box)
        lead = [0.0] * (layer.ndim - 2)
        plane = self._cell_value(row, "plane")
        if plane is not None and lead:
            indices = [float(part) for part in str(plane).split("-")]
            lead[-len(indices):] = indices[-len(lead):]
        world = layer.data_to_world((*lead, (r0 + r1 - 1) / 2, (c0 + c1 - 1) / 2))
        offset = self._viewer.dims.ndim - layer.ndim  # the viewer may have more axes than this layer
        for axis in range(len(lead)):
            self._viewer.dims.set_point(offset + axis, world[axis])
        scene = getattr(self._viewer, "scene", None)  # napari >= 0.9 keeps the camera on the scene
        camera = scene.camera if scene is not None else self._viewer.camera
        camera.center = tuple(world[-2:])
