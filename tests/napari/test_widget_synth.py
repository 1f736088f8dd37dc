"""Synthesize dock: scenes shown as layers, scenes written to a folder, cancel, bad input."""

from __future__ import annotations

import numpy as np
from _images import grains as _grains

from napari_synthseg._napari.synth_widget import SCENE_IMAGE_LAYER, SCENE_LABELS_LAYER, SynthWidget


def grains(seed=0):
    return _grains(seed=seed, n=6)


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=30000)


def test_show_and_write_scenes(make_napari_viewer, qtbot, tmp_path, bank_dir):
    viewer = make_napari_viewer()
    background = viewer.add_image(grains(seed=3)[0], name="real")
    widget = SynthWidget(viewer)
    widget.bank_path.set_path(bank_dir)
    widget.backgrounds.set_checked([background])
    widget.height.setValue(64)
    widget.width.setValue(80)
    widget.min_objects.setValue(3)
    widget.max_objects.setValue(6)
    widget.n_show.setValue(2)
    widget.show_scenes()
    wait_idle(qtbot, widget)
    images, labels = viewer.layers[SCENE_IMAGE_LAYER].data, viewer.layers[SCENE_LABELS_LAYER].data
    assert images.shape == labels.shape == (2, 64, 80)
    assert labels.max() > 0 and images.dtype == np.float32
    assert len(viewer.layers) == 3
    assert viewer.layers.selection.active is background  # showing scenes keeps the user's layer selected

    widget.show_scenes()  # again: layers replaced, not duplicated
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == 3

    out = tmp_path / "scenes"
    widget.out_dir.set_path(out)
    widget.n_write.setValue(3)
    widget.write_scenes()
    wait_idle(qtbot, widget)
    images, labels = (out / "images").glob("*.png"), (out / "labels").glob("*.tif")
    assert sorted(p.stem for p in images) == sorted(p.stem for p in labels)
    assert len(list((out / "images").glob("*.png"))) == 3
    widget.write_scenes()  # same seed again: new names, nothing overwritten
    wait_idle(qtbot, widget)
    assert len(list((out / "labels").glob("*.tif"))) == 6


def test_cancel_leaves_complete_pairs(make_napari_viewer, qtbot, tmp_path, bank_dir):
    viewer = make_napari_viewer()
    widget = SynthWidget(viewer)
    widget.bank_path.set_path(bank_dir)
    widget.height.setValue(256)
    widget.width.setValue(256)
    widget.out_dir.set_path(tmp_path / "out")
    widget.n_write.setValue(100_000)
    widget.write_scenes()
    qtbot.waitUntil(lambda: widget.progress.value() >= 2, timeout=30000)
    widget.cancel_button.click()
    wait_idle(qtbot, widget)
    images = sorted(p.stem for p in (tmp_path / "out" / "images").glob("*.png"))
    labels = sorted(p.stem for p in (tmp_path / "out" / "labels").glob("*.tif"))
    assert 2 <= len(images) < 100_000 and images == labels
    assert "cancelled" in widget.status.text()
    assert not list((tmp_path / "out").rglob("*.tmp*"))


def test_bad_bank_is_a_notification(make_napari_viewer, tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr("napari_synthseg._napari._common.notify_error", messages.append)
    viewer = make_napari_viewer()
    widget = SynthWidget(viewer)
    widget.show_button.click()
    assert "bank" in messages[-1]
    widget.bank_path.set_path(tmp_path)
    widget.show_button.click()
    assert "not an object bank" in messages[-1]
    assert not widget.busy and len(viewer.layers) == 0
