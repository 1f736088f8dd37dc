"""Every dock answers a bad input with one notification and leaves the layers as they were.

``shown_errors`` replaces napari's own ``show_error``, and an exception re-raised into the
event loop fails the test (pytest-qt), so "one notification, no traceback" is checked as a
whole. No test here imports TensorFlow; most start no child process at all.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _images import grains
from _layers import layer_snapshot, same_layers

from napari_synthseg._napari.autoseg_widget import AutosegWidget
from napari_synthseg._napari.curate_widget import CurateWidget
from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.synth_widget import SynthWidget
from napari_synthseg._napari.train_widget import BUDGET_DEFAULTS, TrainWidget

MISSING_BACKEND = ("model training and prediction need 'tensorflow', which is not installed; install it "
                   'with: pip install "napari-synthseg[cpu]" (or "napari-synthseg[gpu]" for an NVIDIA GPU)')


def wait_idle(qtbot, widget, timeout=30_000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def fake_model(path, sidecar=True):
    """A zip archive named .keras with a valid sidecar: passes the dock's checks, not Keras."""
    from napari_synthseg.model.sidecar import CHANNELS, SIDECAR_FORMAT

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps({"format": SIDECAR_FORMAT, "channels": list(CHANNELS)}))
    return path


# ---------------------------------------------------------------------- Train
def test_train_offers_one_budget_at_a_time(make_napari_viewer, qtbot, tmp_path, bank_dir, started_jobs):
    viewer = make_napari_viewer()
    train = TrainWidget(viewer)
    kinds = [train.budget_kind.itemText(i) for i in range(train.budget_kind.count())]
    assert kinds == ["steps", "minutes", "epochs"]
    assert train.budget_kwargs() == {"steps": 500}
    train.budget_kind.setCurrentText("minutes")
    assert train.budget_kwargs() == {"minutes": BUDGET_DEFAULTS["minutes"]}
    train.budget.setValue(2.5)
    train.budget_kind.setCurrentText("epochs")
    assert train.budget_kwargs() == {"epochs": 10}
    train.budget_kind.setCurrentText("minutes")  # each kind keeps its own value
    assert train.budget_kwargs() == {"minutes": 2.5}
    train.budget.setValue(0)  # clamped: a budget of 0 cannot be entered
    assert train.budget.value() > 0

    train.budget.setValue(2.5)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    train.real_clumps.setCurrentText("labels")  # the command line's --real-clumps, from the dock
    train.start_button.click()
    wait_idle(qtbot, train)
    ((task, kwargs),) = started_jobs
    assert task == "train" and kwargs["minutes"] == 2.5 and kwargs["real_clumps"] == "labels"
    assert [key for key in ("steps", "epochs", "minutes") if kwargs.get(key) is not None] == ["minutes"]


def _train_refusals(tmp_path):
    """(name, how to set the dock up, words of the one notification)."""

    def empty_bank(train):
        from napari_synthseg.bank import ObjectBank

        ObjectBank(tmp_path / "empty")
        train.bank_path.set_path(tmp_path / "empty")

    def existing_model(train):
        (tmp_path / "model.keras").write_bytes(b"a trained model")

    def resume_without_model(train):
        train.resume.setChecked(True)

    def patch_off_the_grid(train):
        train.depth.setValue(6)
        train.patch.setValue(32)

    def model_folder_is_a_file(train):
        (tmp_path / "afile").write_text("x")
        train.model_path.set_path(tmp_path / "afile" / "model.keras")

    def model_is_a_folder(train):
        (tmp_path / "dir.keras").mkdir()
        train.model_path.set_path(tmp_path / "dir.keras")

    return [
        ("empty bank", empty_bank, "holds no objects"),
        ("existing model", existing_model, "exists; choose a new name"),
        ("resume without model", resume_without_model, "there is no model at"),
        ("patch not a multiple of 2**depth", patch_off_the_grid, "not a multiple of 2**depth = 64"),
        ("model folder is a file", model_folder_is_a_file, "is a file, not a folder"),
        ("model is a folder", model_is_a_folder, "is a folder"),
    ]


@pytest.mark.parametrize("case", range(6), ids=[c[0] for c in _train_refusals(None)])
def test_train_refuses_bad_settings_before_any_job(make_napari_viewer, qtbot, tmp_path, bank_dir, started_jobs,
                                                   shown_errors, case):
    _, set_up, words = _train_refusals(tmp_path)[case]
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    before = layer_snapshot(viewer)
    train = TrainWidget(viewer)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    set_up(train)
    train.start_button.click()
    assert len(shown_errors) == 1 and words in shown_errors[0], shown_errors
    assert started_jobs == [] and not train.busy and train.start_button.isEnabled()
    assert same_layers(before, layer_snapshot(viewer))


def test_train_replaces_a_model_only_when_asked(make_napari_viewer, qtbot, tmp_path, bank_dir, started_jobs):
    (tmp_path / "model.keras").write_bytes(b"a trained model")
    viewer = make_napari_viewer()
    train = TrainWidget(viewer)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    train.replace.setChecked(True)
    train.start_button.click()
    wait_idle(qtbot, train)
    assert [task for task, _ in started_jobs] == ["train"]


def _recipe_refusals():
    """(name, how to set the dock up, words of the one notification) for the mixed recipe's real images."""

    def no_images(train, viewer, image):
        train.backgrounds.set_checked([])

    def image_without_labels(train, viewer, image):
        viewer.layers.remove("em autoseg")

    def labels_of_another_shape(train, viewer, image):
        other = viewer.add_labels(grains(shape=(64, 64))[1], name="small labels")
        train.labels_table.set_labels(image, other)

    def empty_labels(train, viewer, image):
        viewer.layers["em autoseg"].data = np.zeros(image.data.shape, np.uint32)

    return [
        ("no image", no_images, "the mixed recipe trains on real images with their labels: tick at least one"),
        ("image without labels", image_without_labels, "image 'em' has no labels for the mixed recipe"),
        ("labels of another shape", labels_of_another_shape,
         "labels 'small labels' are 64×64 px but image 'em' is 96×128 px"),
        ("empty labels", empty_labels, "labels 'em autoseg' of image 'em' hold no objects"),
    ]


@pytest.mark.parametrize("case", range(4), ids=[c[0] for c in _recipe_refusals()])
def test_train_refuses_a_mixed_recipe_without_usable_labels(make_napari_viewer, qtbot, tmp_path, started_jobs,
                                                            shown_errors, case):
    _, set_up, words = _recipe_refusals()[case]
    image, labels = grains()
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="em")
    viewer.add_labels(labels, name="em autoseg")
    train = TrainWidget(viewer)
    train.set_recipe("mixed")
    train.backgrounds.set_checked([layer])
    train.model_path.set_path(tmp_path / "model.keras")
    set_up(train, viewer, layer)
    before = layer_snapshot(viewer)
    train.start_button.click()
    assert len(shown_errors) == 1 and words in shown_errors[0], shown_errors
    assert started_jobs == [] and not train.busy and train.start_button.isEnabled()
    assert same_layers(before, layer_snapshot(viewer))


@pytest.mark.parametrize("dock", ["train", "segment"])
def test_a_missing_backend_is_found_before_work_starts(make_napari_viewer, qtbot, tmp_path, bank_dir, started_jobs,
                                                       shown_errors, monkeypatch, dock):
    monkeypatch.setattr("napari_synthseg.backend.missing_backend_message", lambda backend=None: MISSING_BACKEND)
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    before = layer_snapshot(viewer)
    if dock == "train":
        widget = TrainWidget(viewer)
        widget.bank_path.set_path(bank_dir)
        widget.model_path.set_path(tmp_path / "model.keras")
        widget.start_button.click()
    else:
        widget = SegmentWidget(viewer)
        widget.model_path.set_path(fake_model(tmp_path / "model.keras"))
        widget.run_button.click()
    assert shown_errors == [MISSING_BACKEND]
    assert 'pip install "napari-synthseg[cpu]"' in shown_errors[0]
    assert started_jobs == [] and not widget.busy
    assert same_layers(before, layer_snapshot(viewer))


# ---------------------------------------------------------------------- Segment
@pytest.mark.parametrize("problem, words", [
    ("not a zip", "not a Keras model archive"),
    ("no sidecar", "sidecar"),
    ("a folder", "is a folder"),
])
def test_segment_refuses_an_unusable_model_before_any_job(make_napari_viewer, tmp_path, started_jobs, shown_errors,
                                                          problem, words):
    model = tmp_path / "model.keras"
    if problem == "not a zip":
        model.write_bytes(b"not an archive")
    elif problem == "no sidecar":
        fake_model(model, sidecar=False)
    else:
        model.mkdir()
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    viewer.add_labels(grains()[1], name="em segmentation")
    before = layer_snapshot(viewer)
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(model)
    segment.run_button.click()
    assert len(shown_errors) == 1 and words in shown_errors[0], shown_errors
    assert started_jobs == [] and not segment.busy
    assert same_layers(before, layer_snapshot(viewer))


class _ExitWhileUnpickled:
    """Unpickled in the model process, it ends that process with code 3 before it reports."""

    def __reduce__(self):
        return os._exit, (3,)


def test_segment_notices_a_model_process_that_died_before_starting(make_napari_viewer, qtbot, tmp_path,
                                                                   shown_errors, monkeypatch):
    from napari_synthseg._napari import segment_widget

    monkeypatch.setattr(segment_widget, "plane_gray", lambda layer, plane: _ExitWhileUnpickled())
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    before = layer_snapshot(viewer)
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(fake_model(tmp_path / "model.keras"))
    segment.run_button.click()
    wait_idle(qtbot, segment, timeout=60_000)
    assert len(shown_errors) == 1 and "exited with code 3 before it started" in shown_errors[0], shown_errors
    assert "no layer was changed" in segment.status.text()
    assert same_layers(before, layer_snapshot(viewer))


# ---------------------------------------------------------------------- Synthesize
def test_synth_refusals_and_worker_errors_are_one_notification(make_napari_viewer, qtbot, tmp_path, bank_dir,
                                                                shown_errors):
    from napari_synthseg.bank import ObjectBank

    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="real")
    tiny = viewer.add_image(np.full((3, 3), 100, np.uint8), name="tiny")
    before = layer_snapshot(viewer)
    widget = SynthWidget(viewer)
    ObjectBank(tmp_path / "empty bank")
    widget.bank_path.set_path(tmp_path / "empty bank")
    widget.show_button.click()
    assert shown_errors[-1:] and "holds no objects" in shown_errors[-1]

    widget.bank_path.set_path(bank_dir)
    (tmp_path / "a file").write_text("x")
    widget.out_dir.set_path(tmp_path / "a file")
    widget.write_button.click()
    assert len(shown_errors) == 2 and "is a file, not a folder" in shown_errors[-1]

    widget.backgrounds.set_checked([tiny])  # refused by the scene maker, in the worker
    widget.show_button.click()
    wait_idle(qtbot, widget)
    assert len(shown_errors) == 3 and "background" in shown_errors[-1], shown_errors
    assert not widget.busy and same_layers(before, layer_snapshot(viewer))


# ---------------------------------------------------------------------- Auto-segment
def test_autoseg_bank_error_in_the_worker_is_one_notification(make_napari_viewer, qtbot, tmp_path, shown_errors):
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    widget = AutosegWidget(viewer)
    widget.run()
    wait_idle(qtbot, widget)
    assert "em autoseg" in viewer.layers and not shown_errors
    before = layer_snapshot(viewer)
    (tmp_path / "bank.txt").write_text("not a bank")
    widget.bank_path.set_path(tmp_path / "bank.txt")
    widget.add_button.click()
    wait_idle(qtbot, widget)
    assert len(shown_errors) == 1 and "is a file, not an object bank folder" in shown_errors[0], shown_errors
    assert same_layers(before, layer_snapshot(viewer))


# ---------------------------------------------------------------------- Curate
def test_curate_export_errors_are_one_notification(make_napari_viewer, qtbot, tmp_path, shown_errors):
    image, labels = grains()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="em")
    layer = viewer.add_labels(labels, name="em labels")
    before = layer_snapshot(viewer)
    widget = CurateWidget(viewer)
    (tmp_path / "a file").write_text("x")
    widget.labels_path.set_path(tmp_path / "a file" / "labels.tif")
    widget.export_labels_button.click()
    assert len(shown_errors) == 1 and "is a file, not a folder" in shown_errors[0], shown_errors
    assert not widget.busy and same_layers(before, layer_snapshot(viewer))

    widget.set_mode("pick")
    widget.toggle_pick(layer, (), tuple(int(v) for v in np.argwhere(labels == 1)[0]))
    before = layer_snapshot(viewer)  # the pick layer is the only change
    widget.bank_path.set_path(tmp_path / "a file")  # refused by the bank, in the worker
    widget.export_picked_button.click()
    wait_idle(qtbot, widget)
    assert len(shown_errors) == 2 and "is a file, not an object bank folder" in shown_errors[1], shown_errors
    assert same_layers(before, layer_snapshot(viewer))


def test_curate_exports_never_replace_a_file_unasked(make_napari_viewer, qtbot, tmp_path, shown_errors):
    image, labels = grains()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="em")
    viewer.add_labels(labels, name="em labels")
    widget = CurateWidget(viewer)
    earlier = {tmp_path / "labels.tif": b"earlier labels", tmp_path / "sizes.csv": b"earlier sizes"}
    for path, content in earlier.items():
        path.write_bytes(content)
    widget.labels_path.set_path(tmp_path / "labels.tif")
    widget.export_labels_button.click()
    widget.csv_path.set_path(tmp_path / "sizes.csv")
    widget.export_csv_button.click()
    assert len(shown_errors) == 2 and all("already exists; tick 'replace existing files'" in e for e in shown_errors)
    assert {path: path.read_bytes() for path in earlier} == earlier and not widget.busy

    widget.replace_files.setChecked(True)  # asked for: replaced
    widget.export_labels_button.click()
    wait_idle(qtbot, widget)
    assert len(shown_errors) == 2
    from napari_synthseg.image_io import read_image

    assert np.array_equal(read_image(tmp_path / "labels.tif"), labels)


def test_unwritable_and_unreadable_paths_are_refused_up_front(make_napari_viewer, tmp_path, bank_dir, started_jobs,
                                                              shown_errors, monkeypatch):
    from napari_synthseg._napari import _checks

    # the tests may run as root, who may write anywhere: deny through os.access as a user would be denied
    # (writing everywhere, and reading the model file; the bank stays readable)
    model_file = tmp_path / "model.keras"
    monkeypatch.setattr(_checks.os, "access",
                        lambda path, mode: not mode & _checks.os.W_OK and Path(path) != model_file)
    viewer = make_napari_viewer()
    viewer.add_image(grains()[0], name="em")
    before = layer_snapshot(viewer)
    train = TrainWidget(viewer)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "models" / "model.keras")
    train.start_button.click()
    assert len(shown_errors) == 1 and f"no permission to write in {tmp_path}" in shown_errors[0], shown_errors
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(fake_model(model_file))
    segment.run_button.click()
    assert len(shown_errors) == 2, shown_errors
    assert "cannot read model file" in shown_errors[1] and "permission denied" in shown_errors[1], shown_errors
    assert started_jobs == [] and same_layers(before, layer_snapshot(viewer))


def test_planes_too_large_for_the_viewer_are_refused_with_the_command_that_tiles(make_napari_viewer, tmp_path,
                                                                                  started_jobs, shown_errors):
    import dask.array as da

    viewer = make_napari_viewer()
    viewer.add_image(da.zeros((9000, 8000), dtype=np.uint8, chunks=1000), name="mosaic")  # 72 Mpixel, lazy
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(fake_model(tmp_path / "model.keras"))
    segment.run_button.click()
    autoseg = AutosegWidget(viewer)
    autoseg.run_button.click()
    assert len(shown_errors) == 2, shown_errors
    assert "'mosaic' has planes of 8000 x 9000 pixels (72 Mpixel), too large to segment" in shown_errors[0]
    assert "synthseg predict" in shown_errors[0] and "synthseg autoseg" in shown_errors[1]
    assert started_jobs == [] and not segment.busy and not autoseg.busy
    assert [layer.name for layer in viewer.layers] == ["mosaic"]
