"""What the Train dock shows while a model job runs: its phase, device, loss, val IoU, curve and result."""

from __future__ import annotations

from ._common import notify_error, notify_info
from ._jobs import describe_device

#: The phases of a training run, named in the status line as they come ("phase" events of the child).
PHASES = ("starting Python", "loading TensorFlow", "building the model", "training", "validating", "saving")
#: The device line until the model process tells where it computes.
DEVICE_UNKNOWN = "device: told once TensorFlow has loaded"


class TrainingProgress:
    """Mix-in of the Train dock: the model job's events -> its labels, progress bar, curve and status line.

    Uses the dock's ``status``, ``progress``, ``loss_label``, ``iou_label``, ``device_label``, ``plot`` and
    ``model_path`` widgets, and ``_budget`` (the run's budget) and ``_pid`` (the child's process id); it keeps
    ``phase`` (one of ``PHASES``; None when idle), ``result``, ``last_progress`` and ``n_progress_events``.
    """

    def _clear_figures(self) -> None:
        """Forget the previous run's loss, val IoU and curve (a new run starts)."""
        self.loss_label.setText("loss –")
        self.iou_label.setText("val IoU –")
        self.device_label.setText(DEVICE_UNKNOWN)
        self.plot.clear()

    def _show_phase(self, phase: str) -> None:
        self.phase = phase
        where = f" (process {self._pid})" if self._pid else ""
        budget = ""
        if phase in ("loading TensorFlow", "building the model") and self._budget.get("minutes"):
            budget = f"; the {self._budget['minutes']:g}-minute budget starts at the first training step"
        self.status.setText(f"{phase}…{where}{budget}")

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "started":
            self._pid = event.get("pid")
            self._show_phase("loading TensorFlow")  # the child's first work, whatever its task
        elif kind == "device":
            self.device_label.setText(describe_device(event))
        elif kind == "phase" and event.get("phase") != self.phase:
            self._show_phase(str(event.get("phase")))
        elif kind == "progress":
            self._show_progress(event)
        elif kind == "result" and event.get("task") == "retrain":
            self.result = event
            verb = "stopped" if event.get("cancelled") else "finished"
            kept = ("; it keeps the previous round's weights: the fine-tuned ones agreed less with the "
                    "auto-segmentation of the uncurated images" if event.get("kept_previous") else "")
            self.status.setText(f"round {event.get('round')} {verb} ({event.get('clicks')} clicks{kept}); model: "
                                f"{event.get('model_path')} (now in the model file box: Segment with it, "
                                "curate again, retrain for the next round)")
            self.model_path.set_path(event.get("model_path"))
            notify_info(f"curation round {event.get('round')} {verb}; model saved to {event.get('model_path')}")
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
        if self.phase in PHASES[:3]:  # a job without phase events (a curation round) is training by now
            self._show_phase("training")
        self.n_progress_events += 1
        step, total = int(event.get("step") or 0), event.get("total_steps")
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(step, int(total)))
        elif self._budget.get("minutes") and event.get("elapsed_s") is not None:
            if self.n_progress_events == 1:  # sent after the first step, where the budget's clock starts
                self._budget_start_s = float(event["elapsed_s"])
            used = (event["elapsed_s"] - self._budget_start_s) / (60 * self._budget["minutes"])
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(min(1.0, max(used, 0.0)) * 1000))
        loss, val_loss, val_iou = event.get("loss"), event.get("val_loss"), event.get("val_iou")
        if loss is not None:
            self.loss_label.setText(f"step {step}  loss {loss:.4f}")
            self.plot.add_point("loss", step, loss)
        if val_loss is not None:
            self.plot.add_point("val loss", step, val_loss)
        if val_iou is not None:
            self.iou_label.setText(f"val IoU {val_iou:.3f}")

