"""Resampling an image, its labels or its probabilities by a zoom factor (pure core).

The run shrinks images of large objects before training (``--object-size``), and ``predict`` tries shrunk
views of each plane (``max_shrink``); both bring the results back to the image's grid.
"""

from __future__ import annotations

import numpy as np


def zoom_image(image: np.ndarray, factor: float) -> np.ndarray:
    """Resample a 2D image by ``factor`` (area-averaged when shrinking), float32."""
    if factor == 1.0:
        return image
    from skimage.transform import rescale

    return rescale(np.asarray(image, dtype=np.float32), factor, order=1, anti_aliasing=factor < 1,
                   preserve_range=True).astype(np.float32)


def zoomed_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """The shape ``zoom_image`` gives an image of ``shape``."""
    return tuple(int(round(s * factor)) for s in shape) if factor != 1.0 else tuple(shape)


def zoom_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of labels to ``shape``."""
    labels = np.asarray(labels)
    if labels.shape == tuple(shape):
        return labels
    rows = np.minimum((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0], labels.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1], labels.shape[1] - 1).astype(int)
    return labels[np.ix_(rows, cols)]


def zoom_back(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel values of a zoomed image (``(h, w, C)``, e.g. probabilities) interpolated to ``shape``, float32."""
    from skimage.transform import resize

    return resize(values, tuple(shape) + values.shape[2:], order=1, preserve_range=True).astype(np.float32)


__all__ = ["zoom_back", "zoom_image", "zoom_labels", "zoomed_shape"]
