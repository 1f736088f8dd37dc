"""Train dock: a U-Net trained on synthetic scenes in a child process, driven by a thread worker."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ._common import (
    row,
    stack,
    status_label,
    LayerChecklist,
    PathPicker,
    connect_click,
    describe_error,
    gray_backgrounds,
    notify_error,
    notify_info,
    safe_slot,
)
from ..model import DEFAULT_BASE_FILTERS, DEFAULT_DEPTH
from ._jobs import job_worker
from ._plots import LinePlot

if TYPE_CHECKING:
    import napari


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class TrainWidget(QWidget):
    """Train a segmentation model from an object bank and background layers; Stop keeps the best."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent=None):
        super().__init__(parent)
        from napari.layers import Image

        self.viewer = napari_viewer
        self._worker = None
        self._stop_requested = threading.Event()
        self.result: dict | None = None
        self.last_progress: dict | None = None
        self.n_progress_events = 0

        self.bank_path = PathPicker("dir", "Object bank folder")
        self.backgrounds = LayerChecklist(napari_viewer, Image)
        self.backgrounds.setToolTip("Real images whose background the synthetic scenes imitate (current plane)")
        self.steps = _spin(0, 10_000_000, 500, 50)
        self.steps.setToolTip("Training steps (0 = no step limit; then minutes decide)")
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0, 10_000)
        self.minutes.setDecimals(1)
        self.minutes.setToolTip("Wall-clock budget in minutes (0 = no time limit)")
        self.model_path = PathPicker("save", "Model file", "Keras model (*.keras)")
        self.base_filters = _spin(2, 128, DEFAULT_BASE_FILTERS)
        self.depth = _spin(1, 6, DEFAULT_DEPTH)
        self.patch = _spin(32, 2048, 256, 32)
        self.batch_size = _spin(1, 64, 4)
        self.validation_scenes = _spin(1, 1000, 16)
        self.seed = _spin(0, 2**31 - 1, 0)
        self.resume = QCheckBox("continue from the model file")

        self.start_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop (keep best)")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.loss_label = QLabel("loss –")
        self.iou_label = QLabel("val IoU –")
        self.plot = LinePlot("loss")
        self.status = status_label()

        form = QFormLayout()
        form.addRow("bank folder", self.bank_path)
        form.addRow("backgrounds", self.backgrounds)
        form.addRow("steps", self.steps)
        form.addRow("minutes", self.minutes)
        form.addRow("model file", self.model_path)
        advanced = QGroupBox("advanced")
        advanced_form = QFormLayout(advanced)
        advanced_form.addRow("base filters", self.base_filters)
        advanced_form.addRow("depth", self.depth)
        advanced_form.addRow("patch (px)", self.patch)
        advanced_form.addRow("batch size", self.batch_size)
        advanced_form.addRow("validation scenes", self.validation_scenes)
        advanced_form.addRow("seed", self.seed)
        advanced_form.addRow(self.resume)
        stack(self, form, advanced, row(self.start_button, self.stop_button), self.progress,
              row(self.loss_label, self.iou_label), self.plot, self.status)
        self._inputs = [self.bank_path, self.backgrounds, self.steps, self.minutes, self.model_path, advanced]

        connect_click(self.start_button, self.start)
        connect_click(self.stop_button, self.stop)
        self.destroyed.connect(self._stop_requested.set)  # closing the dock ends the child too

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def train_kwargs(self) -> dict:
        """The ``train_model`` keyword arguments (without backgrounds) the controls describe."""
        bank = self.bank_path.path()
        if bank is None:
            raise ValueError("choose the object bank folder to train from (fill it with Auto-segment or Curate)")
        from napari_synthseg.bank import ObjectBank

        if not ObjectBank.is_bank(bank):
            raise ValueError(f"{bank} is not an object bank; add objects to it with Auto-segment or Curate first")
        model = self.model_path.path()
        if model is None:
            raise ValueError("choose where to save the model (a .keras file)")
        if model.suffix != ".keras":
            model = model.with_suffix(".keras")
            self.model_path.set_path(model)
        steps, minutes = self.steps.value(), self.minutes.value()
        if steps == 0 and minutes == 0:
            raise ValueError("set a budget: a number of steps, a number of minutes, or both")
        return dict(
            bank=str(bank),
            model_path=str(model),
            steps=steps or None,
            minutes=minutes or None,
            patch=self.patch.value(),
            batch_size=self.batch_size.value(),
            validation_scenes=self.validation_scenes.value(),
            base_filters=self.base_filters.value(),
            depth=self.depth.value(),
            seed=self.seed.value(),
            resume=self.resume.isChecked(),
        )

    def start(self, **extra) -> None:
        """Start training in a child process; ``extra`` overrides/extends the train kwargs."""
        if self.busy:
            return
        kwargs = {**self.train_kwargs(), **extra}
        layers = self.backgrounds.checked_layers()
        kwargs.setdefault("backgrounds", gray_backgrounds(layers, self.viewer) or None)
        self.result, self.last_progress, self.n_progress_events = None, None, 0
        self._stop_requested.clear()
        self.plot.clear()
        self.progress.setRange(0, 0)  # busy until the first step arrives
        worker = job_worker(lambda job: job.start_training(**kwargs), self._stop_requested)
        self._worker = worker
        self._set_running(True)
        self.status.setText("starting the training process…")
        worker.yielded.connect(safe_slot(self._on_event))
        worker.errored.connect(lambda exc: notify_error(f"training failed: {describe_error(exc)}"))
        worker.finished.connect(self._finished)
        worker.start()

    def stop(self) -> None:
        """Ask the child to stop; it saves the best model so far, then the worker ends."""
        if self.busy:
            self._stop_requested.set()
            self.stop_button.setEnabled(False)
            self.status.setText("stopping; the best model so far is kept…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in self._inputs:
            widget.setEnabled(not running)

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "started":
            self.status.setText(f"training (process {event.get('pid')}, backend {event.get('backend')})")
        elif kind == "progress":
            self._show_progress(event)
        elif kind == "result":
            self.result = event
            verb = "stopped" if event.get("cancelled") else "finished"
            best = event.get("best_metric")
            best_text = f"{best:.3f}" if isinstance(best, (int, float)) else "–"
            self.status.setText(f"{verb} after {event.get('steps_done')} steps; best val IoU {best_text}; "
                                f"model: {event.get('model_path')}")
            notify_info(f"training {verb}; model saved to {event.get('model_path')}")
        elif kind == "error":
            notify_error(f"training failed: {event.get('message')}")
            self.status.setText(f"error: {event.get('message')}")

    def _show_progress(self, event: dict) -> None:
        self.last_progress = event
        self.n_progress_events += 1
        step, total = int(event.get("step") or 0), event.get("total_steps")
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(step, int(total)))
        elif self.minutes.value() and event.get("elapsed_s") is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(min(1.0, event["elapsed_s"] / (60 * self.minutes.value())) * 1000))
        loss, val_loss, val_iou = event.get("loss"), event.get("val_loss"), event.get("val_iou")
        if loss is not None:
            self.loss_label.setText(f"step {step}  loss {loss:.4f}")
            self.plot.add_point("loss", step, loss)
        if val_loss is not None:
            self.plot.add_point("val loss", step, val_loss)
        if val_iou is not None:
            self.iou_label.setText(f"val IoU {val_iou:.3f}")

    def _finished(self) -> None:
        self._worker = None
        self._set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
