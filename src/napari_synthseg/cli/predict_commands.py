"""``synthseg predict`` (full-resolution labels from a model) and ``synthseg evaluate`` (scores against masks)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..largeimage import ModelSegmenter
from ..metrics import DEFAULT_WORST, worst_images
from ..model import PredictionParams
from .batch import _add_batch_options, _batch_inputs, _check_batch_options, _run_batch
from .checks import EXIT_FAILED, CommandError, _check, _check_backend, _check_box, _check_out_dir, _check_writable
from .options import (
    _AUGMENT_HELP,
    _KEEP_OVERLAYS_PREDICT_HELP,
    _MAX_SHRINK_HELP,
    _check_max_shrink,
    _ignore_box,
)


def add_predict_parser(sub) -> None:
    defaults = PredictionParams()  # each default is defined there, once
    p = sub.add_parser("predict", help="segment images at full resolution with a trained model")
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--out", required=True)
    p.add_argument("--tile", type=int, default=defaults.tile, help=f"network tile in pixels [{defaults.tile}]")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size,
                   help=f"tiles per network call [{defaults.batch_size}]")
    p.add_argument("--min-area", type=int, default=defaults.min_area,
                   help=f"smallest object in pixels [{defaults.min_area}]")
    p.add_argument("--min-confidence", type=float, default=defaults.min_confidence,
                   help=f"drop objects whose mean foreground probability is lower (0 keeps all) "
                        f"[{defaults.min_confidence:g}]")
    p.add_argument("--augment", action="store_true", default=defaults.augment, help=_AUGMENT_HELP)
    p.add_argument("--max-shrink", type=float, default=defaults.max_shrink, metavar="F",
                   help=f"{_MAX_SHRINK_HELP} [{defaults.max_shrink:g}]")
    p.add_argument("--keep-overlays", action="store_true", default=not defaults.drop_overlays,
                   help=_KEEP_OVERLAYS_PREDICT_HELP)
    p.add_argument("--ignore-box", type=_ignore_box, default=defaults.ignore_box,
                   help="region where no object is kept: 'auto' (detect the scale bar), 'none', or Y0,Y1,X0,X1 "
                        f"[{defaults.ignore_box}]")
    p.add_argument("--no-overlay", action="store_true")
    _add_batch_options(p)
    p.set_defaults(func=cmd_predict)


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score label images against ground-truth masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--json", metavar="FILE", help="write all scores (pooled and per image) to FILE")
    p.add_argument("--split", metavar="CSV", help="CSV with columns image,half: score only the images of --subset")
    p.add_argument("--subset", metavar="NAME", help="the half to score (e.g. tune or check)")
    p.add_argument("--worst", metavar="N", type=int, default=DEFAULT_WORST,
                   help="list the N images holding the largest share of the pooled error, with the scores "
                        f"of the others (0: none) [{DEFAULT_WORST}]")
    p.set_defaults(func=cmd_evaluate)


def _model_identity(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _check_predict_options(args: argparse.Namespace) -> Path:
    """``synthseg predict``'s options and model file, checked before any work; the model's path."""
    if not 0.0 <= args.min_confidence <= 1.0:
        raise CommandError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    _check(args.tile >= 16, f"--tile must be at least 16 pixels, got {args.tile}")
    _check(args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}")
    _check(args.min_area >= 0, f"--min-area must be >= 0 pixels, got {args.min_area}")
    _check_max_shrink(args)
    _check_box(args.ignore_box)
    _check_batch_options(args)
    model = Path(args.model)
    _check(not model.is_dir(), f"model {model} is a folder; give the model file (.keras) inside it")
    _check(not model.is_file() or os.access(model, os.R_OK),
           f"cannot read model {model} (permission denied); ask its owner to make it readable")
    return model


def cmd_predict(args: argparse.Namespace) -> int:
    from ..image_io import write_png
    from ..largeimage import read_labels, read_whole
    from ..overlay import make_overlay

    model = _check_predict_options(args)
    out = _check_out_dir(args.out, "--out")
    inputs = _batch_inputs(args, out)
    _check_backend()
    from ..model.prediction import ModelLoadError, load_model

    try:
        load_model(model)  # fail early, with the reason, before any task starts
    except ModelLoadError as exc:
        raise CommandError(str(exc)) from exc
    segmenter = ModelSegmenter(model_path=str(model), tile=args.tile, batch_size=args.batch_size,
                               min_area=args.min_area, min_confidence=args.min_confidence, augment=args.augment,
                               ignore_box=args.ignore_box, drop_overlays=not args.keep_overlays,
                               max_shrink=args.max_shrink)
    params = {"command": "predict", "model": _model_identity(model), "tile": args.tile,
              "min_area": args.min_area, "min_confidence": args.min_confidence, "augment": args.augment,
              "ignore_box": args.ignore_box, "drop_overlays": not args.keep_overlays,
              "max_shrink": args.max_shrink}
    report = _run_batch(args, inputs, out, segmenter, "predict", params)
    if not args.no_overlay:
        for path in inputs:
            labels_path = report.written.get(path.name)
            if labels_path is None or labels_path.suffix == ".zarr":
                continue
            labels = read_labels(labels_path)
            if labels.ndim == 2:
                write_png(out / f"{path.stem}_overlay.png", make_overlay(read_whole(path), labels))
    print(f"predict: {len(report.written)} images segmented, {len(report.skipped)} already done, "
          f"{sum(report.n_objects.values())} objects, labels in {out}"
          + (f", {len(report.failed)} failed" if report.failed else ""))
    return EXIT_FAILED if report.failed else 0


def _split_stems(csv_path: str, subset: str) -> set[str]:
    """Stems of the images whose ``half`` is ``subset`` in a split CSV (columns image, half)."""
    import csv

    path = Path(csv_path)
    _check(path.is_file(), f"--split {path} does not exist; give a CSV with columns image,half")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"--split {path} cannot be read as CSV ({exc}); give a CSV with columns image,half") from exc
    columns = set(rows[0]) if rows else set()
    _check({"image", "half"} <= columns,
           f"--split {path} needs the columns image,half (found {', '.join(sorted(columns)) or 'none'})")
    halves = sorted({(row.get("half") or "").strip() for row in rows})
    stems = {Path((row.get("image") or "").strip()).stem for row in rows if (row.get("half") or "").strip() == subset}
    _check(bool(stems), f"--subset {subset!r} names no image in {path}; its halves are {', '.join(halves)}")
    return stems


def _prediction_files(pred_dir: str) -> list[Path]:
    """The label images of a folder, ``synthseg predict``'s ``*_labels.zarr`` outputs among them."""
    from ..image_io import ImageReadError, list_images
    from ..largeimage.outputs import labels_outputs

    folder = Path(pred_dir)
    zarrs = [path for path in labels_outputs(folder) if path.suffix.lower() == ".zarr"] if folder.is_dir() else []
    try:
        images = list_images(pred_dir)
    except ImageReadError:
        if not zarrs:
            raise
        images = []
    return sorted(images + zarrs)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..image_io import read_image
    from ..largeimage.outputs import read_labels
    from ..pipeline import find_ground_truth, score_labels

    _check((args.split is None) == (args.subset is None), "--split CSV and --subset NAME go together")
    _check(args.worst >= 0, f"--worst must be 0 or more images, got {args.worst}")
    args.interrupted_note = "nothing was written"
    wanted = _split_stems(args.split, args.subset) if args.split else None
    if args.json:
        _check_writable(Path(args.json).parent, "--json")
        _check(not Path(args.json).is_dir(), f"--json {args.json} is a folder; give a file name")
    preds = {}
    for path in _prediction_files(args.pred_dir):
        stem = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
        if path.stem.endswith("_overlay") or (wanted is not None and stem not in wanted):
            continue
        preds[stem] = read_labels(path) if path.suffix.lower() == ".zarr" else np.asarray(read_image(path))
    if not preds:
        raise CommandError(f"no label images in {args.pred_dir}"
                           + (f" for --subset {args.subset}" if wanted is not None else ""))
    gt = find_ground_truth(args.gt_dir, sorted(preds))
    per_image: dict = {}
    scores = score_labels(preds, gt, per_image=per_image)
    print(f"evaluate: {len(gt)} images with ground truth"
          + (f" (--subset {args.subset} of {args.split})" if wanted is not None else ""))
    _print_scores("prediction", scores)
    worst = worst_images(per_image, args.worst) if len(per_image) > 1 else []
    _print_worst(worst)
    if args.json:
        from ..image_io import atomic_write

        text = json.dumps({"pred_dir": str(args.pred_dir), "gt_dir": str(args.gt_dir), "split": args.split,
                           "subset": args.subset, "pooled": scores, "images": per_image,
                           "worst": [asdict(entry) for entry in worst]}, indent=2) + "\n"
        atomic_write(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"  scores written to {args.json}")
    return 0


def _print_worst(worst: list) -> None:
    if not worst:
        return
    print("  images holding most of the error (the pooled scores of the other images):")
    for e in worst:
        print(f"    {e.name:<24} {e.pixel_share:.0%} of wrong pixels (missed {e.missed:.3f}, extra {e.extra:.3f} "
              f"of the union), {e.object_share:.0%} of wrong objects ({e.fp} extra, {e.fn} missed)"
              f"  -> without it: pixel IoU {e.pixel_iou_without:.3f}, F1 {e.object_f1_without:.3f}")


def _print_scores(name: str, s: dict) -> None:
    ap = f"  AP {s['ap']:.3f} (AP50 {s['ap_50']:.3f}, AP75 {s['ap_75']:.3f})" if "ap" in s else ""
    print(f"  {name:<22} pixel IoU {s['pixel_iou']:.3f}  Dice {s['pixel_dice']:.3f}  "
          f"object P {s['object_precision']:.3f}  R {s['object_recall']:.3f}  F1 {s['object_f1']:.3f}" + ap)
