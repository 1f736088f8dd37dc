"""Curate dock's clicks that teach: pick, reject, add and fill through the labels layer's real mouse
callbacks and keys, undo (Ctrl+Z), the curation layer, save and reload in a later session, the default
labels layer, and labels recomputed under the curation."""

from __future__ import annotations

import numpy as np

from napari_synthseg._napari.curate_widget import CURATION_KINDS, SHORTCUTS, CurateWidget
from napari_synthseg._napari.simulate import click
from napari_synthseg.curation import load_curation


def scene(shape=(60, 80)):
    """An image with three bright disks and a faint one; labels with the first two (ids 5, 7) and a speck (9)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 40, np.uint8)
    labels = np.zeros(shape, np.uint32)
    for label, (cy, cx) in ((5, (15, 15)), (7, (15, 50))):
        disk = np.hypot(yy - cy, xx - cx) < 7
        image[disk], labels[disk] = 200, label
    missed = np.hypot(yy - 42, xx - 30) < 7
    image[missed] = 120  # a faint grain the model missed
    labels[50:53, 70:73] = 9  # a speck the model called an object
    return image, labels, missed


def press(viewer, key):
    handler = viewer.window._qt_viewer._key_map_handler
    assert handler.press_key(key), f"key {key!r} is not bound"
    handler.release_key(key)


def test_each_mode_through_the_mouse_and_keys_with_undo(make_napari_viewer, qtbot, notes):
    image, labels_data, missed = scene()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="em")
    labels = viewer.add_labels(labels_data.copy(), name="em segmentation")
    widget = CurateWidget(viewer)
    assert widget.labels_choice.layer() is labels

    for mode, key in SHORTCUTS.items():  # each key chooses its mode on the labels layer
        viewer.layers.selection.active = labels
        press(viewer, key)
        assert widget.mode == mode
    assert {"[K]", "[R]", "[A]", "[H]", "[O]"} <= {b.text()[-3:] for b in widget.mode_buttons.buttons()}

    press(viewer, "K")
    click(labels, (15, 15))  # pick object 5
    press(viewer, "R")
    click(labels, (51, 71))  # reject the speck
    press(viewer, "A")
    click(labels, (42, 30))  # add the missed grain (grown from the image: no probability layer)
    assert widget.counts() == {"pick": 1, "reject": 1, "add": 1, "split": 0, "merge": 0, "fill": 0}
    assert widget.counts_label.text() == "1 picked · 1 rejected · 1 added"
    curation = widget.curations[()]
    assert set(np.unique(curation.objects[labels_data == 5])) == {1}
    assert curation.background[labels_data == 9].all()
    added = curation.objects == curation.objects[42, 30]
    # the core's grower (a local Otsu on the smoothed image) outlines most of it and little else
    assert (added & missed).sum() >= 0.6 * missed.sum() and (added & ~missed).sum() <= 0.2 * missed.sum()
    shown = viewer.layers["em segmentation curation"].data
    assert shown[15, 15] == CURATION_KINDS["pick"] and shown[51, 71] == CURATION_KINDS["background"]
    assert shown[42, 30] == CURATION_KINDS["add"] and shown[15, 50] == 0
    assert viewer.layers.selection.active is labels

    click(labels, (5, 5))  # nothing grows out of flat background: a note, nothing changes
    assert widget.counts()["add"] == 1 and notes

    press(viewer, "Control-Z")  # undo the add, then the reject
    assert widget.counts() == {"pick": 1, "reject": 1, "add": 0, "split": 0, "merge": 0, "fill": 0}
    assert viewer.layers["em segmentation curation"].data[42, 30] == 0
    widget.undo_button.click()
    assert widget.counts() == {"pick": 1, "reject": 0, "add": 0, "split": 0, "merge": 0, "fill": 0}
    np.testing.assert_array_equal(labels.data, labels_data)  # curation never edits the labels

    press(viewer, "K")
    click(labels, (15, 15))  # picking a picked object un-picks it
    assert widget.counts()["pick"] == 0 and () not in widget.curations
    press(viewer, "Control-Z")
    assert widget.counts()["pick"] == 1

    # fill from background: the labels layer changes, Ctrl+Z restores it
    rings = np.zeros((60, 80), np.uint32)
    r = np.hypot(*(np.mgrid[:60, :80] - np.array([30, 40])[:, None, None]))
    rings[(r >= 8) & (r < 11)] = 3
    labels.data = rings
    press(viewer, "H")
    click(labels, (2, 2))
    assert labels.data[30, 40] == 3
    press(viewer, "Control-Z")
    np.testing.assert_array_equal(labels.data, rings)
    press(viewer, "O")
    assert widget.mode == "off" and widget._callback not in labels.mouse_drag_callbacks

    from qtpy.QtCore import QCoreApplication, QEvent

    widget.deleteLater()  # the dock is closed: its keys leave the layer, napari's own Ctrl+Z is back
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not labels.keymap
    labels.data_setitem((np.array([5]), np.array([5])), 3)
    press(viewer, "Control-Z")
    assert labels.data[5, 5] == 0


def test_split_and_merge_through_the_mouse_with_undo(make_napari_viewer, qtbot, notes, tmp_path):
    yy, xx = np.mgrid[:60, :90]
    labels_data = np.zeros((60, 90), np.uint32)
    labels_data[(np.hypot(yy - 20, xx - 15) <= 9) | (np.hypot(yy - 20, xx - 31) <= 9)] = 4  # two grains as one
    labels_data[38:55, 40:58] = 5
    labels_data[38:55, 60:78] = 6  # one grain broken in two
    viewer = make_napari_viewer()
    viewer.add_image((labels_data > 0).astype(np.uint8) * 200, name="em")
    labels = viewer.add_labels(labels_data.copy(), name="em segmentation")
    widget = CurateWidget(viewer)
    assert {"[S]", "[J]"} <= {b.text()[-3:] for b in widget.mode_buttons.buttons()}

    press(viewer, "S")
    click(labels, (20, 23))  # split the joined grains at their neck
    objects = widget.curations[()].objects
    assert objects[20, 12] and objects[20, 34] and objects[20, 12] != objects[20, 34]
    assert widget.counts()["split"] == 2 and widget.counts_label.text().endswith("2 split parts · 0 merged")
    shown = viewer.layers["em segmentation curation"].data
    assert shown[20, 12] == CURATION_KINDS["split"] and (shown[12:28, 23] == 0).any()  # the cut is seen
    click(labels, (50, 10))  # no object: a note, nothing changes
    assert widget.counts()["split"] == 2 and notes

    press(viewer, "J")
    click(labels, (46, 48))  # the first piece ...
    assert widget.counts()["merge"] == 0 and "first piece" in widget.status.text()
    click(labels, (46, 70))  # ... joined with the second, across the gap between them
    merged = widget.curations[()].objects == widget.curations[()].objects[46, 48]
    assert widget.counts()["merge"] == 1 and merged[38:55, 40:78].all()
    assert viewer.layers["em segmentation curation"].data[46, 59] == CURATION_KINDS["merge"]
    widget.save_curation(tmp_path / "em_curation.tif")  # the saved line names every kind in effect
    assert "0 added, 2 split parts, 1 merged" in widget.status.text()

    press(viewer, "Control-Z")  # undo the merge, then the split
    assert widget.counts()["merge"] == 0 and widget.counts()["split"] == 2
    press(viewer, "Control-Z")
    assert () not in widget.curations
    np.testing.assert_array_equal(labels.data, labels_data)  # curation never edits the labels
    press(viewer, "K")  # a new mode lets a half-made merge go
    press(viewer, "J")
    click(labels, (46, 48))
    press(viewer, "K")
    assert widget.merge_first is None


def test_add_grows_from_the_segment_docks_probability(make_napari_viewer, qtbot, notes):
    image, labels_data, missed = scene()
    viewer = make_napari_viewer()
    viewer.add_image(np.full_like(image, 40), name="em")  # the image alone shows nothing there
    foreground = np.where(missed, 0.6, 0.02).astype(np.float32)
    viewer.add_image(foreground, name="em foreground probability", visible=False)
    labels = viewer.add_labels(labels_data, name="em segmentation")
    widget = CurateWidget(viewer)
    assert widget.image_choice.layer() is viewer.layers["em"]  # the probability map is never the default image
    widget.set_mode("add")
    click(labels, (42, 30))
    added = widget.curations[()].objects > 0
    np.testing.assert_array_equal(added, missed)


def test_add_on_a_joined_prediction_carves_the_missed_grain(make_napari_viewer, qtbot, notes):
    from napari_synthseg._napari.segment_widget import DISTANCE_METADATA

    yy, xx = np.mgrid[:50, :70]
    left, right = np.hypot(yy - 25, xx - 24), np.hypot(yy - 25, xx - 43)
    clump = (left <= 10) | (right <= 10)
    viewer = make_napari_viewer()
    viewer.add_image(np.where(clump, 200, 30).astype(np.uint8), name="em")
    distance = np.clip(np.maximum(1 - left / 10, 1 - right / 10), 0, 1).astype(np.float32)
    viewer.add_image(np.where(clump, 0.95, 0.02).astype(np.float32), name="em foreground probability",
                     visible=False, metadata={DISTANCE_METADATA: distance})  # as the Segment dock leaves them
    labels = viewer.add_labels(np.where(clump, 2, 0).astype(np.uint32), name="em segmentation")
    widget = CurateWidget(viewer)
    widget.set_mode("add")
    click(labels, (25, 22))
    added = widget.curations[()].objects > 0
    assert (added & (left <= 10)).sum() / (added | (left <= 10)).sum() > 0.85  # the left grain alone


def test_the_curation_is_saved_and_loaded_in_a_later_session(make_napari_viewer, qtbot, tmp_path, notes):
    import tifffile

    image, labels_data, _ = scene()
    tifffile.imwrite(tmp_path / "grains.tif", image)
    viewer = make_napari_viewer()
    (image_layer,) = viewer.open(str(tmp_path / "grains.tif"))
    labels = viewer.add_labels(labels_data, name="grains segmentation")
    widget = CurateWidget(viewer)
    assert widget.image_choice.layer() is image_layer
    widget.set_mode("pick")
    click(labels, (15, 50))
    widget.set_mode("reject")
    click(labels, (51, 71))
    widget.set_mode("add")
    click(labels, (42, 30))
    widget.save_curation_button.click()
    saved = tmp_path / "grains_curation.tif"
    assert saved.is_file() and str(saved) in widget.status.text()
    before = widget.curations[()]

    later = make_napari_viewer()  # a later session: the same image, new labels
    later.open(str(tmp_path / "grains.tif"))
    later.add_labels(labels_data, name="grains segmentation")
    again = CurateWidget(later)
    assert again.counts() == before.counts == {"pick": 1, "reject": 1, "add": 1, "split": 0, "merge": 0, "fill": 0}
    np.testing.assert_array_equal(again.curations[()].as_image(), before.as_image())
    assert "loaded" in again.status.text()
    np.testing.assert_array_equal(later.layers["grains segmentation curation"].data,
                                  viewer.layers["grains segmentation curation"].data)
    np.testing.assert_array_equal(load_curation(saved).as_image(), before.as_image())

    # the labels export writes the curation beside the labels file too
    widget.labels_path.set_path(tmp_path / "out" / "grains_labels.tif")
    (tmp_path / "out").mkdir()
    widget.export_labels()
    qtbot.waitUntil(lambda: not widget.busy, timeout=20_000)
    assert (tmp_path / "out" / "grains_curation.tif").is_file()


def test_the_labels_box_avoids_ground_truth_and_follows_new_results(make_napari_viewer, qtbot, notes):
    from napari_synthseg._napari.sample import sample_grains

    viewer = make_napari_viewer()
    for data, kwargs, kind in sample_grains():  # as napari opens the sample: image, then its ground truth
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = CurateWidget(viewer)
    assert widget.labels_choice.layer() is None  # never the ground truth by default
    truth = viewer.layers["grains ground truth"]
    autoseg = viewer.add_labels(np.zeros_like(truth.data), name="grains autoseg")
    assert widget.labels_choice.layer() is autoseg
    segmentation = viewer.add_labels(np.zeros_like(truth.data), name="grains segmentation")
    viewer.add_labels(np.zeros_like(truth.data), name="my gt")
    assert widget.labels_choice.layer() is segmentation  # the Segment dock's result, not the later ground truth
    widget.set_mode("pick")
    assert "grains segmentation curation" not in viewer.layers  # nothing curated yet: no extra layer
    widget.labels_choice.set_layer(truth)  # a person may still curate the ground truth on purpose
    viewer.add_labels(np.zeros_like(truth.data), name="other segmentation")
    assert widget.labels_choice.layer() is truth


def test_picks_stay_on_their_pixels_when_the_labels_are_recomputed(make_napari_viewer, qtbot, tmp_path, notes):
    image, labels_data, _ = scene()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="em")
    labels = viewer.add_labels(labels_data.copy(), name="em segmentation")
    widget = CurateWidget(viewer)
    widget.set_mode("pick")
    click(labels, (15, 15))  # object 5
    picked = labels_data == 5
    renumbered = np.zeros_like(labels_data)  # Segment ran again: other ids, object 5 now id 1, a new id 5
    renumbered[labels_data == 7] = 5
    renumbered[picked] = 1
    labels.data = renumbered  # a real data event of the layer
    assert "stays on the pixels" in widget.status.text()
    np.testing.assert_array_equal(widget.curations[()].objects > 0, picked)
    widget.bank_path.set_path(tmp_path / "bank")
    widget.export_picked()
    qtbot.waitUntil(lambda: not widget.busy, timeout=20_000)
    from napari_synthseg.bank import ObjectBank

    (banked,) = list(ObjectBank(tmp_path / "bank", create=False))
    assert banked.mask.sum() == picked.sum()  # the picked object, not today's object 5

    labels.data = np.zeros((30, 40), np.uint32)  # another image's labels: the curation does not apply
    assert widget.curations == {} and "from scratch" in widget.status.text()
