"""Regions that are the support a sample lies on, not a particle (pure core).

A network trained on a folder's own auto-segmentation can call the carbon film, the matrix or the
polished section one object when its texture or shade sets it apart from a clean background. Such a
region is large and does not differ in gray level from what lies just outside its outline: a particle
shows a step across its edge, a support seen through texture does not. Large regions without that step
are left out. Textured particles of their surroundings' gray (seed_em's mottled ore grains) show no step
either: only a region over three tenths of the image is judged, which such a particle covers only in an
image taken at high magnification (``drop_overlays=False`` keeps it there).

What lies on a support the network may have called part of it: inside the support's outline the objects
are looked for again where the network is surer than on most of the support (``on_support``), and kept
where they show the gray step the support lacks (``standing_out``).
"""

from __future__ import annotations

from collections.abc import Callable

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
#: On a support, object is where the network's foreground is above this percentile of its values over the
#: support: the support's own texture sets the level (docs/benchmarks.md, "What lies on the support").
SUPPORT_LEVEL_PERCENTILE = 90
#: Width, in pixels, of the ring of support around an object found on it against which its gray step is
#: measured (starting one pixel off its outline).
ON_SUPPORT_RING_PX = 3
#: Supports are looked for again once those found are left out, at most this many times in all: a neighbour of
#: a support is no ground, so an object lying beside one was judged on the ground its other sides touch (none, or
#: a sliver) and may show its own step only against the support's place.
SUPPORT_PASSES = 3


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
            steps[int(i)] = _gray_step(image[inner], image[outer], high - low)
    return steps


def _gray_step(inside: np.ndarray, outside: np.ndarray, gray_range: float) -> float:
    """``|median(inside) − median(outside)|`` as a share of ``gray_range``."""
    return float(abs(np.median(inside) - np.median(outside)) / gray_range)


def _without(labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """uint32 ``labels`` without the objects ``ids``, the others renumbered 1..k in id order."""
    keep = np.ones(int(labels.max()) + 1, dtype=bool)
    keep[ids] = False
    return renumber_kept(labels, keep)


def support_ids(labels: np.ndarray, image: np.ndarray, *, min_share: float = SUBSTRATE_MIN_SHARE,
                max_step: float = SUBSTRATE_MAX_STEP) -> list[int]:
    """Ids of the objects that are the support: covering at least ``min_share`` of the image, with an
    outline step (:func:`outline_steps`) below ``max_step``."""
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share!r}")
    if not max_step > 0.0:
        raise ValueError(f"max_step must be > 0 (a share of the image's gray range), got {max_step!r}")
    return [i for i, step in outline_steps(labels, image, min_share=min_share).items() if step < max_step]


def _checked_support(support, shape: tuple[int, ...], caller: str) -> np.ndarray:
    """``support`` as a boolean mask of ``shape`` with a pixel in it, or a one-line ValueError naming ``caller``."""
    support = np.asarray(support, dtype=bool)
    if support.shape != tuple(shape):
        raise ValueError(f"{caller}: the support mask is {support.shape}, the image {tuple(shape)}; give the mask of "
                         "the same image")
    if not support.any():
        raise ValueError(f"{caller}: the support mask is empty; give the pixels of the support")
    return support


def on_support(prob: np.ndarray, support: np.ndarray, *, percentile: float = SUPPORT_LEVEL_PERCENTILE) -> np.ndarray:
    """The ``(H, W, C)`` probabilities with the foreground seen against the ``support`` mask's own level.

    The foreground's ``percentile`` over the support becomes 0.5 (linear either side, so 0 and 1 stay),
    and outside the support it is 0: what the network is surer of than of most of the support lies on it.
    The other channels are kept.
    """
    prob = np.asarray(prob, dtype=np.float32)
    support = _checked_support(support, prob.shape[:2], "on_support")
    foreground = prob[..., 0]
    level = float(np.clip(np.percentile(foreground[support], percentile), 1e-3, 1 - 1e-3))
    seen = np.where(foreground > level, 0.5 + 0.5 * (foreground - level) / (1.0 - level),
                    0.5 * foreground / level)
    out = prob.copy()
    out[..., 0] = np.where(support, seen, 0.0)
    return out


def standing_out(found: np.ndarray, support: np.ndarray, image: np.ndarray, *,
                 min_step: float = SUBSTRATE_MAX_STEP, ring: int = ON_SUPPORT_RING_PX) -> np.ndarray:
    """The objects of ``found`` lying on the ``support`` mask (nine tenths of each inside it) whose median
    gray differs from the support's in a ring around them by at least ``min_step`` of the image's gray
    range (1st to 99th percentile): a particle on a film shows the edge the film lacks. Renumbered 1..k."""
    found, image = labels_on_image(found, image, "standing_out")
    support = _checked_support(support, found.shape, "standing_out")
    low, high = np.percentile(image, [1, 99])
    n = int(found.max())
    keep = np.zeros(n + 1, dtype=bool)
    if n == 0 or not high > low:
        return renumber_kept(found, keep)
    sizes = np.bincount(found.ravel().astype(np.int64), minlength=n + 1)
    inside = np.bincount(found[support].astype(np.int64), minlength=n + 1)
    for i, box in enumerate(ndi.find_objects(found), start=1):
        if box is None or inside[i] < 0.9 * sizes[i]:
            continue
        grown = tuple(slice(max(0, b.start - ring - 1), b.stop + ring + 1) for b in box)
        mine = found[grown] == i
        around = (ndi.binary_dilation(mine, iterations=ring + 1) & ~ndi.binary_dilation(mine)
                  & support[grown] & (found[grown] == 0))
        if around.sum() >= 5:  # else nothing of the support to compare with
            keep[i] = _gray_step(image[grown][mine], image[grown][around], high - low) >= min_step
    return renumber_kept(found, keep)


def replace_support(labels: np.ndarray, prob: np.ndarray, image: np.ndarray,
                    segment: Callable[[np.ndarray], np.ndarray], *,
                    max_step: float = SUBSTRATE_MAX_STEP) -> tuple[np.ndarray, int, int]:
    """``labels`` with each support (:func:`support_ids`) replaced by the objects lying on it, judged again
    among what is left (:data:`SUPPORT_PASSES`: a support beside a support shows its lack of a step only then).

    Parameters
    ----------
    labels
        ``(H, W)`` integer labels numbered 1..n, made from ``prob``.
    prob
        The ``(H, W, C)`` probabilities.
    image
        The ``(H, W)`` gray image.
    segment
        Probabilities → labels (the same instance settings, without this step): run on :func:`on_support`
        of each support; its objects that are :func:`standing_out` are kept.
    max_step
        A support's outline step is below this; an object on it stands out by at least this.

    Returns
    -------
    labels, n_supports, n_found
        uint32 labels numbered 1..k (``labels`` itself when there is no support), the supports left out
        and the objects found on them.
    """
    labels, image = labels_on_image(labels, image, "replace_support")
    n_supports = n_found = 0
    for _ in range(SUPPORT_PASSES):
        support = support_ids(labels, image, max_step=max_step)
        if not support:
            break
        labels, found = _replaced(labels, support, prob, image, segment, max_step)
        n_supports, n_found = n_supports + len(support), n_found + found
    return labels, n_supports, n_found


def _replaced(labels: np.ndarray, support: list[int], prob: np.ndarray, image: np.ndarray,
              segment: Callable[[np.ndarray], np.ndarray], max_step: float) -> tuple[np.ndarray, int]:
    """``labels`` with the objects ``support`` replaced by what stands out on them, and how many objects that is."""
    out = _without(labels, support)
    found_total = 0
    for i in support:
        region = labels == i
        found = standing_out(segment(on_support(prob, region)), region, image, min_step=max_step)
        placed = (found > 0) & region  # the support's area is background in ``out`` now
        out[placed] = found[placed] + np.uint32(out.max())
        found_total += int(found.max())
    return out, found_total


__all__ = ["ON_SUPPORT_RING_PX", "SUBSTRATE_BAND_PX", "SUBSTRATE_MAX_STEP", "SUBSTRATE_MIN_SHARE",
           "SUPPORT_LEVEL_PERCENTILE", "SUPPORT_PASSES", "on_support", "outline_steps", "replace_support",
           "standing_out", "support_ids"]
