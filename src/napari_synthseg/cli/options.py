"""Option groups several commands share (auto-segmentation, training, pixel size), with their checks.

Every default is read from where the library defines it (the parameter objects ``AutosegParams``,
``SceneParams``, ``TrainingParams`` and ``PredictionParams``, the signatures of the functions the commands
call), never typed again here.
"""

from __future__ import annotations

import argparse
import inspect

import numpy as np

from ..autoseg import METHODS as AUTOSEG_METHODS
from ..autoseg import AutosegParams
from ..model import LR_FLOOR, LR_SCHEDULES, XLA_CHOICES, XLA_MIN_STEPS, TrainingParams
from ..model.params import MAX_DEPTH
from ..pipeline import run_pipeline
from .checks import CommandError, _check, _check_box, _check_seed


def core_default(function, name: str):
    """The default of ``function``'s parameter ``name``: the command line shows and uses the library's own."""
    return inspect.signature(function).parameters[name].default


#: The seed of the commands that make scenes or train (``synth``, ``train``, ``run``): the pipeline's
#: (``tests/test_cli_defaults.py`` holds it equal to ``TrainingParams.seed``).
DEFAULT_SEED = core_default(run_pipeline, "seed")

_PIXEL_SIZE_HELP = ("pixel size with its unit, e.g. 2.5nm or 0.01um, for every image: overrides what the files "
                    "carry (TIFF tags, DM3/DM4, MRC, EMD, SER) [read from each file]")


def _add_pixel_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pixel-size", default=None, metavar="SIZE", help=_PIXEL_SIZE_HELP)


def _pixel_size_option(args: argparse.Namespace):
    """The ``--pixel-size`` override as a PixelSize (``--unit`` names the unit of a bare number), or None."""
    from ..pixel_size import PixelSizeError, parse_pixel_size

    unit = getattr(args, "unit", None)
    if args.pixel_size is None:
        _check(unit is None, "--unit names the unit of --pixel-size; give --pixel-size too")
        return None
    try:
        return parse_pixel_size(args.pixel_size, default_unit=unit)
    except PixelSizeError as exc:
        raise CommandError(f"--pixel-size: {exc}" + (" (or give --unit)" if "has no unit" in str(exc) else "")) \
            from None


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


def _add_autoseg_options(p: argparse.ArgumentParser, method_default: str | None = AutosegParams.method, *,
                         keep_overlays: bool = True) -> None:
    """The auto-segmentation options; ``keep_overlays=False`` when the command has its own --keep-overlays."""
    defaults = AutosegParams()  # each default is defined there, once
    g = p.add_argument_group("auto-segmentation")
    g.add_argument("--method", default=method_default,
                   choices=AUTOSEG_METHODS,
                   help="thresholding method (contours: the reference's enclosed-by-dark-contours; "
                        "combined: contours and threshold together; edge: Otsu or a 3-class Otsu level, "
                        "whichever follows the strongest edges) "
                        f"[{method_default or 'the recipe' + chr(39) + 's: otsu or edge'}]")
    g.add_argument("--threshold", type=float, default=defaults.threshold, help="threshold value for --method manual")
    g.add_argument("--polarity", default=defaults.polarity, choices=["auto", "bright", "dark"],
                   help=f"objects brighter or darker than the background, or decided per image [{defaults.polarity}]")
    g.add_argument("--sigma", type=float, default=defaults.sigma,
                   help=f"Gaussian smoothing in pixels [{defaults.sigma:g}]")
    g.add_argument("--min-area", type=int, default=defaults.min_area,
                   help=f"smallest object in pixels [{defaults.min_area}]")
    g.add_argument("--max-area", type=int, default=defaults.max_area, help="largest object in pixels [none]")
    g.add_argument("--no-fill-holes", dest="fill_holes", action="store_false", default=defaults.fill_holes,
                   help="keep holes in objects")
    g.add_argument("--clear-border", action="store_true", default=defaults.clear_border,
                   help="drop objects touching the image border")
    g.add_argument("--no-split", dest="split_touching", action="store_false", default=defaults.split_touching,
                   help="do not split touching objects at necks")
    g.add_argument("--ignore-box", type=_ignore_box, default=defaults.ignore_box,
                   help="region where no object is segmented: 'auto' (detect the scale bar), 'none', "
                        f"or Y0,Y1,X0,X1 [{defaults.ignore_box}]")
    if keep_overlays:
        g.add_argument("--keep-overlays", action="store_true", default=not defaults.drop_overlays,
                       help=_KEEP_OVERLAYS_HELP)


def _autoseg_params(args: argparse.Namespace) -> dict:
    return dict(method=args.method, threshold=args.threshold, polarity=args.polarity, sigma=args.sigma,
                min_area=args.min_area, max_area=args.max_area, fill_holes=args.fill_holes,
                clear_border=args.clear_border, split_touching=args.split_touching,
                ignore_box=args.ignore_box, drop_overlays=not args.keep_overlays)


def _check_autoseg_options(args: argparse.Namespace) -> None:
    """The auto-segmentation options, checked before any work (autoseg's own checks, named as options)."""
    _check(args.method != "manual" or args.threshold is not None,
           "--method manual needs --threshold VALUE (an intensity in the image's units)")
    _check(args.sigma >= 0, f"--sigma must be >= 0 (0 = no smoothing), got {args.sigma:g}")
    _check(args.min_area >= 0, f"--min-area must be >= 0 pixels, got {args.min_area}")
    _check(args.max_area is None or args.max_area >= max(args.min_area, 1),
           f"--max-area must be at least --min-area ({args.min_area}) and > 0, got {args.max_area}")
    _check(args.threshold is None or np.isfinite(args.threshold), "--threshold must be a finite number")
    _check_box(args.ignore_box)


def _add_train_options(p: argparse.ArgumentParser, *, epochs: bool) -> None:
    """The training budget, network and schedule, at ``TrainingParams``' defaults."""
    defaults = TrainingParams()  # each default is defined there, once
    g = p.add_argument_group("training")
    g.add_argument("--minutes", type=float, default=None, help="training budget in minutes")
    g.add_argument("--steps", type=int, default=None, help="training budget in steps")
    if epochs:
        g.add_argument("--epochs", type=int, default=None,
                       help=f"training budget in epochs ({defaults.steps_per_epoch} steps each)")
    g.add_argument("--base-filters", type=int, default=defaults.base_filters,
                   help=f"U-Net filters at full resolution [{defaults.base_filters}]")
    g.add_argument("--depth", type=int, default=defaults.depth, help=f"U-Net poolings, 1 to {MAX_DEPTH} "
                                                                     f"[{defaults.depth}]")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                   help=f"learning rate over the budget: cosine falls to {LR_FLOOR * 100:g} %% of it by the end "
                        f"[{defaults.lr_schedule}]")
    g.add_argument("--xla", choices=XLA_CHOICES, default=defaults.xla,
                   help="compile the training step with XLA (TensorFlow); auto: on for budgets of at least "
                        f"{XLA_MIN_STEPS} steps or 1 minute [{defaults.xla}]")
    g.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed [{DEFAULT_SEED}]")


def _check_train_options(args: argparse.Namespace) -> None:
    _check(args.base_filters >= 1, f"--base-filters must be at least 1, got {args.base_filters}")
    _check(1 <= args.depth <= MAX_DEPTH, f"--depth must be from 1 to {MAX_DEPTH}, got {args.depth}")
    _check_budget_values(args)
    _check_seed(args)


def _check_budget_values(args: argparse.Namespace) -> None:
    """--steps and --epochs at least 1, --minutes a number > 0, where given."""
    for name in ("steps", "epochs"):
        value = getattr(args, name, None)
        _check(value is None or value >= 1, f"--{name} must be at least 1, got {value}")
    _check(args.minutes is None or (np.isfinite(args.minutes) and args.minutes > 0),
           f"--minutes must be a number > 0, got {args.minutes}")


def _budget(args: argparse.Namespace) -> dict:
    given = {k: getattr(args, k) for k in ("steps", "minutes", "epochs") if getattr(args, k, None) is not None}
    if len(given) != 1:
        raise CommandError("give exactly one training budget: --steps, --minutes or --epochs")
    return given


_KEEP_OVERLAYS_HELP = ("keep objects drawn on the image (noise-free and shaped like a bar or a box, or glyphs of "
                       "a line of text: scale bars, lettering), which are left out by default")
_KEEP_OVERLAYS_PREDICT_HELP = (_KEEP_OVERLAYS_HELP + "; also keeps the support, a region over three tenths of the "
                               "image with no gray step across its outline (a carbon film, a matrix), as the network "
                               "called it, instead of the particles found on it")
_MAX_SHRINK_HELP = ("segment each image also shrunk by halves, down to 1/F of its size, and keep the view whose "
                    "foreground the network is most confident about, brought back to full resolution: the "
                    "network sees about a hundred pixels around each pixel, too few inside a large particle; "
                    "particles wider than that are filled, or taken whole, from the smaller views (1: never shrink)")


def _check_max_shrink(args: argparse.Namespace) -> None:
    value = args.max_shrink
    _check(np.isfinite(value) and value >= 1, f"--max-shrink must be a number >= 1 (1: never shrink), got {value:g}")


_AUGMENT_HELP = ("average the network's answers over the 8 flips and transposes of each image "
                 "(test-time augmentation): fewer specks, 8 times slower prediction")
