"""A curation round: fine-tune a model on what a person said about real images (issue 17).

A round resumes the current model and trains it on (a) synthetic scenes from the bank
*enriched* with the curated objects (picked, added, filled) — the bank itself is never
changed: the curated objects go to a bank of their own beside the new model — and (b) crops
of the curated images, whose loss counts only their known pixels (``Curation.known``). It
writes a new model file, ``<stem>_round2.keras``, ``_round3`` ..., never over an existing
file, and records the round, the curated images and their click counts in its sidecar.

Like ``pipeline`` this module imports the model layer lazily (inside functions): importing it
does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .curation import Curation, curation_path, load_curation
from .image_io import list_images, read_image, to_gray
from .model.params import TrainingParams

#: Share of each batch cropped from the curated images (the rest: synthetic scenes).
DEFAULT_CURATED_FRACTION = 0.25
#: Adam learning rate of a round: a tenth of a first training's, so that minutes of fine-tuning
#: adjust the model to the clicks instead of restarting it (the cosine schedule restarts with it).
DEFAULT_ROUND_LEARNING_RATE = TrainingParams.learning_rate / 10
_ROUND = re.compile(r"^(?P<base>.*)_round(?P<n>\d+)$")
_NOT_IMAGES = ("_curation", "_labels")


def round_of(model_path) -> tuple[str, int]:
    """``(base stem, round)`` of a model file: ``m_round3.keras`` -> ``("m", 3)``, ``m.keras`` -> ``("m", 1)``."""
    stem = Path(model_path).stem
    match = _ROUND.match(stem)
    return (match["base"], int(match["n"])) if match else (stem, 1)


def next_round_path(model_path) -> Path:
    """The file the next round writes: the round after ``model_path``'s, skipping files that exist."""
    path = Path(model_path)
    base, n = round_of(path)
    n += 1
    while (path.with_name(f"{base}_round{n}.keras").exists()
           or path.with_name(f"{base}_round{n}.json").exists()):
        n += 1
    return path.with_name(f"{base}_round{n}.keras")


def find_curated(folder) -> list[tuple[Path, Path]]:
    """``(image, curation)`` paths of the images in ``folder`` that have a curation beside them.

    The curation of ``a.png`` is ``a_curation.tif`` (``curation.curation_path``), beside the
    image (the Curate dock saves it beside the labels, which share the stem). Files named
    ``*_curation.*`` or ``*_labels.*`` are not images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--curated {folder} is not a folder; give the folder of the curated images")
    pairs = []
    for image in list_images([folder]):
        if image.stem.endswith(_NOT_IMAGES):
            continue
        cur = curation_path(image)
        if cur.is_file():
            pairs.append((image, cur))
    return pairs


def image_files(folder) -> list[Path]:
    """The images of ``folder`` (curated or not), without curation and label files."""
    return [p for p in list_images([Path(folder)]) if not p.stem.endswith(_NOT_IMAGES)]


def load_curated(curated) -> list[tuple[str, np.ndarray, Curation | tuple]]:
    """``(name, gray image, curation)`` triples from a folder, or from pairs of
    ``(image or image path, Curation, curation path or (labels, known))``."""
    if isinstance(curated, (str, Path)):
        pairs = find_curated(curated)
        if not pairs:
            raise ValueError(f"no image in {curated} has a curation beside it (<stem>_curation.tif); curate "
                             "images in napari (Curate dock) or with napari_synthseg.curation first")
    else:
        pairs = list(curated)
    loaded = []
    for i, pair in enumerate(pairs):
        try:
            image, cur = pair
        except (TypeError, ValueError):
            raise TypeError(f"curated item {i} must be an (image, curation) pair") from None
        name = str(image) if isinstance(image, (str, Path)) else f"image {i}"
        array = to_gray(read_image(image)) if isinstance(image, (str, Path)) else to_gray(np.asarray(image))
        if array.ndim != 2:
            raise ValueError(f"curated {name} is not one 2D image (shape {array.shape}); curate single planes")
        cur = load_curation(cur) if isinstance(cur, (str, Path)) else cur
        shape = cur.shape if isinstance(cur, Curation) else np.shape(cur[0])
        if tuple(shape) != array.shape:
            raise ValueError(f"the curation of {name} has shape {tuple(shape)}, the image {array.shape}; "
                             "curate this image again")
        loaded.append((name, array, cur))
    return loaded


def _counts(cur) -> dict:
    if isinstance(cur, Curation):
        return dict(cur.counts)
    labels, known = cur
    return {"objects": int(len(np.unique(np.asarray(labels)[np.asarray(labels) > 0]))),
            "known_pixels": int(np.count_nonzero(known))}


def _objects(cur) -> np.ndarray:
    return np.asarray(cur.objects if isinstance(cur, Curation) else cur[0])


def _click_total(clicks: dict) -> int:
    return int(sum(sum(v for k, v in c.items() if k != "known_pixels") for c in clicks.values()))


def model_normalization(info: dict) -> str:
    """The input normalisation a model's sidecar records (``"percentile"`` when it says none)."""
    return (info.get("normalization") or {}).get("mode", "percentile")


def curated_validation(curated, ring_px: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(image, labels, known)`` triples scoring a checkpoint on what a person said (``RealValidation``)."""
    triples = []
    for image, cur in curated:
        if isinstance(cur, Curation):
            known = cur.known() if ring_px is None else cur.known(ring_px)
            labels = cur.objects
        else:
            labels, known = cur
        triples.append((np.asarray(image), np.asarray(labels), np.asarray(known, dtype=bool)))
    return triples


def _fingerprint(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    return hashlib.sha1(image.tobytes()).hexdigest() + str(image.shape)


def recipe_real_pairs(info: dict, images: Sequence, *, skip: Sequence = ()) -> tuple[list, float]:
    """The real crops of the model's recipe, made again: ``(pairs, share of each batch)``.

    A model of the *mixed* recipe learnt from real images with their auto-segmentation as well
    as from scenes; a round that dropped them would train another model than the one it fine-tunes.
    ``images`` (gray arrays or paths) are auto-segmented with the recipe's settings recorded in the
    sidecar; images equal to one in ``skip`` (the curated ones, whose curation replaces their
    auto-segmentation) are left out. A model trained on scenes alone gives ``([], 0.0)``.
    """
    from .autoseg import autosegment
    from .recipe import RECIPES

    share = float((info.get("training") or {}).get("real_fraction") or 0.0)
    if share <= 0 or not images:
        return [], 0.0
    params = dict((info.get("recipe") or {}).get("autoseg") or RECIPES["mixed"]["autoseg"])
    left_out = {_fingerprint(to_gray(np.asarray(s))) for s in skip}
    pairs = []
    for image in images:
        gray = to_gray(read_image(image)) if isinstance(image, (str, Path)) else to_gray(np.asarray(image))
        if _fingerprint(gray) in left_out:
            continue
        labels = autosegment(gray, **params)
        if labels.any():
            pairs.append((gray, labels))
    return pairs, (share if pairs else 0.0)


def round_backgrounds(images: Sequence, normalization: str | None, *, labels=None, names=None):
    """The BackgroundSource a round's synthetic scenes are laid on.

    ``images`` are arrays or paths; with ``normalization`` they are first made into what the
    network sees (``pipeline.network_images``; None: they already are). ``labels`` (> 0:
    object) are left out of the background; without them the background is estimated.
    """
    from .pipeline import network_images
    from .synthesis import BackgroundSource

    grays = [to_gray(read_image(p)) if isinstance(p, (str, Path)) else to_gray(np.asarray(p)) for p in images]
    if normalization is not None:
        grays = network_images(grays, normalization)
    return BackgroundSource.from_images(grays, labels, names=names)


def fine_tune(model_path, objects, backgrounds, out_path, *, minutes: float | None = None,
              steps: int | None = None, curated=None, curated_fraction: float = DEFAULT_CURATED_FRACTION,
              ring_px: int | None = None, seed: int = TrainingParams.seed, train_params: dict | None = None,
              callbacks=None, cancel_event=None, real=None, real_fraction: float = 0.0,
              learning_rate: float = DEFAULT_ROUND_LEARNING_RATE):
    """Copy ``model_path`` to ``out_path`` and go on training the copy (``train_model(resume=True)``).

    ``real`` (``(image, labels)`` pairs, ``recipe_real_pairs``) are the recipe's real crops, a
    ``real_fraction`` of each batch. The checkpoint kept is the one that agrees best with the
    curated images' known pixels (``curated_validation``); without ``curated``, with ``real``, as
    in the first training (the resumed model is kept unless a checkpoint beats it).

    The model's own normalisation, patch, batch size, steps per validation and scene settings
    (from its sidecar) are kept unless ``train_params`` says otherwise. Without ``curated``
    this is the *control* of a curation round: the same extra training without any click.
    A failure removes the copy; ``model_path`` is never written.

    Returns
    -------
    TrainResult
    """
    from .model import TrainingParams
    from .model.sidecar import read_sidecar
    from .model.training import train_model
    from .pipeline import _copy_model

    model_path, out = Path(model_path), Path(out_path)
    if out.exists() or out.with_suffix(".json").exists():
        raise ValueError(f"{out} exists; a round never writes over a model (give another out_path)")
    info = read_sidecar(model_path)
    trained = TrainingParams.from_sidecar(info)
    params = {key: getattr(trained, key) for key in ("patch", "batch_size", "steps_per_epoch", "scene_params")}
    params.update(train_params or {})
    if curated:
        params.update(curated=curated, curated_fraction=curated_fraction, curated_ring_px=ring_px)
    if real and real_fraction > 0:
        params.update(real_training=list(real), real_fraction=real_fraction, real_validation=list(real))
    if curated:
        # what the person said chooses the model to keep: a checkpoint must agree with the clicks
        # (known pixels of the curated images) better than the previous round's model did
        params.update(real_validation=curated_validation(curated, ring_px))
    _copy_model(model_path, out)
    try:
        return train_model(objects, backgrounds, out, minutes=minutes, steps=steps, resume=True, seed=seed,
                           learning_rate=learning_rate,
                           normalization=model_normalization(info), callbacks=callbacks,
                           cancel_event=cancel_event, **params)
    except BaseException:
        # a failed round leaves no half-made model behind (the previous one is untouched)
        out.unlink(missing_ok=True)
        out.with_suffix(".json").unlink(missing_ok=True)
        raise


def retrain_round(model_path, bank, curated, *, minutes: float | None = None, steps: int | None = None,
                  out_path=None, background_images: Sequence | None = None,
                  curated_fraction: float = DEFAULT_CURATED_FRACTION, ring_px: int | None = None,
                  seed: int = TrainingParams.seed, train_params: dict | None = None, callbacks=None, cancel_event=None,
                  notify: Callable[[str], None] | None = None,
                  learning_rate: float = DEFAULT_ROUND_LEARNING_RATE) -> Path:
    """Fine-tune ``model_path`` on curated images and write the next round's model.

    Parameters
    ----------
    model_path
        The current model (``.keras`` with its sidecar); never written to.
    bank
        The object bank the model was trained on (a folder or an ObjectBank); never written to.
    curated
        A folder of images with ``<stem>_curation.tif`` beside them (``find_curated``), or
        ``(image, curation)`` pairs: image an array or path; curation a ``Curation``, a
        curation file, or ``(labels, known)``.
    minutes, steps
        The round's training budget (exactly one).
    out_path
        The new model file (it must not exist); default ``next_round_path(model_path)``.
    background_images
        Images (arrays or paths) the synthetic scenes' backgrounds are learned from; default
        the curated images (their curated objects left out). For a model of the mixed recipe
        the same images, less the curated ones, are auto-segmented again for its real crops
        (``recipe_real_pairs``).
    curated_fraction, ring_px, learning_rate
        Share of each batch cropped from the curated images; known background ring outside each
        curated object (``Curation.known``'s default when None); Adam learning rate of the round.
    seed, callbacks, cancel_event
        Passed to ``train_model`` (the seed makes the scenes and crops).
    train_params
        Further ``train_model`` keywords (``TrainingParams``; default: the model's own patch, batch
        size, steps per validation and scene settings, from its sidecar).
    notify
        Called with one line naming the round and what it trains on.

    Returns
    -------
    Path
        The new model file (with its sidecar). A stopped round still leaves one: the best
        model so far, at worst the previous round's weights.
    """
    from .bank import ObjectBank
    from .pipeline import DEFAULT_BANK_FILTER, _record_in_sidecar, network_images, training_objects

    info, out = _checked_round(model_path, out_path, minutes, steps, curated_fraction)
    model_path = Path(model_path)
    base_bank = bank if isinstance(bank, ObjectBank) else ObjectBank(bank, create=False)
    items = _clicked(load_curated(curated))
    normalization = model_normalization(info)
    this_round = round_of(model_path)[1] + 1
    names = [name for name, _, _ in items]
    work = network_images([image for _, image, _ in items], normalization)
    curated_bank = _curated_bank(out, names, work, [cur for _, _, cur in items], this_round)
    enriched = training_objects(base_bank, **DEFAULT_BANK_FILTER) + curated_bank.objects()
    if background_images:
        backgrounds = round_backgrounds(background_images, normalization)
    else:
        backgrounds = round_backgrounds(work, None, labels=[_objects(c) for _, _, c in items], names=names)

    real, real_fraction = recipe_real_pairs(info, background_images or [],
                                            skip=[image for _, image, _ in items])
    clicks = {name: _counts(cur) for name, _, cur in items}
    if notify is not None:
        notify(f"round {this_round}: fine-tuning {model_path.name} on {len(items)} curated image(s) "
               f"({_click_total(clicks)} clicks) and {len(base_bank)} + {len(curated_bank)} banked objects "
               f"-> {out.name}")
    result = fine_tune(model_path, enriched, backgrounds, out, minutes=minutes, steps=steps, seed=seed,
                       curated=[(image, cur) for _, image, cur in items], curated_fraction=curated_fraction,
                       ring_px=ring_px, train_params=train_params, callbacks=callbacks, cancel_event=cancel_event,
                       real=real, real_fraction=real_fraction, learning_rate=learning_rate)
    _record_in_sidecar(out, curation_round={
        "round": this_round, "previous_model": str(model_path), "bank": str(base_bank.path),
        "agreement_guard": _guarded(model_path, out, real, info, result, notify, this_round),
        "curated_bank": str(curated_bank.path), "curated_images": clicks, "clicks": _click_total(clicks),
        "curated_fraction": float(curated_fraction), "ring_px": ring_px, "real_images": len(real),
        "real_fraction": real_fraction, "learning_rate": float(learning_rate), "cancelled": bool(result.cancelled)})
    return out


def _guarded(model_path: Path, out: Path, real: list, info: dict, result, notify, this_round: int) -> dict | None:
    """``keep_previous_if_worse`` after a finished round of a curated round's model with real crops; else None."""
    if not real or not (info.get("curation_round") or {}).get("round") or result.cancelled:
        return None
    guard = keep_previous_if_worse(model_path, out, real)
    if guard["kept_previous"] and notify is not None:
        notify(f"round {this_round}: kept the weights of {model_path.name}: the fine-tuned model agreed less "
               f"with the auto-segmentation of the uncurated images ({guard['new']:.3f} against "
               f"{guard['previous']:.3f})")
    return guard


def keep_previous_if_worse(previous, new, real) -> dict:
    """Give ``new`` the weights of ``previous`` when it agrees less with the real crops' labels.

    Between two curated rounds of a mixed-recipe model, the round's checkpoint is chosen on the
    clicks of a few images; its agreement with the auto-segmentation of the *other* images (the
    recipe's real crops, ``recipe_real_pairs``) is the only view of what it does there. On
    ``dev_emps`` a round that lowered that agreement also lowered the true object F1 of the
    uncurated images (docs/curation.md, "A guard between rounds"), so such a round keeps the
    previous weights. (Round 1 is not compared with round 0: round 0 learnt to reproduce the
    auto-segmentation, so every round agrees less with it.)

    Parameters
    ----------
    previous, new
        Model files; ``new`` (a round's output, with its own sidecar) is the only one written.
    real
        ``(image, labels)`` pairs.

    Returns
    -------
    dict
        ``{"previous", "new"}``: pooled pixel IoU of each model's labels with ``real``'s labels
        (``RealValidation``); ``"kept_previous"``: whether ``new`` now holds the previous weights.
    """
    import shutil

    from .image_io import atomic_write
    from .model.prediction import load_model
    from .model.validation import RealValidation

    before_model, after_model = load_model(previous), load_model(new)
    check = RealValidation(real, network=after_model.info["network"],
                           normalization=model_normalization(after_model.info))
    before, after = check.score(before_model.keras_model), check.score(after_model.keras_model)
    kept = bool(after < before)
    if kept:
        atomic_write(Path(new), lambda tmp: shutil.copyfile(previous, tmp))
    return {"previous": round(float(before), 4), "new": round(float(after), 4), "kept_previous": kept}


def _clicked(items: list) -> list:
    """The loaded curations that hold a click (an error when none does)."""
    items = [item for item in items if not (isinstance(item[2], Curation) and item[2].is_empty())]
    if not items:
        raise ValueError("the curations hold no click; pick, reject or add objects before retraining")
    return items


def _checked_round(model_path, out_path, minutes, steps, curated_fraction) -> tuple[dict, Path]:
    """The current model's sidecar and the new model's path, after checking a round's arguments."""
    from .model.sidecar import check_model_file

    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one training budget: minutes or steps")
    model_path = Path(model_path)
    info = check_model_file(model_path)
    out = Path(out_path) if out_path is not None else next_round_path(model_path)
    if out.suffix != ".keras":
        raise ValueError(f"the new model {out.name} must end in .keras")
    if out.exists() or out.with_suffix(".json").exists():
        raise ValueError(f"{out} exists; a round never writes over a model (give another out_path)")
    if not 0.0 < float(curated_fraction) <= 1.0:
        raise ValueError(f"curated_fraction must be above 0 and at most 1, got {curated_fraction!r}")
    return info, out


def _curated_bank(out: Path, names, work, curations, this_round: int):
    """The curated objects' own bank beside the new model: the model's bank is added to, never replaced."""
    from .bank import ObjectBank

    curated_bank = ObjectBank(out.with_name(f"{out.stem}_bank"))
    for name, image, cur in zip(names, work, curations):
        objects = _objects(cur)
        if objects.any():
            curated_bank.add_from_labels(image, objects.astype(np.int32), source=name, judge_shapes=False,
                                         method=f"curation round {this_round}")
    return curated_bank


__all__ = ["DEFAULT_CURATED_FRACTION", "DEFAULT_ROUND_LEARNING_RATE", "curated_validation", "find_curated",
           "fine_tune", "image_files", "load_curated", "model_normalization", "next_round_path", "recipe_real_pairs",
           "retrain_round", "round_backgrounds", "round_of"]
