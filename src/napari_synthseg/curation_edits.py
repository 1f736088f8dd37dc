"""Clicks that reshape objects (pure core): split a joined object at its necks, merge a broken one.

Like the clicks of `curation`, each returns a new `Curation` (the input is never changed) and
refuses with a one-line ``ValueError`` what it cannot do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .curation import (
    ADD_MIN_AREA,
    Curation,
    _changed_counts,
    _check_labels,
    _next_id,
    _point,
    _remove_object,
    _with_object,
)

SPLIT_NECK_RATIO = 0.9
"""Neck ratio of `split_object` (see `shapes.split_at_necks`). A person who asks for a split has
said the object is several, so any waist a pixel deep will do; the automatic clump split waits
for a plain neck (`shapes.NECK_RATIO`)."""
MERGE_GAP_PX = 2
"""Gap between two pieces that `merge_objects` bridges: a predicted boundary band is 1-2 px wide."""


def _object_at(curation: Curation, labels: np.ndarray, row: int, col: int, action: str) -> tuple[np.ndarray, int]:
    """The mask of the curated object at the click, else of the predicted one, and the curated id (0 if none)."""
    curated = int(curation.objects[row, col])
    if curated:
        return curation.objects == curated, curated
    label = int(labels[row, col])
    if label == 0:
        raise ValueError(f"no object at (row {row}, col {col}) to {action}; {action} clicks inside a predicted "
                         "or curated object")
    return labels == label, 0


def _box(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    rows, cols = ndi.find_objects(mask.astype(np.int8))[0]
    return (slice(max(rows.start - pad, 0), rows.stop + pad), slice(max(cols.start - pad, 0), cols.stop + pad))


def split_object(curation: Curation, labels, point, *, neck_ratio: float = SPLIT_NECK_RATIO) -> Curation:
    """The object at ``point`` is several touching objects: split it at its necks.

    The curated object under the click, else the predicted one, is cut where it narrows
    (`shapes.split_at_necks`); each part becomes a known object (origin ``"split"``), so the
    boundaries between the parts are taught. Parts under `ADD_MIN_AREA` pixels join a neighbour.

    Raises
    ------
    ValueError
        One line, when there is no object at the click or it narrows nowhere.
    """
    from .shapes import split_at_necks

    labels = _check_labels(curation, labels)
    row, col = _point(labels.shape, point)
    mask, curated = _object_at(curation, labels, row, col, "split")
    if curated:
        curation = _remove_object(curation, curated)
    mask &= (curation.objects == 0)
    if not mask.any():
        raise ValueError(f"the object at (row {row}, col {col}) is curated already; un-pick its parts first")
    box = _box(mask, 1)
    parts, k = split_at_necks(mask[box], neck_ratio=neck_ratio, min_part_area=ADD_MIN_AREA)
    if k < 2:
        raise ValueError(f"the object at (row {row}, col {col}) narrows nowhere, so there is no neck to split it "
                         "at; reject it, or paint the parts with napari's brush and pick them")
    objects = np.array(curation.objects)
    new_id = _next_id(objects)
    sub = objects[box]
    sub[parts > 0] = parts[parts > 0] + (new_id - 1)
    origins = dict(curation.origins)
    origins.update({new_id + i: "split" for i in range(k)})
    return curation._with(objects, curation.background & ~(objects > 0), _changed_counts(curation.counts, split=k),
                          origins)


def merge_objects(curation: Curation, labels, points: Sequence) -> Curation:
    """The objects at ``points`` (two or more) are pieces of one object: join them.

    Curated objects under a click are taken whole (and leave the curation), else the predicted
    objects; a gap of up to `MERGE_GAP_PX` pixels between the pieces (the boundary the model
    drew) and the holes they enclose join the object, never another object or known background.

    Raises
    ------
    ValueError
        One line, when a click finds no object, the clicks fall on one object, or the pieces
        lie too far apart to touch.
    """
    labels = _check_labels(curation, labels)
    if len(points) < 2:
        raise ValueError(f"merge needs the clicks on two or more pieces; got {len(points)}")
    pieces, keys = [], set()
    for point in points:
        row, col = _point(labels.shape, point)
        mask, curated = _object_at(curation, labels, row, col, "merge")
        key = ("curated", curated) if curated else ("predicted", int(labels[row, col]))
        if key not in keys:
            keys.add(key)
            pieces.append((mask, curated))
    if len(pieces) < 2:
        raise ValueError("the clicks fall on one object; click two pieces of the object to merge them")
    union = np.zeros(labels.shape, bool)
    for mask, curated in pieces:
        union |= mask
        if curated:
            curation = _remove_object(curation, curated)
    union &= curation.objects == 0
    if not union.any():
        raise ValueError("the pieces are curated already; un-pick them first")
    allowed = (curation.objects == 0) & ~curation.background & ((labels == 0) | union)
    box = _box(union, MERGE_GAP_PX + 1)
    bridged = ndi.binary_closing(np.pad(union[box], MERGE_GAP_PX + 1), structure=np.ones((3, 3), bool),
                                 iterations=MERGE_GAP_PX)
    bridged = bridged[(slice(MERGE_GAP_PX + 1, -(MERGE_GAP_PX + 1)),) * 2]
    joined = ndi.binary_fill_holes(bridged | union[box]) & allowed[box]
    _, n = ndi.label(joined, structure=np.ones((3, 3), bool))
    if n > 1:
        raise ValueError(f"the pieces lie more than {MERGE_GAP_PX} px apart, so they do not make one object; "
                         "merge pieces that touch, or paint the gap and pick the object")
    region = np.zeros(labels.shape, bool)
    region[box] = joined
    return _with_object(curation, region, "merge")
