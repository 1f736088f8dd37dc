"""Does curating pay? A person emulated with the ground truth clicks on K images; rounds retrain on the clicks.

Run (2-core CPU, nothing else running), e.g. on dev_emps (about 10 + R * (2 * M + 3) minutes):

    .venv/bin/python benchmarks/curation_rounds.py --images ../shared/data/dev_emps/images \\
        --masks ../shared/data/dev_emps/masks --curate-images 10 --clicks 20 --rounds 2 --minutes 5 \\
        --first-minutes 10 --json out/curation_rounds/dev_emps.json

Any folder of images with instance masks paired by stem works (masks named like their images, or
``<stem>_mask`` / ``_labels`` ...; ``pipeline.find_ground_truth``). Nothing else is read.

1. Round 0: the first model, made by the default command (``run_pipeline`` on all images, images
   only, ``--first-minutes``), or given with ``--first-model MODEL --bank BANK``.
2. K images (a seeded draw) are curated, the others are scored. Each round, the current curated
   model segments the K images and an emulated person makes at most N new clicks per image
   (``--click-budget total``: N per image over all rounds), each a decision a person could make
   by looking; the ground truth only decides *where* a click goes:

   - **add** at the centre (the pixel farthest from the edge) of a true object that no predicted
     object matches at IoU >= 0.5; the object it makes is the product's (``curation.add_object``
     on the model's output: inside a prediction carved at its inner-distance peak, else grown from the
     probability, then the image; ``--adds-only`` counts these outlines); a person would undo an add whose outline is
     plainly wrong, so an add that matches its true object at IoU < 0.5 is undone (the click counts);
   - **split** a predicted object that holds two or more true objects (each at least half inside
     it) and matches none at IoU >= 0.7; the parts are the product's (``curation_edits.split_object``),
     kept when two or more of them match true objects at IoU >= 0.5, else undone;
   - **merge** the pieces of a missed true object: two or more predicted objects lying mostly
     (>= 80 %) inside it and covering at least half of it (``curation_edits.merge_objects``, clicks at
     the pieces' centres), kept when the joined object matches at IoU >= 0.5; such an object is
     merged, not added;
   - **reject** a predicted object lying mostly (>= 90 %) on true background (a speck, text);
   - **pick** a predicted object that matches a true object at IoU >= 0.7.

   Clicks go in turns add, split, merge, reject, pick (so each kind is used), each kind most
   useful first: the largest missed object, the largest clump, the largest broken object, the
   largest false object, the pick the model is least sure of (lowest mean foreground
   probability). ``--kinds`` chooses the kinds; by default add, reject, pick (split and merge did
   not pay in docs/curation.md's A/B). Objects already curated are not clicked again.

   ``--whole-masks`` replaces the person by the K images' whole true masks, every pixel known (each
   true object counted as a pick), given once in round 1: is what the clicks say the limit?
3. The curated arm retrains with ``retraining.retrain_round`` (``--minutes`` or ``--steps`` per
   round); the control arm trains the same budget from the same model without clicks
   (``retraining.fine_tune`` with no curated image), both at the round learning rate, with the first
   model's recipe (a mixed-recipe model keeps its real crops: ``retraining.recipe_real_pairs``, the
   curated images' left out of the curated arm's), both on the bank of round 0 and backgrounds
   learned from all images.
4. Both arms' models segment the uncurated images (``predict`` defaults); pooled pixel IoU, object
   F1 (IoU 0.5) and AP (IoU 0.5-0.95) are printed per round and written with ``--json``:
   ``{"rounds": [{"round": 0, "curated": {"pixel_iou", "object_f1", "ap", "clicks"}, "control": {...}}, ...]}``
   (``clicks``: clicks made so far; round 0 is the first model, before any click).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_synthseg.curation import Curation, add_object, curation_path, pick_object, reject_object, save_curation
from napari_synthseg.curation_edits import merge_objects, split_object
from napari_synthseg.image_io import list_images, read_image, to_gray
from napari_synthseg.metrics import DatasetScores, iou_matrix
from napari_synthseg.pipeline import _as_instances, as_label_image, find_ground_truth
from napari_synthseg.retraining import DEFAULT_CURATED_FRACTION, DEFAULT_ROUND_LEARNING_RATE

PICK_IOU = 0.7
MATCH_IOU = 0.5
REJECT_BACKGROUND_SHARE = 0.9
SPLIT_HELD_SHARE = 0.5
MERGE_PIECE_SHARE = 0.8
MERGE_COVER_SHARE = 0.5
KINDS = ("add", "split", "merge", "reject", "pick")
# the person of the default run: split and merge clicks lowered object F1 in the A/B of docs/curation.md
DEFAULT_KINDS = ("add", "reject", "pick")


# ------------------------------------------------------------------------------------ clicks
def _centre(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of ``mask`` farthest from its edge (inside even a crescent)."""
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return int(row), int(col)


def _overlaps(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels shared by each predicted and true object, and each one's area: ``(shared, pred_area, true_area)``,
    indexed by id."""
    both = (pred > 0) & (truth > 0)
    shape = (int(pred.max()) + 1, int(truth.max()) + 1)
    shared = np.zeros(shape, np.int64)
    np.add.at(shared, (pred[both], truth[both]), 1)
    return shared, np.bincount(pred.ravel(), minlength=shape[0]), np.bincount(truth.ravel(), minlength=shape[1])


def click_candidates(pred: np.ndarray, truth: np.ndarray, foreground: np.ndarray, curation: Curation,
                     kinds=DEFAULT_KINDS) -> dict:
    """Where a person would click, by kind, most useful first: ``{kind: [(usefulness, target), ...]}``.

    The target is a true object id (add), a predicted object id (split, reject, pick) or the
    predicted ids of a broken object's pieces (merge).
    """
    iou, pred_ids, true_ids = iou_matrix(pred, truth)
    shared, pred_area, true_area = _overlaps(pred, truth)
    candidates = {kind: [] for kind in KINDS}
    true_fg = truth > 0

    def curated(mask):
        return (curation.objects[mask] > 0).mean() > 0.5 or curation.background[mask].mean() > 0.5

    held = (shared >= SPLIT_HELD_SHARE * true_area[None, :]) & (true_area[None, :] > 0)
    held[:, 0] = False
    in_clump = np.zeros(shape=true_area.shape, dtype=bool)  # true objects a split click would free
    for i, pred_id in enumerate(pred_ids):
        mask = pred == pred_id
        if curated(mask):
            continue
        if iou.shape[1] and iou[i].max() >= PICK_IOU:
            # the least sure first: a confident object teaches the model what it knows
            candidates["pick"].append((1.0 - float(foreground[mask].mean()), int(pred_id)))
        elif np.count_nonzero(held[pred_id]) >= 2:
            candidates["split"].append((float(pred_area[pred_id]), int(pred_id)))
            in_clump |= held[pred_id]
        elif (~true_fg[mask]).mean() >= REJECT_BACKGROUND_SHARE:
            candidates["reject"].append((float(mask.sum()), int(pred_id)))
    for j, true_id in enumerate(true_ids):
        if iou.shape[0] and iou[:, j].max() >= MATCH_IOU:
            continue
        mask = truth == true_id
        if (curation.objects[mask] > 0).mean() > 0.5 or (in_clump[true_id] and "split" in kinds):
            continue  # already curated, or freed by splitting its clump
        inside = (shared[:, true_id] >= MERGE_PIECE_SHARE * pred_area) & (pred_area > 0)
        pieces = [int(p) for p in np.flatnonzero(inside) if not curated(pred == p)]
        broken = len(pieces) >= 2 and shared[pieces, true_id].sum() >= MERGE_COVER_SHARE * true_area[true_id]
        if broken and "merge" in kinds:
            candidates["merge"].append((float(true_area[true_id]), (int(true_id), tuple(pieces))))
        else:
            candidates["add"].append((float(mask.sum()), int(true_id)))
    for kind in KINDS:
        candidates[kind] = [] if kind not in kinds else sorted(candidates[kind], key=lambda item: -item[0])
    return candidates


def _matched(objects: np.ndarray, truth: np.ndarray, threshold: float = MATCH_IOU) -> int:
    """How many of ``objects`` match a true object at IoU >= ``threshold``."""
    iou, _, _ = iou_matrix(objects, truth)
    return int((iou.max(axis=1) >= threshold).sum()) if iou.size else 0


def _click(kind: str, target, curation: Curation, image, pred, prob, truth) -> Curation:
    """One click of ``kind`` on ``target``; the new curation, or the old one when the person undoes it.

    Raises ValueError when the product finds nothing to do (the click still counts).
    """
    if kind == "reject":
        return reject_object(curation, pred, _centre(pred == target))
    if kind == "pick":
        return pick_object(curation, pred, _centre(pred == target))
    if kind == "add":
        mask = truth == target
        after = add_object(curation, _centre(mask), probability=prob, image=image, labels=pred)
        new = (after.objects > 0) & (curation.objects == 0)
        good = (new & mask).sum() / max((new | mask).sum(), 1) >= MATCH_IOU
    elif kind == "split":
        after = split_object(curation, pred, _centre(pred == target))
        new = np.where(curation.objects == 0, after.objects, 0)
        good = _matched(new, truth) >= 2
    else:
        true_id, pieces = target
        after = merge_objects(curation, pred, [_centre(pred == piece) for piece in pieces])
        new = (after.objects > 0) & (curation.objects == 0)
        mask = truth == true_id
        good = (new & mask).sum() / max((new | mask).sum(), 1) >= MATCH_IOU
    return after if good else curation  # else the person undoes the plainly wrong outline


def emulate_clicks(curation: Curation, image: np.ndarray, pred: np.ndarray, prob: np.ndarray, truth: np.ndarray,
                   n_clicks: int, kinds=DEFAULT_KINDS) -> tuple[Curation, int]:
    """Up to ``n_clicks`` new clicks on one image; returns the new curation and the clicks made."""
    candidates = click_candidates(pred, truth, prob[..., 0], curation, kinds)
    queues = {kind: list(candidates[kind]) for kind in KINDS}
    made = 0
    while made < n_clicks and any(queues.values()):
        for kind in KINDS:
            if made >= n_clicks or not queues[kind]:
                continue
            _, target = queues[kind].pop(0)
            made += 1
            try:
                curation = _click(kind, target, curation, image, pred, prob, truth)
            except ValueError:
                continue  # the product found nothing there: the person sees nothing change
    return curation, made


def whole_mask_curation(truth: np.ndarray) -> Curation:
    """The curation a person who outlined every object of an image would make: every pixel known."""
    ids = np.unique(truth[truth > 0])
    return Curation(truth, truth == 0, counts={"pick": int(ids.size)}, origins={int(i): "pick" for i in ids})


def count_adds(predictions: dict, images: dict, truths: dict) -> dict:
    """How many adds the product makes right, by where the click lands, with and without the inner distance.

    ``predictions``: ``{stem: (labels, probabilities)}`` of one model. Every true object that no
    prediction matches gets one Add at its centre on an empty curation (the person's add
    candidates); returns ``{"background" | "inside a prediction": {"clicks", "right", "right without
    distance"}}``, "right" meaning the outline matches its object at IoU >= 0.5.
    """
    counts = {where: {"clicks": 0, "right": 0, "right without distance": 0}
              for where in ("background", "inside a prediction")}
    for stem, (pred, prob) in predictions.items():
        truth = truths[stem]
        empty = Curation.empty(pred.shape)
        for _, true_id in click_candidates(pred, truth, prob[..., 0], empty, ("add",))["add"]:
            point = _centre(truth == true_id)
            entry = counts["inside a prediction" if pred[point] else "background"]
            entry["clicks"] += 1
            for key, maps in (("right", prob), ("right without distance", prob[..., :1])):
                try:
                    made = _click("add", true_id, empty, images[stem], pred, maps, truth)
                except ValueError:
                    continue
                entry[key] += int(made is not empty)
    return counts


# ------------------------------------------------------------------------------------ scoring
def _segment(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from napari_synthseg.model.prediction import predict

    return predict(model, image, return_probabilities=True)


def score(model_path: Path, images: dict, truths: dict) -> dict:
    from napari_synthseg.model.prediction import load_model

    model = load_model(model_path)
    scores = DatasetScores()
    for stem, image in images.items():
        scores.add(_segment(model, image)[0], truths[stem])
    s = scores.summary()
    return {key: round(float(s[key]), 4) for key in ("pixel_iou", "object_f1", "ap")}


# ------------------------------------------------------------------------------------ the run
def _load(images_dir: Path, masks_dir: Path):
    paths = list_images(images_dir)
    gt = find_ground_truth(masks_dir, [p.stem for p in paths])
    missing = [p.name for p in paths if p.stem not in gt]
    if missing:
        raise SystemExit(f"curation_rounds: no mask for {len(missing)} image(s), e.g. {missing[0]}; "
                         "name masks like their images")
    images = {p.stem: to_gray(read_image(p)) for p in paths}
    truths = {p.stem: _as_instances(as_label_image(read_image(gt[p.stem]), str(gt[p.stem]))) for p in paths}
    return paths, images, truths


def _train_params(args) -> dict:
    params = {}
    for name in ("base_filters", "depth", "patch", "batch_size", "steps_per_epoch"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    return params


def _first_model(args, image_dir: Path, out: Path) -> tuple[Path, Path]:
    if args.first_model:
        if not args.bank:
            raise SystemExit("curation_rounds: --first-model needs --bank (the bank it was trained on)")
        return Path(args.first_model), Path(args.bank)
    from napari_synthseg.pipeline import run_pipeline

    budget = {"steps": args.first_steps} if args.first_steps else {"minutes": args.first_minutes}
    first = out / "round0"
    run_pipeline(image_dir, first, seed=args.seed, train_params=_train_params(args) or None,
                 notify=lambda line: print(f"[round 0] {line}", flush=True), **budget)
    return first / "model.keras", first / "bank"


def run(args) -> dict:
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.model.prediction import load_model
    from napari_synthseg.model.sidecar import read_sidecar
    from napari_synthseg.pipeline import DEFAULT_BANK_FILTER, training_objects
    from napari_synthseg.retraining import (
        fine_tune,
        model_normalization,
        recipe_real_pairs,
        retrain_round,
        round_backgrounds,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, images, truths = _load(Path(args.images), Path(args.masks))
    stems = sorted(images)
    if not 1 <= args.curate_images < len(stems):
        raise SystemExit(f"curation_rounds: --curate-images must be from 1 to {len(stems) - 1} "
                         f"(the others are scored); got {args.curate_images}")
    order = np.random.default_rng(args.seed).permutation(len(stems))
    curated_stems = [stems[i] for i in sorted(order[:args.curate_images])]
    scored = {s: images[s] for s in stems if s not in curated_stems}
    scored_truths = {s: truths[s] for s in scored}
    print(f"curating {len(curated_stems)} image(s), scoring {len(scored)}; at most {args.clicks} clicks per image "
          f"{'and round' if args.click_budget == 'round' else 'over all rounds'}", flush=True)

    t0 = time.perf_counter()
    first, bank = _first_model(args, Path(args.images), out)
    first_scores = score(first, scored, scored_truths)
    rounds = [{"round": 0, "curated": {**first_scores, "clicks": 0}, "control": {**first_scores, "clicks": 0},
               "seconds": round(time.perf_counter() - t0)}]
    _print_round(rounds[-1])
    budget = {"steps": args.steps} if args.steps else {"minutes": args.minutes}
    info = read_sidecar(first)
    normalization = model_normalization(info)
    # the control keeps the first model's recipe: its real crops (auto-segmented again) of all images
    real, real_fraction = recipe_real_pairs(info, [images[s] for s in stems])
    # both arms: the bank of round 0 (the curated arm enriched with its objects), backgrounds of all images
    backgrounds = round_backgrounds([images[s] for s in stems], normalization)
    objects = training_objects(ObjectBank(bank, create=False), **DEFAULT_BANK_FILTER)
    curations = {s: Curation.empty(images[s].shape) for s in curated_stems}
    per_image = {s: 0 for s in curated_stems}
    curated_model = control_model = first
    clicks_made = 0
    for round_index in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        model = load_model(curated_model)
        counts = {kind: 0 for kind in KINDS}
        for stem in curated_stems:
            allowed = args.clicks if args.click_budget == "round" else args.clicks - per_image[stem]
            if args.whole_masks:  # given once, in round 1
                curations[stem] = whole_mask_curation(truths[stem])
                made = curations[stem].clicks if round_index == 1 else 0
            elif allowed <= 0:
                continue
            else:
                pred, prob = _segment(model, images[stem])
                curations[stem], made = emulate_clicks(curations[stem], images[stem], pred, prob, truths[stem],
                                                        allowed, kinds=args.kinds)
            per_image[stem] += made
            clicks_made += made
            save_curation(curations[stem], curation_path(out / f"curations_round{round_index}" / f"{stem}.png"),
                          meta={"image": stem, "round": round_index})
        for cur in curations.values():
            for kind in KINDS:
                counts[kind] += cur.counts.get(kind, 0)
        name = f"model_round{round_index + 1}.keras"
        (out / "curated").mkdir(exist_ok=True)
        (out / "control").mkdir(exist_ok=True)
        live = [(images[s], curations[s]) for s in curated_stems if not curations[s].is_empty()]
        seed = args.seed + round_index
        if live:
            curated_model = retrain_round(curated_model, bank, live, out_path=out / "curated" / name,
                                          background_images=[images[s] for s in stems], seed=seed,
                                          curated_fraction=args.curated_fraction, ring_px=args.ring_px,
                                          learning_rate=args.learning_rate, **budget)
        else:  # no click could be made: this round of the curated arm is a control round
            print(f"[round {round_index}] no click could be made; the curated arm trains without any", flush=True)
            fine_tune(curated_model, objects, backgrounds, out / "curated" / name, seed=seed, real=real,
                      real_fraction=real_fraction, learning_rate=args.learning_rate, **budget)
            curated_model = out / "curated" / name
        fine_tune(control_model, objects, backgrounds, out / "control" / name, seed=seed, real=real,
                  real_fraction=real_fraction, learning_rate=args.learning_rate, **budget)
        control_model = out / "control" / name
        rounds.append({"round": round_index,
                       "curated": {**score(curated_model, scored, scored_truths), "clicks": clicks_made,
                                   "in_effect": counts},
                       "control": {**score(control_model, scored, scored_truths), "clicks": 0},
                       "seconds": round(time.perf_counter() - t0)})
        _print_round(rounds[-1])
        if args.json:
            _write_json(args, rounds, curated_stems, len(scored))
    return _write_json(args, rounds, curated_stems, len(scored))


def _write_json(args, rounds, curated_stems, n_scored) -> dict:
    result = {"rounds": rounds, "curated_images": curated_stems, "scored_images": n_scored,
              "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


def _print_adds(args) -> None:
    from napari_synthseg.model.prediction import load_model

    _, images, truths = _load(Path(args.images), Path(args.masks))
    model = load_model(args.first_model)
    counts = count_adds({stem: _segment(model, image) for stem, image in images.items()}, images, truths)
    for where, c in counts.items():
        print(f"add clicks {where}: {c['clicks']}, outlined right {c['right']} "
              f"(without the inner distance {c['right without distance']})")


def _print_round(entry: dict) -> None:
    for arm in ("curated", "control"):
        s = entry[arm]
        print(f"round {entry['round']} {arm:<8} pixel IoU {s['pixel_iou']:.3f}  object F1 {s['object_f1']:.3f}  "
              f"AP {s['ap']:.3f}  clicks {s['clicks']}"
              + (f" (in effect {s['in_effect']})" if "in_effect" in s else ""),
              flush=True)


def _kinds(text: str) -> tuple:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown click kind(s) {unknown or text!r}; choose from {', '.join(KINDS)}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help="folder of instance masks, paired with the images by stem")
    p.add_argument("--curate-images", type=int, default=10, metavar="K",
                   help="images curated (the others are scored) [10]")
    p.add_argument("--clicks", type=int, default=20, metavar="N",
                   help="clicks per curated image (see --click-budget) [20]")
    p.add_argument("--click-budget", choices=("round", "total"), default="round",
                   help="N new clicks per image in each round, or N per image over all rounds [round]")
    p.add_argument("--rounds", type=int, default=2, metavar="R", help="curation rounds after the first model [2]")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None, help="training per round, each arm [5]")
    budget.add_argument("--steps", type=int, default=None, help="training steps per round instead (tests)")
    first = p.add_mutually_exclusive_group()
    first.add_argument("--first-minutes", type=float, default=None, help="the first model's training [10]")
    first.add_argument("--first-steps", type=int, default=None, help="the first model's steps instead (tests)")
    first.add_argument("--first-model", default=None, help="start from this model instead (with --bank)")
    p.add_argument("--bank", default=None, help="the bank of --first-model")
    p.add_argument("--curated-fraction", type=float, default=DEFAULT_CURATED_FRACTION,
                   help=f"share of each batch from curated crops [{DEFAULT_CURATED_FRACTION}]")
    p.add_argument("--learning-rate", type=float, default=DEFAULT_ROUND_LEARNING_RATE,
                   help=f"the rounds' learning rate, both arms [{DEFAULT_ROUND_LEARNING_RATE:g}]")
    p.add_argument("--ring-px", type=int, default=None, help="known background ring outside curated objects [3]")
    p.add_argument("--kinds", type=_kinds, default=DEFAULT_KINDS, metavar="K1,K2",
                   help=f"click kinds the person uses, of {','.join(KINDS)} [{','.join(DEFAULT_KINDS)}]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/curation_rounds", help="work folder: models, curations [out/curation_rounds]")
    p.add_argument("--json", default=None, metavar="FILE", help="write the rounds' scores here")
    p.add_argument("--whole-masks", action="store_true",
                   help="curate the K images with their whole true masks (every pixel known) instead of clicks")
    p.add_argument("--adds-only", action="store_true",
                   help="with --first-model: only count how many adds the product makes right on every image "
                        "(with and without the model's inner distance), no rounds")
    g = p.add_argument_group("network (first model; rounds keep the model's own)")
    for name in ("base-filters", "depth", "patch", "batch-size", "steps-per-epoch"):
        g.add_argument(f"--{name}", type=int, default=None)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.minutes is None and args.steps is None:
        args.minutes = 5.0
    if args.first_minutes is None and args.first_steps is None and args.first_model is None:
        args.first_minutes = 10.0
    if args.clicks < 1 or args.rounds < 1:
        raise SystemExit("curation_rounds: --clicks and --rounds must be at least 1")
    if not args.learning_rate > 0:
        raise SystemExit(f"curation_rounds: --learning-rate must be above 0 (the rounds' default is "
                         f"{DEFAULT_ROUND_LEARNING_RATE:g}); got {args.learning_rate:g}")
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()}", flush=True)
    if args.adds_only:
        if not args.first_model:
            raise SystemExit("curation_rounds: --adds-only needs --first-model")
        _print_adds(args)
        return 0
    run(args)
    print(f"load average at end {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
