"""Train dock: a U-Net trained on synthetic scenes in a child process, driven by a thread worker."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
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
from ._checks import check_bank_has_objects, check_model_backend, check_writable_file, model_sidecar
from ._jobs import job_worker
from ._plots import LinePlot

if TYPE_CHECKING:
    import napari


#: The training budgets the dock offers (``train_model`` takes exactly one) and their first values.
BUDGET_DEFAULTS = {"steps": 500, "minutes": 10.0, "epochs": 10}
#: (lowest, highest, step, decimals) of the budget box for each kind.
BUDGET_RANGES = {"steps": (1, 10_000_000, 50, 0), "minutes": (0.1, 10_000, 1, 1), "epochs": (1, 100_000, 1, 0)}
#: Smallest background plane the synthetic scenes can learn from (``BackgroundSource``).
MIN_BACKGROUND_SIDE = 4


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
        self._budget: dict = {}

        self.bank_path = PathPicker("dir", "Object bank folder")
        self.backgrounds = LayerChecklist(napari_viewer, Image)
        self.backgrounds.setToolTip("Real images whose background the synthetic scenes imitate (current plane)")
        self.budget_kind = QComboBox()
        self.budget_kind.addItems(list(BUDGET_DEFAULTS))
        self.budget_kind.setToolTip("What ends training: a number of steps, of epochs (50 steps each, "
                                    "validated after each), or minutes of wall time. Stop ends it early "
                                    "and keeps the best model")
        self.budget = QDoubleSpinBox()
        self._budget_values = dict(BUDGET_DEFAULTS)
        self._show_budget(self.budget_kind.currentText())
        self.budget_kind.currentTextChanged.connect(self._show_budget)
        self.budget.valueChanged.connect(self._remember_budget)
        self.model_path = PathPicker("save", "Model file", "Keras model (*.keras)")
        self.base_filters = _spin(2, 128, DEFAULT_BASE_FILTERS)
        self.depth = _spin(1, 6, DEFAULT_DEPTH)
        self.patch = _spin(32, 2048, 256, 32)
        self.batch_size = _spin(1, 64, 4)
        self.validation_scenes = _spin(1, 1000, 16)
        self.seed = _spin(0, 2**31 - 1, 0)
        self.resume = QCheckBox("continue from the model file")
        self.replace = QCheckBox("replace an existing model file")
        self.replace.setToolTip("Without it an existing model file is never overwritten: choose a new name")

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
        form.addRow("budget", row(self.budget_kind, self.budget))
        form.addRow("model file", self.model_path)
        form.addRow(self.replace)
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
        self._inputs = [self.bank_path, self.backgrounds, self.budget_kind, self.budget, self.model_path,
                        self.replace, advanced]

        connect_click(self.start_button, self.start)
        connect_click(self.stop_button, self.stop)
        self.destroyed.connect(self._stop_requested.set)  # closing the dock ends the child too

    @property
    def busy(self) -> bool:
        return self._worker is not None

    # ------------------------------------------------------------------ budget
    def _show_budget(self, kind: str) -> None:
        low, high, step, decimals = BUDGET_RANGES[kind]
        self.budget.blockSignals(True)  # the range change must not overwrite the remembered values
        self.budget.setDecimals(decimals)
        self.budget.setRange(low, high)
        self.budget.setSingleStep(step)
        self.budget.setValue(self._budget_values[kind])
        self.budget.blockSignals(False)

    def _remember_budget(self, value: float) -> None:
        self._budget_values[self.budget_kind.currentText()] = value

    def set_budget(self, kind: str, value: float) -> None:
        """Choose the budget: ``kind`` one of ``BUDGET_DEFAULTS`` ("steps", "minutes", "epochs")."""
        if kind not in BUDGET_DEFAULTS:
            raise ValueError(f"budget kind must be one of {', '.join(BUDGET_DEFAULTS)}, not {kind!r}")
        self.budget_kind.setCurrentText(kind)
        self.budget.setValue(value)

    def budget_kwargs(self) -> dict:
        """The one ``train_model`` budget argument the controls describe, e.g. ``{"steps": 500}``."""
        kind, value = self.budget_kind.currentText(), self.budget.value()
        if not value > 0:
            raise ValueError(f"the training budget must be more than 0 {kind}")
        return {kind: float(value) if kind == "minutes" else int(round(value))}

    # ------------------------------------------------------------------ checks
    def train_kwargs(self) -> dict:
        """The ``train_model`` keyword arguments (without backgrounds) the controls describe.

        Raises ``ValueError`` for every setting ``train_model`` would refuse only after the
        child process has loaded Keras (no bank objects, a budget, the patch size, resuming,
        an existing or unwritable model file).
        """
        bank = self.bank_path.path()
        if bank is None:
            raise ValueError("choose the object bank folder to train from (fill it with Auto-segment or Curate)")
        check_bank_has_objects(bank)
        model = self.model_path.path()
        if model is None:
            raise ValueError("choose where to save the model (a .keras file)")
        if model.suffix != ".keras":
            model = model.with_suffix(".keras")
            self.model_path.set_path(model)
        check_writable_file(model, "model file")
        depth = self.depth.value()
        if self.resume.isChecked():
            depth = self._resumable_depth(model, depth)
        elif model.exists() and not self.replace.isChecked():
            raise ValueError(f"model file {model} exists; choose a new name, tick 'replace an existing model "
                             "file', or tick 'continue from the model file' (advanced) to train it further")
        patch = self.patch.value()
        if patch % 2**depth:
            fitting = max(2**depth, patch // 2**depth * 2**depth)
            raise ValueError(f"patch {patch} px is not a multiple of 2**depth = {2**depth} (depth {depth}); "
                             f"use a patch of {fitting} px or a smaller depth")
        return dict(
            bank=str(bank),
            model_path=str(model),
            **self.budget_kwargs(),
            patch=patch,
            batch_size=self.batch_size.value(),
            validation_scenes=self.validation_scenes.value(),
            base_filters=self.base_filters.value(),
            depth=self.depth.value(),
            seed=self.seed.value(),
            resume=self.resume.isChecked(),
        )

    @staticmethod
    def _resumable_depth(model, depth: int) -> int:
        """The depth of the model training continues (from its sidecar), after checking it can continue."""
        if not model.exists():
            raise ValueError(f"'continue from the model file' is ticked but there is no model at {model}; "
                             "untick it to train a new model")
        info = model_sidecar(model)
        mode = (info.get("normalization") or {}).get("mode", "percentile")
        if mode != "percentile":
            raise ValueError(f"model {model} was trained with normalization {mode!r} (synthseg run); continue "
                             "it with synthseg train --resume, or train a new model here")
        return int((info.get("network") or {}).get("depth", depth))

    def start(self, **extra) -> None:
        """Start training in a child process; ``extra`` overrides/extends the train kwargs.

        Every check runs first; a refused setting raises ``ValueError`` and starts nothing.
        """
        if self.busy:
            return
        check_model_backend()
        kwargs = self.train_kwargs()
        if extra.keys() & BUDGET_DEFAULTS.keys():  # one budget only, also when a caller sets it
            kwargs = {key: value for key, value in kwargs.items() if key not in BUDGET_DEFAULTS}
        kwargs.update(extra)
        layers = self.backgrounds.checked_layers()
        backgrounds = gray_backgrounds(layers, self.viewer)
        for layer, gray in zip(layers, backgrounds):
            if min(gray.shape) < MIN_BACKGROUND_SIDE:
                raise ValueError(f"background layer '{layer.name}' is {gray.shape[0]}×{gray.shape[1]} px; "
                                 f"backgrounds need at least {MIN_BACKGROUND_SIDE}×{MIN_BACKGROUND_SIDE}: untick it")
        kwargs.setdefault("backgrounds", backgrounds or None)
        self._budget = {key: kwargs[key] for key in BUDGET_DEFAULTS if kwargs.get(key) is not None}
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
        elif self._budget.get("minutes") and event.get("elapsed_s") is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(min(1.0, event["elapsed_s"] / (60 * self._budget["minutes"])) * 1000))
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
