"""Regions that are the support a sample lies on, not a particle (pure core).

A network trained on a folder's own auto-segmentation can call the carbon film, the matrix or the
polished section one object when its texture or shade sets it apart from a clean background. Such a
region is large and does not differ in gray level from what lies just outside its outline: a particle
shows a step across its edge, a support seen through texture does not. Large regions without that step
are left out. Textured particles of their surroundings' gray (seed_em's mottled ore grains) show no step
either: only a region over three tenths of the image is judged, which such a particle covers only in an
image taken at high magnification (``drop_overlays=False`` keeps it there).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .lettering import labels_on_image
from .relabel import renumber_kept

#: Only regions covering at least this share of the image are judged: smaller particles of the same
#: gray as their surroundings (told apart by texture or a thin rim) are real often enough, in dev_emps'
#: tune half and in seed_em's mottled grains; the largest share that takes every support of the tune
#: half out (docs/benchmarks.md, "The support left out").
SUBSTRATE_MIN_SHARE = 0.3
#: A region whose median gray within ``SUBSTRATE_BAND_PX`` inside its outline differs from the median
#: just outside by less than this share of the image's gray range (1st to 99th percentile) shows no edge.
SUBSTRATE_MAX_STEP = 0.12
#: Width of the bands either side of the outline, in pixels (at most a twentieth of the image's shorter
#: side); the bands start one pixel off the outline, where the blur of the edge itself lies.
SUBSTRATE_BAND_PX = 10


def outline_steps(labels: np.ndarray, image: np.ndarray, *, min_share: float = SUBSTRATE_MIN_SHARE,
                  band: int = SUBSTRATE_BAND_PX) -> dict[int, float]:
    """The gray step across the outline of every object covering at least ``min_share`` of the image.

    Parameters
    ----------
    labels
        ``(H, W)`` integer labels, 0 background.
    image
        The ``(H, W)`` gray image they outline.

    Returns
    -------
    dict
        Object id → ``|median inside − median outside|`` over bands of ``band`` pixels either side of the
        outline (away from the image's edge; outside, background pixels only: a touching neighbour is not what
        the object lies on), as a share of the image's 1st–99th percentile range. An object whose bands hold
        under ``band²`` pixels (it fills the frame, or its neighbours surround it: no outline against the
        background to judge by) is not listed, nor is any when the image is flat (no range to judge by).
    """
    labels, image = labels_on_image(labels, image, "outline_steps")
    low, high = np.percentile(image, [1, 99])
    if not high > low:
        return {}
    band = max(1, min(int(band), min(labels.shape) // 20))
    frame = np.ones(labels.shape, dtype=bool)
    frame[band:-band, band:-band] = False  # bands here would mostly measure the image's edge
    beside = ~frame & (labels == 0)  # a neighbour is no support: outside, the background only
    counts = np.bincount(labels.ravel().astype(np.int64))
    steps = {}
    for i in np.flatnonzero(counts[1:] >= min_share * labels.size) + 1:
        inside = labels == i
        depth_in = ndi.distance_transform_edt(inside)
        depth_out = ndi.distance_transform_edt(~inside)
        inner = (depth_in > 1) & (depth_in <= band + 1) & ~frame
        outer = (depth_out > 1) & (depth_out <= band + 1) & beside
        if inner.sum() >= band * band and outer.sum() >= band * band:  # else no outline in the image to judge
            steps[int(i)] = float(abs(np.median(image[inner]) - np.median(image[outer])) / (high - low))
    return steps


def drop_substrate(labels: np.ndarray, image: np.ndarray, *, min_share: float = SUBSTRATE_MIN_SHARE,
                   max_step: float = SUBSTRATE_MAX_STEP) -> tuple[np.ndarray, int]:
    """``labels`` without the objects that are the support: large, with no gray step across the outline.

    Parameters
    ----------
    labels
        ``(H, W)`` integer labels, 0 background, numbered 1..n.
    image
        The ``(H, W)`` gray image they outline.
    min_share, max_step
        An object covering at least ``min_share`` of the image whose outline step (:func:`outline_steps`)
        is below ``max_step`` is left out.

    Returns
    -------
    labels, n_dropped
        ``labels`` itself when nothing is dropped, else uint32 labels without those objects, renumbered
        1..k in id order; and how many were dropped.
    """
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share!r}")
    if not max_step > 0.0:
        raise ValueError(f"max_step must be > 0 (a share of the image's gray range), got {max_step!r}")
    labels, image = labels_on_image(labels, image, "drop_substrate")
    support = [i for i, step in outline_steps(labels, image, min_share=min_share).items() if step < max_step]
    if not support:
        return labels, 0
    keep = np.ones(int(labels.max()) + 1, dtype=bool)
    keep[support] = False
    return renumber_kept(labels, keep), len(support)


__all__ = ["SUBSTRATE_BAND_PX", "SUBSTRATE_MAX_STEP", "SUBSTRATE_MIN_SHARE", "drop_substrate", "outline_steps"]
