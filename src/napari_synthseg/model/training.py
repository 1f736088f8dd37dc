"""Train the U-Net on streamed synthetic scenes, keeping the best model on disk.

The loop is written out (``train_on_batch``) rather than ``fit`` so that the budget, the
cancel flag and progress reports are checked between every pair of batches.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from napari_synthseg.image_io import atomic_write
from napari_synthseg.model import (
    DEFAULT_BASE_FILTERS,
    DEFAULT_DEPTH,
    DEFAULT_LR_SCHEDULE,
    LR_FLOOR,
    LR_SCHEDULES,
    XLA_CHOICES,
    XLA_MIN_STEPS,
)
from napari_synthseg.model.averaging import WeightAverage
from napari_synthseg.model.data import SyntheticScenes
from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss
from napari_synthseg.model.network import build_unet
from napari_synthseg.model.sidecar import CHANNELS, SidecarError, prediction_info, read_sidecar, write_sidecar
from napari_synthseg.model.validation import REAL_VALIDATION_PIXELS, RealValidation

#: Seconds between two progress reports during training steps (validations always report).
REPORT_INTERVAL_S = 0.5

#: ``synthesize_scene`` settings the trainer uses unless ``scene_params`` overrides them.
#: A bank from thresholds holds mostly bright objects; shifting each pasted object's gray
#: level by up to +-0.7 (and its contrast by up to 60 %) teaches the network mid-gray and
#: dark objects too (docs/benchmarks.md, "Why these defaults").
DEFAULT_SCENE_PARAMS = {"brightness": 0.7, "contrast": 0.6}

#: Momentum of the weight average that is validated and saved; off by default: it held pixel
#: IoU late in training but cost object F1 (docs/benchmarks.md, "Why these defaults").
DEFAULT_WEIGHT_AVERAGE = 0.0

#: Share of the budget after which validations choose the model to keep; before it the best
#: model is only a fallback for an early Stop. Early on, an untrained network can score as high
#: on the synthetic validation as a trained one (docs/benchmarks.md, "Why these defaults").
DEFAULT_SELECT_AFTER = 0.6


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


def train_model(bank, backgrounds, model_path, *, steps=None, epochs=None, minutes=None, patch=256,
                batch_size=4, steps_per_epoch=50, validation_scenes=16, base_filters=DEFAULT_BASE_FILTERS,
                depth=DEFAULT_DEPTH,
                learning_rate=1e-3, seed=0, resume=False, callbacks=None, cancel_event=None,
                scene_params=None, real_validation=None, real_training=None, real_fraction=0.5,
                normalization="percentile", weight_average=DEFAULT_WEIGHT_AVERAGE,
                lr_schedule=DEFAULT_LR_SCHEDULE, xla="auto", select_after=DEFAULT_SELECT_AFTER,
                real_validation_pixels=REAL_VALIDATION_PIXELS, curated=None, curated_fraction=0.5,
                curated_ring_px=None, on_phase=None) -> TrainResult:
    """Train a segmentation U-Net on synthetic scenes made from ``bank``.

    Parameters
    ----------
    bank : ObjectBank, bank folder path or list of BankObject
        Objects pasted into the scenes.
    backgrounds : None, BackgroundSource or list of gray images (or image paths)
        Background source for ``synthesize_scene``.
    model_path : path ending in ``.keras``
        Where the best model goes (atomically); its JSON sidecar is written beside it.
    steps, epochs, minutes : int, int, float
        The budget: give exactly one. ``epochs`` means ``epochs * steps_per_epoch`` steps;
        ``minutes`` is wall time checked between batches. The budget counts from the end of
        the first training step, also when resuming: building the model, the validation set
        and the first step's compilation are not counted.
    patch, batch_size : int
        Scene size (a multiple of ``2**depth``) and scenes per step.
    steps_per_epoch : int
        Steps between two validations.
    validation_scenes : int
        Size of the fixed, seeded synthetic validation set.
    base_filters, depth : int
        Network size (ignored when resuming: the saved network is used).
    learning_rate : float
        Adam learning rate (also applied to a resumed model's optimizer); the schedule scales it.
    seed : int
        Seeds Keras, the scenes and the validation set.
    resume : bool
        Load the model at ``model_path`` (with its optimizer state) and continue training it.
    callbacks : callable or list of callables, optional
        Each receives a ``TrainProgress``.
    cancel_event : threading.Event or multiprocessing.Event, optional
        Checked before every batch; when set, training validates the last steps, keeps the
        best model and returns with ``cancelled=True``. A KeyboardInterrupt (Ctrl-C) during
        the steps does the same; a new run stopped before its first validation saves the
        model it has, so a model file is always left.
    scene_params : dict, optional
        Keyword arguments for ``synthesize_scene``, on top of ``DEFAULT_SCENE_PARAMS``.
    real_validation : sequence of (image, labels), optional
        Real images with masks (ground truth, or their auto-segmentation); when given, the
        model is chosen by the pixel IoU of their segmentation by ``predict`` (whole images,
        default post-processing; ``RealValidation``) instead of the synthetic IoU.
    real_training : sequence of (image, labels), optional
        Real images with instance labels (typically their auto-segmentation); random crops of
        them make up ``real_fraction`` of each batch, synthetic scenes the rest.
    real_fraction : float
        Share of training samples cropped from ``real_training`` (0 to 1).
    normalization : {"percentile", "anchored"}
        The network's input scaling, recorded in the sidecar so prediction repeats it.
        ``"anchored"``: the bank, backgrounds and real images were normalised with
        ``anchored_range`` (background at 0.25, objects at 0.75, bright objects whatever the
        image's polarity); prediction then anchors every image the same way.
    weight_average : float
        Momentum of a moving average of the weights that is validated and saved instead of
        the raw weights (``WeightAverage``, e.g. 0.99; 0, the default: the raw weights).
    lr_schedule : {"cosine", "constant"}
        ``"cosine"`` lowers the learning rate along half a cosine to 5 % of it at the end of
        the budget (steps, epochs or minutes; a resumed run starts the schedule again);
        ``"constant"`` keeps it.
    xla : {"auto", "on", "off"}
        Compile the training step with XLA (``use_xla``). ``"auto"``: on with TensorFlow for
        budgets of at least 100 steps or 1 minute (more steps in the same minutes on a CPU).
    select_after : float
        Share of the budget (0 to 1) from which validations choose the saved model. Before
        it, the best model by the synthetic IoU is saved as a fallback (so Stop always leaves
        a model) and the real images are not scored; the first validation after it replaces
        the fallback. 0 selects from the first validation on.
    real_validation_pixels : int
        Pixels of ``real_validation`` scored at each validation (images in a seeded order;
        larger images by a centred 1024 x 1024 window).
    curated : sequence of (image, Curation or (labels, known)), optional
        Real images with what a person said about them (``napari_synthseg.curation``): crops
        centred near their known pixels make up ``curated_fraction`` of each batch and of the
        validation set, and the loss counts only their known pixels (``SyntheticScenes``).
        Give the images as they are; they are normalised as the model's ``normalization`` says.
    curated_fraction : float
        Share of training (and validation) samples cropped from ``curated`` (0 to 1).
    curated_ring_px : int, optional
        Width of the known background ring outside each curated object (``Curation.known``).
    on_phase : callable, optional
        ``on_phase(name)`` when the work changes: ``"building the model"``, ``"training"``,
        ``"validating"``, ``"saving"`` (for a viewer's status line).

    Returns
    -------
    TrainResult
    """
    budget = _check_budget(steps, epochs, minutes)
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ValueError(f"model_path must end in .keras (Keras 3 format), got {model_path.name!r}")
    for name, value in (("patch", patch), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                        ("validation_scenes", validation_scenes)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    if isinstance(select_after, bool) or not isinstance(select_after, (int, float, np.number)) \
            or not 0.0 <= select_after <= 1.0:
        raise ValueError(f"select_after must be a share of the budget between 0 and 1, got {select_after!r}")
    jit_compile = use_xla(xla, budget, steps_per_epoch)
    callbacks = _check_callbacks(callbacks)
    if on_phase is not None and not callable(on_phase):
        raise TypeError(f"on_phase must be callable, got {type(on_phase).__name__}")
    announce = on_phase or (lambda name: None)
    cancel_event = cancel_event if cancel_event is not None else threading.Event()
    start_time = time.perf_counter()
    budget_start = None  # the end of the first training step: the minutes budget counts from there

    announce("building the model")
    keras.utils.set_random_seed(int(seed))
    if resume:
        model, previous = _load_for_resume(model_path, learning_rate, jit_compile)
        network = previous.get("network") or {}
        saved_mode = (previous.get("normalization") or {}).get("mode", "percentile")
        if saved_mode != normalization:
            raise ValueError(f"cannot resume {model_path} with normalization={normalization!r}: it was trained "
                             f"with {saved_mode!r}; pass normalization={saved_mode!r} or train a new model")
        depth = int(network.get("depth", depth))
        base_filters = int(network.get("base_filters", base_filters))
    else:
        model, previous = build_unet(base_filters, depth), {}
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=SegmentationLoss(),
                      metrics=[ForegroundIoU()], jit_compile=jit_compile)
        network = None
    if patch % 2**depth:
        raise ValueError(f"patch={patch} must be a multiple of 2**depth={2**depth}; "
                         f"try {max(2**depth, patch // 2**depth * 2**depth)}")
    network = network or {"architecture": "unet", "base_filters": int(base_filters), "depth": int(depth),
                          "n_outputs": len(CHANNELS), "input_channels": 1}
    network["pad_multiple"] = 2 ** int(depth)
    average = WeightAverage(model, weight_average)

    scene_params = {**DEFAULT_SCENE_PARAMS, **(scene_params or {})}
    scenes = SyntheticScenes(bank, backgrounds, patch=patch, batch_size=batch_size,
                             steps_per_epoch=steps_per_epoch, seed=seed, scene_params=scene_params,
                             real=real_training, real_fraction=real_fraction, normalization=normalization,
                             curated=curated, curated_fraction=curated_fraction, ring_px=curated_ring_px)
    x_val, y_val = scenes.validation_set(validation_scenes)
    real = RealValidation(real_validation, network=network, normalization=normalization,
                          max_pixels=real_validation_pixels, seed=seed) if real_validation else None

    start_step = int((previous.get("training") or {}).get("steps", 0)) if resume else 0
    history = [h for h in previous.get("history", []) if h.get("step", 0) <= start_step] if resume else []
    total_steps = None if budget[0] == "minutes" else start_step + budget[1] * (
        steps_per_epoch if budget[0] == "epochs" else 1)
    deadline = math.inf  # set once the first step is done (minutes budget)

    state = {"best": -math.inf, "best_step": None, "saved": False, "selecting": False, "baseline": -math.inf}
    train_params = {"patch": int(patch), "batch_size": int(batch_size), "steps_per_epoch": int(steps_per_epoch),
                    "validation_scenes": int(validation_scenes), "learning_rate": float(learning_rate),
                    "seed": int(seed), "budget": {budget[0]: budget[1]}, "scene_params": dict(scene_params),
                    "real_validation_images": len(real_validation or ()),
                    "real_training_images": len(real_training or ()),
                    "real_fraction": float(real_fraction) if real_training else 0.0,
                    "curated_images": len(scenes.curated.images) if scenes.curated is not None else 0,
                    "curated_fraction": scenes.curated_fraction, "resumed_from_step":
                    start_step if resume else None, "weight_average": float(weight_average),
                    "lr_schedule": lr_schedule, "xla": bool(model.jit_compile),
                    "select_after": float(select_after),
                    "real_validation_pixels": real.pixels if real is not None else 0}
    selection = "real_val_iou" if real is not None else "val_iou"

    def report(progress: TrainProgress) -> None:
        for callback in callbacks:
            callback(progress)

    def budget_used(at_step: int, now: float) -> float:
        if total_steps is None:
            return 0.0 if budget_start is None else (now - budget_start) / (budget[1] * 60.0)
        return (at_step - start_step) / (total_steps - start_step)

    def validate(step: int, train_losses: list[float], used: float, baseline: bool = False,
                 keep: bool = False) -> dict:
        announce("validating")
        t0 = time.perf_counter()
        selecting = used >= select_after
        if selecting and not state["selecting"]:
            # an early fallback is replaced whatever it scored; a resumed model has to be beaten
            state.update(best=state["baseline"], selecting=True)
        with average.applied(model):
            logs = model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0, return_dict=True)
            record = {"step": step, "loss": float(np.mean(train_losses)) if train_losses else None,
                      "val_loss": float(logs["loss"]), "val_iou": float(logs["fg_iou"]), "selecting": selecting}
            if real is not None and (selecting or baseline):
                record["real_val_iou"] = float(real.score(model))
            if baseline:
                state["baseline"] = _finite(record[selection])
            metric = _finite(record[selection if selecting else "val_iou"])
            # during a resumed run's first part the resumed model itself is the fallback
            record["saved"] = metric > state["best"] and (selecting or baseline or not resume)
            # ``keep``: a new run that stops before any model was saved still leaves one
            record["saved"] = record["saved"] or (keep and not state["saved"] and not resume)
            record["elapsed_s"] = round(time.perf_counter() - start_time, 2)
            history.append(record)
            if record["saved"]:
                state.update(best=metric, best_step=step)
                announce("saving")
                _save(model, model_path)
                state["saved"] = True
        _write_info(model_path, network, train_params, state, history, scenes, selection, step)
        state["val_seconds"] = time.perf_counter() - t0
        return record

    step = start_step
    # a resumed run reports the saved run's last training loss until its first step
    last_loss = next((h["loss"] for h in reversed(history) if h.get("loss") is not None), math.nan)
    last_val: dict = {}
    if resume:  # the saved model's score on this run's validation set is the one to beat
        last_val = validate(step, [], 0.0, baseline=True)
        report(_progress(step, total_steps, last_loss, last_val, start_time, state, "validation"))

    cancelled = False
    losses: list[float] = []
    step_seconds = None
    last_report = 0.0
    announce("training")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthseg-scenes") as pool:
        # the next batch is synthesised while the network trains on the current one
        pending = pool.submit(scenes.batch, step)
        try:
            while True:
                if cancel_event.is_set():
                    cancelled = True
                    break
                if total_steps is not None and step >= total_steps:
                    break
                now = time.perf_counter()
                if step > start_step and now + (step_seconds or 0) + state.get("val_seconds", 0) > deadline:
                    break
                x, y = pending.result()
                pending = pool.submit(scenes.batch, step + 1)
                factor = learning_rate_factor(lr_schedule, budget_used(step, now))
                model.optimizer.learning_rate.assign(learning_rate * factor)
                t0 = time.perf_counter()
                logs = model.train_on_batch(x, y, return_dict=True)
                average.update(model)
                took = time.perf_counter() - t0
                if budget_start is not None:  # the first step's time is mostly compiling: not a step's
                    step_seconds = took if step_seconds is None else 0.8 * step_seconds + 0.2 * took
                step += 1
                if budget_start is None:  # the first step compiled the network: the budget starts now
                    budget_start = time.perf_counter()
                    if budget[0] == "minutes":
                        deadline = budget_start + budget[1] * 60.0
                last_loss = float(logs["loss"])
                if not math.isfinite(last_loss):
                    raise FloatingPointError(f"training diverged at step {step} (loss {last_loss}); "
                                             "lower learning_rate or check the bank's objects")
                losses.append(last_loss)
                if (step - start_step) % steps_per_epoch == 0:
                    last_val = validate(step, losses, budget_used(step, time.perf_counter()))
                    losses = []
                    report(_progress(step, total_steps, last_loss, last_val, start_time, state, "validation"))
                    last_report = time.perf_counter()
                    announce("training")
                elif time.perf_counter() - last_report >= REPORT_INTERVAL_S or step == total_steps:
                    report(_progress(step, total_steps, last_loss, last_val, start_time, state, "train"))
                    last_report = time.perf_counter()
        except KeyboardInterrupt:  # Ctrl-C (or a callback raising it) stops like the cancel flag
            cancelled = True
        pending.cancel()

    if losses or not state["saved"]:
        # a budget that ran out is all used, though a minutes budget stops a step early
        last_val = validate(step, losses, budget_used(step, time.perf_counter()) if cancelled else 1.0, keep=True)
        report(_progress(step, total_steps, last_loss, last_val, start_time, state, "validation"))
    train_params["cancelled"] = cancelled
    _write_info(model_path, network, train_params, state, history, scenes, selection, step)
    report(_progress(step, total_steps, last_loss, last_val, start_time, state, "done"))
    return TrainResult(model_path=str(model_path), sidecar_path=str(model_path.with_suffix(".json")),
                       best_metric=float(state["best"]), history=list(history), steps_done=step,
                       cancelled=cancelled)


def _finite(metric: float) -> float:
    return -math.inf if math.isnan(metric) else metric


def _check_budget(steps, epochs, minutes) -> tuple[str, float]:
    given = {name: value for name, value in (("steps", steps), ("epochs", epochs), ("minutes", minutes))
             if value is not None}
    if len(given) != 1:
        raise ValueError("give exactly one training budget: steps=N, epochs=N or minutes=M "
                         f"(got {', '.join(given) or 'none'})")
    (name, value), = given.items()
    if name == "minutes":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
            raise ValueError(f"minutes must be a number > 0, got {value!r}")
        return name, float(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return name, int(value)


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


def _save(model, model_path: Path) -> None:
    # temporary name keeps the .keras suffix Keras insists on, then one atomic rename
    atomic_write(model_path, lambda tmp: model.save(tmp))


def _write_info(model_path, network, train_params, state, history, scenes, selection, step) -> None:
    if not state["saved"]:
        return
    best_record = next((h for h in reversed(history) if h["step"] == state["best_step"] and h["saved"]), {})
    info = {
        **prediction_info(network, scenes.normalization),
        "training": dict(train_params, steps=state["best_step"], last_step=step),
        "bank": {"size": scenes.bank_size, "hash": scenes.bank_hash},
        # a model saved before ``select_after`` is the synthetic-IoU fallback
        "metrics": {"selection": selection if best_record.get("selecting") else "val_iou", "best": state["best"],
                    **{k: v for k, v in best_record.items() if k not in ("saved", "elapsed_s")}},
        "history": history,
        "versions": _versions(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_sidecar(model_path, info)


def _versions() -> dict:
    from importlib import metadata

    import napari_synthseg

    backend = keras.backend.backend()
    versions = {"napari_synthseg": napari_synthseg.__version__, "keras": keras.__version__,
                "backend": backend, "numpy": np.__version__, "python": platform.python_version()}
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


def _progress(step, total_steps, loss, val, start_time, state, phase) -> TrainProgress:
    best = state["best"]
    return TrainProgress(step=step, total_steps=total_steps, loss=float(loss),
                         val_loss=val.get("val_loss"), val_iou=val.get(
                             "real_val_iou", val.get("val_iou")) if val else None,
                         elapsed_s=round(time.perf_counter() - start_time, 2),
                         best=None if best == -math.inf else float(best), phase=phase)


def progress_dict(progress: TrainProgress) -> dict:
    """A ``TrainProgress`` as a plain dict (for queues and JSON)."""
    return asdict(progress)


__all__ = ["DEFAULT_SCENE_PARAMS", "TrainProgress", "TrainResult", "train_model", "progress_dict", "use_xla"]
