"""``synthseg autoseg`` (classical segmentation into an object bank) and ``synthseg synth`` (scenes from it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..scene_params import SceneParams
from .batch import _add_batch_options, _batch_inputs, _check_batch_options, _run_batch
from .checks import EXIT_FAILED, CommandError, _check, _check_out_dir, _check_seed, _check_writable
from .options import DEFAULT_SEED, _add_autoseg_options, _autoseg_params, _check_autoseg_options
from .progress import _bar


def add_autoseg_parser(sub) -> None:
    p = sub.add_parser("autoseg", help="classical segmentation of images; fills an object bank")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument("--bank", required=True, help="object bank folder (created if missing)")
    p.add_argument("--labels-out", help="write <stem>_labels.tif here")
    _add_autoseg_options(p)
    _add_batch_options(p)
    p.set_defaults(func=cmd_autoseg)


def add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic training scenes from a bank")
    p.add_argument("--bank", required=True)
    p.add_argument("--backgrounds", nargs="+", default=[], metavar="IMAGES_OR_DIRS",
                   help="real images whose background the scenes imitate")
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, required=True, help="number of scenes")
    height, width = SceneParams().shape  # the scenes' default size, defined there once
    p.add_argument("--size", type=int, nargs=2, default=[height, width], metavar=("H", "W"),
                   help=f"scene size in pixels [{height} {width}]")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed [{DEFAULT_SEED}]")
    p.add_argument("--overwrite", action="store_true", help="replace scenes of the same --seed in --out")
    p.set_defaults(func=cmd_synth)


def _check_bank_target(path: str) -> Path:
    """A bank folder autoseg may fill: an existing bank, a missing or empty folder (checked, not made)."""
    from ..bank import LOCK_NAME, ObjectBank

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"--bank {path} is a file, not an object bank folder; choose an empty folder or a bank")
    if path.is_dir() and not ObjectBank.is_bank(path) and any(e.name != LOCK_NAME for e in path.iterdir()):
        raise CommandError(f"--bank {path} is not empty and is not an object bank; choose an empty folder or a bank")
    _check_writable(path, "--bank")
    return path


def _open_bank(path: str, *, create: bool = True):
    from ..bank import NotABankError, ObjectBank

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


def cmd_autoseg(args: argparse.Namespace) -> int:
    import tempfile

    from ..largeimage import AutosegSegmenter, output_name, read_labels, read_whole

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
    from ..image_io import list_images, read_image, to_gray, write_png, write_tiff
    from ..synthesis import BackgroundSource, synthesize_scene

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
