"""Auto-segment dock end to end in a real viewer (tiny images)."""

from __future__ import annotations

import numpy as np

from napari_synthseg._napari.autoseg_widget import AutosegWidget


def disks_image(shape=(96, 128), centres=((30, 30), (60, 90), (70, 30)), radius=10, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = rng.normal(40, 5, shape)
    for cy, cx in centres:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 200
    return np.clip(image, 0, 255).astype(np.uint8)


def wait_idle(qtbot, widget, timeout=20000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def test_autoseg_2d_scaled_layer_and_bank(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    image = viewer.add_image(disks_image(), name="grains", scale=(0.5, 0.5), translate=(10, 20))
    widget = AutosegWidget(viewer)
    assert widget.image_choice.layer() is image
    widget.min_area.setValue(10)
    widget.run()
    wait_idle(qtbot, widget)
    labels = viewer.layers["grains autoseg"]
    assert labels.data.shape == image.data.shape
    assert labels.data.dtype == np.uint32
    assert len(np.unique(labels.data)) - 1 == 3
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)

    widget.bank_path.set_path(tmp_path / "bank")
    widget.add_to_bank()
    wait_idle(qtbot, widget)
    from napari_synthseg.bank import ObjectBank

    bank = ObjectBank(tmp_path / "bank", create=False)
    assert len(bank) == 3
    assert {obj.meta["method"] for obj in bank} == {"autoseg"}
    assert all(obj.meta["source"] == "grains" for obj in bank)


def test_autoseg_stack_all_and_current_plane(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.stack([disks_image(seed=0), disks_image(centres=((40, 40),), seed=1), disks_image(seed=2)])
    viewer.add_image(stack, name="stack")
    widget = AutosegWidget(viewer)
    widget.min_area.setValue(10)
    widget.run()
    wait_idle(qtbot, widget)
    labels = viewer.layers["stack autoseg"].data
    assert labels.shape == stack.shape
    per_plane = [set(np.unique(p)) - {0} for p in labels]
    assert [len(ids) for ids in per_plane] == [3, 1, 3]
    assert not (per_plane[0] & per_plane[1]) and not (per_plane[0] & per_plane[2])  # unique ids

    # redo only the middle plane: the others stay as they were
    before = labels.copy()
    viewer.dims.set_current_step(0, 1)
    widget.scope.setCurrentText("current plane")
    widget.min_area.setValue(100_000)  # removes everything on that plane
    widget.run()
    wait_idle(qtbot, widget)
    after = viewer.layers["stack autoseg"].data
    assert not after[1].any()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[2], before[2])


def test_autoseg_live_preview_and_rename(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(disks_image(), name="a")
    widget = AutosegWidget(viewer)
    widget.min_area.setValue(10)
    widget.live_preview.setChecked(True)
    qtbot.waitUntil(lambda: "a autoseg" in viewer.layers, timeout=10000)
    qtbot.waitUntil(lambda: widget._preview_worker is None, timeout=10000)
    assert len(np.unique(viewer.layers["a autoseg"].data)) - 1 == 3
    widget.min_area.setValue(100_000)
    qtbot.waitUntil(lambda: not viewer.layers["a autoseg"].data.any(), timeout=10000)

    image.name = "renamed"
    assert widget.image_choice.currentText() == "renamed"
    viewer.layers.remove("a autoseg")
    viewer.layers.remove(image)
    assert widget.image_choice.layer() is None


def test_autoseg_errors_become_notifications(make_napari_viewer, qtbot, monkeypatch):
    from napari_synthseg._napari import autoseg_widget

    messages = []
    monkeypatch.setattr(autoseg_widget, "notify_error", messages.append)
    monkeypatch.setattr("napari_synthseg._napari._common.notify_error", messages.append)
    viewer = make_napari_viewer()
    widget = AutosegWidget(viewer)
    widget.run_button.click()  # no image at all
    assert messages and "Image layer" in messages[-1]
    viewer.add_image(disks_image(), name="img")
    widget.add_button.click()  # not segmented yet
    assert "Auto-segment first" in messages[-1]
    assert len(viewer.layers) == 1


def test_autoseg_reads_a_multiscale_layer_at_full_resolution(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = disks_image(shape=(192, 256), centres=((60, 60), (120, 180), (140, 60)), radius=20)
    viewer.add_image([image, image[::2, ::2]], name="pyramid", multiscale=True)  # an OME-Zarr's levels
    widget = AutosegWidget(viewer)
    widget.min_area.setValue(10)
    widget.run()
    wait_idle(qtbot, widget)
    labels = viewer.layers["pyramid autoseg"].data
    assert labels.shape == image.shape  # the finest level was segmented, not the coarsest
    assert len(np.unique(labels)) - 1 == 3 and labels[60, 60] and labels[120, 180] and labels[140, 60]
