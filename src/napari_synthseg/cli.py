"""The ``synthseg`` command line: batch and headless work over the same core as the widgets."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .autoseg import METHODS as AUTOSEG_METHODS
from .image_io import ImageReadError
from .recipe import RECIPE_CHOICES
from .model import (DEFAULT_BASE_FILTERS, DEFAULT_DEPTH, DEFAULT_LR_SCHEDULE, LR_FLOOR, LR_SCHEDULES, XLA_CHOICES,
                    XLA_MIN_STEPS)

EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """A problem with the user's input, reported as one line and a non-zero exit."""


def _bar(total: int, desc: str, unit: str = "file"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=None if sys.stderr.isatty() else False, leave=True)


def _ignore_box(value: str):
    if value.lower() == "auto":
        return "auto"
    if value.lower() in ("none", "off", ""):
        return None
    try:
        y0, y1, x0, x1 = (int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--ignore-box takes 'auto', 'none' or Y0,Y1,X0,X1 in pixels, got {value!r}"
        ) from None
    return (y0, y1, x0, x1)


def _add_autoseg_options(p: argparse.ArgumentParser, method_default: str | None = "otsu") -> None:
    g = p.add_argument_group("auto-segmentation")
    g.add_argument("--method", default=method_default,
                   choices=AUTOSEG_METHODS,
                   help="thresholding method (contours: the reference's enclosed-by-dark-contours; "
                        "combined: contours and threshold together; edge: Otsu or a 3-class Otsu level, "
                        "whichever follows the strongest edges) "
                        f"[{method_default or 'the recipe' + chr(39) + 's: otsu or edge'}]")
    g.add_argument("--threshold", type=float, default=None, help="threshold value for --method manual")
    g.add_argument("--polarity", default="auto", choices=["auto", "bright", "dark"],
                   help="objects brighter or darker than the background, or decided per image [auto]")
    g.add_argument("--sigma", type=float, default=1.5, help="Gaussian smoothing in pixels [1.5]")
    g.add_argument("--min-area", type=int, default=30, help="smallest object in pixels [30]")
    g.add_argument("--max-area", type=int, default=None, help="largest object in pixels [none]")
    g.add_argument("--no-fill-holes", dest="fill_holes", action="store_false", help="keep holes in objects")
    g.add_argument("--clear-border", action="store_true", help="drop objects touching the image border")
    g.add_argument("--no-split", dest="split_touching", action="store_false",
                   help="do not split touching objects at necks")
    g.add_argument("--ignore-box", type=_ignore_box, default="auto",
                   help="region where no object is segmented: 'auto' (detect the scale bar), 'none', or Y0,Y1,X0,X1 [auto]")


def _autoseg_params(args: argparse.Namespace) -> dict:
    return dict(method=args.method, threshold=args.threshold, polarity=args.polarity, sigma=args.sigma,
                min_area=args.min_area, max_area=args.max_area, fill_holes=args.fill_holes,
                clear_border=args.clear_border, split_touching=args.split_touching,
                ignore_box=args.ignore_box)


def _open_bank(path: str):
    from .bank import NotABankError, ObjectBank

    try:
        return ObjectBank(path)
    except NotABankError as exc:
        raise CommandError(str(exc)) from exc


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large images and batches")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address (tcp://HOST:PORT); default: local threads")
    g.add_argument("--zarr-out", action="store_true", help="write <stem>_labels.zarr instead of TIFF")
    g.add_argument("--chunk", type=int, default=2048, help="tile size for images over the in-memory limit [2048]")
    g.add_argument("--halo", type=int, default=128, help="tile overlap in pixels [128]")
    g.add_argument("--in-memory-pixels", type=int, default=64_000_000,
                   help="images with more pixels are processed lazily tile by tile [64000000]")
    g.add_argument("--no-skip-existing", dest="skip_existing", action="store_false",
                   help="redo images whose output is already complete")


def _run_batch(args: argparse.Namespace, inputs, out_dir, segmenter, desc: str):
    from .largeimage import run_batch

    with _bar(len(inputs), desc) as bar:
        def tick(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        report = run_batch(inputs, out_dir, segmenter, scheduler=args.scheduler, zarr_out=args.zarr_out,
                           tile=args.chunk, overlap=args.halo, in_memory_pixels=args.in_memory_pixels,
                           skip_existing=args.skip_existing, progress=tick)
    for name, message in sorted(report.failed.items()):
        print(f"failed: {name}: {message}", file=sys.stderr)
    return report


def cmd_autoseg(args: argparse.Namespace) -> int:
    import tempfile

    from .largeimage import AutosegSegmenter, list_inputs, output_name, read_labels, read_whole

    inputs = list_inputs(args.images)
    bank = _open_bank(args.bank)
    with tempfile.TemporaryDirectory(prefix="synthseg-autoseg-") as scratch:
        labels_out = Path(args.labels_out) if args.labels_out else Path(scratch)
        report = _run_batch(args, inputs, labels_out, AutosegSegmenter(_autoseg_params(args)), "autoseg")
        added = 0
        done = {**report.written, **report.skipped}
        for path in inputs:
            if path.name not in done:
                continue
            labels_path = done[path.name]
            if labels_path.suffix == ".zarr" and labels_path.name != output_name(path, True):
                continue
            labels = read_labels(labels_path)
            n = int(labels.max()) if labels.size else 0
            if n == 0:
                print(f"warning: no objects found in {path.name}; try another --method or --polarity",
                      file=sys.stderr)
            elif labels.size <= args.in_memory_pixels:
                added += bank.add_from_labels(read_whole(path), labels, source=str(path),
                                              method=f"autoseg {args.method}")
            else:
                print(f"note: {path.name} is too large to crop into the bank in memory; "
                      "its labels are written", file=sys.stderr)
    objects = sum(report.n_objects.values())
    print(f"autoseg: {len(report.written)} images segmented, {len(report.skipped)} already done, "
          f"{objects} objects found, {added} new in bank {bank.path} ({len(bank)} objects)"
          + (f", {len(report.failed)} failed" if report.failed else "")
          + (f"; labels in {args.labels_out}" if args.labels_out else ""))
    if report.failed:
        return 1
    return 0 if objects or report.skipped else 1


def cmd_synth(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image, to_gray, write_png, write_tiff
    from .synthesis import BackgroundSource, synthesize_scene

    bank = _open_bank(args.bank)
    if len(bank) == 0:
        raise CommandError(f"bank {bank.path} holds no objects; fill it with `synthseg autoseg` first")
    if args.n < 1:
        raise CommandError("-n must be at least 1")
    backgrounds = None
    if args.backgrounds:
        images = [to_gray(read_image(p)) for p in list_images(args.backgrounds)]
        backgrounds = BackgroundSource.from_images(images, rng=np.random.default_rng(args.seed))
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    written = 0
    with _bar(args.n, "synth", unit="scene") as bar:
        for i in range(args.n):
            image, labels = synthesize_scene(bank, tuple(args.size), rng, backgrounds=backgrounds)
            stem = f"scene_{args.seed}_{i:05d}"
            write_tiff(out / "labels" / f"{stem}.tif", labels)
            write_png(out / "images" / f"{stem}.png", (np.clip(image, 0, 1) * 255).astype(np.uint8))
            written += 1
            bar.update()
    print(f"synth: {written} scenes of {args.size[0]}x{args.size[1]} from {len(bank)} objects written to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image, to_gray
    from .model.training import train_model
    from .synthesis import BackgroundSource

    bank = _open_bank(args.bank)
    if len(bank) == 0:
        raise CommandError(f"bank {bank.path} holds no objects; fill it with `synthseg autoseg` first")
    images = [to_gray(read_image(p)) for p in list_images(args.backgrounds)]
    backgrounds = BackgroundSource.from_images(images, rng=np.random.default_rng(args.seed))
    budget = _budget(args)
    total = args.steps
    with _bar(total or 0, "train", unit="step") as bar:
        def report(p):
            bar.total = p.total_steps or bar.total
            bar.n = p.step
            bar.set_postfix(loss=f"{p.loss:.3f}", val_iou="-" if p.val_iou is None else f"{p.val_iou:.3f}")
            bar.refresh()

        result = train_model(bank, backgrounds, args.model_out, callbacks=[report], seed=args.seed,
                             resume=args.resume, base_filters=args.base_filters, depth=args.depth,
                             patch=args.patch, batch_size=args.batch_size, lr_schedule=args.lr_schedule,
                             xla=args.xla, **budget)
    print(f"train: {result.steps_done} steps, best validation IoU {result.best_metric:.3f}, "
          f"model {result.model_path}" + (" (stopped early)" if result.cancelled else ""))
    return 0


def _run_predict_params(args: argparse.Namespace) -> dict | None:
    """Prediction options `synthseg run` was given: flips, and the autoseg's --ignore-box when not auto."""
    params = {"augment": True} if args.augment else {}
    if args.ignore_box != "auto":
        params["ignore_box"] = args.ignore_box
    return params or None


def _budget(args: argparse.Namespace) -> dict:
    given = {k: getattr(args, k) for k in ("steps", "minutes", "epochs") if getattr(args, k, None) is not None}
    if len(given) != 1:
        raise CommandError("give exactly one training budget: --steps, --minutes or --epochs")
    return given


def cmd_predict(args: argparse.Namespace) -> int:
    from .largeimage import ModelSegmenter, list_inputs, read_labels, read_whole
    from .image_io import write_png
    from .model.prediction import ModelLoadError, load_model
    from .overlay import make_overlay

    if not 0.0 <= args.min_confidence <= 1.0:
        raise CommandError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    inputs = list_inputs(args.images)
    try:
        load_model(args.model)  # fail early, with the reason, before any task starts
    except ModelLoadError as exc:
        raise CommandError(str(exc)) from exc
    out = Path(args.out)
    segmenter = ModelSegmenter(model_path=str(args.model), tile=args.tile, batch_size=args.batch_size,
                               min_area=args.min_area, min_confidence=args.min_confidence, augment=args.augment,
                               ignore_box=args.ignore_box)
    report = _run_batch(args, inputs, out, segmenter, "predict")
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
    return 1 if report.failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image
    from .pipeline import find_ground_truth, score_labels

    preds = {}
    for path in list_images(args.pred_dir):
        stem = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
        if path.stem.endswith("_overlay"):
            continue
        preds[stem] = np.asarray(read_image(path))
    if not preds:
        raise CommandError(f"no label images in {args.pred_dir}")
    gt = find_ground_truth(args.gt_dir, sorted(preds))
    scores = score_labels(preds, gt)
    print(f"evaluate: {len(gt)} images with ground truth")
    _print_scores("prediction", scores)
    return 0


def _print_scores(name: str, s: dict) -> None:
    print(f"  {name:<22} pixel IoU {s['pixel_iou']:.3f}  Dice {s['pixel_dice']:.3f}  "
          f"object P {s['object_precision']:.3f}  R {s['object_recall']:.3f}  F1 {s['object_f1']:.3f}")


def _stage_progress():
    bars: dict[str, object] = {}

    def report(stage: str, done: int, total: int, message: str = "") -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = _bar(total, stage, unit="step" if stage.startswith("train") else "image")
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if total and done >= total:
            bar.close()

    return report, bars


_AUGMENT_HELP = ("average the network's answers over the 8 flips and transposes of each image "
                 "(test-time augmentation): fewer specks, 8 times slower prediction")


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline

    budget = _budget(args)
    if "epochs" in budget:
        raise CommandError("`synthseg run` takes --minutes or --steps")
    if args.real_fraction is not None and not 0.0 <= args.real_fraction <= 1.0:
        raise CommandError(f"--real-fraction must be between 0 and 1, got {args.real_fraction}")
    report, bars = _stage_progress()
    t0 = time.perf_counter()
    summary = run_pipeline(
        args.images, args.out, rounds=args.rounds, model_out=args.model_out, gt_dir=args.gt_dir,
        autoseg_params=_autoseg_params(args), seed=args.seed, progress=report,
        train_params=dict(base_filters=args.base_filters, depth=args.depth, real_fraction=args.real_fraction,
                          normalization=args.normalization, lr_schedule=args.lr_schedule, xla=args.xla),
        object_size=args.object_size, predict_params=_run_predict_params(args), recipe=args.recipe,
        notify=print, **budget,
    )
    for bar in bars.values():
        bar.close()
    _print_summary(summary, time.perf_counter() - t0)
    return 0


def _print_summary(summary, seconds: float) -> None:
    print(f"run: {len(summary.images)} images, bank {summary.bank_path}, "
          f"{len(summary.rounds)} round(s) in {seconds:.0f} s; outputs in {summary.out_dir}")
    if summary.baseline_scores:
        _print_scores("auto-segmentation", summary.baseline_scores)
    for r in summary.rounds:
        if r.scores:
            _print_scores(f"model round {r.round}", r.scores)
    if summary.stopped_because:
        print(f"  stopped: {summary.stopped_because}; best round {summary.best_round}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline
    from .sample_data import write_sample_folder

    out = Path(args.out)
    images_dir, masks_dir = write_sample_folder(out / "sample", n=args.n, seed=args.seed)
    print(f"demo: {args.n} sample images with ground truth in {images_dir.parent}")
    report, bars = _stage_progress()
    t0 = time.perf_counter()
    summary = run_pipeline(images_dir, out, minutes=args.minutes, rounds=args.rounds, gt_dir=masks_dir,
                           seed=args.seed, progress=report)
    for bar in bars.values():
        bar.close()
    _print_summary(summary, time.perf_counter() - t0)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthseg",
        description="Segment EM images without hand-drawn masks: auto-segment, object bank, synthetic "
                    "scenes, U-Net training, full-resolution segmentation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("autoseg", help="classical segmentation of images; fills an object bank")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--bank", required=True, help="object bank folder (created if missing)")
    p.add_argument("--labels-out", help="write <stem>_labels.tif here")
    _add_autoseg_options(p)
    _add_batch_options(p)
    p.set_defaults(func=cmd_autoseg)

    p = sub.add_parser("synth", help="write synthetic training scenes from a bank")
    p.add_argument("--bank", required=True)
    p.add_argument("--backgrounds", nargs="+", default=[], metavar="IMAGES_OR_DIRS",
                   help="real images whose background the scenes imitate")
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, required=True, help="number of scenes")
    p.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a U-Net on scenes streamed from a bank")
    p.add_argument("--bank", required=True)
    p.add_argument("--backgrounds", nargs="+", required=True, metavar="IMAGES_OR_DIRS")
    p.add_argument("--model-out", required=True, help="model file (.keras)")
    _add_train_options(p, epochs=True)
    p.add_argument("--resume", action="store_true", help="continue training the model at --model-out")
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment images at full resolution with a trained model")
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--out", required=True)
    p.add_argument("--tile", type=int, default=1024, help="network tile in pixels [1024]")
    p.add_argument("--batch-size", type=int, default=2, help="tiles per network call [2]")
    p.add_argument("--min-area", type=int, default=30, help="smallest object in pixels [30]")
    p.add_argument("--min-confidence", type=float, default=0.8,
                   help="drop objects whose mean foreground probability is lower (0 keeps all) [0.8]")
    p.add_argument("--augment", action="store_true", help=_AUGMENT_HELP)
    p.add_argument("--ignore-box", type=_ignore_box, default="auto",
                   help="region where no object is kept: 'auto' (detect the scale bar), 'none', or Y0,Y1,X0,X1 [auto]")
    p.add_argument("--no-overlay", action="store_true")
    _add_batch_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score label images against ground-truth masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run", help="the whole job: autoseg, bank, train, segment, (score)")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--out", required=True)
    p.add_argument("--model-out", default=None)
    p.add_argument("--gt-dir", default=None, help="masks with the images' stems: print scores")
    p.add_argument("--rounds", type=int, default=1, help="self-training rounds (stops early when one no longer helps)")
    p.add_argument("--object-size", type=float, default=None, metavar="PX",
                   help="shrink each image so its typical object is about PX pixels across before training "
                        "and prediction (outputs stay full resolution); default: images as they are")
    p.add_argument("--recipe", default="auto", choices=RECIPE_CHOICES,
                   help="training recipe: synthetic (synthetic scenes only), mixed (anchored inputs, half "
                        "real crops labelled by the auto-segmentation), or auto: decided from the images "
                        "(mixed when their contrasts disagree) [auto]")
    p.add_argument("--real-fraction", type=float, default=None,
                   help="share of each training batch cropped from the real images, labelled by the "
                        "auto-segmentation (0: synthetic scenes only) [the recipe's: 0 or 0.5]")
    p.add_argument("--normalization", default=None, choices=["anchored", "percentile"],
                   help="network input scaling: percentile (each image's 1-99.8 %% range) or anchored "
                        "(background and objects at fixed levels, dark objects inverted) [the recipe's]")
    p.add_argument("--augment", action="store_true", help=_AUGMENT_HELP)
    _add_train_options(p, epochs=False)
    _add_autoseg_options(p, method_default=None)  # no --method: the recipe's
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the whole job on built-in sample data with ground truth")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("-n", type=int, default=4, help="number of sample images")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def _add_train_options(p: argparse.ArgumentParser, *, epochs: bool) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--minutes", type=float, default=None, help="training budget in minutes")
    g.add_argument("--steps", type=int, default=None, help="training budget in steps")
    if epochs:
        g.add_argument("--epochs", type=int, default=None, help="training budget in epochs")
    g.add_argument("--base-filters", type=int, default=DEFAULT_BASE_FILTERS,
                   help=f"U-Net filters at full resolution [{DEFAULT_BASE_FILTERS}]")
    g.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help=f"U-Net poolings [{DEFAULT_DEPTH}]")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULT_LR_SCHEDULE,
                   help=f"learning rate over the budget: cosine falls to {LR_FLOOR * 100:g} %% of it by the end "
                        f"[{DEFAULT_LR_SCHEDULE}]")
    g.add_argument("--xla", choices=XLA_CHOICES, default="auto",
                   help="compile the training step with XLA (TensorFlow); auto: on for budgets of at least "
                        f"{XLA_MIN_STEPS} steps or 1 minute [auto]")
    g.add_argument("--seed", type=int, default=0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synthseg``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, ImageReadError, ValueError, FileExistsError) as exc:
        print(f"synthseg {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"synthseg {args.command}: interrupted; files already written are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
