"""The Train dock's recipe: decided from the ticked images as synthseg run decides it, and the mixed
recipe trained from the dock as synthseg run trains it (anchored inputs, real crops, the decision
recorded in the model's sidecar)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from test_dock_errors import wait_idle

from napari_synthseg._napari.autoseg_widget import AUTOSEG_METADATA, AutosegWidget
from napari_synthseg._napari.train_widget import TrainWidget
from napari_synthseg.sample_data import make_sample_scene

# Tiny network and scenes: this checks the plumbing, not accuracy.
TINY = dict(patch=64, batch_size=2, validation_scenes=2, base_filters=4, depth=2, steps_per_epoch=2)


def bright_and_dark_field(shape=(128, 160)):
    """A bright-field sample scene and a dark-field one (an inverted scene), with their labels."""
    bright, bright_labels = make_sample_scene(seed=1, shape=shape)
    other, dark_labels = make_sample_scene(seed=2, shape=shape)
    return (bright, bright_labels), ((255 - other).astype(np.uint8), dark_labels)


def test_the_dock_shows_the_decision_and_sends_the_mixed_recipe(make_napari_viewer, qtbot, tmp_path, started_jobs,
                                                               monkeypatch):
    from types import SimpleNamespace

    warnings, removed = [], []
    monkeypatch.setattr("napari_synthseg._napari.train_widget.notify_warning", warnings.append)
    # the recipe's bank folder is removed once the job ends: kept here to look into it
    monkeypatch.setattr("napari_synthseg._napari.train_widget.shutil",
                        SimpleNamespace(rmtree=lambda path, **kw: removed.append(Path(path))))
    (bright, bright_labels), (dark, dark_labels) = bright_and_dark_field()
    viewer = make_napari_viewer()
    bright_layer = viewer.add_image(bright, name="bright")
    dark_layer = viewer.add_image(dark, name="dark")
    # found by the Auto-segment dock's naming; made with Otsu, not the mixed recipe's method
    viewer.add_labels(bright_labels, name="bright autoseg", metadata={AUTOSEG_METADATA: {"method": "otsu"}})
    chosen = viewer.add_labels(dark_labels, name="hand-made")  # chosen in the table
    train = TrainWidget(viewer)
    assert train.recipe_name() == "auto" and train.recipe.currentText() == "auto (decided from the images)"
    assert "tick images" in train.recipe_line.text()

    train.backgrounds.set_checked([bright_layer, dark_layer])
    mixed_line = ("recipe: mixed (mixed contrasts: objects bright in 1 and dark in 1 of 2 images; "
                  "override with the recipe box)")
    qtbot.waitUntil(lambda: train.recipe_line.text() == mixed_line, timeout=5_000)
    assert train.labels_table.rowCount() == 2
    assert train.labels_table.labels_for(bright_layer) is viewer.layers["bright autoseg"]
    assert train.labels_table.labels_for(dark_layer) is None
    train.labels_table.set_labels(dark_layer, chosen)
    assert train.labels_table.cellWidget(1, 1).currentText() == "hand-made"

    train.model_path.set_path(tmp_path / "model.keras")  # no bank folder: the mixed recipe cuts its own
    train.set_budget("steps", 3)
    train.start_button.click()
    wait_idle(qtbot, train)
    ((task, kwargs),) = started_jobs
    assert task == "train" and kwargs["steps"] == 3
    assert kwargs["normalization"] == "anchored" and kwargs["real_fraction"] == 0.5
    assert [np.array_equal(labels, lab) for (_, labels), lab in
            zip(kwargs["real_training"], (bright_labels, dark_labels))] == [True, True]
    assert [np.array_equal(image, raw) for (image, _), raw in zip(kwargs["real_training"], (bright, dark))] \
        == [True, True]  # real crops from the images as they are; the child anchors them
    assert kwargs["real_validation"] == kwargs["real_training"]
    assert kwargs["sidecar_entries"]["recipe"]["name"] == "mixed"
    assert kwargs["sidecar_entries"]["recipe"]["chosen_by"] == "images"
    # bank and backgrounds cut from the anchored images (pipeline.recipe_inputs), not a bank folder
    objects = kwargs["bank"].objects()
    assert objects and max(float(np.max(o.image)) for o in objects) <= 1.0
    assert {o.meta["source"] for o in objects} == {"bright", "dark"}
    assert list(kwargs["backgrounds"].names) == ["bright", "dark"]
    assert train._recipe_folder is None and removed == [Path(kwargs["bank"].path).parent]
    assert len(warnings) == 1 and "'bright autoseg' (otsu)" in warnings[0] and "'edge'" in warnings[0]

    import shutil

    shutil.rmtree(removed[0])
    train.set_recipe("synthetic")
    qtbot.waitUntil(lambda: train.recipe_line.text() == "recipe: synthetic (chosen with the recipe box)",
                    timeout=5_000)


def test_the_dock_sends_the_synthetic_recipes_scene_settings(make_napari_viewer, qtbot, tmp_path, bank_dir,
                                                             started_jobs):
    from napari_synthseg.recipe import choose_recipe

    image, _ = make_sample_scene(seed=0, shape=(192, 256))  # mid-gray and dark grains beside bright ones
    expected = choose_recipe([image])
    assert expected.name == "synthetic" and expected.evidence["missed_on_other_side"] > 0
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="grains")
    train = TrainWidget(viewer)
    train.backgrounds.set_checked([layer])
    qtbot.waitUntil(lambda: train.recipe_line.text().startswith("recipe: synthetic (one contrast"), timeout=5_000)
    assert "of them darker than the background" in train.recipe_line.text()
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    train.set_budget("steps", 3)
    train.start_button.click()
    wait_idle(qtbot, train)
    ((task, kwargs),) = started_jobs
    # the restyled objects fall on the background's two sides in the share the image shows, as in synthseg run
    assert task == "train" and kwargs["scene_params"] == expected.train["scene_params"]
    assert kwargs["sidecar_entries"]["recipe"]["evidence"] == expected.evidence


def test_a_mixed_recipe_trained_from_the_dock_records_it_like_synthseg_run(make_napari_viewer, qtbot, tmp_path,
                                                                          monkeypatch, shown_errors):
    errors, warnings = shown_errors, []
    monkeypatch.setattr("napari_synthseg._napari.train_widget.notify_warning", warnings.append)
    # every real image goes to the child as a .npy file, as a large one would
    monkeypatch.setattr("napari_synthseg.model.runner.QUEUE_ARRAY_LIMIT", 1024)
    (bright, _), (dark, _) = bright_and_dark_field()
    viewer = make_napari_viewer()
    layers = [viewer.add_image(bright, name="bright"), viewer.add_image(dark, name="dark")]
    autoseg = AutosegWidget(viewer)
    autoseg.method.setCurrentText("edge")
    for layer in layers:
        autoseg.image_choice.set_layer(layer)
        autoseg.run()
        qtbot.waitUntil(lambda: not autoseg.busy, timeout=60_000)
    assert "bright autoseg" in viewer.layers and "dark autoseg" in viewer.layers, errors
    assert viewer.layers["dark autoseg"].metadata[AUTOSEG_METADATA]["method"] == "edge"

    train = TrainWidget(viewer)
    train.backgrounds.set_checked(layers)
    train.model_path.set_path(tmp_path / "model.keras")
    train.set_budget("steps", 4)
    train.start(**TINY)
    assert train.busy
    qtbot.waitUntil(lambda: not train.busy, timeout=240_000)
    assert errors == [] and train.result is not None, train.status.text()
    assert warnings == []  # labels made with the mixed recipe's method
    assert train.recipe_line.text().startswith("recipe: mixed (mixed contrasts")

    info = json.loads((tmp_path / "model.json").read_text())
    assert info["normalization"]["mode"] == "anchored"
    assert info["training"]["real_training_images"] == 2 and info["training"]["real_validation_images"] == 2
    assert info["training"]["real_fraction"] == 0.5
    assert info["recipe"]["name"] == "mixed" and info["recipe"]["chosen_by"] == "images"
    assert info["recipe"]["evidence"]["bright"] == 1 and info["recipe"]["evidence"]["dark"] == 1
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules
