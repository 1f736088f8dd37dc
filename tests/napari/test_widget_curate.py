"""Curate dock: fill, undo, pick, un-pick and exports driven through the layer's real mouse callbacks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import mouse_press_callbacks

from napari_synthseg._napari.curate_widget import CurateWidget
from napari_synthseg._napari.simulate import FakeMouseEvent, click


def rings_plane(shape=(60, 80)):
    """Two unfilled rings (ids 1, 2) and one solid disk (id 3)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, dtype=np.uint32)
    for label, (cy, cx) in ((1, (20, 20)), (2, (20, 55))):
        r = np.hypot(yy - cy, xx - cx)
        labels[(r >= 8) & (r < 11)] = label
    labels[np.hypot(yy - 45, xx - 40) < 7] = 3
    return labels


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)


def test_fill_undo_pick_export_roundtrip(make_napari_viewer, qtbot, tmp_path, notes):
    viewer = make_napari_viewer()
    plane = rings_plane()
    image = viewer.add_image((plane > 0) * 180 + 30, name="em", scale=(2, 2), translate=(10, 5))
    labels = viewer.add_labels(plane.copy(), name="seg", scale=(2, 2), translate=(10, 5))
    widget = CurateWidget(viewer)
    assert widget.labels_choice.layer() is labels and widget.image_choice.layer() is image

    widget.set_mode("fill")
    assert viewer.layers.selection.active is labels
    click(labels, (2, 2))  # background, outside both rings
    assert labels.data[20, 20] == 1 and labels.data[20, 55] == 2  # ring interiors take the ring's id
    assert labels.data[2, 2] == 0 and labels.data[0, 79] == 0
    filled = labels.data.copy()
    labels.undo()
    np.testing.assert_array_equal(labels.data, plane)
    labels.redo()
    np.testing.assert_array_equal(labels.data, filled)

    # clicks that must change nothing
    click(labels, (20, 10))  # on object 1
    assert "background pixel" in notes[-1]
    click(labels, (500, 500))  # outside the layer
    assert "outside" in notes[-1]
    np.testing.assert_array_equal(labels.data, filled)

    widget.set_mode("pick")
    click(labels, (20, 20))
    click(labels, (45, 40))
    assert widget.picked_total() == 2 and widget.counts_label.text() == "2 picked · 0 rejected · 0 added"
    picked = viewer.layers["seg curation"]
    assert set(np.unique(labels.data[picked.data > 0])) == {1, 3}
    np.testing.assert_allclose(picked.scale, labels.scale)
    assert viewer.layers.selection.active is labels
    click(labels, (45, 40))  # un-pick
    assert widget.picked_total() == 1 and not picked.data[45, 40]
    click(labels, (2, 2))  # background in pick mode
    assert "no predicted object" in notes[-1]

    bank_dir = tmp_path / "bank"
    widget.bank_path.set_path(bank_dir)
    widget.export_picked()
    wait_idle(qtbot, widget)
    from napari_synthseg.bank import ObjectBank

    bank = ObjectBank(bank_dir, create=False)
    objects = list(bank)
    assert len(objects) == 1
    assert objects[0].meta["method"] == "curated" and objects[0].meta["source"] == "em"
    assert objects[0].mask.sum() == (filled == 1).sum()

    widget.labels_path.set_path(tmp_path / "labels.tif")
    widget.export_labels()
    wait_idle(qtbot, widget)
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "labels.tif"), filled)

    widget.csv_path.set_path(tmp_path / "sizes.csv")
    widget.export_measurements()
    wait_idle(qtbot, widget)
    with open(tmp_path / "sizes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["label"]) for r in rows) == [1, 2, 3]
    assert int(widget.histogram.counts.sum()) == 3
    # the layer is scaled (2, 2) without a physical unit: lengths in its scale's "units"
    assert {"feret_max_units", "feret_min_units", "circularity", "solidity", "convexity", "area_units2"} <= set(rows[0])
    # the measurements reach the Labels layer's features, one row per label
    features = viewer.layers["seg"].features
    assert list(features["index"]) == [1, 2, 3] and list(features["label"]) == [1, 2, 3]
    assert np.allclose(features["area_units2"], [float(r["area_units2"]) for r in rows])
    assert len(viewer.layers) == 3  # em, seg, seg curation: nothing else created or lost


def test_stack_fill_and_pick_only_current_plane(make_napari_viewer, qtbot, tmp_path, notes):
    viewer = make_napari_viewer()
    stack = np.stack([rings_plane(), rings_plane(), rings_plane()])
    stack[1][stack[1] > 0] += 10  # other ids on plane 1
    viewer.add_image(stack.astype(np.uint8) * 20, name="em")
    labels = viewer.add_labels(stack.copy(), name="seg", translate=(0, 3, 4))
    widget = CurateWidget(viewer)
    widget.set_mode("fill")
    viewer.dims.set_current_step(0, 1)
    click(labels, (1, 2, 2))
    assert labels.data[1, 20, 20] == 11
    np.testing.assert_array_equal(labels.data[0], stack[0])
    np.testing.assert_array_equal(labels.data[2], stack[2])

    widget.set_mode("pick")
    click(labels, (1, 20, 55))
    assert list(widget.curations) == [(1,)]
    assert set(np.unique(labels.data[1][widget.curations[(1,)].objects > 0])) == {12}
    picked = viewer.layers["seg curation"].data
    assert picked[1].any() and not picked[0].any() and not picked[2].any()

    widget.bank_path.set_path(tmp_path / "bank")
    widget.export_picked()
    wait_idle(qtbot, widget)
    from napari_synthseg.bank import ObjectBank

    objects = list(ObjectBank(tmp_path / "bank", create=False))
    assert len(objects) == 1 and objects[0].meta["plane"] == [1]

    widget.csv_path.set_path(tmp_path / "m.csv")
    widget.export_measurements()
    wait_idle(qtbot, widget)
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({r["plane"] for r in rows}) == ["0", "1", "2"] and len(rows) == 9


def test_wrong_layer_and_layer_changes(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((20, 20), np.uint8), name="em")
    labels = viewer.add_labels(rings_plane((40, 40))[:20, :20], name="seg")
    widget = CurateWidget(viewer)
    widget.set_mode("fill")
    viewer.layers.selection.active = image
    event = ReadOnlyWrapper(FakeMouseEvent("mouse_press", (5.0, 5.0)))
    mouse_press_callbacks(viewer, event)
    assert "selected layer is Image" in notes[-1]

    labels.name = "renamed"
    assert widget.labels_choice.currentText() == "renamed"
    other = viewer.add_labels(np.zeros((20, 20), np.uint32), name="other")
    widget.labels_choice.set_layer(other)
    assert widget._callback not in labels.mouse_drag_callbacks
    assert widget._callback in other.mouse_drag_callbacks
    viewer.layers.remove(other)
    assert widget.labels_choice.layer() is labels
    assert widget._callback in labels.mouse_drag_callbacks
    widget.set_mode("off")
    assert widget._callback not in labels.mouse_drag_callbacks


def test_picked_objects_are_banked_whatever_their_shape(make_napari_viewer, qtbot, tmp_path, notes):
    labels = np.zeros((60, 80), np.uint32)
    labels[28:31, 5:75] = 1  # a thin straight bar: the bank's shape judgement would leave it out
    viewer = make_napari_viewer()
    viewer.add_image(np.where(labels > 0, 200, 30).astype(np.uint8), name="em")
    layer = viewer.add_labels(labels, name="seg")
    widget = CurateWidget(viewer)
    widget.set_mode("pick")
    click(layer, (29, 40))
    widget.bank_path.set_path(tmp_path / "bank")
    widget.export_picked()
    wait_idle(qtbot, widget)
    from napari_synthseg.bank import ObjectBank

    bank = ObjectBank(tmp_path / "bank", create=False)
    assert len(bank) == 1 and not bank.left_out  # a person's pick is banked as it is


def test_measurements_in_the_layers_physical_units(make_napari_viewer, qtbot, tmp_path, notes):
    viewer = make_napari_viewer()
    data = np.zeros((40, 50), np.uint16)
    data[5:15, 10:40] = 4  # 10 x 30 pixels
    labels = viewer.add_labels(data, name="seg", scale=(2.0, 2.0))
    labels.units = ("nm", "nm")
    widget = CurateWidget(viewer)
    widget.labels_choice.set_layer(labels)
    widget.csv_path.set_path(tmp_path / "nm.csv")
    widget.export_measurements()
    wait_idle(qtbot, widget)
    with open(tmp_path / "nm.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and float(rows[0]["area_nm2"]) == 300 * 4
    assert float(rows[0]["feret_min_nm"]) == pytest.approx(20.0)
    assert list(labels.features["feret_max_nm"]) == pytest.approx([2 * np.hypot(10, 30)])


def test_exported_labels_carry_the_layers_pixel_size(make_napari_viewer, qtbot, tmp_path, notes):
    from napari_synthseg.pixel_size import PixelSize, read_pixel_size

    viewer = make_napari_viewer()
    labels = viewer.add_labels(rings_plane(), name="seg", scale=(2.5, 2.5))
    labels.units = ("nm", "nm")
    widget = CurateWidget(viewer)
    widget.labels_choice.set_layer(labels)
    widget.labels_path.set_path(tmp_path / "scaled.tif")
    widget.export_labels()
    wait_idle(qtbot, widget)
    assert read_pixel_size(tmp_path / "scaled.tif") == PixelSize(2.5, "nm")


def test_exported_labels_of_a_multiscale_layer_are_its_full_resolution(make_napari_viewer, qtbot, tmp_path, notes):
    from napari_synthseg.image_io import read_image

    viewer = make_napari_viewer()
    plane = rings_plane((120, 160))
    labels = viewer.add_labels([plane, plane[::2, ::2]], name="pyramid seg", multiscale=True)  # an OME-Zarr's
    widget = CurateWidget(viewer)
    widget.labels_choice.set_layer(labels)
    widget.labels_path.set_path(tmp_path / "pyramid.tif")
    widget.export_labels()
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(np.asarray(read_image(tmp_path / "pyramid.tif")), plane)  # not the coarse level
