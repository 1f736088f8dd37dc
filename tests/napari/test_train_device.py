"""The Train and Segment docks say whether the model process runs on a CPU or a GPU (its ``device`` event)."""

from __future__ import annotations

import numpy as np
from test_dock_errors import fake_model, wait_idle  # noqa: F401 (fixture)
from test_widget_progress import scripted_jobs  # noqa: F401 (fixture)

from napari_synthseg._napari._jobs import describe_device
from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.train_widget import DEVICE_UNKNOWN, TrainWidget


def test_train_dock_shows_the_device_the_child_reports(make_napari_viewer, qtbot, tmp_path, bank_dir,
                                                       scripted_jobs):  # noqa: F811
    train = TrainWidget(make_napari_viewer())
    train.bank_path.set_path(bank_dir)
    train.model_path.set_path(tmp_path / "model.keras")
    train.set_budget("steps", 2)
    assert train.device_label.text() == DEVICE_UNKNOWN
    shown = []
    train.device_label.setText = lambda text, real=train.device_label.setText: (shown.append(text), real(text))
    scripted_jobs["events"] = [
        {"kind": "started", "pid": 11, "backend": "tensorflow"},
        {"kind": "phase", "task": "train", "phase": "loading TensorFlow"},
        {"kind": "device", "backend": "tensorflow", "device": "GPU", "device_name": "NVIDIA H200", "n_gpus": 1},
        {"kind": "phase", "task": "train", "phase": "building the model"}]
    train.start()
    wait_idle(qtbot, train)
    assert shown[0] == DEVICE_UNKNOWN  # a new run forgets the last run's device at once
    assert train.device_label.text() == "training on a GPU: NVIDIA H200 (TensorFlow)"  # kept after the run

    train.replace.setChecked(True)
    scripted_jobs["events"] = [{"kind": "device", "backend": "tensorflow", "device": "CPU", "device_name": "",
                                "n_gpus": 0}]
    train.start()
    wait_idle(qtbot, train)
    assert train.device_label.text() == "training on the CPU (TensorFlow; no GPU found)"


def test_device_lines():
    assert describe_device({"backend": "tensorflow", "device": "GPU", "device_name": "A100", "n_gpus": 3}) == (
        "training on a GPU: A100 (+2 more GPUs) (TensorFlow)")
    assert describe_device({"backend": "jax", "device": "unknown", "device_name": ""}) == (
        "training on an unknown device (JAX)")
    assert describe_device({"backend": "tensorflow", "device": "CPU"}, "segmenting 2 plane(s)") == (
        "segmenting 2 plane(s) on the CPU (TensorFlow; no GPU found)")


def test_segment_dock_says_where_it_segments(make_napari_viewer, qtbot, tmp_path, scripted_jobs):  # noqa: F811
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((30, 40), np.uint8), name="em")
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(fake_model(tmp_path / "model.keras"))
    shown = []
    segment.status.setText = lambda text, real=segment.status.setText: (shown.append(text), real(text))
    scripted_jobs["events"] = [
        {"kind": "device", "backend": "tensorflow", "device": "GPU", "device_name": "NVIDIA H200", "n_gpus": 1},
        {"kind": "result", "task": "predict", "index": 0, "labels": np.zeros((30, 40), np.uint32),
         "foreground": np.zeros((30, 40), np.float32), "n_unconfident": 0}]
    segment.run()
    wait_idle(qtbot, segment)
    assert "segmenting 1 plane(s) on a GPU: NVIDIA H200 (TensorFlow)…" in shown
