"""Choosing the model a training run keeps: validate, compare with the best so far, save atomically.

Before ``select_after`` of the budget the best model by the synthetic IoU is kept only as a
fallback (so Stop always leaves a model); from then on validations choose the model by the
selection score (the real images' IoU when there are real images), and the first one
replaces the fallback. A resumed model is the score to beat. At the end of a run the average of
the checkpoints validated while selecting replaces the kept one (``validate_average``): the best
single checkpoint by a noisy score is a worse model than their average.
"""

from __future__ import annotations

import math
import platform
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from napari_synthseg.image_io import atomic_write
from napari_synthseg.model.averaging import CheckpointAverage
from napari_synthseg.model.sidecar import prediction_info, write_sidecar


def finite(metric: float) -> float:
    """``metric``, with NaN (a network predicting nothing) as the worst score."""
    return -math.inf if math.isnan(metric) else metric


class CheckpointSelector:
    """Validates a training network and keeps the best one at ``model_path`` with its sidecar.

    Parameters
    ----------
    model, average
        The network being trained and its ``WeightAverage`` (the average is what is scored and saved).
    model_path
        Where the kept model goes (``.keras``); its sidecar is written beside it.
    validation
        ``(x_val, y_val)``: the fixed synthetic validation set; ``batch_size`` scores it.
    real
        A ``RealValidation`` or None: when given, it chooses the model once selection starts. On
        curations (``real.curated``) a later checkpoint scoring as well as the kept one replaces it.
    select_after
        Share of the budget from which validations choose the saved model.
    average_checkpoints
        Average the checkpoints validated while selecting, for ``validate_average``.
    resume
        The run continues a saved model (then that model is the fallback and the score to beat).
    announce
        ``announce(phase)`` for ``"validating"`` and ``"saving"``.
    description
        ``(network, training, scenes)``: the sidecar's network entry, its training entry (a dict
        the run may still add to) and the ``SyntheticScenes`` (normalisation, bank).
    history
        Validation records of a resumed run, continued here.
    clock
        The seconds clock (``time.perf_counter``); ``start_time`` on it is when the run began.
    """

    def __init__(
        self,
        model,
        average,
        model_path: Path,
        validation,
        batch_size: int,
        *,
        real=None,
        select_after: float,
        average_checkpoints: bool = False,
        resume: bool,
        announce,
        description,
        history: list | None = None,
        clock=time.perf_counter,
        start_time: float | None = None,
    ):
        self.model, self.average, self.model_path = model, average, Path(model_path)
        self.x_val, self.y_val = validation
        self.batch_size, self.real, self.select_after, self.resume = batch_size, real, select_after, resume
        self.announce = announce
        self.network, self.training, self.scenes = description
        self.clock = clock
        self.start_time = clock() if start_time is None else start_time
        self.history = list(history or [])
        #: The score of the model on disk (-inf before any); ``best_step`` its step.
        self.best, self.best_step = -math.inf, None
        self.saved = self.selecting = False
        self.baseline = -math.inf
        #: Seconds the last validation took (a minutes budget keeps room for one more).
        self.seconds = 0.0
        self.selection = "real_val_iou" if real is not None else "val_iou"
        self.ties_to_newer = bool(real is not None and getattr(real, "curated", False))
        #: The checkpoints validated while selecting, averaged (None: not averaged).
        self.checkpoints = CheckpointAverage() if average_checkpoints else None

    @property
    def seconds_to_finish(self) -> float:
        """Seconds the validations after the last step will take (the last one's, and the average's)."""
        return self.seconds * (2 if self.checkpoints is not None else 1)

    def validate(
        self, step: int, train_losses: list[float], used: float, *, baseline: bool = False, keep: bool = False
    ) -> dict:
        """Score the network at ``step`` (``used``: share of the budget), save it if it is the best.

        ``baseline``: score a resumed model, the one to beat. ``keep``: a new run that saved
        nothing yet saves this one, so a model file is always left. Returns the history record.
        """
        selecting = used >= self.select_after
        if selecting and not self.selecting:
            # an early fallback is replaced whatever it scored; a resumed model has to be beaten
            self.best, self.selecting = self.baseline, True
        with self._validation(step), self.average.applied(self.model):
            record = self._score(step, train_losses, selecting, baseline)
            if baseline:
                self.baseline = finite(record[self.selection])
            metric = finite(record[self.selection if selecting else "val_iou"])
            # during a resumed run's first part the resumed model itself is the fallback; on a
            # person's clicks a later checkpoint that agrees as well wins the tie (it has seen more)
            tie = selecting and self.ties_to_newer and metric == self.best > -math.inf
            better = metric > self.best or tie
            record["saved"] = better and (selecting or baseline or not self.resume)
            record["saved"] = record["saved"] or (keep and not self.saved and not self.resume)
            self._keep(record, metric, step)
            if selecting and not baseline and self.checkpoints is not None:
                self.checkpoints.add(self.model)
        return record

    def validate_average(self, step: int) -> dict | None:
        """Score the average of the checkpoints validated while selecting and save it in place of
        the kept checkpoint; a resumed run saves it only when it beats the resumed model.

        Returns its history record (``"averaged"``: how many checkpoints), or None when fewer than
        two were averaged.
        """
        if self.checkpoints is None or self.checkpoints.count < 2:
            return None
        with self._validation(step), self.checkpoints.applied(self.model):
            record = self._score(step, [], True, False)
            record["averaged"] = self.checkpoints.count
            metric = finite(record[self.selection])
            # the kept checkpoint won on the same noisy score the average is scored by; only a
            # resumed model (the previous round) has to be beaten, as every checkpoint has to
            tie = self.ties_to_newer and metric == self.baseline > -math.inf
            record["saved"] = metric > self.baseline or tie
            self._keep(record, metric, step)
        return record

    @contextmanager
    def _validation(self, step: int):
        """Announce a validation, then write the sidecar and time it (``seconds``)."""
        self.announce("validating")
        t0 = self.clock()
        yield
        self.write_sidecar(step)
        self.seconds = self.clock() - t0

    def _keep(self, record: dict, metric: float, step: int) -> None:
        """Add ``record`` to the history and, when it says so, save the model as it is now."""
        record["elapsed_s"] = round(self.clock() - self.start_time, 2)
        self.history.append(record)
        if record["saved"]:
            self.best, self.best_step = metric, step
            self.announce("saving")
            # temporary name keeps the .keras suffix Keras insists on, then one atomic rename
            atomic_write(self.model_path, lambda tmp: self.model.save(tmp))
            self.saved = True

    def _score(self, step: int, train_losses: list[float], selecting: bool, baseline: bool) -> dict:
        logs = self.model.evaluate(self.x_val, self.y_val, batch_size=self.batch_size, verbose=0, return_dict=True)
        record = {
            "step": step,
            "loss": float(np.mean(train_losses)) if train_losses else None,
            "val_loss": float(logs["loss"]),
            "val_iou": float(logs["fg_iou"]),
            "selecting": selecting,
        }
        if self.real is not None and (selecting or baseline):
            record["real_val_iou"] = float(self.real.score(self.model))
        return record

    def write_sidecar(self, step: int) -> None:
        """Describe the kept model in its sidecar, ``step`` being the run's last (nothing before a save)."""
        if not self.saved:
            return
        best = next((h for h in reversed(self.history) if h["step"] == self.best_step and h["saved"]), {})
        info = {
            **prediction_info(self.network, self.scenes.normalization),
            "training": dict(self.training, steps=self.best_step, last_step=step),
            "bank": {"size": self.scenes.bank_size, "hash": self.scenes.bank_hash},
            # a model saved before ``select_after`` is the synthetic-IoU fallback
            "metrics": {
                "selection": self.selection if best.get("selecting") else "val_iou",
                "best": self.best,
                **{k: v for k, v in best.items() if k not in ("saved", "elapsed_s")},
            },
            "history": self.history,
            "versions": library_versions(),
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_sidecar(self.model_path, info)

    @property
    def best_or_none(self) -> float | None:
        """The kept model's score, None before any."""
        return None if self.best == -math.inf else float(self.best)


def library_versions() -> dict:
    """Versions of napari-synthseg, Keras, its backend, NumPy and Python (for the sidecar)."""
    from importlib import metadata

    import napari_synthseg

    backend = keras.backend.backend()
    versions = {
        "napari_synthseg": napari_synthseg.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module:
        try:
            versions[module] = __import__(module).__version__
        except Exception:
            try:
                versions[module] = metadata.version(module)
            except metadata.PackageNotFoundError:
                pass
    return versions


__all__ = ["CheckpointSelector", "finite", "library_versions"]
