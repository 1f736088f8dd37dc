"""Curate dock's measurements table and histogram: sorted, clicked and followed through real Qt events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import QPoint, Qt

from napari_synthseg._napari.curate_widget import CurateWidget


def three_boxes(shape=(60, 90)):
    """Objects 1, 2, 3 of areas 400, 100 and 900 pixels (squares of side 20, 10, 30)."""
    labels = np.zeros(shape, dtype=np.uint32)
    labels[5:25, 5:25] = 1
    labels[40:50, 10:20] = 2
    labels[20:50, 50:80] = 3
    return labels


def measure(qtbot, widget, path):
    widget.csv_path.set_path(path)
    qtbot.mouseClick(widget.export_csv_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)


def click_header(qtbot, table, column: int) -> None:
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(x, 5))


def click_row(qtbot, table, row: int) -> None:
    qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=table.visualItemRect(table.item(row, 0)).center())


def shown_labels(table) -> list[int]:
    return [table.label_at(row) for row in range(table.rowCount())]


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    labels = viewer.add_labels(three_boxes(), name="seg", scale=(2.0, 2.0), translate=(100, 0))
    labels.units = ("nm", "nm")
    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    widget.show()
    widget.labels_choice.set_layer(labels)
    return viewer, labels, widget


def test_table_sorts_and_rows_select_objects(dock, qtbot, tmp_path):
    viewer, labels, widget = dock
    table = widget.measurements_table
    assert table.rowCount() == 0  # nothing measured yet
    measure(qtbot, widget, tmp_path / "m.csv")
    assert table.rowCount() == 3 and shown_labels(table) == [1, 2, 3]
    assert "area_nm2" in table.columns() and "index" not in table.columns()

    column = table.columns().index("area_nm2")
    click_header(qtbot, table, column)  # ascending area: 100, 400, 900 pixels
    assert shown_labels(table) == [2, 1, 3]
    click_header(qtbot, table, column)  # descending
    assert shown_labels(table) == [3, 1, 2]

    click_row(qtbot, table, 2)  # object 2 (the smallest)
    assert labels.selected_label == 2
    # the camera is on the object's centre: rows 40..49, columns 10..19, scale 2, translate (100, 0)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (100 + 2 * 44.5, 2 * 14.5))

    labels.selected_label = 3  # e.g. napari's label picker
    assert [index.row() for index in table.selectionModel().selectedRows()] == [0]
    labels.selected_label = 7  # no such object: no row stays selected
    assert not table.selectionModel().selectedRows()


def test_table_follows_the_chosen_layer_and_a_stacks_planes(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    stack = np.stack([three_boxes(), np.zeros((60, 90), np.uint32), three_boxes()])
    stack[2][stack[2] > 0] += 10  # ids 11, 12, 13 on plane 2
    labels = viewer.add_labels(stack, name="seg")
    other = viewer.add_labels(three_boxes(), name="other")
    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    widget.show()
    widget.labels_choice.set_layer(labels)
    measure(qtbot, widget, tmp_path / "stack.csv")
    table = widget.measurements_table
    assert shown_labels(table) == [1, 2, 3, 11, 12, 13]
    viewer.dims.set_point(0, 0)
    click_row(qtbot, table, shown_labels(table).index(13))
    assert labels.selected_label == 13 and viewer.dims.point[0] == 2  # the view moves to the object's plane

    widget.labels_choice.set_layer(other)  # no features yet: an empty table
    assert table.layer is other and table.rowCount() == 0
    other.features = {"label": [3, 1], "area_px2": [900, 400]}
    assert shown_labels(table) == [3, 1]
    labels.selected_label = 1  # the layer no longer shown changes nothing
    assert not table.selectionModel().selectedRows()


def test_histogram_of_any_numeric_column(dock, qtbot, tmp_path):
    viewer, labels, widget = dock
    assert widget.histogram_column.count() == 0 and widget.histogram.counts.size == 0
    measure(qtbot, widget, tmp_path / "m.csv")
    columns = [widget.histogram_column.itemText(i) for i in range(widget.histogram_column.count())]
    assert widget.histogram_column.currentText() == "equivalent_diameter_nm"  # the default
    assert {"area_nm2", "feret_max_nm", "circularity", "solidity"} <= set(columns)
    assert not {"label", "index", "plane", "bbox_min_row_px"} & set(columns)  # ids and places are no measurements

    widget.histogram_column.setCurrentText("area_nm2")
    assert widget.histogram.title == "area_nm2" and int(widget.histogram.counts.sum()) == 3
    assert widget.histogram.edges[0] == pytest.approx(400.0) and widget.histogram.edges[-1] == pytest.approx(3600.0)

    measure(qtbot, widget, tmp_path / "again.csv")  # measuring again keeps the user's column
    assert widget.histogram_column.currentText() == "area_nm2"

    # features from elsewhere (e.g. a reader) with a category and a flag: only numbers are offered
    labels.features = {"label": [1, 2, 3], "kind": pd.Categorical(["a", "b", "a"]), "edge": [True, False, True],
                       "score": [0.5, 0.25, 1.0]}
    assert [widget.histogram_column.itemText(i) for i in range(widget.histogram_column.count())] == ["score"]
    assert widget.histogram.title == "score" and int(widget.histogram.counts.sum()) == 3
    assert widget.measurements_table.columns() == ["label", "kind", "edge", "score"]
