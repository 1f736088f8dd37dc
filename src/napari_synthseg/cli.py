"""The ``synthseg`` command line: batch and headless work over the same core as the widgets."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .autoseg import METHODS as AUTOSEG_METHODS
from .autoseg import AutosegParams
from .instances import DEFAULT_MIN_AREA
from .largeimage import DEFAULT_BLOCK, DEFAULT_HALO, DEFAULT_IN_MEMORY_PIXELS
from .model import (
    DEFAULT_BASE_FILTERS,
    DEFAULT_BATCH,
    DEFAULT_DEPTH,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_TILE,
    LR_FLOOR,
    LR_SCHEDULES,
    XLA_CHOICES,
    XLA_MIN_STEPS,
)
from .recipe import RECIPE_CHOICES
from .retraining import DEFAULT_CURATED_FRACTION

#: Exit statuses: some files failed (the others are done), bad usage or input (nothing was
#: done), interrupted (Ctrl-C; what was finished is kept).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem with the user's input, reported as one line and a non-zero exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (the usage itself is in --help)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CommandError(message)


_PIXEL_SIZE_HELP = ("pixel size with its unit, e.g. 2.5nm or 0.01um, for every image: overrides what the files "
                    "carry (TIFF tags, DM3/DM4, MRC, EMD, SER) [read from each file]")


def _add_pixel_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pixel-size", default=None, metavar="SIZE", help=_PIXEL_SIZE_HELP)


def _pixel_size_option(args: argparse.Namespace):
    """The ``--pixel-size`` override as a PixelSize (``--unit`` names the unit of a bare number), or None."""
    from .pixel_size import PixelSizeError, parse_pixel_size

    unit = getattr(args, "unit", None)
    if args.pixel_size is None:
        _check(unit is None, "--unit names the unit of --pixel-size; give --pixel-size too")
        return None
    try:
        return parse_pixel_size(args.pixel_size, default_unit=unit)
    except PixelSizeError as exc:
        raise CommandError(f"--pixel-size: {exc}" + (" (or give --unit)" if "has no unit" in str(exc) else "")) \
            from None


def _check_seed(args: argparse.Namespace) -> None:
    seed = getattr(args, "seed", None)
    _check(seed is None or 0 <= seed < 2**32, f"--seed must be an integer from 0 to {2**32 - 1}, got {seed}")


def _check_box(box) -> None:
    if isinstance(box, tuple):
        y0, y1, x0, x1 = box
        _check(0 <= y0 < y1 and 0 <= x0 < x1,
               f"--ignore-box Y0,Y1,X0,X1 needs 0 <= Y0 < Y1 and 0 <= X0 < X1, got {','.join(map(str, box))}")


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


def _check_batch_options(args: argparse.Namespace) -> None:
    args.pixel_size_override = _pixel_size_option(args)
    _check(args.chunk >= 16, f"--chunk must be at least 16 pixels, got {args.chunk}")
    _check(args.halo >= 1, f"--halo must be at least 1 pixel, got {args.halo}")
    _check(args.in_memory_pixels >= 1, f"--in-memory-pixels must be at least 1, got {args.in_memory_pixels}")


def _check_train_options(args: argparse.Namespace) -> None:
    _check(args.base_filters >= 1, f"--base-filters must be at least 1, got {args.base_filters}")
    _check(1 <= args.depth <= 8, f"--depth must be from 1 to 8, got {args.depth}")
    for name in ("steps", "epochs"):
        value = getattr(args, name, None)
        _check(value is None or value >= 1, f"--{name} must be at least 1, got {value}")
    _check(args.minutes is None or (np.isfinite(args.minutes) and args.minutes > 0),
           f"--minutes must be a number > 0, got {args.minutes}")
    _check_seed(args)


def _check_backend() -> None:
    from .backend import missing_backend_message

    message = missing_backend_message()
    if message:
        raise CommandError(message)


def _check_out_dir(path: str | os.PathLike, option: str) -> Path:
    """An output folder that exists or can be made, and can be written; nothing is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path} is a file; give a folder (existing or new)")
    _check_writable(path, option)
    return path


def _check_writable(path: Path, option: str) -> None:
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise CommandError(f"{option} {path}: {existing} is a file, not a folder; choose another path")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path}: cannot write in {existing} (permission denied); choose a folder of yours")


def _check_model_out(path: str | os.PathLike, option: str, *, overwrite: bool, resume: bool | None = None) -> Path:
    """A model file that may be written: a .keras name, no folder in the way, nothing replaced unasked.

    ``resume`` None: the command cannot resume; True: the model must exist.
    """
    path = Path(path)
    _check(path.suffix == ".keras", f"{option} must end in .keras (Keras 3 format), got {path.name}")
    if path.is_dir():
        raise CommandError(f"{option} {path} is a folder; give a model file name ending in .keras")
    if path.with_suffix(".json").is_dir():
        raise CommandError(f"{option} {path}: the folder {path.with_suffix('.json')} is where its sidecar goes; "
                           "choose another name")
    if resume:
        _check(path.is_file(), f"--resume: there is no model at {path} to continue; train without --resume first")
    elif path.exists() and not overwrite:
        also = ", --resume to continue training it," if resume is not None else ""
        raise CommandError(f"{option} {path} exists; pass --overwrite to replace it{also} or choose another name")
    _check_writable(path.parent, option)
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandError(f"{option} {path} is read-only; choose another name")
    return path


def _check_labels_free(out: Path, stems: Sequence[str], overwrite: bool, option: str) -> None:
    """Refuse to replace existing label files unless --overwrite."""
    if overwrite:
        return
    taken = [f"{stem}_labels.tif" for stem in stems if (out / f"{stem}_labels.tif").exists()]
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise CommandError(f"{shown} already exist{'s' if len(taken) == 1 else ''} in {option} {out}; pass "
                           "--overwrite to replace them or choose another folder")


@contextmanager
def _stop_on_ctrl_c(event: threading.Event, what: str):
    """The first Ctrl-C sets ``event`` (the work stops at its next check, keeping what it has);
    a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print(f"\nsynthseg: stopping {what} (press Ctrl-C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _add_autoseg_options(p: argparse.ArgumentParser, method_default: str | None = AutosegParams.method) -> None:
    defaults = AutosegParams()  # each default is defined there, once
    g = p.add_argument_group("auto-segmentation")
    g.add_argument("--method", default=method_default,
                   choices=AUTOSEG_METHODS,
                   help="thresholding method (contours: the reference's enclosed-by-dark-contours; "
                        "combined: contours and threshold together; edge: Otsu or a 3-class Otsu level, "
                        "whichever follows the strongest edges) "
                        f"[{method_default or 'the recipe' + chr(39) + 's: otsu or edge'}]")
    g.add_argument("--threshold", type=float, default=None, help="threshold value for --method manual")
    g.add_argument("--polarity", default=defaults.polarity, choices=["auto", "bright", "dark"],
                   help=f"objects brighter or darker than the background, or decided per image [{defaults.polarity}]")
    g.add_argument("--sigma", type=float, default=defaults.sigma,
                   help=f"Gaussian smoothing in pixels [{defaults.sigma:g}]")
    g.add_argument("--min-area", type=int, default=defaults.min_area,
                   help=f"smallest object in pixels [{defaults.min_area}]")
    g.add_argument("--max-area", type=int, default=defaults.max_area, help="largest object in pixels [none]")
    g.add_argument("--no-fill-holes", dest="fill_holes", action="store_false", help="keep holes in objects")
    g.add_argument("--clear-border", action="store_true", help="drop objects touching the image border")
    g.add_argument("--no-split", dest="split_touching", action="store_false",
                   help="do not split touching objects at necks")
    g.add_argument("--ignore-box", type=_ignore_box, default=defaults.ignore_box,
                   help="region where no object is segmented: 'auto' (detect the scale bar), 'none', "
                        "or Y0,Y1,X0,X1 [auto]")


def _autoseg_params(args: argparse.Namespace) -> dict:
    return dict(method=args.method, threshold=args.threshold, polarity=args.polarity, sigma=args.sigma,
                min_area=args.min_area, max_area=args.max_area, fill_holes=args.fill_holes,
                clear_border=args.clear_border, split_touching=args.split_touching,
                ignore_box=args.ignore_box)


def _check_bank_target(path: str) -> Path:
    """A bank folder autoseg may fill: an existing bank, a missing or empty folder (checked, not made)."""
    from .bank import LOCK_NAME, ObjectBank

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"--bank {path} is a file, not an object bank folder; choose an empty folder or a bank")
    if path.is_dir() and not ObjectBank.is_bank(path) and any(e.name != LOCK_NAME for e in path.iterdir()):
        raise CommandError(f"--bank {path} is not empty and is not an object bank; choose an empty folder or a bank")
    _check_writable(path, "--bank")
    return path


def _open_bank(path: str, *, create: bool = True):
    from .bank import NotABankError, ObjectBank

    if not create and not Path(path).exists():
        raise CommandError(f"--bank {path} does not exist; check the path, or fill a bank with "
                           f"`synthseg autoseg IMAGES --bank {path}`")
    try:
        return ObjectBank(path, create=create)
    except NotABankError as exc:
        if not create:
            raise CommandError(f"--bank {path} is not an object bank; check the path, or fill a bank with "
                               f"`synthseg autoseg IMAGES --bank {path}`") from exc
        raise CommandError(str(exc)) from exc


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large images and batches")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address (tcp://HOST:PORT); default: local threads")
    g.add_argument("--zarr-out", action="store_true", help="write <stem>_labels.zarr instead of TIFF")
    g.add_argument("--chunk", type=int, default=DEFAULT_BLOCK,
                   help=f"tile size for images over the in-memory limit [{DEFAULT_BLOCK}]")
    g.add_argument("--halo", type=int, default=DEFAULT_HALO, help=f"tile overlap in pixels [{DEFAULT_HALO}]")
    g.add_argument("--in-memory-pixels", type=int, default=DEFAULT_IN_MEMORY_PIXELS,
                   help=f"images with more pixels are processed lazily tile by tile [{DEFAULT_IN_MEMORY_PIXELS}]")
    g.add_argument("--no-skip-existing", dest="skip_existing", action="store_false",
                   help="redo images whose output is already complete and made with the same settings")
    g.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs made with other settings (or by hand) [refuse]")
    g.add_argument("--pixel-size", default=None, metavar="SIZE", help=_PIXEL_SIZE_HELP + "; the labels carry it")


def _batch_inputs(args: argparse.Namespace, out_dir: Path | None) -> list[Path]:
    """The images to segment: this command's own outputs in ``out_dir`` are left out, with a note."""
    from .largeimage import list_inputs, split_own_outputs

    inputs = list_inputs(args.images)
    if out_dir is not None:
        inputs, own = split_own_outputs(inputs, out_dir)
        if own:
            print(f"note: {len(own)} file(s) in {out_dir} are outputs of an earlier run ({own[0].name}, ...); "
                  "they are not segmented", file=sys.stderr)
    if not inputs:
        raise CommandError(f"no images left to segment in {', '.join(args.images)}; only earlier outputs were found")
    return inputs


def _run_batch(args: argparse.Namespace, inputs, out_dir, segmenter, desc: str, params: dict | None):
    from .largeimage import run_batch

    if args.pixel_size_override is not None and params is not None:  # outputs of another size are not "done"
        params = {**params, "pixel_size": str(args.pixel_size_override)}
    with _bar(len(inputs), desc) as bar:
        def tick(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        report = run_batch(inputs, out_dir, segmenter, scheduler=args.scheduler, zarr_out=args.zarr_out,
                           tile=args.chunk, overlap=args.halo, in_memory_pixels=args.in_memory_pixels,
                           skip_existing=args.skip_existing, progress=tick, params=params,
                           overwrite=args.overwrite, pixel_size=args.pixel_size_override)
    for name, message in sorted(report.failed.items()):
        print(f"failed: {name}: {message.splitlines()[0] if message else 'unknown error'}", file=sys.stderr)
    return report


def cmd_autoseg(args: argparse.Namespace) -> int:
    import tempfile

    from .largeimage import AutosegSegmenter, output_name, read_labels, read_whole

    _check_autoseg_options(args)
    _check_batch_options(args)
    _check_bank_target(args.bank)
    labels_dir = _check_out_dir(args.labels_out, "--labels-out") if args.labels_out else None
    inputs = _batch_inputs(args, labels_dir)
    params = {"command": "autoseg", **_autoseg_params(args)} if labels_dir else None
    with tempfile.TemporaryDirectory(prefix="synthseg-autoseg-") as scratch:
        labels_out = labels_dir or Path(scratch)
        report = _run_batch(args, inputs, labels_out, AutosegSegmenter(_autoseg_params(args)), "autoseg", params)
        bank = _open_bank(args.bank)
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
        return EXIT_FAILED
    return 0 if objects or report.skipped else EXIT_FAILED


def cmd_synth(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image, to_gray, write_png, write_tiff
    from .synthesis import BackgroundSource, synthesize_scene

    _check(args.n >= 1, f"-n must be at least 1, got {args.n}")
    _check(min(args.size) >= 16, f"--size H W must be at least 16 pixels each, got {args.size[0]} {args.size[1]}")
    _check_seed(args)
    out = _check_out_dir(args.out, "--out")
    stems = [f"scene_{args.seed}_{i:05d}" for i in range(args.n)]
    taken = [s for s in stems if (out / "labels" / f"{s}.tif").exists() or (out / "images" / f"{s}.png").exists()]
    if taken and not args.overwrite:
        raise CommandError(f"--out {out} already holds scenes of --seed {args.seed} ({taken[0]}, ...); pass "
                           "--overwrite to replace them, another --seed, or another --out")
    bank = _open_bank(args.bank, create=False)
    if len(bank) == 0:
        raise CommandError(f"bank {bank.path} holds no objects; fill it with `synthseg autoseg` first")
    backgrounds = None
    if args.backgrounds:
        images = [to_gray(read_image(p)) for p in list_images(args.backgrounds)]
        backgrounds = BackgroundSource.from_images(images, rng=np.random.default_rng(args.seed))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    args.interrupted_note = (f"the scenes written to {out} are complete; to make more, run again with another "
                             "--seed (or --overwrite to remake these)")
    rng = np.random.default_rng(args.seed)
    written = 0
    with _bar(args.n, "synth", unit="scene") as bar:
        for stem in stems:
            image, labels = synthesize_scene(bank, tuple(args.size), rng, backgrounds=backgrounds)
            write_tiff(out / "labels" / f"{stem}.tif", labels)
            write_png(out / "images" / f"{stem}.png", (np.clip(image, 0, 1) * 255).astype(np.uint8))
            written += 1
            bar.update()
    print(f"synth: {written} scenes of {args.size[0]}x{args.size[1]} from {len(bank)} objects written to {out}")
    return 0


def _model_state(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _where_model(path: Path, before: tuple | None) -> str:
    """A true sentence about the model file after an interrupted run."""
    now = _model_state(path)
    if now is None:
        return "no model was saved"
    if now == before:
        return f"no model was saved; {path} is as it was"
    return f"the best model so far is in {path}"


def _training_reporter(bar):
    """A ``train_model`` callback that shows the step, loss and validation IoU on a progress bar."""
    def report(p):
        bar.total = p.total_steps or bar.total
        bar.n = p.step
        bar.set_postfix(loss=f"{p.loss:.3f}", val_iou="-" if p.val_iou is None else f"{p.val_iou:.3f}")
        bar.refresh()

    return report


def cmd_train(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image, to_gray

    args.interrupted_note = "before training started; no model was saved"
    budget = _budget(args)
    _check_train_options(args)
    _check(args.patch >= 16 and args.patch % 2**args.depth == 0,
           f"--patch must be at least 16 and a multiple of 2**--depth ({2**args.depth}), got {args.patch}")
    _check(args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}")
    model_out = _check_model_out(args.model_out, "--model-out", overwrite=args.overwrite, resume=args.resume)
    _check_backend()
    bank = _open_bank(args.bank, create=False)
    if len(bank) == 0:
        raise CommandError(f"bank {bank.path} holds no objects; fill it with `synthseg autoseg` first")
    images = [to_gray(read_image(p)) for p in list_images(args.backgrounds)]

    from .model.training import train_model
    from .synthesis import BackgroundSource

    backgrounds = BackgroundSource.from_images(images, rng=np.random.default_rng(args.seed))
    before = _model_state(model_out)
    try:
        with _bar(args.steps or 0, "train", unit="step") as bar, \
                _stop_on_ctrl_c(args.cancel, "training after this step; the best model so far is kept"):
            report = _training_reporter(bar)
            result = train_model(bank, backgrounds, model_out, callbacks=[report], seed=args.seed,
                                 resume=args.resume, base_filters=args.base_filters, depth=args.depth,
                                 patch=args.patch, batch_size=args.batch_size, lr_schedule=args.lr_schedule,
                                 xla=args.xla, cancel_event=args.cancel, **budget)
    except KeyboardInterrupt:
        args.interrupted_note = _where_model(model_out, before)
        raise
    if result.cancelled:
        saved = [h for h in result.history if h.get("saved")]
        at = f" (from step {saved[-1]['step']})" if saved else ""
        print(f"train: interrupted at step {result.steps_done}; the best model so far{at} is in "
              f"{result.model_path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"train: {result.steps_done} steps, best validation IoU {result.best_metric:.3f}, "
          f"model {result.model_path}")
    return 0


def _retrain_bank(args: argparse.Namespace, model: Path, info: dict) -> str:
    """--bank, else the bank a previous round recorded, else ``bank/`` beside the model (synthseg run's)."""
    if args.bank:
        return args.bank
    recorded = (info.get("curation_round") or {}).get("bank")
    for candidate in ([Path(recorded)] if recorded else []) + [model.parent / "bank"]:
        if candidate.is_dir():
            return str(candidate)
    raise CommandError(f"no bank beside {model} (bank/); give --bank BANK, the bank the model was trained on")


def cmd_retrain(args: argparse.Namespace) -> int:
    from .model.sidecar import check_model_file
    from .retraining import find_curated, image_files, next_round_path

    args.interrupted_note = "before training started; no model was written"
    budget = _budget(args)
    _check(args.steps is None or args.steps >= 1, f"--steps must be at least 1, got {args.steps}")
    _check(args.minutes is None or (np.isfinite(args.minutes) and args.minutes > 0),
           f"--minutes must be a number > 0, got {args.minutes}")
    _check(0.0 < args.curated_fraction <= 1.0,
           f"--curated-fraction must be above 0 and at most 1, got {args.curated_fraction}")
    _check(args.ring_px is None or args.ring_px >= 0, f"--ring-px must be >= 0, got {args.ring_px}")
    _check_seed(args)
    model = Path(args.model)
    info = check_model_file(model)
    if args.model_out is not None:
        _check(not Path(args.model_out).exists(), f"--model-out {args.model_out} exists; a round never writes over a "
                                                  "model: choose another name (or leave --model-out out)")
    out = next_round_path(model) if args.model_out is None else _check_model_out(
        args.model_out, "--model-out", overwrite=False)
    _check_writable(out.parent, "--model-out")
    curated = find_curated(args.curated)
    _check(bool(curated), f"no image in --curated {args.curated} has a curation beside it (<stem>_curation.tif); "
                          "curate images in napari's Curate dock first")
    bank = _open_bank(_retrain_bank(args, model, info), create=False)
    _check(len(bank) > 0, f"bank {bank.path} holds no objects; give the bank the model was trained on (--bank)")
    _check_backend()

    from .retraining import retrain_round

    before = _model_state(out)
    try:
        with _bar(args.steps or 0, "retrain", unit="step") as bar, \
                _stop_on_ctrl_c(args.cancel, "training after this step; the best model so far is kept"):
            report = _training_reporter(bar)
            path = retrain_round(model, bank, curated, out_path=out, background_images=image_files(args.curated),
                                 curated_fraction=args.curated_fraction, ring_px=args.ring_px, seed=args.seed,
                                 callbacks=[report], cancel_event=args.cancel, notify=print, **budget)
    except KeyboardInterrupt:
        args.interrupted_note = _where_model(out, before)
        raise
    from .model.sidecar import read_sidecar

    record = read_sidecar(path).get("curation_round", {})
    if record.get("cancelled"):
        print(f"retrain: interrupted; the best model so far is in {path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"retrain: round {record.get('round')} from {len(curated)} curated image(s), {record.get('clicks')} "
          f"clicks; model {path} ({model} unchanged)")
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


def _model_identity(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cmd_predict(args: argparse.Namespace) -> int:
    from .image_io import write_png
    from .largeimage import ModelSegmenter, read_labels, read_whole
    from .overlay import make_overlay

    if not 0.0 <= args.min_confidence <= 1.0:
        raise CommandError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    _check(args.tile >= 16, f"--tile must be at least 16 pixels, got {args.tile}")
    _check(args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}")
    _check(args.min_area >= 0, f"--min-area must be >= 0 pixels, got {args.min_area}")
    _check_box(args.ignore_box)
    _check_batch_options(args)
    model = Path(args.model)
    _check(not model.is_dir(), f"model {model} is a folder; give the model file (.keras) inside it")
    _check(not model.is_file() or os.access(model, os.R_OK),
           f"cannot read model {model} (permission denied); ask its owner to make it readable")
    out = _check_out_dir(args.out, "--out")
    inputs = _batch_inputs(args, out)
    _check_backend()
    from .model.prediction import ModelLoadError, load_model

    try:
        load_model(model)  # fail early, with the reason, before any task starts
    except ModelLoadError as exc:
        raise CommandError(str(exc)) from exc
    segmenter = ModelSegmenter(model_path=str(model), tile=args.tile, batch_size=args.batch_size,
                               min_area=args.min_area, min_confidence=args.min_confidence, augment=args.augment,
                               ignore_box=args.ignore_box)
    params = {"command": "predict", "model": _model_identity(model), "tile": args.tile,
              "min_area": args.min_area, "min_confidence": args.min_confidence, "augment": args.augment,
              "ignore_box": args.ignore_box}
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .image_io import list_images, read_image
    from .pipeline import find_ground_truth, score_labels

    _check((args.split is None) == (args.subset is None), "--split CSV and --subset NAME go together")
    args.interrupted_note = "nothing was written"
    wanted = _split_stems(args.split, args.subset) if args.split else None
    if args.json:
        _check_writable(Path(args.json).parent, "--json")
        _check(not Path(args.json).is_dir(), f"--json {args.json} is a folder; give a file name")
    preds = {}
    for path in list_images(args.pred_dir):
        stem = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
        if path.stem.endswith("_overlay") or (wanted is not None and stem not in wanted):
            continue
        preds[stem] = np.asarray(read_image(path))
    if not preds:
        raise CommandError(f"no label images in {args.pred_dir}"
                           + (f" for --subset {args.subset}" if wanted is not None else ""))
    gt = find_ground_truth(args.gt_dir, sorted(preds))
    per_image: dict = {}
    scores = score_labels(preds, gt, per_image=per_image)
    print(f"evaluate: {len(gt)} images with ground truth"
          + (f" (--subset {args.subset} of {args.split})" if wanted is not None else ""))
    _print_scores("prediction", scores)
    if args.json:
        from .image_io import atomic_write

        text = json.dumps({"pred_dir": str(args.pred_dir), "gt_dir": str(args.gt_dir), "split": args.split,
                           "subset": args.subset, "pooled": scores, "images": per_image}, indent=2) + "\n"
        atomic_write(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"  scores written to {args.json}")
    return 0


def _print_scores(name: str, s: dict) -> None:
    ap = f"  AP {s['ap']:.3f} (AP50 {s['ap_50']:.3f}, AP75 {s['ap_75']:.3f})" if "ap" in s else ""
    print(f"  {name:<22} pixel IoU {s['pixel_iou']:.3f}  Dice {s['pixel_dice']:.3f}  "
          f"object P {s['object_precision']:.3f}  R {s['object_recall']:.3f}  F1 {s['object_f1']:.3f}" + ap)


def _measure_inputs(paths: Sequence[str]) -> list[Path]:
    """Labels files as given, and the ``*_labels.tif`` files of each folder."""
    from .image_io import list_images

    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".tif", ".tiff")
                           and p.stem.endswith("_labels"))
            _check(bool(files), f"folder {path} holds no *_labels.tif files; point at the labels folder of "
                                "`synthseg predict` or list the files")
            found.extend(files)
        else:
            found.extend(list_images([path]))
    return found


def _measure_pairs(labels: list[Path], images_dir: str | None) -> list[Path | None]:
    """The intensity image of each labels file: the file in ``images_dir`` with its stem less ``_labels``."""
    if images_dir is None:
        return [None] * len(labels)
    from .image_io import IMAGE_SUFFIXES

    folder = Path(images_dir)
    _check(folder.is_dir(), f"--images {images_dir} is not a folder; give the folder of the original images")
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.stem.endswith(("_labels", "_overlay")):
            by_stem.setdefault(path.stem, path)
    pairs = []
    for path in labels:
        stem = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
        _check(stem in by_stem, f"no image named {stem}.* in --images {images_dir} for {path.name}; "
                                "give the folder holding the images the labels were made from")
        pairs.append(by_stem[stem])
    return pairs


def _file_pixel_size(labels_path: Path, image_path: Path | None):
    """The pixel size the labels file carries, else its image's (None when neither carries one)."""
    from .pixel_size import read_pixel_size

    for path in (labels_path, image_path):
        if path is not None:
            try:
                found = read_pixel_size(path)
            except (ImportError, ValueError, OSError):
                found = None  # the file's own reading reports what is wrong with it
            if found is not None:
                return found
    return None


def cmd_measure(args: argparse.Namespace) -> int:
    from .measure import measure_label_file, write_measurements_csv

    override = _pixel_size_option(args)
    out = Path(args.out)
    _check(not out.is_dir(), f"--out {out} is a folder; give a CSV file name")
    _check(out.suffix.lower() == ".csv", f"--out {out} must end in .csv")
    _check(args.overwrite or not out.exists(),
           f"--out {out} exists; pass --overwrite to replace it or choose another name")
    _check_writable(out.parent, "--out")
    labels = _measure_inputs(args.labels)
    images = _measure_pairs(labels, args.images)
    args.interrupted_note = f"nothing was written to {out}"
    rows, failed, unit, in_pixels = [], 0, None, []
    with _bar(len(labels), "measure") as bar:
        for labels_path, image_path in zip(labels, images):
            size = override or _file_pixel_size(labels_path, image_path)
            if size is None:
                in_pixels.append(labels_path.name)
            else:  # one unit for the whole table: the first file's (or --pixel-size's)
                unit = unit or size.unit
                size = size.to(unit)
            try:
                rows.extend(measure_label_file(labels_path, image_path,
                                               spacing=None if size is None else size.spacing,
                                               unit=None if size is None else size.unit))
            except (ValueError, TypeError, OSError) as exc:
                failed += 1
                bar.write(f"synthseg measure: {labels_path}: {_one_line(exc)}", file=sys.stderr)
            bar.update(1)
    write_measurements_csv(rows, out)
    if unit is not None and in_pixels:
        print(f"note: {len(in_pixels)} file(s) carry no pixel size ({in_pixels[0]}, ...): their rows are in pixels "
              "(_px columns); give --pixel-size to measure all in one unit", file=sys.stderr)
    done = len(labels) - failed
    print(f"measure: {len(rows)} objects from {done} file{'s' if done != 1 else ''} → {out}"
          + (f"; {failed} file{'s' if failed != 1 else ''} failed (named above)" if failed else ""))
    return EXIT_FAILED if failed else 0


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


def _check_run_outputs(images: list[Path], out: Path, model_out: Path, overwrite: bool) -> None:
    _check_out_dir(out, "--out")
    _check_model_out(model_out, "--model-out", overwrite=overwrite)
    _check_labels_free(out, [p.stem for p in images], overwrite, "--out")


def _pipeline(args: argparse.Namespace, images: list[Path], out: Path, model_out: Path, **kwargs) -> int:
    from .pipeline import run_pipeline

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


def cmd_run(args: argparse.Namespace) -> int:
    from .image_io import list_images

    args.interrupted_note = "before training started; no model was saved"
    budget = _budget(args)
    if "epochs" in budget:
        raise CommandError("`synthseg run` takes --minutes or --steps")
    if args.real_fraction is not None and not 0.0 <= args.real_fraction <= 1.0:
        raise CommandError(f"--real-fraction must be between 0 and 1, got {args.real_fraction}")
    _check_train_options(args)
    _check_autoseg_options(args)
    _check(args.rounds >= 1, f"--rounds must be at least 1, got {args.rounds}")
    pixel_size = _pixel_size_option(args)
    _check(args.object_size is None or (np.isfinite(args.object_size) and args.object_size > 0),
           f"--object-size must be a number of pixels > 0, got {args.object_size}")
    out = Path(args.out)
    from .largeimage import split_own_outputs

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
                                       lr_schedule=args.lr_schedule, xla=args.xla),
                     object_size=args.object_size, predict_params=_run_predict_params(args),
                     recipe=args.recipe, pixel_size=pixel_size, **budget)


def _print_summary(summary, seconds: float) -> None:
    if summary.bank_left_out:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.bank_left_out.items()))
        print(f"bank: left out by shape: {reasons}")
    print(f"run: {len(summary.images)} images, bank {summary.bank_path}, "
          f"{len(summary.rounds)} round(s) in {seconds:.0f} s; outputs in {summary.out_dir}")
    if summary.baseline_scores:
        _print_scores("auto-segmentation", summary.baseline_scores)
    for r in summary.rounds:
        if r.scores:
            _print_scores(f"model round {r.round}", r.scores)
    if summary.stopped_because and not summary.interrupted:
        print(f"  stopped: {summary.stopped_because}; best round {summary.best_round}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .sample_data import write_sample_folder

    args.interrupted_note = "before training started; no model was saved"
    _check(args.n >= 1, f"-n must be at least 1, got {args.n}")
    _check(np.isfinite(args.minutes) and args.minutes > 0, f"--minutes must be a number > 0, got {args.minutes}")
    _check(args.rounds >= 1, f"--rounds must be at least 1, got {args.rounds}")
    _check_seed(args)
    out = Path(args.out)
    stems = [f"sample_{args.seed + i:04d}" for i in range(args.n)]  # write_sample_folder's names
    _check_run_outputs([Path(f"{stem}.png") for stem in stems], out, out / "model.keras", args.overwrite)
    _check_backend()
    images_dir, masks_dir = write_sample_folder(out / "sample", n=args.n, seed=args.seed)
    print(f"demo: {args.n} sample images with ground truth in {images_dir.parent}")
    from .image_io import list_images

    return _pipeline(args, list_images(images_dir), out, out / "model.keras", minutes=args.minutes,
                     rounds=args.rounds, gt_dir=masks_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synthseg",
        description="Segment EM images without hand-drawn masks: auto-segment, object bank, synthetic "
                    "scenes, U-Net training, full-resolution segmentation.",
        epilog="Errors are one line; exit status 2: bad usage or input (nothing done), 1: some files failed, "
               "130: interrupted (finished outputs kept). Outputs are never replaced unless --overwrite.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    p.add_argument("--overwrite", action="store_true", help="replace scenes of the same --seed in --out")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a U-Net on scenes streamed from a bank")
    p.add_argument("--bank", required=True)
    p.add_argument("--backgrounds", nargs="+", required=True, metavar="IMAGES_OR_DIRS")
    p.add_argument("--model-out", required=True, help="model file (.keras)")
    _add_train_options(p, epochs=True)
    p.add_argument("--resume", action="store_true", help="continue training the model at --model-out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model at --model-out")
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment images at full resolution with a trained model")
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--out", required=True)
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help=f"network tile in pixels [{DEFAULT_TILE}]")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"tiles per network call [{DEFAULT_BATCH}]")
    p.add_argument("--min-area", type=int, default=DEFAULT_MIN_AREA,
                   help=f"smallest object in pixels [{DEFAULT_MIN_AREA}]")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                   help=f"drop objects whose mean foreground probability is lower (0 keeps all) "
                        f"[{DEFAULT_MIN_CONFIDENCE:g}]")
    p.add_argument("--augment", action="store_true", help=_AUGMENT_HELP)
    p.add_argument("--ignore-box", type=_ignore_box, default="auto",
                   help="region where no object is kept: 'auto' (detect the scale bar), 'none', or Y0,Y1,X0,X1 [auto]")
    p.add_argument("--no-overlay", action="store_true")
    _add_batch_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score label images against ground-truth masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--json", metavar="FILE", help="write all scores (pooled and per image) to FILE")
    p.add_argument("--split", metavar="CSV", help="CSV with columns image,half: score only the images of --subset")
    p.add_argument("--subset", metavar="NAME", help="the half to score (e.g. tune or check)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("measure", help="measure every object of label images (sizes, Feret, shape) to CSV")
    p.add_argument("labels", nargs="+", metavar="LABELS_OR_DIRS",
                   help="label image files, or folders of *_labels.tif (e.g. synthseg predict's --out)")
    p.add_argument("--out", required=True, metavar="CSV", help="CSV file: one row per object, with its file")
    p.add_argument("--pixel-size", default=None, metavar="SIZE",
                   help="pixel size with its unit (e.g. 2.5nm) for every file; default: the size each labels "
                        "file (or its --images image) carries; lengths and areas in that unit, else in pixels")
    p.add_argument("--unit", default=None, help="unit of a bare --pixel-size number (e.g. --pixel-size 2 --unit nm)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="folder of the original images (same stem, less _labels): adds mean_intensity")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out CSV [refuse]")
    p.set_defaults(func=cmd_measure)

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
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model and <stem>_labels.tif in --out [refuse]")
    _add_pixel_size_option(p)
    _add_train_options(p, epochs=False)
    _add_autoseg_options(p, method_default=None)  # no --method: the recipe's
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("retrain", help="a curation round: fine-tune a model on curated images into a new file")
    p.add_argument("model", help="the current model (.keras); never written to")
    p.add_argument("--curated", required=True, metavar="DIR",
                   help="folder of images with <stem>_curation.tif beside them (saved by the Curate dock); "
                        "all its images also give the synthetic scenes' backgrounds")
    p.add_argument("--bank", default=None,
                   help="the bank the model was trained on, enriched (never changed) with the curated objects "
                        "[the previous round's, or bank/ beside the model]")
    p.add_argument("--minutes", type=float, default=None, help="training budget in minutes")
    p.add_argument("--steps", type=int, default=None, help="training budget in steps")
    p.add_argument("--model-out", default=None,
                   help="the new model file [<stem>_round2.keras, _round3, ... beside MODEL; never an existing file]")
    p.add_argument("--curated-fraction", type=float, default=DEFAULT_CURATED_FRACTION,
                   help=f"share of each batch cropped from the curated images [{DEFAULT_CURATED_FRACTION}]")
    p.add_argument("--ring-px", type=int, default=None,
                   help="pixels outside each curated object counted as known background [1]")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("demo", help="run the whole job on built-in sample data with ground truth")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("-n", type=int, default=4, help="number of sample images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's model and labels in --out")
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
    """Entry point of ``synthseg``; returns the exit status.

    Every failure is one line on stderr naming the problem and the fix (``--debug`` adds the
    traceback); exit 2: bad usage or input, found before any work; 1: some files failed or
    the work itself failed; 130: interrupted (what was finished is kept, and said where).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    args.cancel = threading.Event()
    name = f"synthseg {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        note = getattr(args, "interrupted_note", None) or "outputs already written are complete and kept; " \
            "run the same command again to go on"
        print(f"{name}: interrupted; {note}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line, whatever went wrong; --debug shows where
        if debug:
            traceback.print_exc()
        status = EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
        hint = "" if debug or status == EXIT_BAD_INPUT else " (run with --debug for the traceback)"
        print(f"{name}: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return status


def _is_bad_input(exc: BaseException) -> bool:
    """Errors found in what the user gave (options, paths, files) before the work: exit 2."""
    from .image_io import ImageReadError

    return isinstance(exc, (CommandError, ImageReadError, ValueError, FileExistsError, FileNotFoundError,
                            NotADirectoryError, IsADirectoryError))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
