"""Time to accuracy: what the learned model reaches after 1, 3 and 10 minutes of CPU training.

Run (takes ~12 minutes per dataset at the default snapshots):

    .venv/bin/python benchmarks/time_to_accuracy.py                  # dev_emps, sample, seed_em
    .venv/bin/python benchmarks/time_to_accuracy.py --datasets dev   # one dataset
    .venv/bin/python benchmarks/time_to_accuracy.py --quick          # smoke run, ~2 minutes

One training run per dataset with the default recipe (``pipeline.run_pipeline``'s steps:
auto-segment → bank → background source → ``train_model``, ``pipeline.DEFAULT_TRAIN``; the
mixed-folder recipe with ``--train '{"normalization": "anchored", "real_fraction": 0.5}'``); a callback copies
the best model so far when training passes each snapshot time (column "chosen": the step whose validation made it
the best so far). Each snapshot then segments the evaluation
images and is scored (pooled pixel IoU, object F1 @ IoU 0.5), next to the baseline measured in
the same run: the best of Otsu / Li / local thresholding from ``autosegment`` (polarity auto).
``--augment`` also scores each snapshot with test-time augmentation (row "model+flips").

Datasets:
  dev      ../shared/data/dev_emps: trained on its images only, scored against its masks.
  sample   built-in sample scenes: trained on seeds 0-3, scored on held-apart seeds 100-103.
  seed     ../shared/data/seed_em: trained on train/ images, overlays of test/ images
           (model and best threshold side by side) written to --out for judging by eye.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_synthseg.autoseg import autosegment
from napari_synthseg.image_io import list_images, read_image, to_gray, write_png
from napari_synthseg.metrics import DatasetScores
from napari_synthseg.overlay import make_overlay
from napari_synthseg.pipeline import (
    DEFAULT_BANK_FILTER,
    _as_instances,
    _copy_model,
    build_bank,
    network_images,
    real_image_params,
    training_objects,
    training_recipe,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = ("otsu", "li", "local")


def _load_pairs(images_dir: Path, masks_dir: Path | None):
    paths = list_images(images_dir)
    images = [to_gray(read_image(p)) for p in paths]
    truths = None
    if masks_dir is not None:
        masks = {p.stem: p for p in list_images(masks_dir)}
        truths = []
        for p in paths:
            mask = np.asarray(read_image(masks[p.stem]))
            truths.append(_as_instances(mask.max(axis=-1) if mask.ndim == 3 else mask))
    return paths, images, truths


def _dataset(name: str, quick: bool, work: Path):
    """(train paths, train images, eval paths, eval images, eval truths or None)."""
    if name == "dev":
        root = DATA / "dev_emps"
        if not root.is_dir():
            return None
        paths, images, truths = _load_pairs(root / "images", root / "masks")
        if quick:
            paths, images, truths = paths[:12], images[:12], truths[:12]
        return paths, images, paths, images, truths
    if name == "sample":
        from napari_synthseg.sample_data import write_sample_folder

        n = 2 if quick else 4
        train_dir, _ = write_sample_folder(work / "sample_train", n=n, seed=0)
        eval_dir, eval_masks = write_sample_folder(work / "sample_eval", n=n, seed=100)
        paths, images, _ = _load_pairs(train_dir, None)
        eval_paths, eval_images, truths = _load_pairs(eval_dir, eval_masks)
        return paths, images, eval_paths, eval_images, truths
    if name == "seed":
        root = DATA / "seed_em"
        if not root.is_dir():
            return None
        paths, images, _ = _load_pairs(root / "train", None)
        eval_paths, eval_images, _ = _load_pairs(root / "test", None)
        n = 3 if quick else 8
        paths, images = paths[:n], images[:n]
        if quick:
            eval_paths, eval_images = eval_paths[:1], eval_images[:1]
        return paths, images, eval_paths, eval_images, None
    raise ValueError(f"unknown dataset {name!r}; choose dev, sample or seed")


def _score(predictions, truths) -> dict:
    scores = DatasetScores()
    for pred, truth in zip(predictions, truths):
        scores.add(pred, truth)
    return scores.summary()


def _fmt(scores: dict | None) -> str:
    if scores is None:
        return f"{'-':>9} {'-':>6} {'-':>6} {'-':>6}"
    return (f"{scores['pixel_iou']:9.3f} {scores['object_precision']:6.3f} {scores['object_recall']:6.3f} "
            f"{scores['object_f1']:6.3f}")


def run_dataset(name: str, snapshots: list[float], quick: bool, out: Path, train_params: dict,
                predict_params: dict | None = None, augment: bool = False,
                autoseg_params: dict | None = None) -> list[dict]:
    from napari_synthseg.model.prediction import load_model, predict
    from napari_synthseg.model.training import train_model
    from napari_synthseg.pipeline import DEFAULT_AUTOSEG
    from napari_synthseg.synthesis import BackgroundSource

    work = Path(tempfile.mkdtemp(prefix=f"tta_{name}_"))
    data = _dataset(name, quick, work)
    if data is None:
        print(f"[{name}] data not found under {DATA}; skipped")
        return []
    paths, images, eval_paths, eval_images, truths = data
    rows = []

    # baseline: each threshold method on the evaluation images, in this run
    threshold_labels = {m: [autosegment(im, method=m) for im in eval_images] for m in THRESHOLDS}
    best_method = THRESHOLDS[0]
    if truths is not None:
        for method in THRESHOLDS:
            scores = _score(threshold_labels[method], truths)
            rows.append({"dataset": name, "what": f"threshold {method}", "minutes": None, **scores})
        best_method = max(THRESHOLDS, key=lambda m: next(r for r in rows if r["what"] == f"threshold {m}")
                          ["pixel_iou"])

    t0 = time.perf_counter()
    train_params, real_fraction = training_recipe(train_params)
    auto = [autosegment(im, **{**DEFAULT_AUTOSEG, **(autoseg_params or {})}) for im in images]
    work_images = network_images(images, train_params.get("normalization", "percentile"))
    bank = build_bank(work / "bank", paths, work_images, auto)
    backgrounds = BackgroundSource.from_images(work_images, auto, names=[str(p) for p in paths])
    train_params.update(real_image_params(zip(images, auto), real_fraction))
    prep_s = time.perf_counter() - t0

    model_path = work / "model.keras"
    pending = sorted(snapshots)
    taken: list[tuple[float, float, int, Path]] = []  # (snapshot minute, actual elapsed s, step, file)

    def snapshot(progress) -> None:
        # the best model so far exists once the first validation has saved it
        while pending and progress.elapsed_s >= pending[0] * 60 and model_path.exists():
            minute = pending.pop(0)
            copy = work / f"snap_{minute:g}min.keras"
            _copy_model(model_path, copy)  # with its sidecar
            taken.append((minute, progress.elapsed_s, progress.step, copy))

    load_start = os.getloadavg()[0]
    objects = training_objects(bank, **DEFAULT_BANK_FILTER)
    result = train_model(objects, backgrounds, model_path, minutes=max(snapshots), callbacks=[snapshot],
                         **train_params)
    for minute in pending:  # the run ended before this snapshot (budget reached): the final best model
        copy = work / f"snap_{minute:g}min.keras"
        _copy_model(model_path, copy)  # with its sidecar
        taken.append((minute, result.history[-1]["elapsed_s"], result.steps_done, copy))
    load_end = os.getloadavg()[0]
    print(f"[{name}] {len(images)} training images, bank {len(bank)} objects ({len(objects)} used), "
          f"prep {prep_s:.0f} s, "
          f"{result.steps_done} steps, load average {load_start:.1f} -> {load_end:.1f}", flush=True)

    variants = {"model": {}, **({"model+flips": {"augment": True}} if augment else {})}
    for minute, elapsed, step, copy in taken:
        model = load_model(copy)
        predictions = {}
        for what, extra in variants.items():
            t1 = time.perf_counter()
            predictions[what] = [predict(model, im, **{**(predict_params or {}), **extra}) for im in eval_images]
            predict_s = (time.perf_counter() - t1) / len(eval_images)
            scores = _score(predictions[what], truths) if truths is not None else None
            rows.append({"dataset": name, "what": what, "minutes": minute, "elapsed_s": round(elapsed, 1),
                         "step": step, "chosen_step": (model.info.get("metrics") or {}).get("step"),
                         "predict_s_per_image": round(predict_s, 2), **(scores or {}),
                         # the validations up to this snapshot, to see how the model was chosen
                         "validations": [{k: h.get(k) for k in ("step", "val_iou", "real_val_iou", "saved")}
                                         for h in model.info.get("history", [])]})
        if name == "seed":
            for path, image, pred, thr in zip(eval_paths, eval_images, predictions["model"],
                                              threshold_labels[best_method]):
                panel = np.concatenate([make_overlay(image, pred), make_overlay(image, thr)], axis=1)
                write_png(out / f"seed_{path.stem}_{minute:g}min_model_vs_{best_method}.png", panel[::2, ::2])
    shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="dev,sample,seed")
    parser.add_argument("--snapshots", default=None, help="minutes, comma separated [1,3,10; quick: 0.5,1]")
    parser.add_argument("--quick", action="store_true", help="short smoke run on fewer images")
    parser.add_argument("--out", type=Path, default=Path("out/time_to_accuracy"))
    parser.add_argument("--train", default="{}", help="extra train_model keywords as JSON")
    parser.add_argument("--autoseg", default="{}",
                        help="autosegment keywords for the training labels and bank as JSON, e.g. "
                             "'{\"method\": \"edge\"}' (the threshold rows are unchanged)")
    parser.add_argument("--predict", default="{}",
                        help='extra predict keywords as JSON, e.g. \'{"min_confidence": 0.5}\'')
    parser.add_argument("--augment", action="store_true",
                        help="also score each snapshot with test-time augmentation (predict(augment=True))")
    args = parser.parse_args(argv)
    snapshots = [float(v) for v in (args.snapshots or ("0.5,1" if args.quick else "1,3,10")).split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()}", flush=True)
    rows = []
    for name in args.datasets.split(","):
        rows += run_dataset(name.strip(), snapshots, args.quick, args.out, json.loads(args.train),
                            json.loads(args.predict), args.augment, json.loads(args.autoseg))

    print()
    print(f"{'dataset':<8} {'what':<16} {'min':>5} {'steps':>6} {'chosen':>6} {'pixIoU':>9} {'objP':>6} {'objR':>6} "
          f"{'objF1':>6}")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        group = [r for r in rows if r["dataset"] == name]
        thresholds = [r for r in group if r["what"].startswith("threshold")]
        best = max(thresholds, key=lambda r: r["pixel_iou"]) if thresholds else None
        for r in group:
            scores = r if "pixel_iou" in r else None
            minutes = "" if r["minutes"] is None else f"{r['minutes']:g}"
            chosen = r.get("chosen_step")
            print(f"{name:<8} {r['what']:<16} {minutes:>5} {r.get('step', ''):>6} "
                  f"{'' if chosen is None else chosen:>6} {_fmt(scores)}")
        if best:
            for r in group:
                if r["what"].startswith("model"):
                    print(f"{name:<8} {r['what']} {r['minutes']:g} min / best threshold ({best['what'][10:]}): "
                          f"pixel IoU x{r['pixel_iou'] / max(best['pixel_iou'], 1e-9):.2f}, object F1 "
                          f"x{r['object_f1'] / max(best['object_f1'], 1e-9):.2f}")
    print(f"load average at end {os.getloadavg()}")
    (args.out / "time_to_accuracy.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
