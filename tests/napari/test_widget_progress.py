"""What the Train and Segment docks say while and after a job runs: each training phase named, the
previous run's figures cleared, and the objects the minimum confidence left out counted."""

from __future__ import annotations

import numpy as np
import pytest
from test_dock_errors import fake_model, wait_idle  # noqa: F401 (fixtures)

from napari_synthseg._napari import segment_widget, train_widget
from napari_synthseg._napari._common import quiet_worker
from napari_synthseg._napari._train_progress import PHASES
from napari_synthseg._napari.segment_widget import DISTANCE_METADATA, SegmentWidget
from napari_synthseg._napari.train_widget import TrainWidget


@pytest.fixture
def scripted_jobs(monkeypatch):
    """Docks run jobs that send the events in ``scripted_jobs["events"]`` (no child process)."""
    script = {"events": [], "started": []}

    class RecordingJob:
        def start_training(self, **kwargs):
            script["started"].append(("train", kwargs))

        def start_prediction(self, model_path, images, **kwargs):
            script["started"].append(("predict", kwargs))

        def start_retraining(self, model_path, bank, curated, **kwargs):
            script["started"].append(("retrain", dict(kwargs, model_path=model_path, bank=bank, curated=curated)))

    def fake_job_worker(start, stop_requested, stop_timeout=30.0):
        start(RecordingJob())
        events = list(script["events"])

        def relay():
            yield from events
            yield {"kind": "done"}

        return quiet_worker(relay)

    monkeypatch.setattr(train_widget, "job_worker", fake_job_worker)
    monkeypatch.setattr(segment_widget, "job_worker", fake_job_worker)
    return script


def progress(step, loss, val_iou=None, elapsed=1.0):
    return {"kind": "progress", "task": "train", "step": step, "total_steps": None, "loss": loss,
            "val_loss": None, "val_iou": val_iou, "elapsed_s": elapsed, "best": None, "phase": "train"}


def test_train_names_each_phase_and_clears_the_previous_run(make_napari_viewer, qtbot, tmp_path, bank_dir,
                                                            scripted_jobs, monkeypatch):
    viewer = make_napari_viewer()
    train = TrainWidget(viewer)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    train.set_budget("minutes", 2)
    seen = []  # (phase, status line, loss label, val IoU label) when each phase is shown
    real_show = TrainWidget._show_phase

    def recording_show(widget, phase):
        real_show(widget, phase)
        seen.append((phase, widget.status.text(), widget.loss_label.text(), widget.iou_label.text()))

    monkeypatch.setattr(TrainWidget, "_show_phase", recording_show)
    result = {"kind": "result", "task": "train", "model_path": str(tmp_path / "model.keras"), "best_metric": 0.7,
              "steps_done": 2, "cancelled": False}
    scripted_jobs["events"] = [
        {"kind": "started", "pid": 4321, "backend": "tensorflow"},
        *({"kind": "phase", "task": "train", "phase": name} for name in PHASES[1:4]),
        progress(1, 0.9, elapsed=50.0), progress(2, 0.5, elapsed=80.0),
        {"kind": "phase", "task": "train", "phase": "validating"},
        {**progress(2, 0.5, val_iou=0.7, elapsed=85.0), "phase": "validation"},
        {"kind": "phase", "task": "train", "phase": "saving"}, result]
    train.start()
    wait_idle(qtbot, train)
    assert [phase for phase, *_ in seen] == list(PHASES)
    assert seen[0][1] == "starting Python…"
    assert seen[1][1].startswith("loading TensorFlow… (process 4321)")
    assert "2-minute budget starts at the first training step" in seen[1][1]
    assert train.loss_label.text() == "step 2  loss 0.5000" and train.iou_label.text() == "val IoU 0.700"
    assert "finished after 2 steps" in train.status.text() and train.phase is None
    # the minutes bar counts from the first step (elapsed 50 s), not from the child's start
    assert train.progress.maximum() == 1000 and train.progress.value() == int(35 / 120 * 1000)

    seen.clear()
    train.replace.setChecked(True)
    scripted_jobs["events"] = [{"kind": "started", "pid": 99, "backend": "tensorflow"},
                               {"kind": "phase", "task": "train", "phase": "loading TensorFlow"}]
    train.start()
    assert seen[0][:2] == ("starting Python", "starting Python…")
    assert seen[0][2:] == ("loss –", "val IoU –")  # the last run's figures are gone at once
    assert not train.plot.series.get("loss")
    wait_idle(qtbot, train)


def test_segment_says_how_many_objects_the_confidence_filter_left_out(make_napari_viewer, qtbot, tmp_path,
                                                                      scripted_jobs):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((30, 40), np.uint8), name="em", scale=(2, 2))
    labels = np.zeros((30, 40), np.uint32)
    labels[5:10, 5:10] = 1
    foreground = np.linspace(0, 1, 30 * 40, dtype=np.float32).reshape(30, 40)
    distance = foreground[::-1].copy()
    scripted_jobs["events"] = [{"kind": "result", "task": "predict", "index": 0, "labels": labels,
                                "foreground": foreground, "distance": distance, "n_unconfident": 15}]
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(fake_model(tmp_path / "model.keras"))
    segment.run()
    wait_idle(qtbot, segment)
    ((task, kwargs),) = scripted_jobs["started"]
    assert task == "predict" and kwargs["details"] is True and kwargs["min_confidence"] == 0.8
    text = segment.status.text()
    assert text.startswith("1 objects in 1 plane(s) → layer 'em segmentation'")
    assert "min confidence 0.80 left out 15 more objects" in text and "lower 'min confidence'" in text
    probability = viewer.layers["em foreground probability"]
    np.testing.assert_array_equal(probability.data, foreground)
    assert not probability.visible and tuple(probability.scale) == tuple(image.scale)
    np.testing.assert_array_equal(probability.metadata[DISTANCE_METADATA], distance)  # for Curate's Add

    scripted_jobs["events"] = [{"kind": "result", "task": "predict", "index": 0, "labels": labels,
                                "foreground": foreground, "n_unconfident": 0, "zooms": [1.0]}]
    segment.run()
    wait_idle(qtbot, segment)
    assert "left out" not in segment.status.text() and "shrunk" not in segment.status.text()

    scripted_jobs["events"] = [{"kind": "result", "task": "predict", "index": 0, "labels": labels,
                                "foreground": foreground, "n_unconfident": 0, "zooms": [0.25]}]
    segment.run()
    wait_idle(qtbot, segment)
    assert "1 of 1 plane(s) segmented shrunk to 0.25 of their size" in segment.status.text()


def test_a_curation_round_from_the_train_dock(make_napari_viewer, qtbot, tmp_path, bank_dir, scripted_jobs,
                                              shown_errors):
    from napari_synthseg._napari.curate_widget import CurateWidget
    from napari_synthseg._napari.simulate import click

    viewer = make_napari_viewer()
    image = np.full((40, 50), 30, np.uint8)
    image[5:15, 5:15] = 200
    labels = np.zeros((40, 50), np.uint32)
    labels[5:15, 5:15] = 4
    labels[30:33, 40:43] = 6
    layer = viewer.add_image(image, name="em")
    labels_layer = viewer.add_labels(labels, name="em segmentation")
    train = TrainWidget(viewer)
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(fake_model(tmp_path / "model.keras"))
    train.set_budget("steps", 20)
    train.retrain_button.click()  # nothing curated yet
    assert len(shown_errors) == 1 and "no curated image" in shown_errors[0] and not scripted_jobs["started"]

    curate = CurateWidget(viewer)
    curate.set_mode("pick")
    click(labels_layer, (8, 8))
    curate.set_mode("reject")
    click(labels_layer, (31, 41))
    round2 = tmp_path / "model_round2.keras"
    scripted_jobs["events"] = [
        {"kind": "started", "pid": 7, "backend": "tensorflow"}, progress(1, 0.4, elapsed=30.0),
        {"kind": "result", "task": "retrain", "model_path": str(round2),
         "sidecar_path": str(round2.with_suffix(".json")),
         "round": 2, "clicks": 2, "cancelled": False}]
    train.retrain_button.click()
    assert train.busy and not train.start_button.isEnabled() and not train.retrain_button.isEnabled()
    wait_idle(qtbot, train)
    ((task, sent),) = scripted_jobs["started"]
    assert task == "retrain" and sent["model_path"] == str(tmp_path / "model.keras")
    assert sent["bank"] == str(bank_dir) and sent["steps"] == 20 and sent["out_path"] == str(round2)
    ((gray, curation),) = sent["curated"]
    np.testing.assert_array_equal(gray, image)
    assert curation.counts["pick"] == 1 and curation.counts["reject"] == 1
    assert curation.background[31, 41] and curation.objects[8, 8] > 0 and layer.metadata
    assert "round 2 finished (2 clicks)" in train.status.text() and str(round2) in train.status.text()
    assert "previous round's weights" not in train.status.text()
    assert train.model_path.path() == round2  # the next round continues from it
    assert shown_errors == [shown_errors[0]]

    train.set_budget("epochs", 2)
    train.retrain_button.click()
    assert "steps or minutes" in shown_errors[-1] and len(scripted_jobs["started"]) == 1

    fake_model(round2)  # the round's file, which the scripted job did not write
    round3 = tmp_path / "model_round3.keras"
    scripted_jobs["events"] = [
        {"kind": "started", "pid": 8, "backend": "tensorflow"}, progress(1, 0.4, elapsed=30.0),
        {"kind": "result", "task": "retrain", "model_path": str(round3),
         "sidecar_path": str(round3.with_suffix(".json")),
         "round": 3, "clicks": 4, "cancelled": False, "kept_previous": True}]
    train.set_budget("steps", 20)
    train.retrain_button.click()
    wait_idle(qtbot, train)
    assert "round 3 finished (4 clicks; it keeps the previous round's weights" in train.status.text()
