"""Train and Segment docks end to end: child process, progress, Stop keeps the best model,
segmentation layer, a responsive event loop, and no TensorFlow in the napari process."""

from __future__ import annotations

import sys
import time

import numpy as np
from _images import grains
from qtpy.QtCore import QTimer

from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.train_widget import TrainWidget

# Tiny network and scenes: this checks the plumbing, not accuracy.
TINY = dict(patch=64, batch_size=2, validation_scenes=2, base_filters=4, depth=2, steps_per_epoch=2)
#: Generous on a shared, loaded 2-core machine; the figure is printed (run with -s).
MAX_STALL_MS = 300


class StallMeter:
    """A 10 ms QTimer recording the longest gap between its ticks (event-loop stalls)."""

    def __init__(self):
        self.max_gap_ms = 0.0
        self.ticks = 0
        self._last = None
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now
        self.ticks += 1

    def start(self):
        self._last = None
        self.timer.start()

    def stop(self):
        self.timer.stop()


def test_train_stop_segment_without_tensorflow(make_napari_viewer, qtbot, tmp_path, monkeypatch, shown_errors):
    errors = shown_errors
    from napari_synthseg.bank import ObjectBank

    image, labels = grains()
    bank = ObjectBank(tmp_path / "bank")
    assert bank.add_from_labels(image, labels, source="test") > 0

    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="em", scale=(2, 2))
    train = TrainWidget(viewer)
    train.bank_path.set_path(tmp_path / "bank")
    train.model_path.set_path(tmp_path / "model.keras")
    train.backgrounds.set_checked([layer])
    # a bank and an image without labels: the synthetic recipe (auto would choose mixed for these
    # bright discs, which a threshold labels, and ask for the image's labels)
    train.set_recipe("synthetic")
    train.set_budget("steps", 100_000)  # only Stop ends it

    meter = StallMeter()
    train.start(**TINY)
    assert train.busy and not train.start_button.isEnabled() and train.stop_button.isEnabled()
    meter.start()
    qtbot.waitUntil(lambda: train.n_progress_events >= 3 or not train.busy, timeout=120_000)
    assert train.busy, f"training ended early: {train.status.text()}"
    assert train.progress.value() > 0 and "loss" in train.loss_label.text()
    train.stop_button.click()
    qtbot.waitUntil(lambda: not train.busy, timeout=90_000)
    meter.stop()
    print(f"\nevent loop during training: max gap {meter.max_gap_ms:.1f} ms over {meter.ticks} ticks")
    assert meter.max_gap_ms < MAX_STALL_MS

    assert train.result is not None and train.result["cancelled"] is True
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "model.json").is_file()
    assert train.start_button.isEnabled() and not train.stop_button.isEnabled()
    assert train.plot.series["loss"]

    stack = np.stack([image, grains(seed=1)[0]])
    stack_layer = viewer.add_image(stack, name="stack")
    segment = SegmentWidget(viewer)
    segment.image_choice.set_layer(stack_layer)
    segment.model_path.set_path(tmp_path / "model.keras")
    segment.tile.setValue(64)
    segment.min_area.setValue(0)
    segment.augment.setChecked(True)
    assert segment.skip_scale_bar.isChecked()  # on by default, as in the Auto-segment dock
    segment.skip_scale_bar.setChecked(False)
    assert segment.skip_drawn.isChecked()  # drawn bars and lettering left out by default, as predict does
    segment.skip_drawn.setChecked(False)
    from napari_synthseg.model.runner import ModelJob

    sent = []
    real_start = ModelJob.start_prediction

    def recording_start(job, *args, **kwargs):
        sent.append(kwargs)
        return real_start(job, *args, **kwargs)

    monkeypatch.setattr(ModelJob, "start_prediction", recording_start)
    segment.run()
    assert segment.busy and not segment.run_button.isEnabled()
    qtbot.waitUntil(lambda: not segment.busy, timeout=120_000)
    assert "stack segmentation" in viewer.layers, (segment.status.text(), errors)
    result = viewer.layers["stack segmentation"]
    assert result.data.shape == stack.shape and result.data.dtype == np.uint32
    assert segment.progress.value() == 1000
    assert sent[-1]["augment"] is True and sent[-1]["tile"] == 64 and sent[-1]["ignore_box"] is None
    assert sent[-1]["drop_overlays"] is False

    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


def test_bad_inputs_are_notifications(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr("napari_synthseg._napari._common.notify_error", messages.append)
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.uint8), name="em")
    train = TrainWidget(viewer)
    train.start_button.click()
    assert "bank" in messages[-1]
    train.bank_path.set_path(tmp_path / "not-a-bank")
    train.model_path.set_path(tmp_path / "m.keras")
    train.start_button.click()
    assert "not an object bank" in messages[-1]
    assert not train.busy

    segment = SegmentWidget(viewer)
    segment.model_path.set_path(tmp_path / "missing.keras")
    segment.run_button.click()
    assert "does not exist" in messages[-1]
    assert not segment.busy and len(viewer.layers) == 1
