"""Curation helpers: fill enclosed contours, pick objects (pure core); measuring lives in `measure`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

# the Curate dock's measurements, kept importable from here
from .measure import measure_objects, write_measurements_csv  # noqa: F401


def _point(shape: tuple[int, ...], point: Sequence[float]) -> tuple[int, int]:
    if len(point) != 2:
        raise ValueError(f"point must be (row, col); got {tuple(point)!r}")
    row, col = (int(round(float(v))) for v in point)
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise ValueError(f"point (row {row}, col {col}) lies outside the image of shape {shape}; "
                         "click inside the image")
    return row, col


def fill_enclosed(mask: np.ndarray, background_point: Sequence[float]) -> np.ndarray:
    """Everything not reachable from a background pixel becomes object.

    Pixels reachable from ``background_point`` through non-object pixels
    (4-connectivity) stay background; object pixels and every region they enclose
    become object. One connected-component labelling, no flood fill in Python.

    Parameters
    ----------
    mask
        2D bool or label array; > 0 is object/contour.
    background_point
        ``(row, col)`` of a background pixel.

    Returns
    -------
    numpy.ndarray
        2D bool mask.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"fill_enclosed needs a 2D mask (Y, X); got shape {mask.shape}")
    row, col = _point(mask.shape, background_point)
    objects = mask > 0
    if objects[row, col]:
        raise ValueError(f"the point (row {row}, col {col}) is on an object pixel; "
                         "click a background pixel")
    regions, _ = ndi.label(~objects)  # default structure: 4-connectivity
    return regions != regions[row, col]


def label_at(labels: np.ndarray, point: Sequence[float]) -> int:
    """The label id at ``(row, col)`` of a 2D label image (0 = background)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label_at needs a 2D label image; got shape {labels.shape}")
    row, col = _point(labels.shape, point)
    return int(labels[row, col])


def toggle_picked(picked: Iterable[int], label: int) -> set[int]:
    """Return a new set with ``label`` added, or removed if it was picked; 0 changes nothing."""
    result = set(int(v) for v in picked)
    label = int(label)
    if label == 0:
        return result
    result.symmetric_difference_update({label})
    return result


def extract_picked(labels: np.ndarray, picked_ids: Iterable[int]) -> np.ndarray:
    """A copy of ``labels`` keeping only the picked ids (others become 0)."""
    labels = np.asarray(labels)
    ids = np.fromiter((int(v) for v in picked_ids), dtype=np.int64)
    return np.where(np.isin(labels, ids), labels, 0).astype(labels.dtype, copy=False)
