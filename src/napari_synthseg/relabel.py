"""Label-id bookkeeping shared by the core: renumbering through a lookup table, stacking planes.

Every path that drops objects and renumbers the rest (size filters, scene and sample making,
``relabel_consecutive``) and every path that labels a stack plane by plane (auto-segmentation,
prediction, large images, per-file results of a run) goes through these two functions, so ids
are numbered the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def renumber_kept(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``labels`` with the ids where ``keep`` is True renumbered 1..k in id order, the others 0.

    Parameters
    ----------
    labels
        Integer labels; every id must be smaller than ``keep.size``.
    keep
        Boolean array indexed by id; ``keep[0]`` (the background) is ignored.

    Returns
    -------
    numpy.ndarray
        uint32 labels of ``labels``' shape.
    """
    keep = np.asarray(keep, dtype=bool)
    kept_ids = np.flatnonzero(keep[1:]) + 1
    lookup = np.zeros(keep.size, dtype=np.uint32)
    lookup[kept_ids] = np.arange(1, kept_ids.size + 1, dtype=np.uint32)
    return np.take(lookup, labels)


def stack_planes(out: np.ndarray, planes: Iterable[tuple[tuple[int, ...], np.ndarray]], offset: int = 0) -> int:
    """Write each ``(index, labels)`` of ``planes`` into ``out[index]`` with ids unique across the stack.

    A plane's object ids are shifted past the largest id written before it (starting after
    ``offset``, e.g. the largest id of planes kept from an earlier run); background stays 0.

    Parameters
    ----------
    out
        The uint32 stack, written in place.
    planes
        ``(index into out's leading axes, 2D labels)`` pairs, in the order their ids are given.
    offset
        Largest id already used.

    Returns
    -------
    int
        The largest id in the planes written (or ``offset`` when they hold no object).
    """
    for index, labels in planes:
        labels = np.asarray(labels)
        if offset:
            labels = np.where(labels > 0, labels.astype(np.uint32) + np.uint32(offset), np.uint32(0))
        out[index] = labels
        if labels.size:
            offset = max(offset, int(labels.max()))
    return offset
