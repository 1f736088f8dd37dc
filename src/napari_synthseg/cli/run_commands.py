"""``synthseg run`` (the whole job on a folder) and ``synthseg demo`` (the same on built-in sample data)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..largeimage.batch import DEFAULT_IN_MEMORY_PIXELS
from ..model import REAL_CLUMPS, PredictionParams, TrainingParams
from ..normalize import DEFAULT_PERCENTILES
from ..pipeline import run_pipeline
from ..recipe import RECIPE_CHOICES, RECIPES
from ..sample_data import write_sample_folder
from .checks import (
    EXIT_INTERRUPTED,
    CommandError,
    _check,
    _check_backend,
    _check_labels_free,
    _check_model_out,
    _check_out_dir,
    _check_seed,
)
from .options import (
    _AUGMENT_HELP,
    _KEEP_OVERLAYS_PREDICT_HELP,
    _MAX_SHRINK_HELP,
    _add_autoseg_options,
    _add_pixel_size_option,
    _add_train_options,
    _autoseg_params,
    _budget,
    _check_autoseg_options,
    _check_budget_values,
    _check_max_shrink,
    _check_train_options,
    _pixel_size_option,
    core_default,
)
from .predict_commands import _print_scores
from .progress import _model_state, _stage_progress, _stop_on_ctrl_c, _where_model

#: ``synthseg demo``'s training budget and output folder: a first look in a few minutes. Steps, not minutes, so that
#: a slow machine shows the same model as a fast one (450 beat the auto-segmentation's object F1: docs/benchmarks.md).
DEMO_STEPS = 450
DEMO_OUT = "out/demo"


def add_run_parser(sub) -> None:
    rounds, recipe = core_default(run_pipeline, "rounds"), core_default(run_pipeline, "recipe")
    p = sub.add_parser("run", help="the whole job: autoseg, bank, train, segment, (score)")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--out", required=True)
    p.add_argument("--model-out", default=None)
    p.add_argument("--gt-dir", default=None, help="masks with the images' stems: print scores")
    p.add_argument("--rounds", type=int, default=rounds,
                   help=f"self-training rounds (stops early when one no longer helps) [{rounds}]")
    p.add_argument("--object-size", type=float, default=None, metavar="PX",
                   help="shrink each image so its typical object is about PX pixels across before training "
                        "and prediction (outputs stay full resolution; a shrunk image is not shrunk again by "
                        "--max-shrink); default: images as they are")
    p.add_argument("--recipe", default=recipe, choices=RECIPE_CHOICES,
                   help="training recipe: synthetic (synthetic scenes only), mixed (anchored inputs, half "
                        "real crops labelled by the auto-segmentation), or auto: decided from the images "
                        f"(synthetic when the images share one contrast and a threshold misses many of their "
                        f"objects, else mixed) [{recipe}]")
    shares = " or ".join(f"{r['train']['real_fraction']:g}" for r in RECIPES.values())
    low, high = DEFAULT_PERCENTILES
    p.add_argument("--real-fraction", type=float, default=None,
                   help="share of each training batch cropped from the real images, labelled by the "
                        f"auto-segmentation (0: synthetic scenes only) [the recipe's: {shares}]")
    p.add_argument("--real-clumps", default=None, choices=list(REAL_CLUMPS),
                   help="what a real crop teaches inside an object whose shape says several particles: outline "
                        "(only its outline; the scenes teach where touching particles meet) or labels (one "
                        f"particle, as labelled) [{TrainingParams.real_clumps}]")
    p.add_argument("--normalization", default=None, choices=["anchored", "percentile"],
                   help=f"network input scaling: percentile (each image's {low:g}-{high:g} %% range) or anchored "
                        "(background and objects at fixed levels, dark objects inverted) [the recipe's]")
    p.add_argument("--augment", action="store_true", default=PredictionParams.augment, help=_AUGMENT_HELP)
    p.add_argument("--max-shrink", type=float, default=PredictionParams.max_shrink, metavar="F",
                   help=f"{_MAX_SHRINK_HELP} [{PredictionParams.max_shrink:g}]")
    p.add_argument("--keep-overlays", action="store_true", default=not PredictionParams.drop_overlays,
                   help=_KEEP_OVERLAYS_PREDICT_HELP)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model and <stem>_labels.tif in --out [refuse]")
    p.add_argument("--in-memory-pixels", type=int, default=DEFAULT_IN_MEMORY_PIXELS, metavar="N",
                   help="the largest image plane the run reads whole (it holds about 64 bytes a pixel); a "
                        "larger one is refused: segment it with synthseg predict, which tiles it "
                        f"[{DEFAULT_IN_MEMORY_PIXELS}]")
    _add_pixel_size_option(p)
    _add_train_options(p, epochs=False)
    # no --method: the recipe's; --keep-overlays above keeps them in the auto-segmentation and the labels alike
    _add_autoseg_options(p, method_default=None, keep_overlays=False)
    p.set_defaults(func=cmd_run)


def add_demo_parser(sub) -> None:
    n, seed = core_default(write_sample_folder, "n"), core_default(write_sample_folder, "seed")
    rounds = core_default(run_pipeline, "rounds")
    p = sub.add_parser("demo", help="run the whole job on built-in sample data with ground truth")
    p.add_argument("--out", default=DEMO_OUT, help=f"output folder [{DEMO_OUT}]")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=DEMO_STEPS,
                        help=f"training budget in steps (about 3 minutes on a 2-core CPU) [{DEMO_STEPS}]")
    budget.add_argument("--minutes", type=float, default=None, help="training budget in minutes instead of steps")
    p.add_argument("--rounds", type=int, default=rounds, help=f"self-training rounds [{rounds}]")
    p.add_argument("-n", type=int, default=n, help=f"number of sample images [{n}]")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed of the sample images [{seed}]")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's model and labels in --out")
    p.set_defaults(func=cmd_demo)


def _run_predict_params(args: argparse.Namespace) -> dict | None:
    """Prediction options `synthseg run` was given: flips, drawn overlays kept, and the autoseg's --ignore-box
    when not auto."""
    params = {"augment": True} if args.augment else {}
    if args.keep_overlays:
        params["drop_overlays"] = False
    if args.ignore_box != PredictionParams.ignore_box:
        params["ignore_box"] = args.ignore_box
    if args.max_shrink != PredictionParams.max_shrink:
        params["max_shrink"] = args.max_shrink
    return params or None


def _check_run_outputs(images: list[Path], out: Path, model_out: Path, overwrite: bool) -> None:
    _check_out_dir(out, "--out")
    _check_model_out(model_out, "--model-out", overwrite=overwrite)
    _check_labels_free(out, [p.stem for p in images], overwrite, "--out")


def _pipeline(args: argparse.Namespace, images: list[Path], out: Path, model_out: Path, **kwargs) -> int:
    report, bars = _stage_progress()
    t0 = time.perf_counter()
    before = _model_state(model_out)
    try:
        with _stop_on_ctrl_c(args.cancel, "the run after this step; the best model so far is kept"):
            summary = run_pipeline(images, out, model_out=model_out, seed=args.seed, progress=report,
                                   cancel_event=args.cancel, notify=print, **kwargs)
    except KeyboardInterrupt:
        args.interrupted_note = _where_model(model_out, before)
        raise
    finally:
        for bar in bars.values():
            bar.close()
    _print_summary(summary, time.perf_counter() - t0)
    if summary.interrupted:
        where = (f"the best model so far is in {summary.model_path}" if summary.model_path
                 else "no model was saved")
        print(f"run: {summary.stopped_because}; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _check_run_options(args: argparse.Namespace) -> dict:
    """``synthseg run``'s options, checked before any work; the budget as ``run_pipeline`` keywords."""
    budget = _budget(args)
    if "epochs" in budget:
        raise CommandError("`synthseg run` takes --minutes or --steps")
    if args.real_fraction is not None and not 0.0 <= args.real_fraction <= 1.0:
        raise CommandError(f"--real-fraction must be between 0 and 1, got {args.real_fraction}")
    _check_train_options(args)
    _check_autoseg_options(args)
    _check(args.rounds >= 1, f"--rounds must be at least 1, got {args.rounds}")
    return budget


def cmd_run(args: argparse.Namespace) -> int:
    from ..image_io import list_images
    from ..largeimage import split_own_outputs

    args.interrupted_note = "before training started; no model was saved"
    budget = _check_run_options(args)
    pixel_size = _pixel_size_option(args)
    _check(args.object_size is None or (np.isfinite(args.object_size) and args.object_size > 0),
           f"--object-size must be a number of pixels > 0, got {args.object_size}")
    _check_max_shrink(args)
    _check(args.in_memory_pixels >= 1, f"--in-memory-pixels must be at least 1, got {args.in_memory_pixels}")
    out = Path(args.out)
    images, own = split_own_outputs(list_images(args.images), out)
    if own:
        print(f"note: {len(own)} file(s) in {out} are outputs of an earlier run; they are not segmented",
              file=sys.stderr)
    _check(bool(images), f"no images left in {', '.join(args.images)}; only earlier outputs were found")
    model_out = Path(args.model_out) if args.model_out else out / "model.keras"
    _check_run_outputs(images, out, model_out, args.overwrite)
    _check_backend()
    return _pipeline(args, images, out, model_out, rounds=args.rounds, gt_dir=args.gt_dir,
                     autoseg_params=_autoseg_params(args),
                     train_params=dict(base_filters=args.base_filters, depth=args.depth,
                                       real_fraction=args.real_fraction, normalization=args.normalization,
                                       real_clumps=args.real_clumps,
                                       lr_schedule=args.lr_schedule, xla=args.xla),
                     object_size=args.object_size, predict_params=_run_predict_params(args),
                     recipe=args.recipe, pixel_size=pixel_size, in_memory_pixels=args.in_memory_pixels, **budget)


def _print_summary(summary, seconds: float) -> None:
    if summary.bank_left_out:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.bank_left_out.items()))
        print(f"bank: left out by shape: {reasons}")
    print(f"run: {len(summary.images)} images, bank {summary.bank_path}, "
          f"{len(summary.rounds)} round(s) in {seconds:.0f} s; outputs in {summary.out_dir}")
    if summary.baseline_scores:
        scored = int(summary.baseline_scores.get("n_images", 0))
        if scored < len(summary.images):  # masks for only some images: say so, the figures are theirs
            print(f"  scores on the {scored} of {len(summary.images)} images that have a mask in --gt-dir")
        _print_scores("auto-segmentation", summary.baseline_scores)
    for r in summary.rounds:
        if r.scores:
            _print_scores(f"model round {r.round}", r.scores)
    if summary.stopped_because and not summary.interrupted:
        print(f"  stopped: {summary.stopped_because}; best round {summary.best_round}")
    best = next((r for r in summary.rounds if r.round == summary.best_round), None)
    if best is not None and best.views:
        from ..model.views import describe_views

        print(f"  views: {describe_views(best.views)} (summary.json: rounds[].views)")


def cmd_demo(args: argparse.Namespace) -> int:
    args.interrupted_note = "before training started; no model was saved"
    _check(args.n >= 1, f"-n must be at least 1, got {args.n}")
    if args.minutes is not None:
        args.steps = None  # --minutes replaces the default steps (argparse refuses both typed)
    _check_budget_values(args)
    _check(args.rounds >= 1, f"--rounds must be at least 1, got {args.rounds}")
    _check_seed(args)
    out = Path(args.out)
    stems = [f"sample_{args.seed + i:04d}" for i in range(args.n)]  # write_sample_folder's names
    _check_run_outputs([Path(f"{stem}.png") for stem in stems], out, out / "model.keras", args.overwrite)
    _check_backend()
    images_dir, masks_dir = write_sample_folder(out / "sample", n=args.n, seed=args.seed)
    print(f"demo: {args.n} sample images with ground truth in {images_dir.parent}")
    from ..image_io import list_images

    return _pipeline(args, list_images(images_dir), out, out / "model.keras", rounds=args.rounds, gt_dir=masks_dir,
                     **_budget(args))
