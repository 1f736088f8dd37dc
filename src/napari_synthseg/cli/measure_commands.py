"""``synthseg measure``: every object of label images (sizes, Feret diameters, shape) into one CSV."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .checks import EXIT_FAILED, _check, _check_writable, _one_line
from .options import _pixel_size_option
from .progress import _bar


def add_measure_parser(sub) -> None:
    p = sub.add_parser("measure", help="measure every object of label images (sizes, Feret, shape) to CSV")
    p.add_argument("labels", nargs="+", metavar="LABELS_OR_DIRS",
                   help="label image files or .zarr outputs, or folders of *_labels.tif / *_labels.zarr "
                        "(e.g. synthseg predict's --out)")
    p.add_argument("--out", required=True, metavar="CSV", help="CSV file: one row per object, with its file")
    p.add_argument("--pixel-size", default=None, metavar="SIZE",
                   help="pixel size with its unit (e.g. 2.5nm) for every file; default: the size each labels "
                        "file (or its --images image) carries; lengths and areas in that unit, else in pixels")
    p.add_argument("--unit", default=None, help="unit of a bare --pixel-size number (e.g. --pixel-size 2 --unit nm)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="folder of the original images (same stem, less _labels): adds mean_intensity")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out CSV [refuse]")
    p.set_defaults(func=cmd_measure)


def _measure_inputs(paths: Sequence[str]) -> list[Path]:
    """Labels files as given (a ``.zarr`` output too), and the ``*_labels.tif``/``.zarr`` outputs of each folder."""
    from ..image_io import list_images
    from ..largeimage.outputs import labels_outputs

    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() == ".zarr":
            found.append(path)
        elif path.is_dir():
            files = labels_outputs(path)
            _check(bool(files), f"folder {path} holds no *_labels.tif or *_labels.zarr outputs; point at the "
                                "labels folder of `synthseg predict` or list the files")
            found.extend(files)
        else:
            found.extend(list_images([path]))
    return found


def _measure_pairs(labels: list[Path], images_dir: str | None) -> list[Path | None]:
    """The intensity image of each labels file: the file in ``images_dir`` with its stem less ``_labels``."""
    if images_dir is None:
        return [None] * len(labels)
    from ..image_io import IMAGE_SUFFIXES

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
    from ..pixel_size import read_pixel_size

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
    from ..measure import measure_label_file, write_measurements_csv

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
