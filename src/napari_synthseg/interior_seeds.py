"""Which interiors of the foreground seed an object of their own (pure core).

``instances`` splits touching objects between interiors, the pixels the network is sure are not on an
outline. A small interior next to a much larger one is usually texture inside one particle, and is dropped;
it still seeds an object where the network shows a particle of its own there: a peak of the inner distance,
or an outline drawn all round it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: An interior under this share of the largest interior of its blob seeds nothing: a spot of
#: texture inside a large particle is not a second particle (scale-free, unlike a pixel count).
DEFAULT_MIN_SEED_SHARE = 0.1
#: ...unless the predicted inner distance has a peak of its own in it, standing this much (of the 0-1
#: scale) above the saddle to its neighbour: the centre of a small particle touching a large one, not a
#: spot of texture inside it (issue 18; docs/benchmarks.md, "Small particles touching large ones").
DEFAULT_MIN_SEED_PROMINENCE = 0.4
#: ...or when the predicted boundary walls it off: every path from it to another interior crosses a
#: boundary probability of at least this. The network outlined it all round; texture inside a particle
#: is seldom outlined so surely (issue 18; chosen on dev_emps' tune half, where 0.6 cut a film into
#: confident pieces: docs/benchmarks.md, "Small interiors walled off by the predicted boundary").
DEFAULT_MIN_SEED_WALL = 0.7

_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)
_EIGHT_CONNECTED = ndi.generate_binary_structure(2, 2)


def seeding_interiors(interiors: np.ndarray, foreground: np.ndarray, boundary: np.ndarray, *,
                      min_share: float = DEFAULT_MIN_SEED_SHARE, distance: np.ndarray | None = None,
                      min_prominence: float | None = DEFAULT_MIN_SEED_PROMINENCE,
                      min_wall: float | None = DEFAULT_MIN_SEED_WALL) -> np.ndarray:
    """``interiors`` (labelled) without those that seed no object of their own (0 there).

    Parameters
    ----------
    interiors, foreground, boundary
        Labelled interiors, the foreground mask and the boundary probability, all ``(H, W)``.
    min_share
        An interior under this share of the largest interior of its foreground blob is dropped (0 keeps all)...
    distance, min_prominence
        ...unless the smoothed ``distance`` peaks in it ``min_prominence`` above its highest pass to a
        neighbouring interior's basin (needs ``distance``; ``None``: not this way)...
    min_wall
        ...or every path through the foreground from it to another interior crosses a ``boundary`` of at
        least ``min_wall`` (``None``: not this way).
    """
    if min_share <= 0:
        return interiors
    blobs, n_blobs = ndi.label(foreground, structure=_EIGHT_CONNECTED)
    seeds = _drop_minor_seeds(interiors, blobs, n_blobs, min_share)
    dropped = (seeds == 0) & (interiors > 0)
    kept_again = np.zeros_like(dropped)
    if distance is not None and min_prominence is not None:
        kept_again |= _prominent(interiors, dropped, blobs, distance, min_prominence)
    if min_wall is not None:
        kept_again |= _walled_off(interiors, dropped & ~kept_again, foreground, boundary, min_wall)
    return np.where(kept_again, interiors, seeds)


def _drop_minor_seeds(seeds: np.ndarray, blobs: np.ndarray, n_blobs: int, min_share: float) -> np.ndarray:
    """Set seeds smaller than ``min_share`` of the largest seed in their foreground blob (``blobs``) to 0."""
    n = int(seeds.max()) if seeds.size else 0
    if n == 0:
        return seeds
    areas = np.bincount(seeds.ravel(), minlength=n + 1)
    blob_of_seed = np.zeros(n + 1, dtype=np.int64)
    inside = seeds > 0
    blob_of_seed[seeds[inside]] = blobs[inside]  # seeds lie inside the foreground: one blob each
    largest = np.zeros(n_blobs + 1, dtype=np.int64)
    np.maximum.at(largest, blob_of_seed[1:], areas[1:])
    minor = areas < min_share * largest[blob_of_seed]
    minor[0] = False
    if not minor.any():
        return seeds
    return np.where(minor[seeds], 0, seeds)


def _prominent(seeds: np.ndarray, dropped: np.ndarray, blobs: np.ndarray, distance: np.ndarray,
               min_prominence: float) -> np.ndarray:
    """Pixels of the ``dropped`` seeds in which ``distance`` peaks ``min_prominence`` above its saddles.

    The (smoothed) distance is flooded from every seed of the blobs holding a dropped one; a seed's
    saddle is the highest pass to a neighbouring basin, its prominence its peak less that saddle.
    """
    candidates = dropped & (seeds > 0)
    if not candidates.any():
        return candidates
    from skimage.segmentation import watershed

    region = np.isin(blobs, np.unique(blobs[candidates]))
    box = ndi.find_objects(region.astype(np.int8))[0]
    inside, ids = region[box], np.where(region[box], seeds[box], 0)
    # smoothed so that pixel noise on a flat top is not a peak of its own
    height = ndi.gaussian_filter(np.asarray(distance, dtype=np.float32)[box], 1.0)
    basins = watershed(-height, markers=ids, mask=inside, connectivity=1)
    n = int(seeds.max())
    peak = np.zeros(n + 1)
    np.maximum.at(peak, ids[ids > 0], height[ids > 0])
    saddle = np.zeros(n + 1)
    for here, there, h_here, h_there in ((basins[:, :-1], basins[:, 1:], height[:, :-1], height[:, 1:]),
                                         (basins[:-1], basins[1:], height[:-1], height[1:])):
        across = (here > 0) & (there > 0) & (here != there)
        passes = np.minimum(h_here[across], h_there[across])
        np.maximum.at(saddle, here[across], passes)
        np.maximum.at(saddle, there[across], passes)
    keep = peak - saddle >= min_prominence
    keep[0] = False
    return candidates & keep[seeds]


def _walled_off(seeds: np.ndarray, candidates: np.ndarray, foreground: np.ndarray, boundary: np.ndarray,
                min_wall: float) -> np.ndarray:
    """Pixels of the ``candidates`` seeds that the ``boundary`` map walls off from every other seed.

    A seed is walled off when no path through the foreground reaches another seed without crossing a
    boundary probability of at least ``min_wall``: its region of lower boundary holds no other seed.
    """
    if not candidates.any():
        return candidates
    inside = seeds > 0
    low, n_low = ndi.label(foreground & ((boundary < min_wall) | inside), structure=_FOUR_CONNECTED)
    # a seed is connected, so it lies in one region of lower boundary
    region_of = np.zeros(int(seeds.max()) + 1, dtype=np.int64)
    region_of[seeds[inside]] = low[inside]
    present = region_of > 0
    seeds_in_region = np.bincount(region_of[present], minlength=n_low + 1)
    alone = present & (seeds_in_region[region_of] == 1)
    return candidates & alone[seeds]
