"""Images larger than memory and folders of many images: lazy, tiled, resumable, on dask.

A large image is read lazily (zarr, or TIFF through tifffile) and cut into a regular grid of
*core* blocks of ``tile x tile`` pixels. Each block is segmented together with a halo of
``overlap`` pixels on every side, and only its core is written to the output (a zarr array
chunked like the grid, so every task writes exactly one chunk). Objects that cross a core's
edge are joined afterwards: each block also reports its own labels on the one-pixel ring just
outside its core, and where two blocks' views of the same pixels name objects that overlap,
the objects are merged (connected components of a small graph, no image in memory). A last
pass rewrites every chunk with the final, consecutive ids.

Equality with the in-memory path (what is guaranteed)
    For a per-tile function whose decision about an object depends only on the pixels within
    ``context`` of it (thresholds, smoothing, connected components, hole filling, size
    filters, splitting inside one object), every object whose bounding box is smaller than
    ``overlap - context`` in each direction is seen whole by every block that writes part of
    it, so the stitched labels equal the in-memory labels up to renumbering. Larger objects
    are joined across block faces by pixel overlap; they equal the in-memory ones for
    pixel-wise decisions (threshold + connected components) and otherwise differ at most
    where the decision needs more context than the halo gives. Statistics of the whole
    image (Otsu threshold, normalisation range) are computed from the whole image first
    (``TileSegmenter.prepare``), never per tile.

The work runs on dask: the local threaded scheduler by default, or a ``dask.distributed``
cluster given by its address. Folders fan out one task per image; a failing file is reported
by name and the others go on; outputs appear under their final name only when complete.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .image_io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    atomic_write,
    channel_count,
    finite_image,
    list_images,
    read_image,
    to_gray,
)
from .instances import DEFAULT_MIN_AREA
from .pixel_size import input_pixel_size

#: Attribute written last into a finished zarr output; its absence marks an unfinished one.
COMPLETE_ATTR = "napari_synthseg_complete"
#: Suffixes opened lazily (the rest are read whole).
LAZY_SUFFIXES = (".zarr", ".tif", ".tiff")
#: Images with more pixels than this go through the tiled path in ``run_batch``.
DEFAULT_IN_MEMORY_PIXELS = 64_000_000
#: Seconds to wait for a dask.distributed scheduler to answer.
SCHEDULER_TIMEOUT_S = 5
#: Format of the record written beside each batch output (``record_path``).
RECORD_FORMAT = "napari-synthseg-output/1"
#: Name endings of the outputs batches write; such files in the output folder are never inputs.
OUTPUT_ENDINGS = ("_labels.tif", "_labels.tiff", "_labels.zarr", "_overlay.png")

ProgressCallback = Callable[[int, int], None]


class LargeImageError(ValueError):
    """A large-image input or output cannot be used (wrong kind, shape, or half-written)."""


# --------------------------------------------------------------------------- sources
@dataclass
class ImageSource:
    """A picklable, lazily read 2D image (or stack ``(..., Y, X)``, RGB last axis allowed).

    Create with :func:`open_image`. ``read(plane, rows, cols)`` returns the gray pixels of
    one plane's region; only that region is read from disk.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    rgb: bool
    path: str | None = None
    kind: str = "array"  # "zarr", "tiff-memmap", "tiff-zarr", "array"
    component: str | None = None
    series: int = 0
    array: Any = None  # numpy or dask array for kind == "array"
    _opened: Any = field(default=None, repr=False, compare=False)

    @property
    def spatial_shape(self) -> tuple[int, int]:
        """``(Y, X)`` of one plane."""
        yx = self.shape[-3:-1] if self.rgb else self.shape[-2:]
        return int(yx[0]), int(yx[1])

    @property
    def plane_shape(self) -> tuple[int, ...]:
        """Leading (stack) axes, ``()`` for one plane."""
        return tuple(self.shape[:-3] if self.rgb else self.shape[:-2])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_opened"] = None  # file handles do not travel; reopen on the worker
        return state

    def _handle(self):
        if self._opened is not None:
            return self._opened
        if self.kind == "array":
            self._opened = self.array
        elif self.kind == "zarr":
            import zarr

            node = zarr.open(self.path, mode="r")
            self._opened = node[self.component] if self.component else node
        elif self.kind == "tiff-memmap":
            import tifffile

            self._opened = tifffile.memmap(self.path, mode="r", series=self.series)
        else:
            import tifffile
            import zarr

            self._opened = zarr.open(tifffile.imread(self.path, aszarr=True, series=self.series), mode="r")
        return self._opened

    def read(self, plane: tuple[int, ...], rows: slice, cols: slice) -> np.ndarray:
        """Gray pixels of ``plane`` (index of the stack axes) at ``rows, cols``."""
        index = tuple(plane) + (rows, cols)
        data = self._handle()[index]
        if hasattr(data, "compute"):
            data = data.compute(scheduler="sync")
        data = np.asarray(data)
        if data.dtype == np.bool_:
            data = data.astype(np.uint8) * np.uint8(255)
        data = to_gray(data, rgb=True) if self.rgb else data
        return finite_image(data, self.path or "array") if data.dtype.kind == "f" else data


def _zarr_array(path: Path, component: str | None):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a bad store
        raise ImageReadError(f"cannot open {path} as zarr: {exc}") from exc
    if component:
        node = node[component]
    if not hasattr(node, "shape"):
        # A group (e.g. OME-Zarr): take its first array, the full-resolution level by convention.
        names = sorted(name for name, _ in node.arrays())
        if not names:
            raise ImageReadError(f"zarr group {path} holds no array; pass component=<array name>")
        component = names[0]
        node = node[component]
    return node, component


def open_image(path_or_array, *, component: str | None = None, rgb: bool | None = None) -> ImageSource:
    """Open an image lazily: zarr (array or group), TIFF (memory-mapped or chunk-wise), or an array.

    Parameters
    ----------
    path_or_array
        A ``.zarr`` directory, a ``.tif``/``.tiff`` file, another image file (read whole),
        a numpy array or a dask array.
    component
        Array name inside a zarr group (default: the first array, sorted by name).
    rgb
        Whether the last axis is colour; None: a last axis of 3 or 4 is colour.

    Raises
    ------
    ImageReadError
        Missing path, unreadable or corrupt file, or not at least 2D.
    """
    if isinstance(path_or_array, ImageSource):
        return path_or_array
    if not isinstance(path_or_array, (str, os.PathLike)):
        array = path_or_array
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            array = np.asarray(array)
        return _make_source(array, None, "array", None, 0, rgb, array=array)
    path = Path(path_or_array)
    if not path.exists():
        raise ImageReadError(f"{path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".zarr" or (path.is_dir() and ((path / "zarr.json").exists() or (path / ".zarray").exists()
                                                or (path / ".zgroup").exists())):
        node, component = _zarr_array(path, component)
        return _make_source(node, str(path), "zarr", component, 0, rgb)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            arr = tifffile.memmap(str(path), mode="r")
            kind = "tiff-memmap"
        except Exception:  # compressed or not contiguous: read chunk-wise through zarr
            try:
                arr = __import__("zarr").open(tifffile.imread(str(path), aszarr=True), mode="r")
            except Exception as exc:
                raise ImageReadError(f"cannot read {path} as a TIFF image: {exc}") from exc
            kind = "tiff-zarr"
        return _make_source(arr, str(path), kind, None, 0, rgb)
    if suffix in IMAGE_SUFFIXES:
        array = read_image(path)
        return _make_source(array, str(path), "array", None, 0, rgb, array=array)
    raise ImageReadError(f"{path} is not an image this reader knows (.zarr, {', '.join(IMAGE_SUFFIXES)})")


def _make_source(arr, path, kind, component, series, rgb, array=None) -> ImageSource:
    shape = tuple(int(s) for s in arr.shape)
    dtype = np.dtype(arr.dtype)
    if rgb is None:  # a last axis of 2-4 after a longer one is colour (gray + alpha, RGB, RGBA)
        rgb = channel_count(shape) is not None
    if len(shape) < (3 if rgb else 2) or 0 in shape:
        raise ImageReadError(f"{path or 'array'} is not a non-empty 2D image or stack (shape {shape})")
    if dtype.kind not in "biuf":
        raise ImageReadError(f"{path or 'array'} has non-numeric dtype {dtype}")
    if not rgb and len(shape) >= 3 and 5 <= shape[-1] <= 16 < shape[-2]:
        raise ImageReadError(f"{path or 'array'} has shape {shape}: its last axis looks like {shape[-1]} colour "
                             "channels; napari-synthseg reads gray, gray + alpha, RGB or RGBA images and stacks "
                             "(..., Y, X): save one channel per file")
    return ImageSource(shape=shape, dtype=dtype, rgb=bool(rgb), path=path, kind=kind, component=component,
                       series=series, array=array)


def open_lazy(path, *, component: str | None = None, chunks: int | None = None):
    """The image at ``path`` as a dask array (nothing read until computed).

    zarr keeps its own chunks (or ``chunks``); TIFF is chunked by ``chunks`` rows and columns
    (default 2048).
    """
    import dask.array as da

    source = open_image(path, component=component, rgb=False)
    handle = source._handle()
    if source.kind == "zarr" and chunks is None:
        return da.from_zarr(handle)
    size = chunks or 2048
    chunk_shape = tuple(1 for _ in source.shape[:-2]) + (size, size)
    return da.from_array(handle, chunks=chunk_shape, asarray=True, lock=source.kind == "tiff-zarr")


# --------------------------------------------------------------------------- segmenters
class TileSegmenter:
    """A per-tile labelling function that may first look at the whole image.

    Subclasses implement ``__call__(tile, region)`` and may override ``prepare(source)``
    to compute whole-image statistics once (returning a ready copy). ``post_max_area`` and
    ``post_clear_border`` ask :func:`process_large` to apply those filters to the stitched
    objects, since a tile cannot know an object's full area or the image border.
    """

    post_max_area: int | None = None
    post_clear_border: bool = False

    def prepare(self, source: ImageSource) -> TileSegmenter:
        return self

    def __call__(self, tile: np.ndarray, region: tuple | None = None) -> np.ndarray:
        raise NotImplementedError


def _gaussian(gray: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage as ndi

    smooth = np.nan_to_num(np.asarray(gray, dtype=np.float32))
    return ndi.gaussian_filter(smooth, sigma, mode="nearest") if sigma > 0 else smooth


def _smoothed_bands(source: ImageSource, plane, sigma: float, band: int = 2048):
    """Yield ``(row0, smoothed rows)`` bands equal to the whole plane's Gaussian smoothing."""
    height, width = source.spatial_shape
    halo = int(4.0 * sigma + 0.5) + 1 if sigma > 0 else 0  # scipy's truncate=4 radius, plus one
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        a, b = max(0, r0 - halo), min(height, r1 + halo)
        smooth = _gaussian(source.read(plane, slice(a, b), slice(0, width)), sigma)
        yield r0, smooth[r0 - a: r0 - a + (r1 - r0)]


@dataclass
class AutosegSegmenter(TileSegmenter):
    """``autosegment`` per tile, with whole-image decisions taken once in ``prepare``.

    ``prepare`` turns ``method`` otsu/li/triangle into the manual threshold the in-memory
    path would compute (same strided sample of the smoothed image), resolves ``polarity="auto"``
    and ``ignore_box="auto"`` on the whole plane (on a strided overview when the plane has
    more than ``overview_pixels``), and moves ``max_area``/``clear_border`` after stitching.
    ``"local"``, ``"contours"`` and ``"combined"`` keep per-tile statistics (approximate).
    """

    params: dict = field(default_factory=dict)
    overview_pixels: int = 16_000_000
    per_plane: dict = field(default_factory=dict)  # plane -> resolved params

    def prepare(self, source: ImageSource) -> AutosegSegmenter:
        from . import autoseg

        params = dict(self.params)
        if params.pop("ignore_mask", None) is not None:
            raise LargeImageError("ignore_mask is not supported for large images; use ignore_box=(y0, y1, x0, x1)")
        params.pop("rgb", None)
        params = autoseg.AutosegParams.from_dict(params).as_dict()  # checked, every default filled in
        per_plane = {}
        for plane in _planes(source):
            per_plane[plane] = _resolve_autoseg(source, plane, params, self.overview_pixels)
        ready = AutosegSegmenter(params=params, overview_pixels=self.overview_pixels, per_plane=per_plane)
        ready.post_max_area = params["max_area"]
        ready.post_clear_border = bool(params["clear_border"])
        return ready

    def __call__(self, tile, region=None):
        from .autoseg import autosegment

        params = dict(self.params)
        if region is not None and region[0] in self.per_plane:
            params.update(self.per_plane[region[0]])
        if self.per_plane:  # prepared: both are applied after stitching
            params["max_area"], params["clear_border"] = None, False
        box = params.get("ignore_box")
        if region is not None and box is not None and not isinstance(box, str):
            _, rows, cols = region  # the box is in image coordinates; the tile starts at rows/cols
            y0, y1, x0, x1 = box
            params["ignore_box"] = (y0 - rows.start, y1 - rows.start, x0 - cols.start, x1 - cols.start)
        return autosegment(tile, rgb=False, **params)


def _resolve_autoseg(source: ImageSource, plane, params: dict, overview_pixels: int) -> dict:
    from . import autoseg, scalebar

    height, width = source.spatial_shape
    sigma, method, polarity, box = float(params["sigma"]), params["method"], params["polarity"], params["ignore_box"]
    step = max(1, int(np.sqrt(height * width / autoseg._MAX_THRESHOLD_SAMPLES)))  # as autoseg._sample
    over = max(1, math.ceil(math.sqrt(height * width / overview_pixels)))
    sample_rows, overview_gray, overview_smooth = [], [], []
    for r0, smooth in _smoothed_bands(source, plane, sigma):
        first = (-r0) % step
        sample_rows.append(smooth[first::step, ::step])
        ofirst = (-r0) % over
        overview_smooth.append(smooth[ofirst::over, ::over])
        if box == "auto":
            gray = source.read(plane, slice(r0 + ofirst, r0 + smooth.shape[0], over), slice(0, width, over))
            overview_gray.append(np.asarray(gray))
    sample_grid = np.concatenate(sample_rows)
    resolved: dict = {}
    if box == "auto":
        box = _overview_box(scalebar.find_scale_bar(np.concatenate(overview_gray)), over, height, width)
        resolved["ignore_box"] = box
    valid_grid = valid_over = None
    if box is not None:
        y0, y1, x0, x1 = box
        ys, xs = np.arange(0, height, step)[:, None], np.arange(0, width, step)[None, :]
        valid_grid = ~((ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1))
        yo, xo = np.arange(0, height, over)[:, None], np.arange(0, width, over)[None, :]
        valid_over = ~((yo >= y0) & (yo < y1) & (xo >= x0) & (xo < x1))
    sample = sample_grid[valid_grid] if valid_grid is not None else sample_grid.ravel()
    if sample.size == 0 or float(sample.min()) == float(sample.max()):
        # Nothing to tell apart, as in memory: a threshold no pixel passes.
        top = float(sample.max()) if sample.size else 0.0
        return {**resolved, "method": "manual", "threshold": top + 1.0, "polarity": "bright"}
    if polarity == "auto":
        resolved["polarity"] = autoseg.choose_polarity(np.concatenate(overview_smooth), valid_over)
    if method in ("otsu", "li", "triangle"):
        resolved["method"] = "manual"
        resolved["threshold"] = autoseg._global_threshold(sample, method)
    return resolved


_MODEL_CACHE: dict = {}
_MODEL_LOCK = threading.Lock()


def _flat_percentile_sample(source: ImageSource, plane, max_samples: int, band: int = 2048) -> np.ndarray:
    """The strided sample ``percentile_range`` takes of the whole plane, read band by band."""
    height, width = source.spatial_shape
    size = height * width
    step = size // max_samples + 1 if size > max_samples else 1
    parts = []
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        lo, hi = r0 * width, r1 * width
        first = -(-lo // step) * step
        if first >= hi:
            continue
        rows = np.asarray(source.read(plane, slice(r0, r1), slice(0, width)))
        parts.append(rows.ravel()[np.arange(first, hi, step) - lo])
    return np.concatenate(parts).astype(np.float32)


def _overview_box(found, stride: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """A box found on a strided overview, in full-image coordinates (grown by a stride, clipped)."""
    if found is None:
        return None
    y0, y1, x0, x1 = (int(v) * stride for v in found)
    return y0, min(height, y1 + stride), x0, min(width, x1 + stride)


def _plane_overview(source: ImageSource, plane, max_pixels: int, band: int = 2048) -> tuple[np.ndarray, int]:
    """A strided copy of a whole plane with at most about ``max_pixels``, and its stride."""
    height, width = source.spatial_shape
    stride = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    rows = []
    for r0 in range(0, height, band):
        first = r0 + (-r0) % stride
        if first < min(height, r0 + band):
            rows.append(np.asarray(source.read(plane, slice(first, min(height, r0 + band), stride),
                                               slice(0, width, stride))))
    return np.concatenate(rows), stride


@dataclass
class ModelSegmenter(TileSegmenter):
    """A trained model per tile, normalised with the whole plane's range.

    ``prepare`` computes each plane's intensity range once: for a percentile model from the
    same strided sample the in-memory ``predict`` uses, for an anchored model
    (``anchored_range``) from a strided overview of the plane, so every tile sees the same
    input scale (and polarity) as the whole image would, and resolves ``ignore_box="auto"`` (a
    scale-bar box, as ``predict``) on the same overview. Inside a tile the network runs on overlapping sub-tiles
    with smooth blending (as ``predict``), the box is cut out, then ``probabilities_to_instances`` makes the labels.
    The model is loaded once per worker process, from ``model_path``.
    """

    model_path: str = ""
    tile: int = 1024
    overlap: int | None = None  # None: predict's default (96, at most a quarter of the tile)
    batch_size: int = 2
    threshold: float = 0.5
    min_area: int = DEFAULT_MIN_AREA
    fill_holes: bool = True
    method: str = "auto"
    min_confidence: float = 0.0
    augment: bool = False  # average over flips and transposes (predict's augment)
    ignore_box: object = "auto"  # predict's ignore_box: "auto", None or (y0, y1, x0, x1)
    overview_pixels: int = 4_000_000
    value_ranges: dict = field(default_factory=dict)  # plane -> (lo, hi)
    boxes: dict = field(default_factory=dict)  # plane -> (y0, y1, x0, x1) or None, once prepared

    def _model(self):
        from .model.prediction import load_model

        key = str(self.model_path)
        with _MODEL_LOCK:
            if key not in _MODEL_CACHE:
                _MODEL_CACHE[key] = load_model(key)
            return _MODEL_CACHE[key]

    def prepare(self, source: ImageSource) -> ModelSegmenter:
        from .normalize import anchored_range, percentile_range
        from .scalebar import check_ignore_box, find_scale_bar

        ignore_box = check_ignore_box(self.ignore_box)
        model = self._model()
        low, high = model.percentiles
        height, width = source.spatial_shape
        ranges, boxes = {}, {}
        for plane in _planes(source):
            boxes[plane] = ignore_box
            if model.normalization == "anchored" or ignore_box == "auto":
                overview, stride = _plane_overview(source, plane, self.overview_pixels)
            if ignore_box == "auto":
                boxes[plane] = _overview_box(find_scale_bar(overview), stride, height, width)
            if model.normalization == "anchored":
                # anchors (and the polarity in them) are decided once on the whole plane
                ranges[plane] = anchored_range(overview, sigma=1.5 / stride)
            else:
                sample = _flat_percentile_sample(source, plane, 1_000_000)
                ranges[plane] = percentile_range(sample, low, high, max_samples=sample.size + 1)
        return replace(self, value_ranges=ranges, boxes=boxes)

    def probabilities(self, tile: np.ndarray, value_range) -> np.ndarray:
        """Blended ``(H, W, 3)`` probabilities of one gray tile, normalised with ``value_range``."""
        from .model.prediction import predict_probabilities

        model = self._model()
        with _MODEL_LOCK:  # one network call at a time per process; the network uses all cores
            return predict_probabilities(model, tile, tile=self.tile, overlap=self.overlap,
                                         batch_size=self.batch_size, value_range=value_range,
                                         augment=self.augment)

    def __call__(self, tile, region=None):
        from .instances import probabilities_to_instances
        from .scalebar import cut_box, resolve_ignore_box

        tile = np.asarray(tile)
        if region is None and tile.ndim > 2:  # a whole stack: plane by plane, ids unique across it
            labels = np.zeros(tile.shape, dtype=np.uint32)
            for index in np.ndindex(*tile.shape[:-2]):
                plane = self(tile[index]).astype(np.uint32)
                top = int(labels.max())
                labels[index] = np.where(plane > 0, plane + top, 0)
            return labels
        value_range = self.value_ranges.get(region[0]) if region is not None else None
        prob = self.probabilities(np.asarray(tile), value_range)
        if region is not None and region[0] in self.boxes:
            _, rows, cols = region  # the box is in image coordinates; the tile starts at rows/cols
            cut_box(prob[..., 0], self.boxes[region[0]], (rows.start, cols.start))
        else:  # an unprepared segmenter called on a whole image
            cut_box(prob[..., 0], resolve_ignore_box(np.asarray(tile), self.ignore_box))
        return probabilities_to_instances(prob, threshold=self.threshold, min_area=self.min_area,
                                          fill_holes=self.fill_holes, method=self.method,
                                          min_confidence=self.min_confidence)


def _planes(source: ImageSource) -> list[tuple[int, ...]]:
    lead = source.plane_shape
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*lead)] if lead else [()]


# --------------------------------------------------------------------------- tiled processing
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


@dataclass
class _Block:
    index: int
    plane: tuple[int, ...]
    rows: tuple[int, int]  # core
    cols: tuple[int, int]
    grid: tuple[int, int]  # (tile row, tile col)


def _grid(source: ImageSource, tile: int) -> list[_Block]:
    height, width = source.spatial_shape
    blocks = []
    for plane in _planes(source):
        for i, r0 in enumerate(range(0, height, tile)):
            for j, c0 in enumerate(range(0, width, tile)):
                blocks.append(_Block(len(blocks), plane, (r0, min(height, r0 + tile)),
                                     (c0, min(width, c0 + tile)), (i, j)))
    return blocks


def _call_segment(segment, tile: np.ndarray, region) -> np.ndarray:
    if isinstance(segment, TileSegmenter):
        labels = segment(tile, region)
    else:
        labels = segment(tile)
    labels = np.asarray(labels)
    if labels.shape != tile.shape[:2] or labels.dtype.kind not in "biu":
        raise LargeImageError(f"the tile function returned {labels.dtype} {labels.shape} for a tile of shape "
                              f"{tile.shape[:2]}; it must return integer labels of the tile's shape")
    return labels


def _segment_block(source: ImageSource, segment, block: _Block, overlap: int, out_path: str) -> dict:
    """Segment one core with its halo, write the core's local ids, return the ring data."""
    import zarr

    height, width = source.spatial_shape
    (r0, r1), (c0, c1) = block.rows, block.cols
    a, b = max(0, r0 - overlap), min(height, r1 + overlap)
    c, d = max(0, c0 - overlap), min(width, c1 + overlap)
    tile = source.read(block.plane, slice(a, b), slice(c, d))
    labels = _call_segment(segment, tile, (block.plane, slice(a, b), slice(c, d)))
    # The box is the core plus a one-pixel ring (where the image goes on).
    ba, bb, bc, bd = max(a, r0 - 1), min(b, r1 + 1), max(c, c0 - 1), min(d, c1 + 1)
    box = labels[ba - a: bb - a, bc - c: bd - c]
    core = (slice(r0 - ba, r0 - ba + (r1 - r0)), slice(c0 - bc, c0 - bc + (c1 - c0)))
    values, inverse = np.unique(box, return_inverse=True)
    inverse = inverse.reshape(box.shape)
    in_core = np.zeros(values.size, dtype=bool)
    in_core[np.unique(inverse[core])] = True
    in_core[values == 0] = False
    ring_only = (values != 0) & ~in_core
    # Core ids become 1..n_core, ids seen only on the ring n_core+1..n_total.
    local = np.zeros(values.size, dtype=np.uint32)
    n_core = int(in_core.sum())
    local[in_core] = np.arange(1, n_core + 1, dtype=np.uint32)
    local[ring_only] = np.arange(n_core + 1, n_core + 1 + int(ring_only.sum()), dtype=np.uint32)
    box_local = local[inverse]
    core_local = box_local[core]
    out = zarr.open_array(out_path, mode="r+")
    out[tuple(block.plane) + (slice(r0, r1), slice(c0, c1))] = core_local
    area = np.bincount(core_local.ravel(), minlength=n_core + 1)[: n_core + 1].astype(np.int64)
    # Two-pixel frames (ring, core edge) on each side that has a neighbour, core extent only.
    # Copies, not views: a view would keep the whole block's labels alive in the result
    # until stitching (16 MB per 2048^2 block, over a GB for a 16384^2 image).
    frames = {}
    if r0 > 0:
        frames["top"] = box_local[0:2, core[1]].copy()
    if r1 < height:
        frames["bottom"] = box_local[-2:, core[1]][::-1].copy()  # row 0 = ring, row 1 = core edge
    if c0 > 0:
        frames["left"] = box_local[core[0], 0:2].T.copy()
    if c1 < width:
        frames["right"] = box_local[core[0], -2:][:, ::-1].T.copy()
    edge = []
    if r0 == 0:
        edge.append(core_local[0])
    if r1 == height:
        edge.append(core_local[-1])
    if c0 == 0:
        edge.append(core_local[:, 0])
    if c1 == width:
        edge.append(core_local[:, -1])
    on_image_border = np.unique(np.concatenate(edge)) if edge else np.zeros(0, np.uint32)
    return {"index": block.index, "n_core": n_core, "n_total": n_core + int(ring_only.sum()),
            "frames": frames, "area": area, "border": on_image_border[on_image_border > 0]}


def _relabel_block(block: _Block, lut: np.ndarray, out_path: str) -> int:
    import zarr

    out = zarr.open_array(out_path, mode="r+")
    where = tuple(block.plane) + (slice(*block.rows), slice(*block.cols))
    out[where] = lut[out[where]]
    return block.index


def _face_pairs(first: dict, second: dict, side_first: str, side_second: str):
    """Label pairs of two neighbours' views of the same two lines of pixels across their face."""
    fa, fb = first["frames"][side_first], second["frames"][side_second]
    # first's ring row lies on second's core edge row and vice versa.
    return np.concatenate([fa[0], fa[1]]), np.concatenate([fb[1], fb[0]])


def _stitch(blocks: list[_Block], infos: list[dict], min_overlap: float, max_area, clear_border: bool,
            min_area: int):
    """Join object pieces across faces; return per-block lookup tables and counts."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    infos = sorted(infos, key=lambda info: info["index"])
    totals = np.array([info["n_total"] for info in infos], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(totals)])  # node of (block k, local id l) = offsets[k] + l - 1
    n_nodes = int(offsets[-1])
    by_position = {(b.plane, b.grid): b.index for b in blocks}
    edges_a, edges_b = [], []
    for block in blocks:
        i, j = block.grid
        for (di, dj), side, other_side in (((1, 0), "bottom", "top"), ((0, 1), "right", "left")):
            other = by_position.get((block.plane, (i + di, j + dj)))
            if other is None:
                continue
            la, lb = _face_pairs(infos[block.index], infos[other], side, other_side)
            both = (la > 0) & (lb > 0)
            if not both.any():
                continue
            na = offsets[block.index] + la.astype(np.int64) - 1
            nb = offsets[other] + lb.astype(np.int64) - 1
            pair_keys, counts = np.unique(np.stack([na[both], nb[both]]), axis=1, return_counts=True)
            size_a = dict(zip(*np.unique(na[la > 0], return_counts=True)))
            size_b = dict(zip(*np.unique(nb[lb > 0], return_counts=True)))
            for (node_a, node_b), count in zip(pair_keys.T, counts):
                if count >= min_overlap * min(size_a[node_a], size_b[node_b]):
                    edges_a.append(node_a)
                    edges_b.append(node_b)
    n_edges = len(edges_a)
    graph = coo_matrix((np.ones(n_edges, dtype=np.int8), (np.array(edges_a, dtype=np.int64),
                                                          np.array(edges_b, dtype=np.int64))),
                       shape=(max(n_nodes, 1), max(n_nodes, 1)))
    n_comp, comp = connected_components(graph, directed=False)
    comp = comp[:n_nodes]
    has_core = np.zeros(n_nodes, dtype=bool)
    area = np.zeros(n_nodes, dtype=np.int64)
    drop = np.zeros(max(n_comp, 1), dtype=bool)
    for info in infos:
        k = info["index"]
        has_core[offsets[k]: offsets[k] + info["n_core"]] = True
        area[offsets[k]: offsets[k] + info["n_core"]] = info["area"][1:]
        if clear_border and info["border"].size:
            drop[comp[offsets[k] + info["border"].astype(np.int64) - 1]] = True
    comp_area = np.bincount(comp, weights=area, minlength=n_comp) if n_nodes else np.zeros(1)
    keep = np.zeros(max(n_comp, 1), dtype=bool)
    keep[comp[has_core]] = True
    keep &= ~drop
    if max_area is not None:
        keep &= comp_area <= max_area
    if min_area:
        keep &= comp_area >= min_area
    # Final ids follow the first node (block order, then local id) of each component.
    first_node = np.full(max(n_comp, 1), n_nodes, dtype=np.int64)
    np.minimum.at(first_node, comp, np.arange(n_nodes))
    order = np.argsort(first_node, kind="stable")
    final = np.zeros(max(n_comp, 1), dtype=np.int64)
    kept_in_order = order[keep[order]]
    final[kept_in_order] = np.arange(1, kept_in_order.size + 1)
    if kept_in_order.size >= 2 ** 32:
        raise LargeImageError("more than 2**32 - 1 objects; labels do not fit uint32")
    luts = []
    for info in infos:
        k = info["index"]
        lut = np.zeros(info["n_core"] + 1, dtype=np.uint32)
        lut[1:] = final[comp[offsets[k]: offsets[k] + info["n_core"]]]
        luts.append(lut)
    merged = int(has_core.sum()) - int(np.unique(comp[has_core]).size)
    return luts, int(kept_in_order.size), merged


# --------------------------------------------------------------------------- scheduling
def _describe(scheduler) -> str:
    if scheduler is None:
        return "threads"
    if isinstance(scheduler, str):
        return scheduler
    return f"distributed {getattr(scheduler, 'scheduler_info', lambda: {})().get('address', '')}".strip()


def _is_address(scheduler) -> bool:
    return isinstance(scheduler, str) and ("://" in scheduler or (":" in scheduler and scheduler not in
                                                                    ("threads", "sync", "processes")))


class _Runner:
    """Runs lists of dask-delayed tasks on the chosen scheduler, reporting each finished one."""

    def __init__(self, scheduler=None, num_workers: int | None = None):
        self.scheduler = scheduler
        self.num_workers = num_workers
        self.client = None
        self._own_client = False

    def __enter__(self):
        if _is_address(self.scheduler):
            from distributed import Client

            try:
                self.client = Client(self.scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:  # nothing listens there (distributed raises OSError)
                raise LargeImageError(
                    f"cannot reach a dask scheduler at {self.scheduler} within {SCHEDULER_TIMEOUT_S} s; start one "
                    "(`dask scheduler`) and check the address, or leave out --scheduler to use local threads"
                ) from exc
            self._own_client = True
        elif self.scheduler is not None and not isinstance(self.scheduler, str):
            self.client = self.scheduler  # a distributed.Client
        elif self.scheduler not in (None, "threads", "sync", "synchronous", "processes"):
            raise ValueError(f"scheduler must be None, 'threads', 'sync', 'processes', a dask.distributed "
                             f"address like tcp://127.0.0.1:8786, or a Client; got {self.scheduler!r}")
        return self

    def __exit__(self, *exc):
        if self._own_client:
            self.client.close()

    def run(self, tasks: list, on_done: Callable[[Any], None] | None = None,
            return_exceptions: bool = False) -> list:
        import dask

        if not tasks:
            return []
        if self.client is not None:
            from distributed import as_completed

            futures = self.client.compute(tasks)
            index = {f.key: i for i, f in enumerate(futures)}
            results: list = [None] * len(futures)
            for future in as_completed(futures):
                try:
                    results[index[future.key]] = future.result()
                except Exception as exc:
                    if not return_exceptions:
                        for f in futures:
                            f.cancel()
                        raise
                    results[index[future.key]] = exc
                if on_done is not None:
                    on_done(results[index[future.key]])
            return results
        from dask.callbacks import Callback

        keys = {t.key for t in tasks}
        lock = threading.Lock()

        def posttask(key, result, dsk, state, worker_id):
            if key in keys and on_done is not None:
                with lock:
                    on_done(result)

        scheduler = "sync" if self.scheduler in ("sync", "synchronous") else (self.scheduler or "threads")
        kwargs = {"num_workers": self.num_workers} if self.num_workers and scheduler != "sync" else {}
        with Callback(posttask=posttask):
            return list(dask.compute(*tasks, scheduler=scheduler, **kwargs))


# --------------------------------------------------------------------------- outputs
def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a finished output of this module (zarr with the marker, or a TIFF)."""
    path = Path(path)
    if path.suffix.lower() == ".zarr":
        if not path.is_dir():
            return False
        try:
            import zarr

            # an OME-Zarr group (this version) or one plain array (earlier versions)
            return bool(zarr.open(str(path), mode="r").attrs.get(COMPLETE_ATTR, False))
        except Exception:
            return False
    if path.suffix.lower() in (".tif", ".tiff"):
        if not path.is_file():
            return False
        try:
            import tifffile

            size = path.stat().st_size
            with tifffile.TiffFile(str(path)) as tif:
                if len(tif.pages) == 0:
                    return False
                for page in tif.pages:  # a truncated file names data beyond its end
                    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
                    if ends and max(ends) > size:
                        return False
                return True
        except Exception:
            return False
    return path.is_file()


def record_path(output: str | os.PathLike) -> Path:
    """The JSON record beside a batch output: ``<stem>_labels.json`` for ``<stem>_labels.tif``/``.zarr``."""
    output = Path(output)
    return output.with_name(output.name[: -len(output.suffix)] + ".json") if output.suffix else \
        output.with_name(output.name + ".json")


def output_record(input_path: str | os.PathLike, params: dict | None) -> dict:
    """What a batch output was made from: the input (path, size, mtime) and the parameters."""
    input_path = Path(input_path)
    try:
        stat = input_path.stat()
        size = stat.st_size if input_path.is_file() else None
        mtime = stat.st_mtime_ns
    except OSError:
        size = mtime = None
    return {"format": RECORD_FORMAT, "input": {"path": str(input_path.resolve()), "size": size, "mtime_ns": mtime},
            "params": _plain(params)}


def _plain(value):
    """``value`` as JSON would give it back (tuples as lists), so records compare equal after a round trip."""
    import json

    return json.loads(json.dumps(value, default=str))


def _output_size(output: Path) -> int | None:
    return output.stat().st_size if output.is_file() else None


def write_record(output: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` (from ``output_record``) beside a finished ``output``, with the output's size."""
    import json

    output = Path(output)
    record = dict(record, output={"name": output.name, "size": _output_size(output)})
    text = json.dumps(record, indent=2) + "\n"
    return atomic_write(record_path(output), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def existing_output_state(output: str | os.PathLike, record: dict) -> str:
    """How an existing output relates to this run: ``"missing"`` (or damaged: to be made),
    ``"same"`` (complete, made from the same input with the same parameters, unchanged since),
    ``"other"`` (complete but from other parameters or input, changed since, or without a record)."""
    import json

    output = Path(output)
    if not output.exists() or not is_complete(output):
        return "missing"
    try:
        saved = json.loads(record_path(output).read_text("utf-8"))
    except (OSError, ValueError):
        return "other"
    if not isinstance(saved, dict) or saved.get("format") != RECORD_FORMAT:
        return "other"
    same = (saved.get("input") == record["input"] and saved.get("params") == record["params"]
            and (saved.get("output") or {}).get("size") == _output_size(output))
    return "same" if same else "other"


class OutputExistsError(FileExistsError):
    """Outputs of a batch exist and were not made by this run's input and parameters."""


def _write_tiff_from_zarr(zarr_path: Path, tiff_path: Path, band: int = 1024, pixel_size=None) -> None:
    """Stream a 2D (or stacked) uint32 zarr into a tiled, compressed TIFF, band by band (with ``pixel_size``)."""
    import tifffile
    import zarr

    from .pixel_size import tiff_write_options

    arr = zarr.open_array(str(zarr_path), mode="r")
    height, width = arr.shape[-2:]
    tile_side = 256

    def tiles():
        for plane in (np.ndindex(*arr.shape[:-2]) if arr.ndim > 2 else [()]):
            for r0 in range(0, height, band):
                rows = np.asarray(arr[tuple(plane) + (slice(r0, min(height, r0 + band)), slice(None))])
                for tr in range(0, rows.shape[0], tile_side):
                    for tc in range(0, width, tile_side):
                        piece = np.zeros((tile_side, tile_side), dtype=np.uint32)
                        part = rows[tr: tr + tile_side, tc: tc + tile_side]
                        piece[: part.shape[0], : part.shape[1]] = part
                        yield piece

    if band % tile_side:
        raise ValueError("band must be a multiple of 256")
    nbytes = int(np.prod(arr.shape)) * 4
    atomic_write(tiff_path, lambda tmp: tifffile.imwrite(
        tmp, tiles(), shape=arr.shape, dtype=np.uint32, tile=(tile_side, tile_side),
        compression="zlib", bigtiff=nbytes > 2 ** 32 - 2 ** 25, **tiff_write_options(pixel_size, labels=True)))


def _lazy_gray(source: ImageSource, chunk: int):
    """The source image as a lazy gray dask array (RGB to luminance), for the OME-Zarr output's image."""
    import dask.array as da

    handle = source._handle()
    if source.kind == "zarr":
        data = da.from_zarr(handle)
    else:
        data = da.from_array(handle, chunks=tuple(1 for _ in source.shape[:-2]) + (chunk, chunk), asarray=True,
                             lock=source.kind == "tiff-zarr")
    if data.dtype == np.bool_:
        data = data.astype(np.uint8) * np.uint8(255)
    if source.rgb:
        data = data[..., :3].astype(np.float32) @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return data


def write_ome_output(out: Path, labels, image, pixel_size, record: dict, chunk: int = 2048) -> None:
    """Write labels (and their image) as an OME-Zarr group through a temporary sibling; mark it complete last."""
    from .ome_zarr_io import write_ome_labels

    work = _tmp_sibling(out)
    try:
        write_ome_labels(work, labels, image, pixel_size=pixel_size, attrs={"napari_synthseg": record}, chunk=chunk)
        import zarr

        zarr.open_group(str(work), mode="r+").attrs[COMPLETE_ATTR] = True
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def process_large(image, output_path: str | os.PathLike, segment_tile, *, tile: int = 2048,
                  overlap: int = 128, scheduler=None, progress: ProgressCallback | None = None,
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
    if tile < 16:
        raise ValueError(f"tile must be at least 16 pixels, got {tile}")
    if overlap < 1:
        raise ValueError(f"overlap must be >= 1 (the halo that joins objects across tiles), got {overlap}")
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in [0, 1], got {min_overlap}")
    output_path = Path(output_path)
    suffix = output_path.suffix.lower()
    if suffix not in (".zarr", ".tif", ".tiff"):
        raise LargeImageError(f"output {output_path} must end in .zarr, .tif or .tiff")
    if output_path.exists() and not overwrite:
        raise FileExistsError(f"{output_path} exists; remove it or pass overwrite=True")
    source = open_image(image, rgb=rgb)
    if pixel_size is None and isinstance(image, (str, os.PathLike)):
        pixel_size = input_pixel_size(image)
    if isinstance(segment_tile, TileSegmenter):
        segment_tile = segment_tile.prepare(source)
    blocks = _grid(source, tile)
    height, width = source.spatial_shape
    out_shape = source.plane_shape + (height, width)
    chunks = tuple(1 for _ in source.plane_shape) + (min(tile, height), min(tile, width))

    import dask
    import zarr

    output_path.parent.mkdir(parents=True, exist_ok=True)
    work = _tmp_sibling(output_path.with_suffix(".zarr"))
    zarr.open_array(str(work), mode="w", shape=out_shape, chunks=chunks, dtype="uint32", fill_value=0,
                    zarr_format=zarr_format)
    total = 2 * len(blocks)
    done = 0

    def tick(_result) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        with _Runner(scheduler, num_workers) as runner:
            token = uuid.uuid4().hex[:8]
            src = dask.delayed(source, pure=False, traverse=False)
            seg = dask.delayed(segment_tile, pure=False, traverse=False)
            tasks = [dask.delayed(_segment_block, pure=False)(src, seg, b, overlap, str(work),
                                                              dask_key_name=f"synthseg-block-{token}-{b.index}")
                     for b in blocks]
            infos = runner.run(tasks, tick)
            luts, n_objects, merged = _stitch(blocks, infos, min_overlap,
                                              getattr(segment_tile, "post_max_area", None),
                                              bool(getattr(segment_tile, "post_clear_border", False)),
                                              int(min_area))
            tasks = [dask.delayed(_relabel_block, pure=False)(b, luts[b.index], str(work),
                                                              dask_key_name=f"synthseg-relabel-{token}-{b.index}")
                     for b in blocks]
            runner.run(tasks, tick)
        if suffix == ".zarr":
            write_ome_output(output_path, zarr.open_array(str(work), mode="r"), _lazy_gray(source, tile),
                              pixel_size, {"kind": "labels", "tile": tile, "overlap": overlap,
                                           "n_objects": n_objects}, chunk=tile)
            shutil.rmtree(work, ignore_errors=True)
        else:
            _write_tiff_from_zarr(work, output_path, pixel_size=pixel_size)
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return LargeResult(output_path=output_path, shape=out_shape, n_objects=n_objects, n_tiles=len(blocks),
                       merged=merged, seconds=time.perf_counter() - t_start, scheduler=_describe(scheduler))


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a finished labels output (zarr or TIFF) fully into memory (for tests and small images)."""
    path = Path(path)
    if not is_complete(path):
        raise LargeImageError(f"{path} is not a complete labels output (missing or half-written)")
    if path.suffix.lower() == ".zarr":
        from .ome_zarr_io import labels_array

        return np.asarray(labels_array(path)[...])
    return read_image(path)


# --------------------------------------------------------------------------- batches
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


def read_whole(path: str | os.PathLike, rgb: bool | None = None) -> np.ndarray:
    """Read a whole image (file or ``.zarr``) into memory as gray (RGB converted)."""
    source = open_image(path, rgb=rgb)
    data = source._handle()
    image = np.asarray(data[...] if not isinstance(data, np.ndarray) else data)
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * np.uint8(255)
    image = to_gray(image, rgb=True) if source.rgb else image
    return finite_image(image, str(path)) if image.dtype.kind == "f" else image


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
        from .image_io import write_tiff

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


def run_batch(paths, out_dir: str | os.PathLike, segment, *, scheduler=None, skip_existing: bool = True,
              progress: ProgressCallback | None = None, zarr_out: bool = False,
              in_memory_pixels: int = DEFAULT_IN_MEMORY_PIXELS, tile: int = 2048, overlap: int = 128,
              rgb: bool | None = None, num_workers: int | None = None, params: dict | None = None,
              overwrite: bool = False, pixel_size=None) -> BatchReport:
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
    import dask

    t_start = time.perf_counter()
    report = BatchReport()
    out_dir = Path(out_dir)
    inputs, report.own_outputs = split_own_outputs(list_inputs(paths), out_dir)
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
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(inputs)
    done = len(report.failed) + len(report.skipped)
    if progress is not None and done:
        progress(done, total)

    def tick(_result) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    with _Runner(scheduler, num_workers) as runner:
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
        for path, out in large:
            try:
                record_path(out).unlink(missing_ok=True)
                result = process_large(path, out, segment, tile=tile, overlap=overlap,
                                       scheduler=runner.client or scheduler, rgb=rgb, overwrite=True,
                                       num_workers=num_workers, pixel_size=pixel_size)
                if path.name in records:
                    write_record(out, records[path.name])
            except Exception as exc:
                report.failed[path.name] = f"{type(exc).__name__}: {exc}"
            else:
                report.written[path.name] = out
                report.n_objects[path.name] = result.n_objects
            tick(None)
    report.seconds = time.perf_counter() - t_start
    return report
