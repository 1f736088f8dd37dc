"""Overlapping tiles and smooth blending for full-resolution prediction (pure core).

A big image is cut into overlapping tiles of one shape (so they batch), each tile's
prediction is weighted by a window that falls smoothly towards the tile's edges, and the
weighted predictions are summed and divided by the summed weights. Where two tiles
overlap, their raised-cosine ramps add up to one, so there is no seam; the outer quarter
of each overlap (where a network sees padding instead of context) counts almost nothing,
so with an overlap of about four receptive-field radii tiled and untiled predictions agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

TileSlice = tuple[slice, slice]


def _check_tile(tile: int, overlap: int) -> tuple[int, int]:
    if int(tile) != tile or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    if int(overlap) != overlap or overlap < 0:
        raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile}); lower it or use a bigger tile")
    return int(tile), int(overlap)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    Tiles step by ``tile - overlap``; the last one is placed flush with the end (so it may
    overlap its neighbour by more). ``length <= tile`` gives ``[0]`` (one tile, which the
    caller pads or crops).
    """
    tile, overlap = _check_tile(tile, overlap)
    if int(length) != length or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    length = int(length)
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


#: Weight of the outermost quarter of the overlap: tiny, but > 0 so every pixel is covered.
EDGE_WEIGHT = 1e-4


def _ramp(size: int, overlap: int) -> np.ndarray:
    """1D weights over ``overlap`` samples at both ends, 1 inside.

    The outer quarter of the overlap gets ``EDGE_WEIGHT`` (there a network sees the tile's
    zero padding instead of the image), the middle half rises as a raised cosine, so the
    rises of two tiles overlapping by exactly ``overlap`` sum to one.
    """
    ramp_len = min(overlap, size // 2)
    weights = np.ones(size, dtype=np.float64)
    if ramp_len > 0:
        # t = (i + 1) / (ramp_len + 1) is symmetric about the overlap's middle, which makes
        # rise(t) + rise(1 - t) = 1.
        t = np.arange(1, ramp_len + 1) / (ramp_len + 1)
        u = np.clip((t - 0.25) / 0.5, 0.0, 1.0)
        rise = np.maximum(0.5 - 0.5 * np.cos(np.pi * u), EDGE_WEIGHT)
        weights[:ramp_len] = rise
        weights[size - ramp_len:] = rise[::-1]
    return weights


def blend_window(tile_shape: Sequence[int], overlap: int) -> np.ndarray:
    """Separable smooth weights for one tile, float32 of shape ``tile_shape``, all > 0.

    Parameters
    ----------
    tile_shape
        ``(height, width)`` of the tile.
    overlap
        Width of the ramp at each edge (capped at half the tile): ``EDGE_WEIGHT`` over its
        outer quarter, a raised-cosine rise over its middle half, 1 beyond.
    """
    if len(tile_shape) != 2:
        raise ValueError(f"tile_shape must be (height, width), got {tuple(tile_shape)!r}")
    height, width = (int(s) for s in tile_shape)
    if height < 1 or width < 1:
        raise ValueError(f"tile_shape must be positive, got {tuple(tile_shape)!r}")
    if overlap < 0:
        raise ValueError(f"overlap must be non-negative, got {overlap!r}")
    window = np.outer(_ramp(height, int(overlap)), _ramp(width, int(overlap)))
    return window.astype(np.float32)


def fit_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """Smallest tile side (a multiple of ``multiple``) covering ``length`` with as few tiles as ``tile``.

    With ``tile`` fixed, the last tile is flush with the end and may overlap its neighbour by
    much more than ``overlap``: wasted work. Shrinking the tiles to share the length evenly
    keeps their number and removes that waste. ``length <= tile`` gives ``length``.
    """
    tile, overlap = _check_tile(tile, overlap)
    if int(multiple) != multiple or multiple < 1:
        raise ValueError(f"multiple must be a positive integer, got {multiple!r}")
    n_tiles = len(tile_starts(length, tile, overlap))
    if n_tiles == 1:
        return min(int(length), tile)
    needed = -(-(int(length) + (n_tiles - 1) * overlap) // n_tiles)
    fitted = -(-needed // int(multiple)) * int(multiple)
    return min(max(fitted, overlap + 1), tile)


def tile_shape_for(image_shape: Sequence[int], tile: int | Sequence[int]) -> tuple[int, int]:
    """Shape of every tile of an ``(H, W)`` image: ``tile`` (int or ``(th, tw)``), capped by the image."""
    height, width = (int(s) for s in image_shape[:2])
    tile_h, tile_w = (int(tile), int(tile)) if np.isscalar(tile) else (int(t) for t in tile)
    return min(tile_h, height), min(tile_w, width)


def iter_tiles(image_shape: Sequence[int], tile: int | Sequence[int], overlap: int) -> Iterator[TileSlice]:
    """Yield ``(row_slice, col_slice)`` of overlapping tiles covering an ``(H, W)`` image.

    ``tile`` is a side or ``(tile_h, tile_w)``. All tiles have the shape
    ``tile_shape_for(image_shape, tile)``, in row-major order.
    """
    if len(image_shape) < 2:
        raise ValueError(f"image_shape must be (height, width), got {tuple(image_shape)!r}")
    height, width = (int(s) for s in image_shape[:2])
    tile_h, tile_w = tile_shape_for((height, width), tile)
    for y0 in tile_starts(height, tile_h, min(overlap, tile_h - 1)):
        for x0 in tile_starts(width, tile_w, min(overlap, tile_w - 1)):
            yield slice(y0, y0 + tile_h), slice(x0, x0 + tile_w)


def count_tiles(image_shape: Sequence[int], tile: int | Sequence[int], overlap: int) -> int:
    """Number of tiles ``iter_tiles`` yields for ``image_shape``."""
    height, width = (int(s) for s in image_shape[:2])
    tile_h, tile_w = tile_shape_for((height, width), tile)
    return (len(tile_starts(height, tile_h, min(overlap, tile_h - 1)))
            * len(tile_starts(width, tile_w, min(overlap, tile_w - 1))))


def iter_tile_batches(image_shape: Sequence[int], tile: int | Sequence[int], overlap: int,
                      batch_size: int) -> Iterator[list[TileSlice]]:
    """Group ``iter_tiles`` into lists of at most ``batch_size`` slices."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch: list[TileSlice] = []
    for tile_slice in iter_tiles(image_shape, tile, overlap):
        batch.append(tile_slice)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class TiledAccumulator:
    """Sum of window-weighted tile predictions over an ``(H, W, C)`` float32 output.

    Memory is the output, one ``(H, W)`` weight map and the window, whatever the tiling.

    Parameters
    ----------
    image_shape
        ``(H, W)`` of the full image.
    channels
        Number of channels ``C`` of each prediction.
    window
        Weights of one tile (see ``blend_window``), all > 0.
    """

    def __init__(self, image_shape: Sequence[int], channels: int, window: np.ndarray):
        height, width = (int(s) for s in image_shape[:2])
        window = np.asarray(window, dtype=np.float32)
        if window.ndim != 2 or np.any(window <= 0):
            raise ValueError("window must be a 2D array of positive weights (see blend_window)")
        self.window = window
        self.output = np.zeros((height, width, int(channels)), dtype=np.float32)
        self.weight = np.zeros((height, width), dtype=np.float32)
        self._finished = False

    def add(self, tile_slice: TileSlice, prediction: np.ndarray) -> None:
        """Add one tile's ``(h, w, C)`` prediction at ``tile_slice``."""
        if self._finished:
            raise RuntimeError("result() was already taken; make a new TiledAccumulator")
        prediction = np.asarray(prediction, dtype=np.float32)
        if prediction.ndim == 2:
            prediction = prediction[..., None]
        rows, cols = tile_slice
        region = self.output[rows, cols]
        if prediction.shape != region.shape or prediction.shape[:2] != self.window.shape:
            raise ValueError(
                f"tile prediction has shape {prediction.shape}, expected {region.shape} "
                f"with window {self.window.shape}"
            )
        region += prediction * self.window[..., None]
        self.weight[rows, cols] += self.window

    def add_batch(self, tile_slices: Sequence[TileSlice], predictions: np.ndarray) -> None:
        """Add a batch ``(n, h, w, C)`` of predictions, one per slice."""
        if len(tile_slices) != len(predictions):
            raise ValueError(f"{len(tile_slices)} tile slices but {len(predictions)} predictions")
        for tile_slice, prediction in zip(tile_slices, predictions):
            self.add(tile_slice, prediction)

    def result(self) -> np.ndarray:
        """The blended ``(H, W, C)`` prediction (weighted mean); raises if a pixel was never covered.

        Divides in place (no second output-sized array); later calls return the same array.
        """
        if self._finished:
            return self.output
        if np.any(self.weight <= 0):
            missing = int(np.count_nonzero(self.weight <= 0))
            raise ValueError(f"{missing} pixels were not covered by any tile; add tiles from iter_tiles")
        out = self.output
        out /= self.weight[..., None]
        self._finished = True
        return out
