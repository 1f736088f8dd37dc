"""Train the U-Net on streamed synthetic scenes, keeping the best model on disk.

The loop is written out (``train_on_batch``) rather than ``fit`` so that the budget, the
cancel flag and progress reports are checked between every pair of batches.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from napari_synthseg.model.averaging import WeightAverage
from napari_synthseg.model.budget import TrainingBudget
from napari_synthseg.model.checkpoints import CheckpointSelector
from napari_synthseg.model.data import SyntheticScenes
from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss
from napari_synthseg.model.network import build_unet
from napari_synthseg.model.params import (  # noqa: F401  (the defaults' former home re-exports them)
    DEFAULT_SCENE_PARAMS,
    DEFAULT_SELECT_AFTER,
    DEFAULT_WEIGHT_AVERAGE,
    LR_FLOOR,
    XLA_CHOICES,
    XLA_MIN_STEPS,
    TrainingParams,
)
from napari_synthseg.model.sidecar import CHANNELS, SidecarError, read_sidecar
from napari_synthseg.model.validation import RealValidation

#: Seconds between two progress reports during training steps (validations always report).
REPORT_INTERVAL_S = 0.5


def learning_rate_factor(schedule: str, fraction: float) -> float:
    """Multiplier of the learning rate after ``fraction`` (0 to 1) of the budget."""
    if schedule == "constant":
        return 1.0
    fraction = min(max(float(fraction), 0.0), 1.0)
    return LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def use_xla(xla: str, budget: tuple[str, float], steps_per_epoch: int = 1, backend: str | None = None):
    """Whether to compile the training step with XLA: True, False, or "auto" to let Keras decide.

    ``"auto"`` with the TensorFlow backend compiles when the budget is at least
    ``XLA_MIN_STEPS`` steps or one minute, long enough to repay the compile; other backends keep
    Keras's own choice (JAX always compiles, torch runs eagerly).
    """
    if xla not in XLA_CHOICES:
        raise ValueError(f"xla must be one of {', '.join(XLA_CHOICES)}, got {xla!r}")
    if xla != "auto":
        return xla == "on"
    if (backend or keras.backend.backend()) != "tensorflow":
        return "auto"
    kind, amount = budget
    if kind == "minutes":
        return amount >= 1.0
    return amount * (steps_per_epoch if kind == "epochs" else 1) >= XLA_MIN_STEPS


@dataclass
class TrainProgress:
    """One progress report.

    ``phase`` is ``"train"`` after a training step, ``"validation"`` after a validation and
    ``"done"`` once at the end. ``loss`` is the latest batch loss; ``val_loss``/``val_iou`` the
    latest validation (None before the first; ``val_iou`` is the real images' IoU when
    ``real_validation`` was given and selection has started, else the synthetic one); ``best``
    the score of the model on disk (it starts again when selection starts, see ``select_after``).
    """

    step: int
    total_steps: int | None
    loss: float
    val_loss: float | None = None
    val_iou: float | None = None
    elapsed_s: float = 0.0
    best: float | None = None
    phase: str = "train"


@dataclass
class TrainResult:
    """Outcome of ``train_model``.

    ``steps_done`` counts optimizer steps including those of a resumed model; ``history`` has
    one dict per validation (step, loss, val_loss, val_iou, [real_val_iou], selecting, elapsed_s,
    saved).
    """

    model_path: str
    sidecar_path: str
    best_metric: float
    history: list = field(default_factory=list)
    steps_done: int = 0
    cancelled: bool = False


_DEFAULT = TrainingParams()


def train_model(bank, backgrounds, model_path, *, steps=_DEFAULT.steps, epochs=_DEFAULT.epochs,
                minutes=_DEFAULT.minutes, patch=_DEFAULT.patch, batch_size=_DEFAULT.batch_size,
                steps_per_epoch=_DEFAULT.steps_per_epoch, validation_scenes=_DEFAULT.validation_scenes,
                base_filters=_DEFAULT.base_filters, depth=_DEFAULT.depth, learning_rate=_DEFAULT.learning_rate,
                seed=_DEFAULT.seed, resume=False, callbacks=None, cancel_event=None,
                scene_params=_DEFAULT.scene_params, real_validation=None, real_training=None,
                real_fraction=_DEFAULT.real_fraction, normalization=_DEFAULT.normalization,
                weight_average=_DEFAULT.weight_average, lr_schedule=_DEFAULT.lr_schedule, xla=_DEFAULT.xla,
                select_after=_DEFAULT.select_after, average_checkpoints=_DEFAULT.average_checkpoints,
                real_validation_pixels=_DEFAULT.real_validation_pixels, curated=None,
                curated_fraction=_DEFAULT.curated_fraction,
                curated_ring_px=_DEFAULT.curated_ring_px, real_clumps=_DEFAULT.real_clumps,
                on_phase=None) -> TrainResult:
    """Train a segmentation U-Net on synthetic scenes made from ``bank``.

    The settings (the budget ``steps``/``epochs``/``minutes``, of which give exactly one, and
    ``patch`` to ``curated_ring_px``) are those of ``TrainingParams``, which says what each does;
    ``train_model(bank, backgrounds, path, **params.as_dict())`` trains with a ``TrainingParams``.

    Parameters
    ----------
    bank : ObjectBank, bank folder path or list of BankObject
        Objects pasted into the scenes.
    backgrounds : None, BackgroundSource or list of gray images (or image paths)
        Background source for ``synthesize_scene``.
    model_path : path ending in ``.keras``
        Where the best model goes (atomically); its JSON sidecar is written beside it.
    resume : bool
        Load the model at ``model_path`` (with its optimizer state) and continue training it.
    callbacks : callable or list of callables, optional
        Each receives a ``TrainProgress``.
    cancel_event : threading.Event or multiprocessing.Event, optional
        Checked before every batch; when set, training validates the last steps, keeps the
        best model and returns with ``cancelled=True``. A KeyboardInterrupt (Ctrl-C) during
        the steps does the same; a new run stopped before its first validation saves the
        model it has, so a model file is always left.
    real_validation : sequence of (image, labels), optional
        Real images with masks (ground truth, or their auto-segmentation); when given, the
        model is chosen by the pixel IoU of their segmentation by ``predict`` (``RealValidation``)
        instead of the synthetic IoU.
    real_training : sequence of (image, labels), optional
        Real images with instance labels; random crops of them make up ``real_fraction`` of
        each batch, synthetic scenes the rest.
    curated : sequence of (image, Curation or (labels, known)), optional
        Real images with what a person said about them (``napari_synthseg.curation``): crops
        centred near their known pixels make up ``curated_fraction`` of each batch and of the
        validation set, and the loss counts only their known pixels (``SyntheticScenes``).
    on_phase : callable, optional
        ``on_phase(name)`` when the work changes: ``"building the model"``, ``"training"``,
        ``"validating"``, ``"saving"`` (for a viewer's status line).

    Returns
    -------
    TrainResult
    """
    config = TrainingParams(
        steps=steps, epochs=epochs, minutes=minutes, patch=patch, batch_size=batch_size,
        steps_per_epoch=steps_per_epoch, validation_scenes=validation_scenes, base_filters=base_filters,
        depth=depth, learning_rate=learning_rate, seed=seed, scene_params=scene_params,
        real_fraction=real_fraction, normalization=normalization, weight_average=weight_average,
        lr_schedule=lr_schedule, xla=xla, select_after=select_after, average_checkpoints=average_checkpoints,
        real_validation_pixels=real_validation_pixels,
        curated_fraction=curated_fraction, curated_ring_px=curated_ring_px, real_clumps=real_clumps)
    run = _TrainingRun(config, model_path, resume=resume, callbacks=callbacks, cancel_event=cancel_event,
                       on_phase=on_phase)
    return run.run(bank, backgrounds, real_validation=real_validation, real_training=real_training, curated=curated)


class _TrainingRun:
    """One call of ``train_model``: the network, its data, the budget and the checkpoint selector."""

    def __init__(self, config: TrainingParams, model_path, *, resume: bool, callbacks, cancel_event, on_phase):
        self.budget_kind = config.budget  # exactly one budget
        self.model_path = Path(model_path)
        if self.model_path.suffix != ".keras":
            raise ValueError(f"model_path must end in .keras (Keras 3 format), got {self.model_path.name!r}")
        self.config, self.resume = config, bool(resume)
        self.jit_compile = use_xla(config.xla, self.budget_kind, config.steps_per_epoch)
        self.callbacks = _check_callbacks(callbacks)
        if on_phase is not None and not callable(on_phase):
            raise TypeError(f"on_phase must be callable, got {type(on_phase).__name__}")
        self.announce = on_phase or (lambda name: None)
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()
        self.start_time = time.perf_counter()

    def run(self, bank, backgrounds, *, real_validation, real_training, curated) -> TrainResult:
        self.announce("building the model")
        keras.utils.set_random_seed(int(self.config.seed))
        self.model, previous, network = self._build()
        config = self.config
        self.average = WeightAverage(self.model, config.weight_average)
        self.scenes = SyntheticScenes(
            bank, backgrounds, patch=config.patch, batch_size=config.batch_size,
            steps_per_epoch=config.steps_per_epoch, seed=config.seed, scene_params=config.scenes,
            real=real_training, real_fraction=config.real_fraction, normalization=config.normalization,
            curated=curated, curated_fraction=config.curated_fraction, ring_px=config.curated_ring_px,
            real_clumps=config.real_clumps)
        validation = self.scenes.validation_set(config.validation_scenes)
        ring = {} if config.curated_ring_px is None else {"ring_px": config.curated_ring_px}
        real = RealValidation(real_validation, network=network, normalization=config.normalization,
                              max_pixels=config.real_validation_pixels, seed=config.seed,
                              **ring) if real_validation else None

        start_step = int((previous.get("training") or {}).get("steps", 0)) if self.resume else 0
        history = [h for h in previous.get("history", []) if h.get("step", 0) <= start_step] if self.resume else []
        self.budget = TrainingBudget(*self.budget_kind, start_step=start_step, steps_per_epoch=config.steps_per_epoch)
        self.record = self._training_record(real, real_validation, real_training, start_step)
        self.selector = CheckpointSelector(
            self.model, self.average, self.model_path, validation, config.batch_size, real=real,
            select_after=config.select_after, average_checkpoints=config.average_checkpoints, resume=self.resume,
            announce=self.announce,
            description=(network, self.record, self.scenes), history=history, clock=time.perf_counter,
            start_time=self.start_time)
        return self._train(start_step)

    def _build(self):
        """The network (new, or the saved one when resuming), the previous sidecar and the network entry."""
        config = self.config
        if self.resume:
            model, previous = _load_for_resume(self.model_path, config.learning_rate, self.jit_compile)
            network = previous.get("network") or {}
            saved_mode = (previous.get("normalization") or {}).get("mode", "percentile")
            if saved_mode != config.normalization:
                raise ValueError(f"cannot resume {self.model_path} with normalization={config.normalization!r}: it "
                                 f"was trained with {saved_mode!r}; pass normalization={saved_mode!r} or train a "
                                 "new model")
            # the saved network is used whatever the settings say: record what was trained
            self.config = config = config.replace(depth=int(network.get("depth", config.depth)),
                                                  base_filters=int(network.get("base_filters", config.base_filters)))
        else:
            model, previous = build_unet(config.base_filters, config.depth), {}
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=SegmentationLoss(),
                          metrics=[ForegroundIoU()], jit_compile=self.jit_compile)
            network = None
        multiple = 2**config.depth
        if config.patch % multiple:
            raise ValueError(f"patch={config.patch} must be a multiple of 2**depth={multiple}; "
                             f"try {max(multiple, config.patch // multiple * multiple)}")
        network = network or {"architecture": "unet", "base_filters": int(config.base_filters),
                              "depth": int(config.depth), "n_outputs": len(CHANNELS), "input_channels": 1}
        network["pad_multiple"] = multiple
        # Keras (TensorFlow backend, no distribution strategy) creates Adam's slots inside the first step's
        # trace, which makes TensorFlow trace the step twice: built here, the first step costs one trace
        # (about 4 s less per run on 2 cores; benchmarks/first_step.py). A resumed optimizer is built already.
        model.optimizer.build(model.trainable_variables)
        return model, previous, network

    def _training_record(self, real, real_validation, real_training, start_step: int) -> dict:
        """The sidecar's ``training`` entry: what this run did (``params``: its ``TrainingParams``)."""
        config, scenes = self.config, self.scenes
        kind, amount = self.budget_kind
        return {"patch": config.patch, "batch_size": config.batch_size, "steps_per_epoch": config.steps_per_epoch,
                "validation_scenes": config.validation_scenes, "learning_rate": float(config.learning_rate),
                "seed": int(config.seed), "budget": {kind: amount}, "scene_params": config.scenes,
                "real_validation_images": len(real_validation or ()),
                "real_training_images": len(real_training or ()),
                "real_fraction": float(config.real_fraction) if real_training else 0.0,
                "real_clump_pixels": scenes.real.clump_pixels if scenes.real is not None else 0,
                "curated_images": len(scenes.curated.images) if scenes.curated is not None else 0,
                "curated_fraction": scenes.curated_fraction,
                "resumed_from_step": start_step if self.resume else None,
                "weight_average": float(config.weight_average), "lr_schedule": config.lr_schedule,
                "xla": bool(self.model.jit_compile), "select_after": float(config.select_after),
                "average_checkpoints": bool(config.average_checkpoints),
                "real_validation_pixels": real.pixels if real is not None else 0,
                "params": config.as_dict()}

    def _train(self, start_step: int) -> TrainResult:
        """Validate a resumed model, run the steps, validate the last ones, and say what was kept."""
        selector, budget = self.selector, self.budget
        step = start_step
        # a resumed run reports the saved run's last training loss until its first step
        self.last_loss = next((h["loss"] for h in reversed(selector.history) if h.get("loss") is not None),
                              math.nan)
        self.last_val: dict = {}
        if self.resume:  # the saved model's score on this run's validation set is the one to beat
            self.last_val = selector.validate(step, [], 0.0, baseline=True)
            self._report(step, "validation")
        step, losses, cancelled = self._steps(step)
        if losses or not selector.saved:
            # a budget that ran out is all used, though a minutes budget stops a step early
            used = budget.used(step, time.perf_counter()) if cancelled else 1.0
            self.last_val = selector.validate(step, losses, used, keep=True)
            self._report(step, "validation")
        averaged = None if cancelled else selector.validate_average(step)  # Stop means stop
        if averaged is not None:
            self.last_val = averaged
            self._report(step, "validation")
        self.record["cancelled"] = cancelled
        selector.write_sidecar(step)
        self._report(step, "done")
        return TrainResult(model_path=str(self.model_path), sidecar_path=str(self.model_path.with_suffix(".json")),
                           best_metric=float(selector.best), history=list(selector.history), steps_done=step,
                           cancelled=cancelled)

    def _steps(self, step: int) -> tuple[int, list[float], bool]:
        """Train until the budget runs out or a stop: ``(step reached, losses since the last validation,
        cancelled)``."""
        config, budget, selector, model = self.config, self.budget, self.selector, self.model
        cancelled = False
        losses: list[float] = []
        last_report = 0.0
        self.announce("training")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthseg-scenes") as pool:
            # the next batch is synthesised while the network trains on the current one
            pending = pool.submit(self.scenes.batch, step)
            try:
                while True:
                    if self.cancel_event.is_set():
                        cancelled = True
                        break
                    now = time.perf_counter()
                    if budget.reached(step, now, selector.seconds_to_finish):
                        break
                    x, y = pending.result()
                    pending = pool.submit(self.scenes.batch, step + 1)
                    factor = learning_rate_factor(config.lr_schedule, budget.used(step, now))
                    model.optimizer.learning_rate.assign(config.learning_rate * factor)
                    t0 = time.perf_counter()
                    logs = model.train_on_batch(x, y, return_dict=True)
                    self.average.update(model)
                    budget.step_done(time.perf_counter() - t0, time.perf_counter())
                    step += 1
                    self.last_loss = _checked_loss(logs, step)
                    losses.append(self.last_loss)
                    if (step - budget.start_step) % config.steps_per_epoch == 0:
                        self.last_val = selector.validate(step, losses, budget.used(step, time.perf_counter()))
                        losses = []
                        self._report(step, "validation")
                        last_report = time.perf_counter()
                        self.announce("training")
                    elif time.perf_counter() - last_report >= REPORT_INTERVAL_S or step == budget.total_steps:
                        self._report(step, "train")
                        last_report = time.perf_counter()
            except KeyboardInterrupt:  # Ctrl-C (or a callback raising it) stops like the cancel flag
                cancelled = True
            pending.cancel()
        return step, losses, cancelled

    def _report(self, step: int, phase: str) -> None:
        val = self.last_val
        progress = TrainProgress(step=step, total_steps=self.budget.total_steps, loss=float(self.last_loss),
                                 val_loss=val.get("val_loss"),
                                 val_iou=val.get("real_val_iou", val.get("val_iou")) if val else None,
                                 elapsed_s=round(time.perf_counter() - self.start_time, 2),
                                 best=self.selector.best_or_none, phase=phase)
        for callback in self.callbacks:
            callback(progress)


def _checked_loss(logs: dict, step: int) -> float:
    loss = float(logs["loss"])
    if not math.isfinite(loss):
        raise FloatingPointError(f"training diverged at step {step} (loss {loss}); "
                                 "lower learning_rate or check the bank's objects")
    return loss


def _check_callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables taking a TrainProgress, got {type(callback).__name__}")
    return callbacks


def _load_for_resume(model_path: Path, learning_rate: float, jit_compile):
    if not model_path.is_file():
        raise FileNotFoundError(f"resume=True but there is no model at {model_path}; train without resume first")
    try:
        previous = read_sidecar(model_path)
    except SidecarError:
        previous = {}
    try:
        model = keras.saving.load_model(model_path, compile=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise ValueError(f"cannot resume from {model_path}: not a loadable Keras model ({exc})") from exc
    if model.output_shape[-1] != len(CHANNELS):
        raise ValueError(f"cannot resume from {model_path}: it has {model.output_shape[-1]} output channels, "
                         f"this trainer makes {len(CHANNELS)} ({', '.join(CHANNELS)})")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=SegmentationLoss(),
                      metrics=[ForegroundIoU()], jit_compile=jit_compile)
    else:
        model.optimizer.learning_rate = learning_rate
        if jit_compile != "auto":  # the saved compile settings are not this run's
            model.jit_compile = jit_compile
            model.train_function = model.test_function = model.predict_function = None
    return model, previous


def progress_dict(progress: TrainProgress) -> dict:
    """A ``TrainProgress`` as a plain dict (for queues and JSON)."""
    return asdict(progress)


__all__ = ["DEFAULT_SCENE_PARAMS", "TrainProgress", "TrainResult", "train_model", "progress_dict", "use_xla"]
