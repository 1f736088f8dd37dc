"""The large-image and batch options of ``autoseg`` and ``predict``, and the batch run they share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..largeimage import DEFAULT_BLOCK, DEFAULT_HALO, DEFAULT_IN_MEMORY_PIXELS
from .checks import CommandError, _check
from .options import _PIXEL_SIZE_HELP, _pixel_size_option
from .progress import _bar


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


def _check_batch_options(args: argparse.Namespace) -> None:
    args.pixel_size_override = _pixel_size_option(args)
    _check(args.chunk >= 16, f"--chunk must be at least 16 pixels, got {args.chunk}")
    _check(args.halo >= 1, f"--halo must be at least 1 pixel, got {args.halo}")
    _check(args.in_memory_pixels >= 1, f"--in-memory-pixels must be at least 1, got {args.in_memory_pixels}")


def _batch_inputs(args: argparse.Namespace, out_dir: Path | None) -> list[Path]:
    """The images to segment: this command's own outputs in ``out_dir`` are left out, with a note."""
    from ..largeimage import list_inputs, split_own_outputs

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
    from ..largeimage import run_batch

    if args.pixel_size_override is not None and params is not None:  # outputs of another size are not "done"
        params = {**params, "pixel_size": str(args.pixel_size_override)}
    with _bar(len(inputs), desc) as bar:
        def tick(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        def blocks(name: str, done: int, total: int) -> None:  # minutes inside one large image show
            bar.set_postfix_str(f"{name}: blocks {done}/{total}" if done < total else "")

        report = run_batch(inputs, out_dir, segmenter, scheduler=args.scheduler, zarr_out=args.zarr_out,
                           tile=args.chunk, overlap=args.halo, in_memory_pixels=args.in_memory_pixels,
                           skip_existing=args.skip_existing, progress=tick, params=params,
                           overwrite=args.overwrite, pixel_size=args.pixel_size_override, tile_progress=blocks)
    for name, message in sorted(report.failed.items()):
        print(f"failed: {name}: {message.splitlines()[0] if message else 'unknown error'}", file=sys.stderr)
    return report
