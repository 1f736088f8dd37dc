"""Loading a saved model and segmenting images of any size with it (Keras 3).

``predict`` works at full resolution: each plane is normalised once over the whole plane,
cut into overlapping tiles of one shape that go through the network in batches, and the
tile predictions are blended with smooth weights (``napari_synthseg.tiling``), so there
are no seams and memory is bounded by the batch and the output, not by the network's
activations on the whole image. Instances come from ``probabilities_to_instances``. Each plane is also
seen shrunk (by halves, ``PredictionParams.max_shrink``); the view the network is most confident about
is kept and its probabilities brought back to full resolution (``views.surest_view``); objects of it wider
than the network sees are filled from the smaller views, and such objects it outlined only in pieces or not at
all are taken whole from them (``views.fill_from_smaller_views``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_synthseg.image_io import gray_planes, iter_planes
from napari_synthseg.instances import probabilities_to_instances
from napari_synthseg.model.params import (  # noqa: F401  (the DEFAULT_* stay importable from here)
    DEFAULT_BATCH,
    DEFAULT_DEPTH,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    MAX_SHRINK,
    PRECISIONS,
    PredictionParams,
    receptive_field,
)
from napari_synthseg.model.sidecar import CHANNELS, ModelFileError, check_model_file
from napari_synthseg.model.views import (
    ViewChoice,
    fill_from_smaller_views,
    shrink_candidates,
    sure_foreground,
    surest_view,
)
from napari_synthseg.normalize import DEFAULT_PERCENTILES, normalization_range, percentile_normalize
from napari_synthseg.relabel import stack_planes
from napari_synthseg.scalebar import cut_box, resolve_ignore_box
from napari_synthseg.tiling import TiledAccumulator, blend_window, count_tiles, fit_tile, iter_tile_batches
from napari_synthseg.zoom import zoomed_shape

#: Pad multiple used when the sidecar does not give the network depth (covers depth <= 5).
_DEFAULT_PAD_MULTIPLE = 32
#: The default settings, which ``predict``'s and ``predict_probabilities``' signatures read.
_DEFAULT = PredictionParams()


#: The 8 symmetries of the square as (transpose, flip rows, flip columns); ``augment=True``
#: averages the network's answers over all of them: better objects for 8 times the work
#: (docs/benchmarks.md, "Why these defaults").
SYMMETRIES = tuple((t, fy, fx) for t in (False, True) for fy in (False, True) for fx in (False, True))


def _apply_symmetry(array: np.ndarray, symmetry, inverse: bool = False) -> np.ndarray:
    """View of ``array`` (Y, X[, C]) under one of ``SYMMETRIES`` (or its inverse)."""
    transpose, flip_y, flip_x = symmetry
    if transpose and not inverse:
        array = array.swapaxes(0, 1)
    if flip_y:
        array = array[::-1]
    if flip_x:
        array = array[:, ::-1]
    if transpose and inverse:
        array = array.swapaxes(0, 1)
    return array


def _fast_bfloat16() -> bool:
    """True when TensorFlow runs Keras and the CPU computes bfloat16 natively (Linux flags)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _bfloat16_copy(keras_model):
    """Clone ``keras_model`` with every layer but the output layers under ``mixed_bfloat16``."""
    import keras

    output_layers = {tensor._keras_history.operation.name for tensor in keras_model.outputs}

    def clone_layer(layer):
        config = layer.get_config()
        if layer.name not in output_layers and "dtype" in config:
            config["dtype"] = keras.DTypePolicy("mixed_bfloat16")
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(keras_model, clone_function=clone_layer)
    copy.set_weights(keras_model.get_weights())
    return copy


class ModelLoadError(ValueError):
    """A model file is missing, corrupt, or not a napari-synthseg model this version can use."""


@dataclass
class SegmentationModel:
    """A loaded network with its sidecar description.

    Attributes
    ----------
    keras_model
        The Keras model: ``(B, H, W, 1)`` float32 in, ``(B, H, W, 3)`` sigmoid channels out.
    info
        The sidecar's content (format, channels, normalization, network, training, ...).
    path
        The ``.keras`` file it was loaded from.
    """

    keras_model: object
    info: dict = field(default_factory=dict)
    path: Path | None = None
    _compute_models: dict = field(default_factory=dict, repr=False, compare=False)

    def compute_model(self, precision: str = "auto"):
        """The Keras model that runs inference at ``precision`` (a bfloat16 copy is made once).

        ``"float32"``: the model itself. ``"bfloat16"``: a copy computing in bfloat16 with
        float32 weights and float32 outputs (about 2-3x faster on CPUs with AVX512-BF16 or
        AMX, probabilities within ~0.01). ``"auto"``: bfloat16 where the CPU has such
        instructions and the backend is TensorFlow, else float32.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "auto":
            precision = "bfloat16" if _fast_bfloat16() else "float32"
        if precision == "float32":
            return self.keras_model
        if precision not in self._compute_models:
            self._compute_models[precision] = _bfloat16_copy(self.keras_model)
        return self._compute_models[precision]

    @property
    def percentiles(self) -> tuple[float, float]:
        """``(low, high)`` percentiles of the input normalisation used in training."""
        norm = self.info.get("normalization") or {}
        return (float(norm.get("low", DEFAULT_PERCENTILES[0])), float(norm.get("high", DEFAULT_PERCENTILES[1])))

    @property
    def normalization(self) -> str:
        """``"percentile"`` or ``"anchored"`` (see ``napari_synthseg.normalize.anchored_range``)."""
        return str((self.info.get("normalization") or {}).get("mode", "percentile"))

    def value_range(self, plane: np.ndarray) -> tuple[float, float]:
        """The intensities this model maps to 0 and 1 for a whole 2D plane."""
        return normalization_range(plane, self.normalization, *self.percentiles)

    @property
    def view_radius(self) -> float:
        """How far, in input pixels, the network sees from a pixel: half its receptive field."""
        depth = (self.info.get("network") or {}).get("depth")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            depth = DEFAULT_DEPTH
        return receptive_field(depth) / 2

    @property
    def pad_multiple(self) -> int:
        """Tile sides must be multiples of this (``2 ** depth`` of the U-Net)."""
        network = self.info.get("network") or {}
        multiple, depth = network.get("pad_multiple"), network.get("depth")
        if isinstance(multiple, int) and multiple >= 1:
            return multiple
        if isinstance(depth, int) and depth >= 0:
            return 2 ** depth
        return _DEFAULT_PAD_MULTIPLE


def load_model(path: str | os.PathLike) -> SegmentationModel:
    """Load a ``.keras`` model and its JSON sidecar.

    Raises
    ------
    ModelLoadError
        The file is missing, not a Keras archive, cannot be deserialised, or its sidecar
        is missing or describes different outputs than this version reads.
    """
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".keras")
    try:
        info = check_model_file(path)
    except ModelFileError as exc:
        raise ModelLoadError(str(exc)) from None

    import keras

    try:  # registers the training losses/metrics, should a saved model refer to them
        import napari_synthseg.model.losses  # noqa: F401
    except ImportError:
        pass
    try:
        keras_model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad archive; name the file instead
        raise ModelLoadError(f"cannot load model {path}: {type(exc).__name__}: {exc}. "
                             "The file may be corrupt or from an incompatible Keras; retrain the model") from exc
    n_in = keras_model.inputs[0].shape[-1] if getattr(keras_model, "inputs", None) else None
    n_out = keras_model.outputs[0].shape[-1] if getattr(keras_model, "outputs", None) else None
    if n_out is not None and n_out != len(CHANNELS) or n_in not in (None, 1):
        raise ModelLoadError(f"model {path} takes {n_in} input and gives {n_out} output channels; a "
                             f"napari-synthseg model takes 1 (gray) and gives {len(CHANNELS)} "
                             f"({', '.join(CHANNELS)}). The files do not belong together; retrain the model")
    return SegmentationModel(keras_model=keras_model, info=info, path=path)


def _as_model(model) -> SegmentationModel:
    if isinstance(model, SegmentationModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise TypeError(f"model must be a path to a .keras file or a SegmentationModel, got {type(model).__name__}")


def _pad_to_multiple(plane: np.ndarray, multiple: int, margin: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Reflect-pad by ``margin`` on every side, then at the end up to a multiple of ``multiple``.

    The margin gives pixels at the image border some context instead of a tile edge.
    Returns the padded plane and the slices that recover the original.
    """
    pads = []
    for size in plane.shape:
        total = size + 2 * margin
        extra = (-total) % multiple
        pads.append((margin, margin + extra))
    mode = "reflect" if min(plane.shape) > 1 else "edge"
    padded = np.pad(plane, pads, mode=mode)
    crop = tuple(slice(before, before + size) for (before, _), size in zip(pads, plane.shape))
    return padded, crop


def _run_batch(keras_model, batch: np.ndarray) -> np.ndarray:
    out = keras_model.predict_on_batch(batch)
    if isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out, dtype=np.float32)


def predict_probabilities(model: SegmentationModel, plane: np.ndarray, *, tile: int = _DEFAULT.tile,
                          overlap: int | None = _DEFAULT.overlap, batch_size: int = _DEFAULT.batch_size,
                          precision: str = _DEFAULT.precision, value_range: tuple[float, float] | None = None,
                          on_batch: Callable[[int], None] | None = None,
                          augment: bool = _DEFAULT.augment) -> np.ndarray:
    """Blended ``(H, W, 3)`` float32 probabilities of one 2D gray plane.

    ``on_batch(n)`` is called after each batch with the number of tiles it held.
    ``precision``: see ``SegmentationModel.compute_model``. ``value_range``: the
    intensities mapped to 0 and 1, when the plane is a piece of a bigger image whose
    range was taken over the whole (default: ``model.value_range(plane)``).
    ``augment``: average over the flips and transposes of the plane (``SYMMETRIES``).
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"predict_probabilities takes one 2D plane, got shape {plane.shape}")
    network = model.compute_model(precision)
    plane = finite_plane(plane)
    if value_range is None:
        value_range = model.value_range(plane)
    normalized = percentile_normalize(plane, value_range=value_range)
    multiple = model.pad_multiple
    tile = _round_tile(tile, multiple)
    overlap = _round_overlap(overlap, multiple, tile)
    symmetries = SYMMETRIES if augment else SYMMETRIES[:1]
    total = None
    for symmetry in symmetries:
        view = np.ascontiguousarray(_apply_symmetry(normalized, symmetry))
        prob = _apply_symmetry(_tiled_probabilities(network, view, multiple, tile, overlap, batch_size, on_batch),
                               symmetry, inverse=True)
        total = np.array(prob) if total is None else np.add(total, prob, out=total)
    if len(symmetries) > 1:
        total /= len(symmetries)
    return np.ascontiguousarray(np.clip(total, 0.0, 1.0))


def finite_plane(plane: np.ndarray) -> np.ndarray:
    """The plane with NaN/inf (masked or saturated pixels) set to the median of the rest: they would spread
    through every convolution."""
    if np.issubdtype(plane.dtype, np.floating) and not np.isfinite(plane).all():
        finite = np.isfinite(plane)
        return np.where(finite, plane, np.median(plane[finite]) if finite.any() else 0.0)
    return plane


def _tiled_probabilities(network, normalized: np.ndarray, multiple: int, tile: int, overlap: int,
                         batch_size: int, on_batch) -> np.ndarray:
    padded, crop = _pad_to_multiple(normalized, multiple, margin=overlap // 2)
    tile_hw = _fitted_tile(padded.shape, tile, overlap, multiple)
    window = blend_window(tile_hw, overlap)
    acc = TiledAccumulator(padded.shape, len(CHANNELS), window)
    for slices in iter_tile_batches(padded.shape, tile_hw, overlap, batch_size):
        batch = np.stack([padded[s] for s in slices])[..., None]
        acc.add_batch(slices, _run_batch(network, batch))
        if on_batch is not None:
            on_batch(len(slices))
    return acc.result()[crop]


def _round_tile(tile: int, multiple: int) -> int:
    if int(tile) != tile or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    return max(multiple, int(np.ceil(tile / multiple)) * multiple)


def _round_overlap(overlap: int | None, multiple: int, tile: int) -> int:
    # A multiple of 2**depth keeps every tile on the same pooling grid as the whole image,
    # so tiles see exactly what an untiled pass would (up to their edges).
    if overlap is None:  # the default, kept below a quarter of small tiles
        overlap = min(DEFAULT_OVERLAP, tile // 4 // multiple * multiple)
    if int(overlap) != overlap or overlap < 0:
        raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
    rounded = int(np.ceil(overlap / multiple)) * multiple
    if rounded >= tile:
        raise ValueError(f"overlap ({overlap}, rounded to {rounded} for the network's 2**depth grid) must be "
                         f"smaller than the tile ({tile}); lower the overlap or raise the tile")
    return rounded


def _fitted_tile(padded_shape, tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """Tile shape sharing each padded side evenly among the fewest tiles of at most ``tile``."""
    return tuple(fit_tile(size, tile, overlap, multiple) for size in padded_shape[:2])


def _padded_shape(shape, multiple: int, margin: int) -> tuple[int, int]:
    return tuple(s + 2 * margin + ((-(s + 2 * margin)) % multiple) for s in shape)


def predict(model, image, *, tile: int = _DEFAULT.tile, overlap: int | None = _DEFAULT.overlap,
            batch_size: int = _DEFAULT.batch_size, threshold: float = _DEFAULT.threshold,
            min_area: int = _DEFAULT.min_area, fill_holes: bool = _DEFAULT.fill_holes,
            return_probabilities: bool = False, progress: Callable[[int, int], None] | None = None,
            method: str = _DEFAULT.method, fill_contours: bool = _DEFAULT.fill_contours,
            precision: str = _DEFAULT.precision, rgb: bool | None = None,
            min_confidence: float = _DEFAULT.min_confidence, augment: bool = _DEFAULT.augment,
            ignore_box=_DEFAULT.ignore_box, drop_overlays: bool = _DEFAULT.drop_overlays,
            max_shrink: float = _DEFAULT.max_shrink, on_view: Callable[[ViewChoice], None] | None = None):
    """Segment a 2D image or a stack into uint32 instance labels at full resolution.

    Parameters
    ----------
    model
        A ``SegmentationModel`` or the path of a ``.keras`` model (with its sidecar).
    image
        ``(Y, X)`` gray, ``(Y, X, 3|4)`` RGB(A), or a stack ``(..., Y, X)`` (processed plane
        by plane); any dtype (normalised by percentiles per plane).
    tile, overlap, batch_size, threshold, min_area, fill_holes, method, fill_contours
        Settings, as ``PredictionParams`` describes them (``predict(model, image,
        **params.as_dict())`` segments with a ``PredictionParams``).
    precision, min_confidence, augment, ignore_box, drop_overlays, max_shrink
        Settings, as ``PredictionParams`` describes them (``max_shrink``: each plane is also
        segmented shrunk by halves down to ``1 / max_shrink``; ``shrunk_probabilities``).
    return_probabilities
        Also return the ``(..., Y, X, 3)`` float32 probabilities.
    progress
        ``progress(done_tiles, total_tiles)`` after each batch.
    on_view
        ``on_view(choice)`` with each plane's ``views.ViewChoice`` (the zoom kept, every view's confidence).
    rgb
        Whether the last axis is colour; ``None`` guesses (last axis of 3 or 4).

    Returns
    -------
    labels or (labels, probabilities)
        Labels have the image's spatial shape; ids are unique across a stack.
    """
    params = PredictionParams(tile=tile, overlap=overlap, batch_size=batch_size, threshold=threshold,
                              min_area=min_area, fill_holes=fill_holes, method=method, fill_contours=fill_contours,
                              precision=precision, min_confidence=min_confidence, augment=augment,
                              ignore_box=ignore_box, drop_overlays=drop_overlays, max_shrink=max_shrink)
    gray = gray_planes(image, rgb)
    model = _as_model(model)
    model.compute_model(params.precision)  # checks the precision before any work
    multiple = model.pad_multiple
    tile = _round_tile(params.tile, multiple)
    overlap = _round_overlap(params.overlap, multiple, tile)
    planes = iter_planes(gray.shape)
    tiles = sum(_count_tiles(zoomed_shape(gray.shape[-2:], factor), tile, overlap, multiple, params.augment)
                for factor in shrink_candidates(gray.shape[-2:], params.max_shrink)) * len(planes)
    on_batch = _tile_counter(progress, tiles)
    instance_params = {key: getattr(params, key) for key in _INSTANCE_KEYWORDS}
    labels = np.zeros(gray.shape, dtype=np.uint32)
    probabilities = np.zeros(gray.shape + (len(CHANNELS),), dtype=np.float32) if return_probabilities else None

    def plane_labels():
        for index in planes:
            prob, plane_labels_ = _segment_plane(model, gray[index], params, (tile, overlap), on_batch, instance_params,
                                                 on_view)
            if probabilities is not None:
                probabilities[index] = prob
            yield index, plane_labels_

    stack_planes(labels, plane_labels())
    if return_probabilities:
        return labels, probabilities
    return labels


def _segment_plane(model, plane: np.ndarray, params: PredictionParams, tiling: tuple[int, int], on_batch,
                   instance_params: dict, on_view=None) -> tuple[np.ndarray, np.ndarray]:
    """One plane's probabilities (``shrunk_probabilities``) and instances."""
    tile, overlap = tiling
    plane = finite_plane(np.asarray(plane))
    box = resolve_ignore_box(plane, params.ignore_box)

    def probabilities(image: np.ndarray, value_range) -> np.ndarray:
        return predict_probabilities(model, image, tile=tile, overlap=overlap, batch_size=params.batch_size,
                                     precision=params.precision, value_range=value_range, on_batch=on_batch,
                                     augment=params.augment)

    prob, choice, coarser = surest_view(model, plane, params.max_shrink, box, probabilities)
    if on_view is not None:
        on_view(choice)
    cut_box(prob[..., 0], box)
    labels = probabilities_to_instances(prob, **instance_params, drawn_on=plane if params.drop_overlays else None)
    sure = sure_foreground(prob, params.threshold, params.min_confidence)
    return prob, fill_from_smaller_views(labels, plane, box, choice, coarser, model.view_radius, sure)


#: ``PredictionParams`` settings that ``probabilities_to_instances`` takes.
_INSTANCE_KEYWORDS = ("threshold", "min_area", "fill_holes", "method", "fill_contours", "min_confidence")


def _count_tiles(plane_shape, tile: int, overlap: int, multiple: int, augment: bool) -> int:
    """Network tiles for one plane (a transposed plane has its tile grid transposed: as many)."""
    padded = _padded_shape(plane_shape, multiple, overlap // 2)
    views = len(SYMMETRIES) if augment else 1
    return count_tiles(padded, _fitted_tile(padded, tile, overlap, multiple), overlap) * views


def _tile_counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None]:
    """An ``on_batch(n)`` that adds up the tiles done and tells ``progress(done, total)``."""
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    return on_batch
