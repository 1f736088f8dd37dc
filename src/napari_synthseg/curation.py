"""Curation helpers: fill enclosed contours, pick objects, measure them (pure core)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

from .image_io import atomic_write

#: Columns of :func:`measure_objects` rows, in CSV order.
MEASUREMENT_COLUMNS = ("label", "plane", "area", "equivalent_diameter", "perimeter", "mean_intensity",
                       "bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col")


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


def measure_objects(labels: np.ndarray, image: np.ndarray | None = None, *,
                    plane: int | None = None, spacing: float | Sequence[float] | None = None) -> list[dict]:
    """Measure every object of a 2D label image.

    Parameters
    ----------
    labels
        2D integer labels (0 = background).
    image
        Optional 2D intensity image of the same shape for ``mean_intensity``.
    plane
        Plane index written into each row (for stacks), or None.
    spacing
        Pixel size (one number, or (row, col)); lengths and areas come out in its
        units. None: pixels.

    Returns
    -------
    list of dict
        One row per object with the keys of :data:`MEASUREMENT_COLUMNS`
        (``mean_intensity`` is None without an image; bbox in pixels, end exclusive).
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"measure_objects needs a 2D label image; got shape {labels.shape} "
                         "(measure stacks plane by plane, passing plane=)")
    if labels.dtype.kind not in "biu":
        raise TypeError(f"labels must be an integer array; got dtype {labels.dtype}")
    if image is not None:
        image = np.asarray(image)
        if image.shape != labels.shape:
            raise ValueError(f"image shape {image.shape} differs from labels shape {labels.shape}")
    if spacing is None:
        sy = sx = 1.0
    else:
        sy, sx = (float(spacing), float(spacing)) if np.isscalar(spacing) else (float(v) for v in spacing)
        if sy <= 0 or sx <= 0:
            raise ValueError(f"spacing must be positive; got {spacing!r}")
    if not labels.any():
        return []
    props = ["label", "area", "equivalent_diameter_area", "perimeter", "bbox"]
    if image is not None:
        props.append("intensity_mean")
    table = regionprops_table(labels.astype(np.int64, copy=False), intensity_image=image,
                              properties=props, spacing=(sy, sx))
    rows = []
    for k in range(len(table["label"])):
        rows.append({
            "label": int(table["label"][k]),
            "plane": plane,
            "area": float(table["area"][k]),
            "equivalent_diameter": float(table["equivalent_diameter_area"][k]),
            "perimeter": float(table["perimeter"][k]),
            "mean_intensity": float(table["intensity_mean"][k]) if image is not None else None,
            "bbox_min_row": int(table["bbox-0"][k]),
            "bbox_min_col": int(table["bbox-1"][k]),
            "bbox_max_row": int(table["bbox-2"][k]),
            "bbox_max_col": int(table["bbox-3"][k]),
        })
    return rows


def write_measurements_csv(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write measurement rows to a CSV file atomically (temporary file, then rename).

    Columns are :data:`MEASUREMENT_COLUMNS` followed by any extra keys, in first-seen order.
    """
    columns = list(MEASUREMENT_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    text = buffer.getvalue()
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
