"""Whole runs: one large image tile by tile (:func:`process_large`), folders of images (:func:`run_batch`)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..image_io import IMAGE_SUFFIXES, ImageReadError, list_images
from ..pixel_size import input_pixel_size
from .outputs import (
    OutputExistsError,
    _tmp_sibling,
    _write_tiff_from_zarr,
    existing_output_state,
    is_complete,
    output_record,
    record_path,
    write_ome_output,
    write_record,
)
from .scheduling import _describe, _Runner
from .segmenters import TileSegmenter
from .sources import LargeImageError, _lazy_gray, open_image, read_whole
from .stitching import _grid, segment_and_stitch

#: Images with more pixels than this go through the tiled path in ``run_batch``.
DEFAULT_IN_MEMORY_PIXELS = 64_000_000
#: Core block side and halo of the tiled path (``process_large``'s ``tile``/``overlap``, ``--chunk``/``--halo``).
DEFAULT_BLOCK = 2048
DEFAULT_HALO = 128
#: Name endings of the outputs batches write; such files in the output folder are never inputs.
OUTPUT_ENDINGS = ("_labels.tif", "_labels.tiff", "_labels.zarr", "_overlay.png")

ProgressCallback = Callable[[int, int], None]


@dataclass
class LargeResult:
    """What :func:`process_large` produced."""

    output_path: Path
    shape: tuple[int, ...]
    n_objects: int
    n_tiles: int
    merged: int  # object pieces joined across tile faces
    seconds: float
    scheduler: str


def _check_tiling(tile: int, overlap: int, min_overlap: float) -> None:
    if tile < 16:
        raise ValueError(f"tile must be at least 16 pixels, got {tile}")
    if overlap < 1:
        raise ValueError(f"overlap must be >= 1 (the halo that joins objects across tiles), got {overlap}")
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in [0, 1], got {min_overlap}")


def process_large(image, output_path: str | os.PathLike, segment_tile, *, tile: int = DEFAULT_BLOCK,
                  overlap: int = DEFAULT_HALO, scheduler=None, progress: ProgressCallback | None = None,
                  min_overlap: float = 0.5, min_area: int = 0, rgb: bool | None = None,
                  zarr_format: int = 3, overwrite: bool = False, num_workers: int | None = None,
                  pixel_size=None) -> LargeResult:
    """Segment an image of any size tile by tile and write stitched uint32 labels.

    Parameters
    ----------
    image
        Path (``.zarr``, ``.tif``, any image), :class:`ImageSource`, numpy or dask array;
        ``(Y, X)``, ``(Y, X, 3|4)`` RGB or a stack ``(..., Y, X)`` (planes done separately,
        ids unique across the stack).
    output_path
        ``.zarr`` (an OME-Zarr 0.4 image with the labels in ``labels/segmentation`` and the pixel
        size as scale, see `ome_zarr_io`; readable by napari-ome-zarr, Fiji and QuPath) or
        ``.tif``/``.tiff`` (written from the zarr band by band, tiled and compressed).
        It appears under this name only when complete.
    segment_tile
        ``f(tile) -> labels`` of the tile's shape, or a :class:`TileSegmenter` (its
        ``prepare`` is called once with the whole image first).
    tile, overlap
        Core block side and halo width in pixels. Objects smaller than ``overlap`` minus
        the function's context are guaranteed identical to the in-memory result.
    scheduler
        None (local threads), ``"sync"``, ``"processes"``, a dask.distributed address
        (``"tcp://127.0.0.1:8786"``) or a ``distributed.Client``.
    progress
        ``progress(done, total)`` after each block of each pass (``total = 2 * blocks``).
    min_overlap
        Fraction of the smaller piece's face pixels two pieces must share to be joined.
    min_area
        Drop stitched objects smaller than this (0: keep all).
    rgb
        Whether the last axis is colour (None: guessed).
    zarr_format
        2 or 3 for the temporary tile store (the ``.zarr`` output itself is OME-Zarr 0.4, zarr format 2).
    overwrite
        Replace an existing output (otherwise an existing output raises FileExistsError).
    pixel_size
        A `~napari_synthseg.pixel_size.PixelSize` the output carries (TIFF resolution tags, zarr
        metadata); None: the one the input file carries, if any.

    Returns
    -------
    LargeResult
    """
    t_start = time.perf_counter()
    tile, overlap = int(tile), int(overlap)
    _check_tiling(tile, overlap, min_overlap)
    output_path = _checked_output_path(output_path, overwrite)
    source = open_image(image, rgb=rgb)
    if pixel_size is None and isinstance(image, (str, os.PathLike)):
        pixel_size = input_pixel_size(image)
    if isinstance(segment_tile, TileSegmenter):
        segment_tile = segment_tile.prepare(source)
    blocks = _grid(source, tile)
    work, out_shape = _tile_store(output_path, source, tile, zarr_format)
    try:
        with _Runner(scheduler, num_workers) as runner:
            n_objects, merged = segment_and_stitch(runner, source, segment_tile, blocks, overlap, str(work),
                                                   min_overlap, int(min_area), _Ticker(progress, 2 * len(blocks)))
        _write_stitched(output_path, work, source, pixel_size, {"kind": "labels", "tile": tile, "overlap": overlap,
                                                                "n_objects": n_objects}, tile=tile)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return LargeResult(output_path=output_path, shape=out_shape, n_objects=n_objects, n_tiles=len(blocks),
                       merged=merged, seconds=time.perf_counter() - t_start, scheduler=_describe(scheduler))


class _Ticker:
    """A runner's callback that counts finished tasks and reports ``progress(done, total)`` after each."""

    def __init__(self, progress: ProgressCallback | None, total: int, done: int = 0):
        self.progress, self.total, self.done = progress, total, done

    def __call__(self, _result=None) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _checked_output_path(output_path: str | os.PathLike, overwrite: bool) -> Path:
    """``output_path`` as a Path, checked to be ``.zarr``/``.tif``/``.tiff`` and free unless ``overwrite``."""
    output_path = Path(output_path)
    if output_path.suffix.lower() not in (".zarr", ".tif", ".tiff"):
        raise LargeImageError(f"output {output_path} must end in .zarr, .tif or .tiff")
    if output_path.exists() and not overwrite:
        raise FileExistsError(f"{output_path} exists; remove it or pass overwrite=True")
    return output_path


def _tile_store(output_path: Path, source, tile: int, zarr_format: int) -> tuple[Path, tuple[int, ...]]:
    """A new temporary zarr array beside ``output_path`` for the stitched labels; its path and shape."""
    import zarr

    height, width = source.spatial_shape
    out_shape = source.plane_shape + (height, width)
    chunks = tuple(1 for _ in source.plane_shape) + (min(tile, height), min(tile, width))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    work = _tmp_sibling(output_path.with_suffix(".zarr"))
    zarr.open_array(str(work), mode="w", shape=out_shape, chunks=chunks, dtype="uint32", fill_value=0,
                    zarr_format=zarr_format)
    return work, out_shape


def _write_stitched(output_path: Path, work: Path, source, pixel_size, attributes: dict, *, tile: int) -> None:
    """Write the stitched labels in ``work`` as the OME-Zarr or TIFF ``output_path`` (which appears when whole)."""
    import zarr

    if output_path.suffix.lower() == ".zarr":
        write_ome_output(output_path, zarr.open_array(str(work), mode="r"), _lazy_gray(source, tile),
                          pixel_size, attributes, chunk=tile)
    else:
        _write_tiff_from_zarr(work, output_path, pixel_size=pixel_size)


@dataclass
class BatchReport:
    """Outcome of :func:`run_batch`: outputs by input name, skipped ones, failures with reasons."""

    written: dict = field(default_factory=dict)  # input name -> output path
    own_outputs: list = field(default_factory=list)  # inputs left out: outputs of this kind of run
    skipped: dict = field(default_factory=dict)  # input name -> existing complete output
    failed: dict = field(default_factory=dict)  # input name -> error message
    n_objects: dict = field(default_factory=dict)  # input name -> object count (written ones)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{len(self.written)} written, {len(self.skipped)} already complete, "
                f"{len(self.failed)} failed")
        return text + "".join(f"\n  failed: {name}: {msg}" for name, msg in sorted(self.failed.items()))


def output_name(path: str | os.PathLike, zarr_out: bool = False) -> str:
    """``<stem>_labels.tif`` (or ``.zarr``) for an input path (a ``.zarr`` input keeps its stem)."""
    return f"{Path(path).stem}_labels" + (".zarr" if zarr_out else ".tif")


def list_inputs(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Expand files, ``.zarr`` stores and folders (their images and ``.zarr`` stores, sorted by name)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() == ".zarr" and path.exists():
            found.append(path)
        elif path.is_dir():
            items = sorted(p for p in path.iterdir()
                           if (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or
                           (p.is_dir() and p.suffix.lower() == ".zarr"))
            if not items:
                raise ImageReadError(f"folder {path} holds no images or .zarr stores")
            found.extend(items)
        else:  # a single file: image_io checks that it exists and is an image
            found.extend(list_images([path]))
    return found


def split_own_outputs(inputs: Sequence[Path], out_dir: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(inputs, left out): files in ``out_dir`` named like batch outputs (``OUTPUT_ENDINGS``) are
    outputs of an earlier run into that folder, never images to segment."""
    try:
        target = Path(out_dir).resolve()
    except OSError:
        return list(inputs), []
    kept, own = [], []
    for path in inputs:
        mine = path.parent.resolve() == target and path.name.lower().endswith(OUTPUT_ENDINGS)
        (own if mine else kept).append(path)
    return kept, own


def _segment_whole(path: str, out_path: str, segment, rgb, record: dict | None = None, pixel_size=None) -> int:
    """One batch task: read a whole image, segment it, write labels atomically (and their record).

    The labels carry ``pixel_size``, or else the one the image file carries.
    """
    image = read_whole(path, rgb)
    pixel_size = pixel_size or input_pixel_size(path)
    if isinstance(segment, TileSegmenter):
        labels = segment(image, None)
    else:
        labels = segment(image)
    labels = np.asarray(labels)
    if labels.shape != image.shape or labels.dtype.kind not in "biu":
        raise LargeImageError(f"segment returned {labels.dtype} {labels.shape} for an image of shape {image.shape}")
    labels = labels.astype(np.uint32, copy=False)
    out = Path(out_path)
    # an old record must not vouch for new labels if this write is cut short
    record_path(out).unlink(missing_ok=True)
    if out.suffix == ".zarr":
        write_ome_output(out, labels, image, pixel_size, {"kind": "labels"})
    else:
        from ..image_io import write_tiff

        write_tiff(out, labels, pixel_size=pixel_size, labels=True)
    if record is not None:
        write_record(out, record)
    return int(labels.max()) if labels.size else 0


def _segment_whole_safe(path: str, out_path: str, segment, rgb, record: dict | None = None,
                        pixel_size=None) -> int | str:
    """``_segment_whole``, returning the error message instead of raising (one file's failure stays its own)."""
    try:
        return _segment_whole(path, out_path, segment, rgb, record, pixel_size)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _plan_batch(inputs: list[Path], out_dir: Path, report: BatchReport, *, rgb, in_memory_pixels: int,
                zarr_out: bool, params: dict | None, skip_existing: bool, overwrite: bool):
    """(small, large, records): the ``(input, output)`` pairs to segment in memory and tile by tile, and the
    record of each by input name; unreadable inputs and complete outputs go into ``report``.

    Raises `OutputExistsError` when outputs made otherwise exist and ``overwrite`` is False.
    """
    small, large, others = [], [], []
    records: dict[str, dict] = {}
    for path in inputs:
        name = path.name
        try:
            source = open_image(path, rgb=rgb)
        except (ImageReadError, OSError, ValueError) as exc:
            report.failed[name] = str(exc)
            continue
        big = source.spatial_shape[0] * source.spatial_shape[1] > in_memory_pixels
        out = out_dir / output_name(path, zarr_out or big)
        if params is None:
            if skip_existing and is_complete(out):
                report.skipped[name] = out
                continue
        else:
            records[name] = output_record(path, params)
            state = existing_output_state(out, records[name])
            if state == "same" and skip_existing:
                report.skipped[name] = out
                continue
            if state == "other" and not overwrite:
                others.append(out.name)
        (large if big else small).append((path, out))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise OutputExistsError(
            f"{shown} in {out_dir} already exist{'s' if len(others) == 1 else ''} and were not made from these "
            "images with these settings; pass --overwrite (overwrite=True) to replace them, or choose another "
            "output folder")
    return small, large, records


def _run_whole_images(runner: _Runner, small: list, segment, rgb, records: dict, pixel_size,
                      report: BatchReport, tick: Callable[[Any], None]) -> None:
    """Segment the images read whole, one task each, into ``report`` (a failure is the file's own)."""
    import dask

    token = uuid.uuid4().hex[:8]
    seg = dask.delayed(segment, pure=False, traverse=False)
    tasks = [dask.delayed(_segment_whole_safe, pure=False)(str(p), str(o), seg, rgb, records.get(p.name),
                                                      pixel_size, dask_key_name=f"synthseg-image-{token}-{k}")
             for k, (p, o) in enumerate(small)]
    results = runner.run(tasks, tick)
    for (path, out), result in zip(small, results):
        if isinstance(result, str):
            report.failed[path.name] = result
        else:
            report.written[path.name] = out
            report.n_objects[path.name] = int(result)


def run_batch(paths, out_dir: str | os.PathLike, segment, *, scheduler=None, skip_existing: bool = True,
              progress: ProgressCallback | None = None, zarr_out: bool = False,
              in_memory_pixels: int = DEFAULT_IN_MEMORY_PIXELS, tile: int = DEFAULT_BLOCK,
              overlap: int = DEFAULT_HALO, rgb: bool | None = None, num_workers: int | None = None,
              params: dict | None = None, overwrite: bool = False, pixel_size=None,
              tile_progress: Callable[[str, int, int], None] | None = None) -> BatchReport:
    """Segment a folder (or list) of images, one task per image; resumable; failures reported by name.

    Parameters
    ----------
    paths
        Image files, ``.zarr`` stores and/or folders of them.
    out_dir
        Where ``<stem>_labels.tif`` (or ``.zarr``) go; created if missing.
    segment
        ``f(image) -> labels`` for a whole image, or a :class:`TileSegmenter`. Images with
        more than ``in_memory_pixels`` pixels go through :func:`process_large` with it.
    scheduler
        As in :func:`process_large`.
    skip_existing
        Skip inputs whose output is already complete (a re-run resumes where it stopped);
        with ``params``, only when its record says it was made from the same input with the
        same ``params`` and it has not changed since.
    progress
        ``progress(done, total)`` per finished image.
    tile_progress
        ``tile_progress(name, done, total)`` within an image done tile by tile (``process_large``'s
        progress: both passes over its blocks), so that minutes on one large image show.
    zarr_out
        Write ``.zarr`` outputs (large images always get ``.zarr``).
    params
        What the outputs are made with (JSON-able); recorded beside each output as
        ``<stem>_labels.json`` (``write_record``). None: no records, any complete output is done.
    overwrite
        With ``params``: replace complete outputs made otherwise. Without it such outputs
        raise `OutputExistsError` before any image is segmented.
    pixel_size
        A `~napari_synthseg.pixel_size.PixelSize` every output carries; None: each output carries
        the one its input file carries (TIFF tags, DM3/DM4, MRC, ...), if any.

    Files in ``out_dir`` named like this module's outputs (``OUTPUT_ENDINGS``) are never
    taken as inputs (a folder that holds its own labels), they are listed in ``own_outputs``.

    Returns
    -------
    BatchReport
        Written, skipped and failed inputs (by file name, with the error message).
    """
    t_start = time.perf_counter()
    report = BatchReport()
    out_dir = Path(out_dir)
    inputs, report.own_outputs = split_own_outputs(list_inputs(paths), out_dir)
    small, large, records = _plan_batch(inputs, out_dir, report, rgb=rgb, in_memory_pixels=in_memory_pixels,
                                        zarr_out=zarr_out, params=params, skip_existing=skip_existing,
                                        overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    tick = _Ticker(progress, len(inputs), done=len(report.failed) + len(report.skipped))
    if progress is not None and tick.done:
        progress(tick.done, tick.total)
    with _Runner(scheduler, num_workers) as runner:
        _run_whole_images(runner, small, segment, rgb, records, pixel_size, report, tick)
        _run_large_images(runner, large, segment, records, report, tick, scheduler=scheduler, tile=tile,
                          overlap=overlap, rgb=rgb, num_workers=num_workers, pixel_size=pixel_size,
                          tile_progress=tile_progress)
    report.seconds = time.perf_counter() - t_start
    return report


def _run_large_images(runner: _Runner, large: list, segment, records: dict, report: BatchReport,
                      tick: Callable[[Any], None], *, scheduler, tile: int, overlap: int, rgb, num_workers,
                      pixel_size, tile_progress: Callable[[str, int, int], None] | None = None) -> None:
    """Segment the images too large to read whole, one after the other tile by tile, into ``report``."""
    for path, out in large:
        blocks = None if tile_progress is None else (lambda done, total, name=path.name: tile_progress(name, done,
                                                                                                       total))
        try:
            record_path(out).unlink(missing_ok=True)
            result = process_large(path, out, segment, tile=tile, overlap=overlap,
                                   scheduler=runner.client or scheduler, rgb=rgb, overwrite=True,
                                   num_workers=num_workers, pixel_size=pixel_size, progress=blocks)
            if path.name in records:
                write_record(out, records[path.name])
        except Exception as exc:
            report.failed[path.name] = f"{type(exc).__name__}: {exc}"
        else:
            report.written[path.name] = out
            report.n_objects[path.name] = result.n_objects
        tick(None)
