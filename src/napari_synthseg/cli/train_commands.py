"""``synthseg train`` (a U-Net on scenes streamed from a bank) and ``synthseg retrain`` (a curation round)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..curation import OUTLINE_RING_PX
from ..model import TrainingParams
from ..retraining import DEFAULT_CURATED_FRACTION, find_curated, image_files, next_round_path, retrain_round
from .bank_commands import _open_bank
from .checks import (
    EXIT_INTERRUPTED,
    CommandError,
    _check,
    _check_backend,
    _check_model_out,
    _check_seed,
    _check_writable,
)
from .options import _add_train_options, _budget, _check_train_options, core_default
from .progress import _bar, _model_state, _stop_on_ctrl_c, _training_reporter, _where_model


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a U-Net on scenes streamed from a bank")
    p.add_argument("--bank", required=True)
    p.add_argument("--backgrounds", nargs="+", required=True, metavar="IMAGES_OR_DIRS")
    p.add_argument("--model-out", required=True, help="model file (.keras)")
    _add_train_options(p, epochs=True)
    p.add_argument("--resume", action="store_true", help="continue training the model at --model-out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model at --model-out")
    defaults = TrainingParams()  # each default is defined there, once
    p.add_argument("--patch", type=int, default=defaults.patch,
                   help=f"scene size in pixels, a multiple of 2**--depth [{defaults.patch}]")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size,
                   help=f"scenes per step [{defaults.batch_size}]")
    p.set_defaults(func=cmd_train)


def add_retrain_parser(sub) -> None:
    seed = core_default(retrain_round, "seed")
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
                   help=f"pixels outside each curated object counted as known background [{OUTLINE_RING_PX}]")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed [{seed}]")
    p.set_defaults(func=cmd_retrain)


def _check_train_command(args: argparse.Namespace) -> dict:
    """``synthseg train``'s options, checked; the budget as ``train_model`` keywords."""
    budget = _budget(args)
    _check_train_options(args)
    _check(args.patch >= 16 and args.patch % 2**args.depth == 0,
           f"--patch must be at least 16 and a multiple of 2**--depth ({2**args.depth}), got {args.patch}")
    _check(args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}")
    return budget


def cmd_train(args: argparse.Namespace) -> int:
    from ..image_io import list_images, read_image, to_gray

    args.interrupted_note = "before training started; no model was saved"
    budget = _check_train_command(args)
    model_out = _check_model_out(args.model_out, "--model-out", overwrite=args.overwrite, resume=args.resume)
    _check_backend()
    bank = _open_bank(args.bank, create=False)
    if len(bank) == 0:
        raise CommandError(f"bank {bank.path} holds no objects; fill it with `synthseg autoseg` first")
    images = [to_gray(read_image(p)) for p in list_images(args.backgrounds)]

    from ..model.training import train_model
    from ..synthesis import BackgroundSource

    backgrounds = BackgroundSource.from_images(images, rng=np.random.default_rng(args.seed))
    before = _model_state(model_out)
    try:
        with _bar(args.steps or 0, "train", unit="step") as bar, \
                _stop_on_ctrl_c(args.cancel, "training after this step; the best model so far is kept"):
            report = _training_reporter(bar)
            result = train_model(bank, backgrounds, model_out, callbacks=[report], seed=args.seed,
                                 resume=args.resume, base_filters=args.base_filters, depth=args.depth,
                                 lr_schedule=args.lr_schedule, patch=args.patch, batch_size=args.batch_size,
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
    kept = next((h for h in reversed(result.history) if h.get("saved")), {})
    which = f"the average of {kept['averaged']} checkpoints" if "averaged" in kept else "best checkpoint"
    print(f"train: {result.steps_done} steps, {which}, validation IoU {result.best_metric:.3f}, "
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
    from ..model.sidecar import check_model_file

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
    from ..model.sidecar import read_sidecar

    record = read_sidecar(path).get("curation_round", {})
    if record.get("cancelled"):
        print(f"retrain: interrupted; the best model so far is in {path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"retrain: round {record.get('round')} from {len(curated)} curated image(s), {record.get('clicks')} "
          f"clicks; model {path} ({model} unchanged)")
    return 0
