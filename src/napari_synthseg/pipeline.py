"""The headless end-to-end run: auto-segment → bank → train → segment → score, in rounds.

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

from .image_io import ImageReadError, list_images, read_image, to_gray, write_png, write_tiff
from .metrics import DatasetScores
from .overlay import make_overlay
from .recipe import RECIPES, RecipeDecision, choose_recipe
from .recipe import recipe as named_recipe
from .relabel import stack_planes

#: Progress callback: (stage, done, total, message).
Progress = Callable[[str, int, int, str], None]


#: Auto-segmentation and training of the synthetic recipe (see ``recipe.RECIPES``); a run decides
#: its recipe from the images unless told (``run_pipeline(recipe=...)``).
DEFAULT_AUTOSEG: dict = dict(RECIPES["synthetic"]["autoseg"])  # copies: callers may not change the recipes
DEFAULT_TRAIN: dict = dict(RECIPES["synthetic"]["train"])
#: Which banked objects training uses by default (see ``training_objects``).
# objects cut by the image border have straight cut edges that the network would learn
# (docs/benchmarks.md, "Why these defaults")
DEFAULT_BANK_FILTER: dict = {"min_quality": 0.0, "skip_border": True}


def build_bank(bank_path: str | Path, paths: Sequence[str | Path], images: Sequence[np.ndarray],
               labels: Sequence[np.ndarray], *, method: str = "autoseg"):
    """An ObjectBank at ``bank_path`` holding every labelled object of every image.

    Each object records its image's path as ``source`` (scenes can then be grouped by
    source image, see ``synthesize_scene(group_prob=...)``).
    """
    from .bank import ObjectBank

    bank = ObjectBank(bank_path)
    for path, image, lab in zip(paths, images, labels):
        bank.add_from_labels(image, lab, source=str(path), method=method)
    return bank


def network_images(images: Sequence[np.ndarray], normalization: str) -> list[np.ndarray]:
    """The images the bank and the backgrounds are cut from, for a model with ``normalization``.

    ``"anchored"``: each whole image normalised by ``anchored_range`` and clipped to [0, 1],
    so objects of bright-field and dark-field images look alike (bright on dark, at the
    same levels) in every synthetic scene. ``"percentile"``: the images as they are (scenes
    are normalised one by one).
    """
    if normalization != "anchored":
        return list(images)
    from .normalize import normalize_image

    return [np.clip(normalize_image(image, "anchored"), 0.0, 1.0) for image in images]


@dataclass
class RecipeInputs:
    """What the synthetic scenes of a recipe are made from (see ``recipe_inputs``).

    Attributes
    ----------
    network_images
        The images as the network sees them (``network_images``): anchored for the mixed recipe.
    bank
        The ObjectBank of every labelled object, cut from ``network_images``.
    backgrounds
        The BackgroundSource learned from ``network_images`` outside their objects.
    """

    network_images: list
    bank: object
    backgrounds: object


def recipe_inputs(bank_path: str | Path, names: Sequence[str | Path], images: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray], normalization: str) -> RecipeInputs:
    """The bank and the backgrounds a model with ``normalization`` trains on, as ``run_pipeline`` makes them.

    Parameters
    ----------
    bank_path
        Folder of the bank (created, or added to).
    names
        One name per image (its path): the objects' ``source`` and the backgrounds' ``names``.
    images, labels
        2D gray images and their instance labels (same shapes), e.g. the auto-segmentation.
    normalization
        ``"percentile"`` or ``"anchored"`` (``network_images``).
    """
    from .synthesis import BackgroundSource

    work_images = network_images(images, normalization)
    bank = build_bank(bank_path, names, work_images, labels)
    backgrounds = BackgroundSource.from_images(work_images, labels, names=[str(n) for n in names])
    return RecipeInputs(network_images=work_images, bank=bank, backgrounds=backgrounds)


def training_recipe(train_params: dict | None, base: dict | None = None) -> tuple[dict, float]:
    """``train_model`` keywords (``base``, default ``DEFAULT_TRAIN``, under ``train_params``) and the
    real-crop share taken out of them; the caller supplies the real crops when the share is above 0."""
    params = {**(DEFAULT_TRAIN if base is None else base), **(train_params or {})}
    return params, float(params.pop("real_fraction", 0.0))


def real_image_params(pairs: Sequence[tuple[np.ndarray, np.ndarray]], real_fraction: float) -> dict:
    """``train_model`` keywords for real images and their (auto-segmentation) labels.

    With ``real_fraction`` > 0 their crops make up that share of every batch, and the same
    images choose the model to keep late in training (``real_validation``): agreement with the
    auto-segmentation ranks checkpoints as the ground truth does (docs/benchmarks.md, "Why these defaults").
    """
    if real_fraction <= 0:
        return {}
    pairs = list(pairs)
    return {"real_training": pairs, "real_fraction": real_fraction, "real_validation": pairs}


def training_objects(bank, *, min_quality: float = 0.0, skip_border: bool = False) -> list:
    """The bank's objects fit for training: ``quality`` at least ``min_quality``, and not cut
    by the image border when ``skip_border``. Falls back to all objects if none qualifies."""
    objects = bank.objects()
    kept = [o for o in objects if float(o.meta.get("quality", 1.0)) >= min_quality
            and not (skip_border and o.meta.get("touches_border"))]
    return kept or objects


def object_scale(labels: np.ndarray, *, target_diameter: float = 40.0,
                 limits: tuple[float, float] = (0.25, 1.0)) -> float:
    """Zoom factor that brings an image's typical object to ``target_diameter`` pixels.

    The network sees about a hundred pixels around each pixel; objects much larger than that
    look like background from inside. The median equivalent diameter of the auto-segmented
    objects sets the factor, clipped to ``limits`` (never enlarged by default); no objects: 1.
    """
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    if areas.size == 0:
        return 1.0
    diameter = float(np.sqrt(4.0 * np.median(areas) / np.pi))
    return float(np.clip(target_diameter / diameter, *limits))


def zoom_image(image: np.ndarray, factor: float) -> np.ndarray:
    """Resample a 2D image by ``factor`` (area-averaged when shrinking), float32."""
    if factor == 1.0:
        return image
    from skimage.transform import rescale

    return rescale(np.asarray(image, dtype=np.float32), factor, order=1, anti_aliasing=factor < 1,
                   preserve_range=True).astype(np.float32)


def zoom_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of labels to ``shape``."""
    labels = np.asarray(labels)
    if labels.shape == tuple(shape):
        return labels
    rows = np.minimum((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0], labels.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1], labels.shape[1] - 1).astype(int)
    return labels[np.ix_(rows, cols)]


def predict_at_scale(model, image: np.ndarray, factor: float, **params) -> tuple[np.ndarray, np.ndarray]:
    """``predict`` on the image zoomed by ``factor``; labels and probabilities at full resolution.

    The probabilities are interpolated back to the image's grid and turned into instances
    there, so outlines keep full resolution; ``ignore_box`` is resolved on the full image.
    """
    from .instances import probabilities_to_instances
    from .model.prediction import predict

    if factor == 1.0:
        return predict(model, image, return_probabilities=True, **params)
    from skimage.transform import resize

    from .model.prediction import DEFAULT_MIN_CONFIDENCE
    from .scalebar import cut_box, resolve_ignore_box

    post = {k: params.pop(k) for k in ("threshold", "min_area", "fill_holes", "method", "min_confidence")
            if k in params}
    post.setdefault("min_confidence", DEFAULT_MIN_CONFIDENCE)
    box = resolve_ignore_box(np.asarray(image), params.pop("ignore_box", "auto"))
    _, prob = predict(model, zoom_image(image, factor), return_probabilities=True, ignore_box=None, **params)
    prob = resize(prob, image.shape + (prob.shape[-1],), order=1, preserve_range=True).astype(np.float32)
    cut_box(prob[..., 0], box)
    return probabilities_to_instances(prob, **post), prob


def _no_progress(stage: str, done: int, total: int, message: str = "") -> None:
    return None


def decide_recipe(images: Sequence[np.ndarray], name: str = "auto") -> RecipeDecision:
    """The recipe named, or with ``"auto"`` the one ``choose_recipe`` takes from the images."""
    return choose_recipe(images) if name == "auto" else named_recipe(name)


def _given(params: dict | None) -> dict:
    """The keywords a caller set (None means "not given": the recipe decides)."""
    return {k: v for k, v in (params or {}).items() if v is not None}


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


@dataclass(frozen=True)
class Plane:
    """One 2D plane a run works on: a 2D image, or one plane of a stack (``index`` into its leading axes)."""

    path: Path
    index: tuple[int, ...]
    image: np.ndarray

    @property
    def key(self) -> str:
        """The plane's name in the run: the file's stem, with ``_z0003`` (per leading axis) for a stack plane."""
        return self.path.stem + "".join(f"_z{i:04d}" for i in self.index)


def load_planes(paths: Sequence[Path]) -> list[Plane]:
    """Read images as 2D gray planes (RGB converted); a stack gives one plane per 2D slice."""
    from .image_io import iter_planes

    planes = []
    for path in paths:
        image = to_gray(read_image(path))
        if image.ndim < 2:
            raise ImageReadError(f"{path} has shape {image.shape}; `synthseg run` needs 2D images or stacks of them")
        planes.extend(Plane(Path(path), index, np.ascontiguousarray(image[index]))
                      for index in iter_planes(image.shape))
    return planes


def per_file(planes: Sequence[Plane], arrays: dict[str, np.ndarray], *, labels: bool = True) -> dict[str, np.ndarray]:
    """Arrays of a run's planes (by ``Plane.key``) put back together per file (by stem).

    Label ids are offset plane by plane so that they stay unique across a stack.
    """
    grouped: dict[str, list[tuple[tuple[int, ...], np.ndarray]]] = {}
    for plane in planes:
        grouped.setdefault(plane.path.stem, []).append((plane.index, arrays[plane.key]))
    files = {}
    for stem, items in grouped.items():
        if items[0][0] == ():
            files[stem] = items[0][1]
            continue
        lead = tuple(max(index[d] for index, _ in items) + 1 for d in range(len(items[0][0])))
        first = items[0][1]
        stack = np.zeros(lead + first.shape, dtype=np.uint32 if labels else first.dtype)
        if labels:
            stack_planes(stack, items)
        else:
            for index, array in items:
                stack[index] = array
        files[stem] = stack
    return files


def find_ground_truth(gt_dir: str | Path, stems: Sequence[str]) -> dict[str, Path]:
    """Map image stems to mask files with the same stem in ``gt_dir`` (any image format)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise ImageReadError(f"ground-truth folder {gt_dir} does not exist")
    files = {p.stem: p for p in list_images(gt_dir)}
    for stem in list(files):
        # masks are often named <stem>_mask or <stem>_labels
        for suffix in ("_mask", "_masks", "_labels", "_gt"):
            if stem.endswith(suffix):
                files.setdefault(stem[: -len(suffix)], files[stem])
    found = {stem: files[stem] for stem in stems if stem in files}
    if not found:
        raise ImageReadError(
            f"no mask in {gt_dir} has the stem of any image (e.g. {stems[0]}.png); "
            "name masks like their images"
        )
    return found


def score_labels(predictions: dict[str, np.ndarray], gt_files: dict[str, Path], *,
                 per_image: dict | None = None) -> dict:
    """Pooled pixel and object scores of predicted labels against masks (read by `as_label_image`).

    ``per_image``, when given, receives each image's own summary by stem.
    """
    scores = DatasetScores()
    for stem, gt_path in gt_files.items():
        if stem not in predictions:
            continue
        gt = as_label_image(read_image(gt_path), str(gt_path))
        pred = as_label_image(predictions[stem], stem)
        if gt.shape != pred.shape:
            raise ValueError(f"mask {gt_path} has shape {gt.shape} but the prediction has {pred.shape}; "
                             "score labels made from the same images as the masks")
        gt = _as_instances(gt)
        scores.add(pred, gt)
        if per_image is not None:
            one = DatasetScores()
            one.add(pred, gt)
            per_image[stem] = one.summary()
    return scores.summary()


def as_label_image(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """Integer labels from a label or mask image as users save them.

    RGB(A) masks: each colour is one label (black = background; alpha is not an object).
    Float masks with whole-number values are labels; other float masks (soft masks,
    probabilities) are objects where above half their maximum. NaN counts as background.
    """
    array = np.asarray(array)
    if array.ndim >= 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4:
        flat = np.ascontiguousarray(array[..., :3]).reshape(-1, 3)
        values, inverse = np.unique(flat, axis=0, return_inverse=True)
        ids = np.arange(1, len(values) + 1, dtype=np.int64)
        black = np.flatnonzero((values == 0).all(axis=1))
        if black.size:  # black keeps 0, the other colours 1..n
            ids[black[0]] = 0
            ids[black[0] + 1:] -= 1
        return ids[inverse.ravel()].reshape(array.shape[:-1])
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        finite = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
        if np.all(finite == np.round(finite)) and finite.min(initial=0) >= 0:
            return finite.astype(np.int64)
        top = float(finite.max(initial=0))
        return (finite > top / 2).astype(np.uint8) if top > 0 else np.zeros(array.shape, np.uint8)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError(f"{name} has negative values; labels are 0 (background) and positive ids")
    return array


def _as_instances(mask: np.ndarray) -> np.ndarray:
    """Binary masks become connected components; instance masks stay as they are."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask)
    if np.unique(mask).size <= 2:
        return ndi.label(mask > 0)[0]
    return mask


def confident_objects(labels: np.ndarray, foreground: np.ndarray, *, min_confidence: float = 0.85,
                      min_solidity: float = 0.8, min_area: int = 30) -> np.ndarray:
    """Ids of objects a model segmented confidently and plausibly.

    An object qualifies when its mean foreground probability is at least ``min_confidence``,
    it does not touch the image border, its solidity is at least ``min_solidity`` and its area
    at least ``min_area`` pixels.
    """
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table
    from skimage.segmentation import clear_border

    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size == 0:
        return ids
    mean_prob = np.asarray(ndi.mean(foreground, labels=labels, index=ids))
    inner = clear_border(labels)
    props = regionprops_table(inner, properties=("label", "area", "solidity"))
    plausible = set(
        int(lab) for lab, area, sol in zip(props["label"], props["area"], props["solidity"])
        if area >= min_area and sol >= min_solidity
    )
    return np.array([i for i, p in zip(ids, mean_prob) if p >= min_confidence and int(i) in plausible],
                    dtype=ids.dtype)


def _foreground_change(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """1 - pooled foreground IoU between two rounds' predictions (0 = identical)."""
    inter = union = 0
    for stem, la in a.items():
        fa, fb = la > 0, b[stem] > 0
        inter += int(np.count_nonzero(fa & fb))
        union += int(np.count_nonzero(fa | fb))
    return 0.0 if union == 0 else 1.0 - inter / union


def run_pipeline(image_paths: Sequence[str | Path], out_dir: str | Path, *, minutes: float | None = None,
                 steps: int | None = None, rounds: int = 1, model_out: str | Path | None = None,
                 gt_dir: str | Path | None = None, autoseg_params: dict | None = None,
                 train_params: dict | None = None, predict_params: dict | None = None,
                 scene_params: dict | None = None, min_gain: float = 0.005, seed: int = 0,
                 object_size: float | None = None, recipe: str = "auto",
                 progress: Progress = _no_progress, cancel_event=None,
                 notify: Callable[[str], None] | None = None, pixel_size=None) -> RunSummary:
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
    from .autoseg import autosegment
    from .model.training import train_model

    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one training budget: minutes or steps")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    paths = list_images(image_paths)
    out = Path(out_dir)
    model_path = Path(model_out) if model_out else out / "model.keras"
    # outputs that cannot be written are found now, not after the training
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
    planes = load_planes(paths)
    keys = [plane.key for plane in planes]
    images = [plane.image for plane in planes]
    decision = decide_recipe(images, recipe)
    if notify is not None:
        notify(decision.line())
    autoseg_params = {**decision.autoseg, **_given(autoseg_params)}
    auto_labels: dict[str, np.ndarray] = {}
    for i, plane in enumerate(planes):
        if cancel_event is not None and cancel_event.is_set():
            raise KeyboardInterrupt
        progress("autoseg", i, len(planes), plane.key)
        auto_labels[plane.key] = autosegment(plane.image, **autoseg_params)
    progress("autoseg", len(planes), len(planes), "")

    factors = {k: (object_scale(auto_labels[k], target_diameter=object_size) if object_size else 1.0)
               for k in keys}
    train_params, real_fraction = training_recipe(_given(train_params), base=decision.train)
    raw_images = [zoom_image(image, factors[k]) for image, k in zip(images, keys)]
    work_labels = [zoom_labels(auto_labels[k], r.shape) for r, k in zip(raw_images, keys)]
    real_labels = list(work_labels)
    if not any(labels.any() for labels in work_labels):  # found before anything is written
        raise ValueError("auto-segmentation found no objects in any image; try another --method or --polarity")
    out.mkdir(parents=True, exist_ok=True)
    inputs = recipe_inputs(out / "bank", [plane.path for plane in planes], raw_images, work_labels,
                           train_params.get("normalization", "percentile"))
    work_images, bank, backgrounds = inputs.network_images, inputs.bank, inputs.backgrounds
    if len(bank) == 0:
        raise ValueError(
            "auto-segmentation found no objects in any image; try another --method or --polarity"
        )
    summary = RunSummary(images=[str(p) for p in paths], out_dir=str(out), bank_path=str(bank.path),
                         predict_params=dict(predict_params or {}), recipe=decision.to_dict(),
                         model_path=str(model_path), bank_left_out=dict(bank.left_out))

    def stop(round_index: int, round_model: Path, during: str) -> RunSummary:
        summary.interrupted = True
        summary.stopped_because = f"interrupted during {during} of round {round_index}"
        if summary.best_round is None and round_model.is_file():  # the only model of this run
            _copy_model(round_model, model_path)
        elif summary.best_round is None:
            summary.model_path = ""
        (out / "summary.json").write_text(summary.to_json())
        return summary

    if gt_files:
        summary.baseline_scores = score_labels(per_file(planes, auto_labels), gt_files)

    rounds_dir = out / "rounds"
    previous: dict[str, np.ndarray] | None = None
    best_score = -1.0
    for round_index in range(1, rounds + 1):
        round_model = rounds_dir / f"round{round_index}.keras"
        if round_index > 1:  # fine-tune the previous round's model on the grown bank
            _copy_model(rounds_dir / f"round{round_index - 1}.keras", round_model)
        t0 = time.perf_counter()
        result = train_model(
            training_objects(bank, **DEFAULT_BANK_FILTER), backgrounds, round_model, minutes=minutes, steps=steps,
            seed=seed + round_index,
            resume=round_index > 1, scene_params=scene_params,
            **real_image_params(zip(raw_images, real_labels), real_fraction),
            callbacks=[lambda p, r=round_index: progress(
                f"train round {r}", p.step, p.total_steps or 0, f"loss {p.loss:.3f}")],
            cancel_event=cancel_event, **train_params,
        )
        train_seconds = time.perf_counter() - t0
        if round_model.is_file():
            _record_in_sidecar(round_model, recipe=decision.to_dict())
        if result.cancelled:
            return stop(round_index, round_model, "training")
        predictions: dict[str, np.ndarray] = {}
        foregrounds: dict[str, np.ndarray] = {}
        for i, plane in enumerate(planes):
            if cancel_event is not None and cancel_event.is_set():
                return stop(round_index, round_model, "segmentation")
            progress("segment", i, len(planes), plane.key)
            labels, prob = predict_at_scale(round_model, plane.image, factors[plane.key], **(predict_params or {}))
            predictions[plane.key], foregrounds[plane.key] = labels, prob[..., 0]
        progress("segment", len(planes), len(planes), "")
        scores = score_labels(per_file(planes, predictions), gt_files) if gt_files else None
        change = _foreground_change(previous, predictions) if previous is not None else None
        summary.rounds.append(RoundResult(
            round=round_index, bank_size=len(bank), model_path=str(round_model),
            train_seconds=round(train_seconds, 1), best_val_iou=result.best_metric,
            scores=scores, change_from_previous=change,
        ))
        score = scores["object_f1"] if scores else None
        improved = score is None or score > best_score + min_gain
        if improved:
            _write_outputs(out, planes, predictions, progress, pixel_size)
            _copy_model(round_model, model_path)
            best_score = score if score is not None else best_score
            summary.best_round = round_index
        if round_index == rounds:
            summary.stopped_because = f"reached --rounds {rounds}"
            break
        if not improved:
            summary.stopped_because = f"round {round_index} did not raise object F1 by {min_gain}"
            break
        if change is not None and change < min_gain:
            summary.stopped_because = f"round {round_index} changed the segmentation by less than {min_gain}"
            break
        added = 0
        if real_fraction > 0:  # the next round's real crops are labelled by this round's model
            real_labels = [zoom_labels(predictions[k], work.shape) for k, work in zip(keys, work_images)]
        for plane, work in zip(planes, work_images):
            ids = confident_objects(predictions[plane.key], foregrounds[plane.key])
            added += bank.add_from_labels(work, zoom_labels(predictions[plane.key], work.shape), ids=ids,
                                          source=str(plane.path),
                                          method=f"self-training round {round_index}")
        previous = predictions
        if added == 0:
            summary.stopped_because = f"round {round_index} found no new confident objects"
            break
    (out / "summary.json").write_text(summary.to_json())
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
