"""Per-tile labelling functions that take their whole-image decisions once, before the tiles.

:class:`AutosegSegmenter` runs ``autosegment`` per tile with thresholds, polarity and the
scale-bar box decided on the whole plane; :class:`ModelSegmenter` runs a trained model per tile
with the whole plane's intensity range. Both are plain picklable dataclasses (the model is
loaded lazily, once per worker process).
"""

from __future__ import annotations

import inspect
import math
import threading
from dataclasses import dataclass, field, replace

import numpy as np

from ..instances import probabilities_to_instances
from ..model import PredictionParams
from ..relabel import stack_planes
from .sources import ImageSource, LargeImageError, _planes


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
        from .. import autoseg

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
        from ..autoseg import autosegment

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
    from .. import autoseg, scalebar

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


#: ``ModelSegmenter``'s defaults are ``predict``'s (``PredictionParams``), written there once.
_PREDICTION = PredictionParams()
_INSTANCE_MIN_CONFIDENCE = inspect.signature(probabilities_to_instances).parameters["min_confidence"].default
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


def _view_windows(shape: tuple[int, int], side: int) -> list[tuple[slice, slice]]:
    """Up to four ``side``-pixel squares centred in the plane's quadrants (clipped to it; distinct)."""
    height, width = shape
    h, w = min(side, height), min(side, width)
    windows = []
    for cy in (height // 4, 3 * height // 4):
        for cx in (width // 4, 3 * width // 4):
            y0 = min(max(cy - h // 2, 0), height - h)
            x0 = min(max(cx - w // 2, 0), width - w)
            window = (slice(y0, y0 + h), slice(x0, x0 + w))
            if window not in windows:
                windows.append(window)
    return windows


def _box_from(box, row0: int, col0: int) -> tuple[int, int, int, int] | None:
    """A box in image coordinates, in those of a piece that starts at ``(row0, col0)``."""
    if box is None:
        return None
    y0, y1, x0, x1 = box
    return max(y0 - row0, 0), max(y1 - row0, 0), max(x0 - col0, 0), max(x1 - col0, 0)


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
    scale-bar box, as ``predict``) on the same overview. It also chooses each plane's view once
    (``surest_shrink`` on four full-resolution windows of ``view_window`` pixels), and every tile is
    segmented at that zoom and brought back, as ``predict`` does with a whole image's surest view.
    Inside a tile the network runs on overlapping sub-tiles
    with smooth blending (as ``predict``), the box is cut out, then ``probabilities_to_instances`` makes the labels.
    The model is loaded once per worker process, from ``model_path``.
    """

    model_path: str = ""
    tile: int = _PREDICTION.tile
    overlap: int | None = _PREDICTION.overlap  # None: predict's default (at most a quarter of the tile)
    batch_size: int = _PREDICTION.batch_size
    threshold: float = _PREDICTION.threshold
    min_area: int = _PREDICTION.min_area
    fill_holes: bool = _PREDICTION.fill_holes
    method: str = _PREDICTION.method
    # the instance step's own (keeps every object), not predict's; the command line passes its --min-confidence
    min_confidence: float = _INSTANCE_MIN_CONFIDENCE
    augment: bool = _PREDICTION.augment  # average over flips and transposes (predict's augment)
    ignore_box: object = _PREDICTION.ignore_box  # predict's ignore_box: "auto", None or (y0, y1, x0, x1)
    drop_overlays: bool = _PREDICTION.drop_overlays  # predict's: scale bars and lettering left out, per tile
    # predict's: each plane is also seen shrunk, the most confident view kept (judged on windows of a large plane)
    max_shrink: float = _PREDICTION.max_shrink
    overview_pixels: int = 4_000_000
    view_window: int = 1024  # side of the four full-resolution windows a large plane's view is judged on
    value_ranges: dict = field(default_factory=dict)  # plane -> (lo, hi)
    boxes: dict = field(default_factory=dict)  # plane -> (y0, y1, x0, x1) or None, once prepared
    zooms: dict = field(default_factory=dict)  # plane -> the zoom its tiles are segmented at, once prepared

    def _model(self):
        from ..model.prediction import load_model

        key = str(self.model_path)
        with _MODEL_LOCK:
            if key not in _MODEL_CACHE:
                _MODEL_CACHE[key] = load_model(key)
            return _MODEL_CACHE[key]

    def prepare(self, source: ImageSource) -> ModelSegmenter:
        from ..normalize import anchored_range, percentile_range
        from ..scalebar import check_ignore_box, find_scale_bar

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
        zooms = {plane: self._judged_zoom(source, plane, ranges[plane], boxes[plane]) for plane in _planes(source)}
        return replace(self, value_ranges=ranges, boxes=boxes, zooms=zooms)

    def _judged_zoom(self, source: ImageSource, plane, value_range, box) -> float:
        """The view ``surest_shrink`` finds on full-resolution windows of the plane (1 when never shrinking)."""
        from ..model.prediction import finite_plane
        from ..model.views import surest_shrink

        if self.max_shrink <= 1:
            return 1.0
        windows = []
        for rows, cols in _view_windows(source.spatial_shape, self.view_window):
            image = finite_plane(np.asarray(source.read(plane, rows, cols), dtype=np.float32))
            windows.append((image, _box_from(box, rows.start, cols.start)))
        return surest_shrink(windows, self.max_shrink, lambda image: self.probabilities(image, value_range))

    def probabilities(self, tile: np.ndarray, value_range) -> np.ndarray:
        """Blended ``(H, W, 3)`` probabilities of one gray tile, normalised with ``value_range``."""
        from ..model.prediction import predict_probabilities

        model = self._model()
        with _MODEL_LOCK:  # one network call at a time per process; the network uses all cores
            return predict_probabilities(model, tile, tile=self.tile, overlap=self.overlap,
                                         batch_size=self.batch_size, value_range=value_range,
                                         augment=self.augment)

    def _whole_image(self, image: np.ndarray) -> np.ndarray:
        """Labels of a whole 2D image as ``predict`` makes them: its surest view, objects wider than the
        network sees filled from the smaller views."""
        from ..model.prediction import finite_plane
        from ..model.views import fill_from_smaller_views, sure_foreground, surest_view
        from ..scalebar import cut_box, resolve_ignore_box

        plane = finite_plane(image)
        box = resolve_ignore_box(plane, self.ignore_box)
        model = self._model()
        prob, choice, coarser = surest_view(model, plane, self.max_shrink, box, self.probabilities)
        cut_box(prob[..., 0], box)
        labels = self._instances(prob, image, whole_image=True)
        sure = sure_foreground(prob, self.threshold, self.min_confidence)
        return fill_from_smaller_views(labels, plane, box, choice, coarser, model.view_radius, sure)

    def _tile_probabilities(self, tile: np.ndarray, value_range, zoom: float) -> np.ndarray:
        """A tile's probabilities at the plane's chosen zoom, on the tile's grid."""
        from ..model.prediction import finite_plane
        from ..zoom import zoom_back, zoom_image

        if zoom == 1.0:
            return self.probabilities(tile, value_range)
        return zoom_back(self.probabilities(zoom_image(finite_plane(tile), zoom), value_range), tile.shape)

    def __call__(self, tile, region=None):
        from ..scalebar import cut_box, resolve_ignore_box

        tile = np.asarray(tile)
        if region is None and tile.ndim > 2:  # a whole stack: plane by plane, ids unique across it
            labels = np.zeros(tile.shape, dtype=np.uint32)
            stack_planes(labels, ((index, self(tile[index])) for index in np.ndindex(*tile.shape[:-2])))
            return labels
        if region is None:  # a whole image (an unprepared segmenter): as predict segments it
            return self._whole_image(np.asarray(tile))
        prob = self._tile_probabilities(np.asarray(tile), self.value_ranges.get(region[0]),
                                        self.zooms.get(region[0], 1.0))
        if region[0] in self.boxes:
            _, rows, cols = region  # the box is in image coordinates; the tile starts at rows/cols
            cut_box(prob[..., 0], self.boxes[region[0]], (rows.start, cols.start))
        else:
            cut_box(prob[..., 0], resolve_ignore_box(np.asarray(tile), self.ignore_box))
        return self._instances(prob, tile)

    def _instances(self, prob: np.ndarray, tile: np.ndarray, whole_image: bool = False) -> np.ndarray:
        """Instances of ``prob``; the support is judged (as ``predict`` does) only on a whole image: a block is
        not the image, and a share of it says nothing."""
        from ..instances import probabilities_to_instances
        from ..substrate import SUBSTRATE_MAX_STEP

        return probabilities_to_instances(prob, threshold=self.threshold, min_area=self.min_area,
                                          fill_holes=self.fill_holes, method=self.method,
                                          min_confidence=self.min_confidence,
                                          drawn_on=tile if self.drop_overlays else None,
                                          substrate_step=SUBSTRATE_MAX_STEP if whole_image else None)
