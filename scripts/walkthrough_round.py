"""One full curation round through the plugin's real napari docks, with the figures it reaches.

Drives Auto-segment -> Train (round 1) -> Segment -> Curate (pick, reject, add, split, merge; keys and mouse)
-> Train's *Retrain on curations* (round 2: ``model_round2.keras``) -> Segment on the built-in
sample (``sample_grains``: image + ground truth) and scores every stage against the ground truth
on that image and on a held-apart sample scene the plugin never trains from. Curation clicks go
through the Labels layer's real ``mouse_drag_callbacks`` (synthetic mouse events at data
points) and its key bindings (K, R, A, S, J, Ctrl+Z), exactly as the Curate dock receives them.

The person's judgement is emulated with the training image's ground truth, which only decides
*where* a click goes (what the click makes comes from the product): Auto-segment uses
``--method`` (a person chooses it with the live preview); at most ``--clicks`` clicks, the most
useful first, taking turns: add at the centre of a true object no prediction matches (undone with
Ctrl+Z when what Add outlined misses it), pick a predicted object that matches a true one at IoU
>= ``--pick-iou``, reject a predicted object that overlaps no true object, split a predicted
object holding two or more true ones, merge the pieces of a broken one. In real use a person
judges all this by eye. The held-apart scene is never used for any choice.

A control run continues the round-1 model on the uncurated auto-segment bank for the same
budget (``--no-control`` skips it), so that the effect of curation is not confused with the
effect of training longer.

Run (headless)::

    xvfb-run -a .venv/bin/python scripts/walkthrough_round.py --minutes 2 --out /tmp/round

TensorFlow never enters this process (the Train and Segment docks use a child process);
the script checks that at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HELD_APART_SEED = 1  # sample_grains uses seed 0


def wait(widget, what: str, timeout_s: float) -> float:
    """Run the Qt event loop until ``widget`` is idle; returns the seconds it took."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    start = time.perf_counter()
    app.processEvents()
    while widget.busy:
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"{what} still running after {timeout_s:.0f} s")
    for _ in range(5):  # deliver the last queued signals (returned/finished)
        app.processEvents()
    return time.perf_counter() - start


def scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    from napari_synthseg.metrics import DatasetScores

    total = DatasetScores()
    total.add(np.asarray(pred), np.asarray(gt))
    s = total.summary()
    return {"pixel_iou": round(s["pixel_iou"], 4), "object_f1": round(s["object_f1"], 4),
            "object_precision": round(s["object_precision"], 4), "object_recall": round(s["object_recall"], 4),
            "tp": s["tp"], "fp": s["fp"], "fn": s["fn"],
            "n_objects": int(np.count_nonzero(np.bincount(np.asarray(pred).ravel().astype(np.int64))[1:]))}


def matching_objects(pred: np.ndarray, gt: np.ndarray, min_iou: float) -> list[int]:
    """Ids of predicted objects whose best ground-truth match has IoU >= ``min_iou``."""
    pred = pred.astype(np.int64).ravel()
    gt = gt.astype(np.int64).ravel()
    pred_area = np.bincount(pred)
    gt_area = np.bincount(gt)
    both = (pred > 0) & (gt > 0)
    pairs, overlap = np.unique(np.stack([pred[both], gt[both]]), axis=1, return_counts=True)
    iou = overlap / (pred_area[pairs[0]] + gt_area[pairs[1]] - overlap)
    return sorted({int(p) for p, v in zip(pairs[0], iou) if v >= min_iou})


def inner_point(labels: np.ndarray, label: int) -> tuple[int, int]:
    """The pixel of object ``label`` farthest from its edge (where a person would click)."""
    from scipy import ndimage

    rows, cols = np.nonzero(labels == label)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    inside = np.pad(labels[box] == label, 1)
    depth = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(r + rows.min()), int(c + cols.min())


def open_background_point(labels: np.ndarray) -> tuple[int, int]:
    """A pixel deep in the largest background region (where a person clicks for Fill)."""
    from scipy import ndimage

    regions, n = ndimage.label(labels == 0)
    if n == 0:
        raise ValueError("the segmentation has no background to click on")
    largest = 1 + int(np.argmax(np.bincount(regions.ravel())[1:]))
    depth = ndimage.distance_transform_edt(np.pad(regions == largest, 1))[1:-1, 1:-1]  # away from edges too
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(r), int(c)


def person_clicks(pred: np.ndarray, gt: np.ndarray, pick_iou: float, limit: int,
                  kinds=("add", "split", "merge", "pick", "reject")) -> list:
    """The clicks a person would make by looking, the most useful first, at most ``limit``:
    ``(mode, (row, col) or the points of a merge's pieces, ground-truth id)``. Pick a predicted object
    matching a true one at IoU >= ``pick_iou``; reject one that overlaps no true object; split one that
    holds two or more true objects (each at least half inside it); merge the pieces (each >= 80 %
    inside it) of a true object no prediction matches at IoU >= 0.5; add at the centre of one with no such
    pieces (also inside a larger prediction).
    Only the ``kinds`` given are used. The ground truth decides only where a click goes."""
    pred64, gt64 = pred.astype(np.int64), gt.astype(np.int64)
    pred_area, gt_area = np.bincount(pred64.ravel()), np.bincount(gt64.ravel())
    both = (pred64 > 0) & (gt64 > 0)
    pairs, overlap = np.unique(np.stack([pred64[both], gt64[both]]), axis=1, return_counts=True)
    iou = overlap / (pred_area[pairs[0]] + gt_area[pairs[1]] - overlap)
    best = {}
    for p, g, v in zip(pairs[0], pairs[1], iou):
        if v > best.get(int(p), (0, 0.0))[1]:
            best[int(p)] = (int(g), float(v))
    # as the curation benchmark's person: a true object no prediction matches at IoU >= 0.5 is missed, also
    # when it lies inside a larger prediction (Add carves it out there at its own peak of the inner distance)
    covered = {int(g) for g in pairs[1][iou >= 0.5]}
    held = pairs[:, overlap >= 0.5 * gt_area[pairs[1]]]  # (pred, gt): the true object lies mostly in the prediction
    clumps = [p for p in sorted(best, key=lambda p: -pred_area[p])
              if best[p][1] < pick_iou and np.count_nonzero(held[0] == p) >= 2 and "split" in kinds]
    splits = [("split", inner_point(pred, p), 0) for p in clumps]
    pieces = pairs[:, overlap >= 0.8 * pred_area[pairs[0]]]  # (pred, gt): the prediction lies mostly in the truth
    freed = {int(g) for p, g in zip(*held) if int(p) in set(clumps)}  # a split click frees them
    merges, adds = [], []
    for g in np.argsort(gt_area)[::-1]:
        if not g or not gt_area[g] or int(g) in covered or int(g) in freed:
            continue
        parts = pieces[0][pieces[1] == g]
        if len(parts) >= 2 and pred_area[parts].sum() >= 0.5 * gt_area[g] and "merge" in kinds:
            merges.append(("merge", tuple(inner_point(pred, q) for q in parts[:2]), int(g)))
        else:
            adds.append(("add", inner_point(gt, g), g))
    picks = [("pick", inner_point(pred, p), best[p][0]) for p in sorted(best, key=lambda p: -pred_area[p])
             if best[p][1] >= pick_iou]
    rejects = [("reject", inner_point(pred, p), 0) for p in np.argsort(pred_area)[::-1]
               if p and pred_area[p] and int(p) not in best]
    ordered = []
    queues = {"add": adds, "split": splits, "merge": merges, "pick": picks, "reject": rejects}
    for turn in zip(*(queues[kind] + [None] * limit for kind in queues if kind in kinds)):
        ordered.extend(click for click in turn if click is not None)
    return ordered[:limit]


def curation_scores(curation, gt: np.ndarray) -> dict:
    """How right the curation is where it says something: its objects against the truth."""
    known_objects = curation.objects > 0
    truth = gt > 0
    return {"object_pixels_on_truth": round(float((known_objects & truth).sum() / max(known_objects.sum(), 1)), 4),
            "background_pixels_off_truth": round(float((curation.background & ~truth).sum()
                                                       / max(curation.background.sum(), 1)), 4)}


def history_val_ious(result: dict) -> list[list]:
    """``[step, val_iou]`` of every validation in the model's history (a resumed run's too)."""
    return [[int(h.get("step", 0)), round(float(h["val_iou"]), 4)]
            for h in result.get("history") or [] if h.get("val_iou") is not None]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per round (minutes)")
    parser.add_argument("--out", type=Path, required=True, help="working folder (banks, models, figures.json)")
    parser.add_argument("--pick-iou", type=float, default=0.7, help="emulated judgement: pick when IoU >= this")
    parser.add_argument("--clicks", type=int, default=20, help="at most this many curation clicks")
    parser.add_argument("--kinds", default="add,pick,reject",
                        help="click kinds of the emulated person, of add,split,merge,pick,reject [add,pick,reject: "
                             "split and merge did not pay in the curation benchmark's A/B]")
    parser.add_argument("--seed", type=int, default=0, help="training seed (Train dock's advanced box)")
    parser.add_argument("--method", default="triangle",
                        help="Auto-segment method chosen in the dock (its default 'otsu' is also scored)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the control: round 1 continued on the uncurated bank for the same budget")
    args = parser.parse_args(argv)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("bank_autoseg", "model_round2.keras"):
        if (out / name).exists():
            raise SystemExit(f"{out / name} exists; use a fresh --out folder so the banks start empty")

    from napari.utils.notifications import notification_manager

    import napari
    from napari_synthseg._napari._settings import keep_dock_settings_in
    from napari_synthseg._napari.autoseg_widget import AutosegWidget
    from napari_synthseg._napari.curate_widget import SHORTCUTS, CurateWidget
    from napari_synthseg._napari.sample import sample_grains
    from napari_synthseg._napari.segment_widget import SegmentWidget
    from napari_synthseg._napari.simulate import click
    from napari_synthseg._napari.train_widget import TrainWidget
    from napari_synthseg.sample_data import make_sample_scene

    keep_dock_settings_in(out / "dock_settings")  # the docks' defaults, not what this user's napari remembers
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(str(n.message)))

    t_all = time.perf_counter()
    viewer = napari.Viewer(show=False)
    (image_data, image_meta, _), (gt_data, gt_meta, _) = sample_grains()
    image = viewer.add_image(image_data, **image_meta)
    gt_layer = viewer.add_labels(gt_data, **gt_meta)
    gt_layer.visible = False
    held_image, held_gt = make_sample_scene(seed=HELD_APART_SEED)
    held = viewer.add_image(held_image, name="held-apart")
    images = {"train": (image, gt_data), "held_apart": (held, held_gt)}
    figures: dict = {
        "command": "xvfb-run -a .venv/bin/python scripts/walkthrough_round.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"minutes_per_round": args.minutes, "pick_iou": args.pick_iou, "seed": args.seed,
                     "train_image": "sample_grains() (make_sample_scene(seed=0))",
                     "held_apart_image": f"make_sample_scene(seed={HELD_APART_SEED})"},
    }

    def log(text):
        print(f"[{time.perf_counter() - t_all:7.1f} s] {text}", flush=True)

    # 1. Auto-segment both images (only the training image's objects go to the bank)
    autoseg = AutosegWidget(viewer)
    default_method = autoseg.method.currentText()
    autoseg_scores: dict = {}
    for method in dict.fromkeys([default_method, args.method]):  # the chosen method runs last
        autoseg.method.setCurrentText(method)
        if autoseg.method.currentText() != method:
            raise SystemExit(f"the Auto-segment dock has no method {method!r}")
        for key, (layer, gt) in images.items():
            autoseg.image_choice.set_layer(layer)
            autoseg.run_button.click()
            wait(autoseg, "auto-segment", 300)
            autoseg_scores.setdefault(method, {})[key] = scores(viewer.layers[f"{layer.name} autoseg"].data, gt)
    figures["settings"]["autoseg"] = autoseg.params()
    autoseg.image_choice.set_layer(image)
    autoseg.bank_path.set_path(out / "bank_autoseg")
    autoseg.add_button.click()
    wait(autoseg, "add to bank", 300)
    from napari_synthseg.bank import ObjectBank

    n_bank = len(ObjectBank(out / "bank_autoseg", create=False))
    figures["autoseg"] = {"scores": autoseg_scores[args.method], "objects_in_bank": n_bank,
                          "status": autoseg.status.text(), "scores_by_method": autoseg_scores}
    log(f"auto-segment: {autoseg_scores}; bank holds {n_bank} ({args.method})")

    # 2.-3. Train round 1 on the auto-segmented bank, the training image as background
    train = TrainWidget(viewer)
    segment = SegmentWidget(viewer)

    def train_round(bank_dir: Path, model_path: Path, resume: bool) -> dict:
        train.bank_path.set_path(bank_dir)
        train.model_path.set_path(model_path)
        train.backgrounds.set_checked([image])
        train.set_budget("minutes", args.minutes)
        train.replace.setChecked(True)  # a rerun into the same --out makes its models again
        train.seed.setValue(args.seed)
        train.resume.setChecked(resume)
        settings = train.train_kwargs()
        train.start_button.click()
        if not train.busy:
            raise RuntimeError(f"training did not start: {messages[-3:]}")
        seconds = wait(train, "training", 60 * args.minutes + 600)
        result = train.result
        if result is None:
            raise RuntimeError(f"training gave no result: {train.status.text()} {messages[-3:]}")
        return {"settings": {k: v for k, v in settings.items() if k not in ("bank", "model_path")},
                "bank": str(bank_dir), "bank_size": len(ObjectBank(bank_dir, create=False)),
                "wall_s": round(seconds, 1), "steps_done": result.get("steps_done"),
                "best_val_iou": result.get("best_metric"), "val_ious": history_val_ious(result),
                "model": result.get("model_path")}

    def segment_all(model_path: Path) -> dict:
        segment.model_path.set_path(model_path)
        out_scores = {}
        for key, (layer, gt) in images.items():
            segment.image_choice.set_layer(layer)
            segment.run_button.click()
            seconds = wait(segment, "segmentation", 600)
            name = f"{layer.name} segmentation"
            if name not in viewer.layers:
                raise RuntimeError(f"no layer {name!r}: {segment.status.text()} {messages[-3:]}")
            out_scores[key] = {**scores(viewer.layers[name].data, gt), "wall_s": round(seconds, 1),
                               "status": segment.status.text()}  # says what min confidence left out
        return out_scores

    model1 = out / "model.keras"  # the curation round writes model_round2.keras beside it
    figures["round1"] = train_round(out / "bank_autoseg", model1, resume=False)
    log(f"round 1 training: {figures['round1']}")

    # 4. Segment with the round-1 model
    figures["round1"]["scores"] = segment_all(model1)
    log(f"round 1 segmentation: {figures['round1']['scores']}")
    round1_labels = np.asarray(viewer.layers["grains segmentation"].data).copy()

    # 5. Curate the training image's segmentation through the layer's mouse callbacks and keys
    seg_layer = viewer.layers["grains segmentation"]
    curate = CurateWidget(viewer)
    curate.labels_choice.set_layer(seg_layer)
    curate.image_choice.set_layer(image)
    curate.curation_path.set_path(out / "grains_curation.tif")  # the sample image has no folder of its own
    keys = viewer.window._qt_viewer._key_map_handler

    def press(key: str) -> None:
        viewer.layers.selection.active = seg_layer
        if not keys.press_key(key):
            raise RuntimeError(f"key {key!r} is not bound on the labels layer")
        keys.release_key(key)

    labels_now = np.asarray(seg_layer.data).copy()
    plan = person_clicks(labels_now, gt_data, args.pick_iou, args.clicks, kinds=args.kinds.split(","))
    kept = {"pick": 0, "reject": 0, "add": 0, "add_undone": 0, "split": 0, "merge": 0}
    for mode, point, truth_id in plan:
        press(SHORTCUTS[mode])
        before = curate.counts()[mode]
        if mode == "merge":  # the first piece, then the second
            click(seg_layer, point[0])
            point = point[1]
        click(seg_layer, point)
        if curate.counts()[mode] == before:
            continue  # the click found nothing (the dock said why); a person moves on
        if mode == "add":  # a person looks at what Add outlined and takes back a leak (Ctrl+Z)
            added = curate.curations[()].objects
            grown = added == added[point]
            truth = gt_data == truth_id
            if (grown & truth).sum() / (grown | truth).sum() < 0.3:
                press("Control-Z")
                kept["add_undone"] += 1
                continue
        kept[mode] += 1
    curate.save_curation()
    figures["curation"] = {"planned_clicks": len(plan), "kept": kept, "counts": curate.counts(),
                           "objects_in_segmentation": int(len(np.unique(labels_now)) - 1),
                           "saved": curate.status.text(),
                           "scores_with_curation": curation_scores(curate.curations[()], gt_data)}
    log(f"curation: {figures['curation']}")

    # 6. Round 2: the Train dock's curation round from the round-1 model (which stays as it is)
    train.model_path.set_path(model1)
    train.bank_path.set_path(out / "bank_autoseg")
    train.set_budget("minutes", args.minutes)
    train.retrain_button.click()
    if not train.busy:
        raise RuntimeError(f"the curation round did not start: {messages[-3:]}")
    seconds = wait(train, "curation round", 60 * args.minutes + 600)
    if train.result is None or train.result.get("task") != "retrain":
        raise RuntimeError(f"the curation round gave no model: {train.status.text()} {messages[-3:]}")
    model2 = Path(train.result["model_path"])
    figures["round2"] = {"model": str(model2), "wall_s": round(seconds, 1), "round": train.result.get("round"),
                         "clicks": train.result.get("clicks"), "status": train.status.text()}
    log(f"round 2 training: {figures['round2']}")
    figures["round2"]["scores"] = segment_all(model2)
    log(f"round 2 segmentation: {figures['round2']['scores']}")

    round2_labels = np.asarray(viewer.layers["grains segmentation"].data).copy()

    # Control: the same continuation on the uncurated auto-segment bank, so the effect of
    # curation is not confused with the effect of training longer
    if not args.no_control:
        control = out / "control.keras"
        shutil.copy2(model1, control)
        shutil.copy2(model1.with_suffix(".json"), control.with_suffix(".json"))
        figures["control"] = train_round(out / "bank_autoseg", control, resume=True)
        figures["control"]["steps_this_round"] = figures["control"]["steps_done"] - figures["round1"]["steps_done"]
        log(f"control training: {figures['control']}")
        figures["control"]["scores"] = segment_all(control)
        log(f"control segmentation: {figures['control']['scores']}")

    figures["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["total_wall_s"] = round(time.perf_counter() - t_all, 1)
    figures["tensorflow_in_this_process"] = "tensorflow" in sys.modules
    figures["keras_in_this_process"] = "keras" in sys.modules
    figures["round1_vs_round2_labels_identical"] = bool(np.array_equal(round1_labels, round2_labels))
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, indent=2, default=str))
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TensorFlow entered the napari process"
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
