"""The headless end-to-end run: auto-segment → bank → train → segment → score, in rounds.

``run_pipeline`` orchestrates the steps below; what a run trains on is made in
``pipeline_inputs`` and how it is scored in ``pipeline_scores`` (their names are importable
from here too).

This module imports the model layer lazily (inside functions), so importing it does not
import TensorFlow; it is meant for the command line and batch work, not the napari process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .image_io import list_images, write_png, write_tiff
from .model.params import TrainingParams
from .overlay import make_overlay
from .pipeline_inputs import (  # noqa: F401  (re-exported: a run's preparation, imported from here)
    DEFAULT_AUTOSEG,
    DEFAULT_BANK_FILTER,
    DEFAULT_TRAIN,
    Plane,
    RecipeInputs,
    _given,
    build_bank,
    decide_recipe,
    load_planes,
    network_images,
    object_scale,
    per_file,
    real_image_params,
    recipe_inputs,
    training_objects,
    training_recipe,
    zoom_image,
    zoom_labels,
)
from .pipeline_scores import (  # noqa: F401  (re-exported: a run's scores, imported from here)
    _as_instances,
    _foreground_change,
    as_label_image,
    confident_objects,
    find_ground_truth,
    score_labels,
)
from .recipe import RECIPES, RecipeDecision
from .zoom import zoom_back

#: Progress callback: (stage, done, total, message).
Progress = Callable[[str, int, int, str], None]


def predict_at_scale(model, image: np.ndarray, factor: float, **params) -> tuple[np.ndarray, np.ndarray]:
    """``predict`` on the image zoomed by ``factor``; labels and probabilities at full resolution.

    The probabilities are interpolated back to the image's grid and turned into instances
    there, so outlines keep full resolution; ``ignore_box`` is resolved on the full image.
    A zoomed image is not shrunk again (its scale is chosen: ``max_shrink`` 1); at ``factor`` 1
    ``predict`` tries its views as usual.
    """
    from .instances import probabilities_to_instances
    from .model.prediction import predict

    if factor == 1.0:
        return predict(model, image, return_probabilities=True, **params)
    on_view = params.pop("on_view", None)
    if on_view is not None:  # the size normalisation chose the zoom
        from .model.views import ViewChoice

        on_view(ViewChoice(factor))
    from .model.params import PredictionParams
    from .scalebar import cut_box, resolve_ignore_box

    defaults = PredictionParams()
    post = {k: params.pop(k) for k in ("threshold", "min_area", "fill_holes", "method", "min_confidence")
            if k in params}
    post.setdefault("min_confidence", defaults.min_confidence)
    drop_overlays = params.pop("drop_overlays", defaults.drop_overlays)
    box = resolve_ignore_box(np.asarray(image), params.pop("ignore_box", "auto"))
    params["max_shrink"] = 1.0
    _, prob = predict(model, zoom_image(image, factor), return_probabilities=True, ignore_box=None,
                      drop_overlays=False, **params)
    prob = zoom_back(prob, image.shape)
    cut_box(prob[..., 0], box)
    return probabilities_to_instances(prob, **post, drawn_on=image if drop_overlays else None), prob


def _no_progress(stage: str, done: int, total: int, message: str = "") -> None:
    return None


@dataclass
class RoundResult:
    """What one training round produced."""

    round: int
    bank_size: int
    model_path: str
    train_seconds: float
    best_val_iou: float | None
    scores: dict | None = None
    change_from_previous: float | None = None
    views: dict = field(default_factory=dict)  # each plane's ViewChoice (the zoom segmented at, its evidence)


@dataclass
class RunSummary:
    """Everything a run wrote and measured."""

    images: list[str]
    out_dir: str
    bank_path: str
    rounds: list[RoundResult] = field(default_factory=list)
    baseline_scores: dict | None = None
    best_round: int | None = None
    stopped_because: str = ""
    predict_params: dict = field(default_factory=dict)  # what predict got besides its defaults
    recipe: dict = field(default_factory=dict)  # the recipe trained with, who chose it and why
    bank_left_out: dict = field(default_factory=dict)  # objects not banked, by reason (shape judgement)
    interrupted: bool = False  # stopped by ``cancel_event`` (Ctrl-C); the model so far is at ``model_path``
    model_path: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def run_pipeline(image_paths: Sequence[str | Path], out_dir: str | Path, *, minutes: float | None = None,
                 steps: int | None = None, rounds: int = 1, model_out: str | Path | None = None,
                 gt_dir: str | Path | None = None, autoseg_params: dict | None = None,
                 train_params: dict | None = None, predict_params: dict | None = None,
                 scene_params: dict | None = None, min_gain: float = 0.005, seed: int = TrainingParams.seed,
                 object_size: float | None = None, recipe: str = "auto",
                 progress: Progress = _no_progress, cancel_event=None,
                 notify: Callable[[str], None] | None = None, pixel_size=None,
                 in_memory_pixels: int | None = None) -> RunSummary:
    """Auto-segment, build the bank, train within the budget, segment every image, score.

    Parameters
    ----------
    image_paths
        Images or folders of images (2D, gray or RGB).
    out_dir
        Output folder: ``<stem>_labels.tif``, ``<stem>_overlay.png``, ``bank/``, the model and
        ``summary.json``.
    minutes, steps
        Training budget per round (exactly one).
    rounds
        Maximum number of self-training rounds. After each round, objects segmented
        confidently join the bank. Rounds stop early once one no longer helps: with ground
        truth, when object F1 gains less than ``min_gain``; without, when the segmentation
        changes by less than ``min_gain`` (1 - foreground IoU between rounds).
    model_out
        Where to save the model (default ``out_dir/model.keras``).
    gt_dir
        Optional folder of masks with the images' stems; enables scores.
    autoseg_params
        Keyword arguments for ``autosegment`` on top of the recipe's (None values: the recipe's).
    train_params
        Keyword arguments for ``train_model`` on top of the recipe's; ``real_fraction``
        (0 to 1) is the share of each batch cropped from the real images, labelled by the
        auto-segmentation in round 1 and by the previous round's model after that (0: only
        synthetic scenes).
    object_size
        When given, each image is shrunk (never enlarged) so that its typical auto-segmented
        object is about this many pixels across before the bank, the backgrounds, training and
        prediction see it; outputs stay at full resolution. None: images as they are.
    pixel_size
        A `~napari_synthseg.pixel_size.PixelSize` every ``<stem>_labels.tif`` carries; None: the one
        its image file carries, if any.
    in_memory_pixels
        The largest plane the run reads whole (None: ``largeimage.DEFAULT_IN_MEMORY_PIXELS``); a larger
        one is refused before training (``load_planes``).
    recipe
        ``"auto"`` (decided from the images by ``recipe.choose_recipe``), ``"synthetic"`` or
        ``"mixed"``; recorded in ``summary.json`` and in the model's sidecar.
    notify
        Called with one line once the recipe is decided (e.g. ``print``).
    cancel_event
        A ``threading.Event``; when set, the run stops: during auto-segmentation with
        KeyboardInterrupt (nothing written yet but the bank), during training after keeping
        the best model so far (``train_model``'s cancel), and between images of segmentation.
        A round-1 model is then copied to ``model_out``; the summary says ``interrupted``.
    """
    paths, out, model_path, gt_files = _checked_run(image_paths, out_dir, model_out, gt_dir, minutes=minutes,
                                                    steps=steps, rounds=rounds, recipe=recipe)
    planes = load_planes(paths, in_memory_pixels)
    decision = decide_recipe([plane.image for plane in planes], recipe)
    if notify is not None:
        notify(decision.line())
    auto_labels = _autosegment_planes(planes, {**decision.autoseg, **_given(autoseg_params)}, progress, cancel_event)
    run = _prepare_run(planes, auto_labels, decision, out, model_path, train_params=train_params,
                       object_size=object_size)
    run.summary = RunSummary(images=[str(p) for p in paths], out_dir=str(out), bank_path=str(run.bank.path),
                             predict_params=dict(predict_params or {}), recipe=decision.to_dict(),
                             model_path=str(model_path), bank_left_out=dict(run.bank.left_out))
    if gt_files:
        run.gt_files = gt_files
        run.summary.baseline_scores = score_labels(per_file(planes, auto_labels), gt_files)
    settings = _RoundSettings(minutes=minutes, steps=steps, rounds=rounds, seed=seed, scene_params=scene_params,
                              predict_params=dict(predict_params or {}), min_gain=min_gain, pixel_size=pixel_size,
                              progress=progress, cancel_event=cancel_event)
    return _run_rounds(run, settings)


def _checked_run(image_paths, out_dir, model_out, gt_dir, *, minutes, steps, rounds: int, recipe: str
                 ) -> tuple[list[Path], Path, Path, dict[str, Path] | None]:
    """The run's images, output folder, model path and ground truth; every argument checked before any work.

    Outputs that cannot be written are found now, not after the training.
    """
    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one training budget: minutes or steps")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    paths = list_images(image_paths)
    out = Path(out_dir)
    model_path = Path(model_out) if model_out else out / "model.keras"
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file; give a folder (existing or new)")
    if model_path.suffix != ".keras" or model_path.is_dir():
        raise ValueError(f"model_out {model_path} must be a file name ending in .keras")
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise ValueError("two images share a file stem; outputs would overwrite each other — rename one")
    gt_files = find_ground_truth(gt_dir, stems) if gt_dir else None
    if recipe != "auto" and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose auto, {', '.join(RECIPES)}")
    return paths, out, model_path, gt_files


def _autosegment_planes(planes: Sequence[Plane], params: dict, progress: Progress, cancel_event
                        ) -> dict[str, np.ndarray]:
    """Auto-segmentation of every plane, by ``Plane.key``; KeyboardInterrupt when ``cancel_event`` is set."""
    from .autoseg import autosegment

    labels: dict[str, np.ndarray] = {}
    for i, plane in enumerate(planes):
        if cancel_event is not None and cancel_event.is_set():
            raise KeyboardInterrupt
        progress("autoseg", i, len(planes), plane.key)
        labels[plane.key] = autosegment(plane.image, **params)
    progress("autoseg", len(planes), len(planes), "")
    return labels


@dataclass
class _Run:
    """A run's inputs and what its rounds share and grow (made by ``_prepare_run``)."""

    out: Path
    model_path: Path
    planes: list[Plane]
    factors: dict[str, float]  # each plane's zoom (``object_size``), by key
    raw_images: list[np.ndarray]  # the planes at their working scale
    work_images: list[np.ndarray]  # as the network sees them: the bank and backgrounds are cut from these
    real_labels: list[np.ndarray]  # labels of the real crops: auto-segmentation, then the last round's model
    bank: object
    backgrounds: object
    decision: RecipeDecision
    train_params: dict
    real_fraction: float
    scene_params: dict = field(default_factory=dict)  # the recipe's scene settings (restyled objects' sides)
    summary: RunSummary | None = None
    gt_files: dict[str, Path] | None = None


def _prepare_run(planes: list[Plane], auto_labels: dict[str, np.ndarray], decision: RecipeDecision, out: Path,
                 model_path: Path, *, train_params: dict | None, object_size: float | None) -> _Run:
    """Zoom the planes, then make the bank and the backgrounds in ``out`` (`recipe_inputs`)."""
    keys = [plane.key for plane in planes]
    factors = {k: (object_scale(auto_labels[k], target_diameter=object_size) if object_size else 1.0)
               for k in keys}
    train_params, real_fraction = training_recipe(_given(train_params), base=decision.train)
    scene_params = dict(train_params.pop("scene_params", None) or {})  # the recipe's, under the caller's
    raw_images = [zoom_image(plane.image, factors[plane.key]) for plane in planes]
    work_labels = [zoom_labels(auto_labels[k], r.shape) for r, k in zip(raw_images, keys)]
    if not any(labels.any() for labels in work_labels):  # found before anything is written
        raise ValueError("auto-segmentation found no objects in any image; try another --method or --polarity")
    out.mkdir(parents=True, exist_ok=True)
    inputs = recipe_inputs(out / "bank", [plane.path for plane in planes], raw_images, work_labels,
                           train_params.get("normalization", "percentile"))
    if len(inputs.bank) == 0:
        raise ValueError(
            "auto-segmentation found no objects in any image; try another --method or --polarity"
        )
    return _Run(out=out, model_path=model_path, planes=list(planes), factors=factors, raw_images=raw_images,
                work_images=inputs.network_images, real_labels=list(work_labels), bank=inputs.bank,
                backgrounds=inputs.backgrounds, decision=decision, train_params=train_params,
                real_fraction=real_fraction, scene_params=scene_params)


@dataclass(frozen=True)
class _RoundSettings:
    """``run_pipeline``'s arguments that every round reads."""

    minutes: float | None
    steps: int | None
    rounds: int
    seed: int
    scene_params: dict | None
    predict_params: dict
    min_gain: float
    pixel_size: object
    progress: Progress
    cancel_event: object


def _run_rounds(run: _Run, settings: _RoundSettings) -> RunSummary:
    """Train, segment and score round after round until one stops helping; write ``summary.json``."""
    summary = run.summary
    previous: dict[str, np.ndarray] | None = None
    best_score = -1.0
    for round_index in range(1, settings.rounds + 1):
        round_model = run.out / "rounds" / f"round{round_index}.keras"
        result, train_seconds = _train_round(run, settings, round_index, round_model)
        if result.cancelled:
            return _stop(run, round_index, round_model, "training")
        segmented = _segment_planes(run, settings, round_model)
        if segmented is None:
            return _stop(run, round_index, round_model, "segmentation")
        predictions, foregrounds, views = segmented
        scores = score_labels(per_file(run.planes, predictions), run.gt_files) if run.gt_files else None
        change = _foreground_change(previous, predictions) if previous is not None else None
        summary.rounds.append(RoundResult(
            round=round_index, bank_size=len(run.bank), model_path=str(round_model),
            train_seconds=round(train_seconds, 1), best_val_iou=result.best_metric,
            scores=scores, change_from_previous=change, views=views,
        ))
        score = scores["object_f1"] if scores else None
        improved = score is None or score > best_score + settings.min_gain
        if improved:
            _write_outputs(run.out, run.planes, predictions, settings.progress, settings.pixel_size)
            _copy_model(round_model, run.model_path)
            best_score = score if score is not None else best_score
            summary.best_round = round_index
        summary.stopped_because = _reason_to_stop(round_index, settings, improved, change)
        if summary.stopped_because:
            break
        previous = predictions
        if _grow_bank(run, predictions, foregrounds, round_index) == 0:
            summary.stopped_because = f"round {round_index} found no new confident objects"
            break
    (run.out / "summary.json").write_text(summary.to_json())
    return summary


def _train_round(run: _Run, settings: _RoundSettings, round_index: int, round_model: Path):
    """Train round ``round_index``'s model (round 2 on: fine-tune the previous one on the grown bank).

    Returns ``train_model``'s result and the seconds it took.
    """
    from .model.training import train_model

    progress = settings.progress
    if round_index > 1:
        _copy_model(run.out / "rounds" / f"round{round_index - 1}.keras", round_model)
    t0 = time.perf_counter()
    result = train_model(
        training_objects(run.bank, **DEFAULT_BANK_FILTER), run.backgrounds, round_model, minutes=settings.minutes,
        steps=settings.steps, seed=settings.seed + round_index,
        resume=round_index > 1, scene_params={**run.scene_params, **(settings.scene_params or {})} or None,
        **real_image_params(zip(run.raw_images, run.real_labels), run.real_fraction),
        callbacks=[lambda p, r=round_index: progress(
            f"train round {r}", p.step, p.total_steps or 0, f"loss {p.loss:.3f}")],
        cancel_event=settings.cancel_event, **run.train_params,
    )
    train_seconds = time.perf_counter() - t0
    if round_model.is_file():
        _record_in_sidecar(round_model, recipe=run.decision.to_dict())
    return result, train_seconds


def _segment_planes(run: _Run, settings: _RoundSettings, round_model: Path
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]] | None:
    """Labels, foreground probabilities and view choices of every plane by the round's model; None when
    cancelled."""
    predictions: dict[str, np.ndarray] = {}
    foregrounds: dict[str, np.ndarray] = {}
    views: dict[str, dict] = {}
    planes, progress = run.planes, settings.progress
    for i, plane in enumerate(planes):
        if settings.cancel_event is not None and settings.cancel_event.is_set():
            return None
        progress("segment", i, len(planes), plane.key)
        labels, prob = predict_at_scale(round_model, plane.image, run.factors[plane.key], **settings.predict_params,
                                        on_view=lambda choice, key=plane.key: views.__setitem__(key, choice.to_dict()))
        predictions[plane.key], foregrounds[plane.key] = labels, prob[..., 0]
    progress("segment", len(planes), len(planes), "")
    return predictions, foregrounds, views


def _reason_to_stop(round_index: int, settings: _RoundSettings, improved: bool, change: float | None) -> str:
    """Why the rounds end after this one ("" to go on)."""
    min_gain = settings.min_gain
    if round_index == settings.rounds:
        return f"reached --rounds {settings.rounds}"
    if not improved:
        return f"round {round_index} did not raise object F1 by {min_gain}"
    if change is not None and change < min_gain:
        return f"round {round_index} changed the segmentation by less than {min_gain}"
    return ""


def _grow_bank(run: _Run, predictions: dict[str, np.ndarray], foregrounds: dict[str, np.ndarray],
               round_index: int) -> int:
    """Bank the objects this round segmented confidently; how many were new.

    With real crops, the next round's are labelled by this round's model.
    """
    from .bank import LabelledImage, add_labelled_images

    if run.real_fraction > 0:
        run.real_labels = [zoom_labels(predictions[plane.key], work.shape)
                           for plane, work in zip(run.planes, run.work_images)]
    confident = (LabelledImage(work, zoom_labels(predictions[plane.key], work.shape), source=str(plane.path),
                               ids=confident_objects(predictions[plane.key], foregrounds[plane.key]))
                 for plane, work in zip(run.planes, run.work_images))
    return add_labelled_images(run.bank, confident, method=f"self-training round {round_index}")


def _stop(run: _Run, round_index: int, round_model: Path, during: str) -> RunSummary:
    """End an interrupted run: keep round 1's model when no round finished, write ``summary.json``."""
    summary = run.summary
    summary.interrupted = True
    summary.stopped_because = f"interrupted during {during} of round {round_index}"
    if summary.best_round is None and round_model.is_file():  # the only model of this run
        _copy_model(round_model, run.model_path)
    elif summary.best_round is None:
        summary.model_path = ""
    (run.out / "summary.json").write_text(summary.to_json())
    return summary


def _record_in_sidecar(model_path: Path, **entries) -> None:
    """Add ``entries`` to a saved model's sidecar (e.g. the recipe it was trained with)."""
    from .model.sidecar import read_sidecar, write_sidecar

    info = read_sidecar(model_path)
    info.update(entries)
    write_sidecar(model_path, info)


def _copy_model(source: Path, target: Path) -> None:
    """Copy a model and its sidecar atomically (the target is never half-written)."""
    import shutil

    from .image_io import atomic_write
    from .model.sidecar import sidecar_path

    if Path(source).resolve() == Path(target).resolve():
        return
    for src, dst in ((Path(source), Path(target)), (sidecar_path(source), sidecar_path(target))):
        atomic_write(dst, lambda tmp, src=src: shutil.copyfile(src, tmp))


def _write_outputs(out: Path, planes: Sequence[Plane], predictions: dict[str, np.ndarray],
                   progress: Progress, pixel_size=None) -> None:
    """``<stem>_labels.tif`` per file (a stack for a stack; with ``pixel_size`` or its image's) and
    ``<key>_overlay.png`` per plane."""
    from .pixel_size import input_pixel_size

    files = per_file(planes, predictions)
    paths = {plane.path.stem: plane.path for plane in planes}
    for i, (stem, labels) in enumerate(files.items()):
        progress("write", i, len(files), stem)
        size = pixel_size or input_pixel_size(paths[stem])
        write_tiff(out / f"{stem}_labels.tif", labels.astype(np.uint32), pixel_size=size, labels=True)
    for plane in planes:
        write_png(out / f"{plane.key}_overlay.png", make_overlay(plane.image, predictions[plane.key]))
    progress("write", len(files), len(files), "")


# curation rounds (issue 17) live in their own module; the CLI and the Train dock call them from here
from .retraining import find_curated, next_round_path, retrain_round  # noqa: E402,F401
