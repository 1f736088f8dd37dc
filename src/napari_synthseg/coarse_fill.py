"""Objects larger than the network's view, filled from coarser views of the plane (pure core).

Inside an object wider than its receptive field the network sees no outline, only the object's own
flat inside, and a full-size view often calls that inside background: a large grain comes out as
its rim. A shrunk view of the plane sees such an object whole. ``fill_from_coarse_views`` keeps the
full-size view's objects and outlines and adds, to each object wider than the network's view, the
unlabelled pixels of its convex hull that a coarser view calls foreground and whose gray level is
nearer the coarse object's than the background's around it. ``add_from_coarse_views`` takes, from a
coarser view, a whole object wider than the network's view that the full-size view outlined only in
pieces or not at all (a flat mid-gray grain); its pieces join it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .relabel import renumber_kept

#: Width, in pixels, of the band around a coarse object whose gray level stands for the background.
BACKGROUND_BAND_PX = 8
#: Gaussian smoothing (pixels) of the gray levels compared, so that noise does not pick pixels one by one.
GRAY_SMOOTHING_PX = 2.0
#: A coarse object of which the finer view labelled less than this share is one it did not see whole.
MAX_SEEN_SHARE = 0.5
#: A finer object lying at least this share inside a coarse object is a piece of it; one reaching further out is a
#: neighbour that the coarse view blurred into it, and that coarse object is left alone.
PIECE_INSIDE_SHARE = 0.8
#: At least this share of a coarse object must have its inside's gray (not the background's) to be taken.
MIN_TAKEN_SHARE = 0.5
#: A coarse object the finer view did not see is taken only when the gray of its core (``BACKGROUND_BAND_PX`` inside
#: its outline, off a rim) differs from the background's around it by this many times the background's own spread
#: (a robust standard deviation): an object's typical pixel is unusual for the ground; else it is blur.
MIN_STEP_IN_SPREADS = 1.0


def fill_from_coarse_views(labels: np.ndarray, coarse_views: Sequence[np.ndarray], gray: np.ndarray,
                           reach: float) -> tuple[np.ndarray, int]:
    """Fill objects wider than the network's view from coarser views' foreground.

    Parameters
    ----------
    labels
        ``(Y, X)`` instance labels from the finer view (0 background); not changed.
    coarse_views
        ``(Y, X)`` bool masks, finest first: where each coarser view, brought back to the plane's grid,
        calls foreground.
    gray
        ``(Y, X)`` gray plane the labels were segmented from (finite values).
    reach
        How far, in the plane's pixels, the finer view's network sees from a pixel (half its
        receptive field, divided by the view's zoom). Only objects whose convex hull holds a disc of
        a larger radius are filled: inside a smaller one the network saw an outline.

    Returns
    -------
    labels, added
        The filled labels (a copy when anything was added) and the number of pixels added.
    """
    labels, views = _checked_planes(labels, coarse_views, gray)
    wide = [(index + 1, box) for index, box in enumerate(ndi.find_objects(labels))
            if box is not None and min(s.stop - s.start for s in box) > 2 * reach]
    if not wide or not views:
        return labels, 0
    from skimage.morphology import convex_hull_image

    hulls = [(label, box, hull) for label, box in wide
             if _inscribed_radius(hull := convex_hull_image(labels[box] == label), reach) > reach]
    if not hulls:
        return labels, 0
    smooth = ndi.gaussian_filter(np.asarray(gray, dtype=np.float32), GRAY_SMOOTHING_PX)
    filled, added = labels, 0
    for view in views:
        coarse, _ = ndi.label(view)
        boxes, levels = ndi.find_objects(coarse), {}
        for label, box, hull in hulls:
            under = coarse[box][labels[box] == label]
            component = int(np.bincount(under).argmax())
            if component == 0:
                continue  # this view does not see the object
            if component not in levels:
                levels[component] = _object_and_background_levels(coarse, component, boxes[component - 1],
                                                                  filled, smooth)
            if levels[component] is None:
                continue
            inside, outside, _ = levels[component]
            local = smooth[box]
            take = (hull & (filled[box] == 0) & (coarse[box] == component)
                    & (np.abs(local - inside) < np.abs(local - outside)))
            if take.any():
                if filled is labels:
                    filled = labels.copy()
                filled[box][take] = label
                added += int(take.sum())
    return filled, added


def add_from_coarse_views(labels: np.ndarray, coarse_views: Sequence[np.ndarray], gray: np.ndarray,
                          reach: float, seen: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Add the objects wider than the network's view that a coarser view sees whole and the finer view
    outlined only in pieces, or not at all.

    A coarse object (a connected region of a coarser view's foreground) is taken when its inscribed disc
    is wider than ``reach`` (the finer view could not see across it), the finer view saw less than
    ``MAX_SEEN_SHARE`` of it (``seen``), and every finer object touching it lies at least ``PIECE_INSIDE_SHARE``
    inside it (pieces, not neighbours), and the gray of its core (``BACKGROUND_BAND_PX`` inside its outline)
    stands out of the background's around it (``MIN_STEP_IN_SPREADS``). Its pixels whose smoothed gray is
    nearer its core's than the background's (at least ``MIN_TAKEN_SHARE`` of it, and no more than the largest object of
    ``labels``: one of the kind the finer view finds, not a support) and its pieces become one new object.

    Parameters
    ----------
    labels, coarse_views, gray, reach
        As for :func:`fill_from_coarse_views`.
    seen
        ``(Y, X)`` bool: where the finer view was sure of foreground (default: ``labels > 0``). What it was sure
        of and the instance step left out (a drawn bar, the support) is never taken back.

    Returns
    -------
    labels, added
        The labels (a copy numbered 1..n when anything was added, the taken objects last) and the number
        of objects added.
    """
    labels, views = _checked_planes(labels, coarse_views, gray)
    seen = labels > 0 if seen is None else np.asarray(seen, dtype=bool)
    if seen.shape != labels.shape:
        raise ValueError(f"seen {seen.shape} must be the labels' plane {labels.shape}")
    if not views or not labels.any():
        return labels, 0
    sizes = np.bincount(labels.ravel())
    largest = int(sizes[1:].max())
    out, added, smooth = labels, 0, None
    for view in views:
        coarse, _ = ndi.label(view)
        for component, box in enumerate(ndi.find_objects(coarse), start=1):
            if box is None or min(s.stop - s.start for s in box) <= 2 * reach:
                continue
            mine = coarse[box] == component
            area = int(mine.sum())
            pieces = _pieces_inside(out[box][mine], seen[box][mine], sizes)
            if pieces is None or _inscribed_radius(mine, reach) <= reach:
                continue
            if smooth is None:
                smooth = ndi.gaussian_filter(np.asarray(gray, dtype=np.float32), GRAY_SMOOTHING_PX)
            levels = _object_and_background_levels(coarse, component, box, out, smooth, core=True)
            if levels is None or abs(levels[0] - levels[1]) <= MIN_STEP_IN_SPREADS * levels[2]:
                continue
            inside, outside, _ = levels
            local = smooth[box]
            take = mine & (np.abs(local - inside) < np.abs(local - outside))
            if not MIN_TAKEN_SHARE * area <= take.sum() <= largest:
                continue
            if out is labels:
                out = labels.copy()
            new = out.max() + 1
            if pieces.size:
                out[np.isin(out, pieces)] = new
            region = out[box]
            region[take & (region == 0)] = new
            sizes = np.bincount(out.ravel())
            added += 1
    return (renumber_kept(out, sizes > 0) if added else out), added


def _checked_planes(labels, coarse_views, gray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``labels`` as an array and the coarse views that call anything foreground, as bool masks; a ValueError
    naming the shapes when they are not 2D planes of one shape."""
    labels = np.asarray(labels)
    views = [np.asarray(view, dtype=bool) for view in coarse_views]
    if labels.ndim != 2 or np.shape(gray) != labels.shape or any(view.shape != labels.shape for view in views):
        raise ValueError(f"labels {labels.shape}, gray {np.shape(gray)} and the coarse views "
                         f"{[view.shape for view in views]} must be 2D planes of one shape")
    return labels, [view for view in views if view.any()]


def _pieces_inside(under: np.ndarray, seen: np.ndarray, sizes: np.ndarray) -> np.ndarray | None:
    """Ids of the finer objects under a coarse object (``under``: the labels on its pixels; ``seen``: where the
    finer view was sure of foreground; ``sizes``: every object's pixel count), when the finer view saw less
    than ``MAX_SEEN_SHARE`` of it and each lies at least ``PIECE_INSIDE_SHARE`` inside it; else None (the finer
    view saw it, or a neighbour reaches in)."""
    if np.count_nonzero(seen | (under > 0)) >= MAX_SEEN_SHARE * under.size:
        return None
    counts = np.bincount(under, minlength=sizes.size)
    ids = np.flatnonzero(counts[1:]) + 1
    if np.any(counts[ids] < PIECE_INSIDE_SHARE * sizes[ids]):
        return None
    return ids


def _inscribed_radius(mask: np.ndarray, reach: float) -> float:
    """Radius of the largest disc inside ``mask`` (the box's edge counts as outside), to within a
    twelfth of ``reach``: measured on every ``step``-th pixel, which is all a comparison with it needs."""
    step = max(1, int(reach // 12))
    return step * float(ndi.distance_transform_edt(np.pad(mask[::step, ::step], 1)).max())


def _object_and_background_levels(coarse: np.ndarray, component: int, box: tuple[slice, slice],
                                  labels: np.ndarray, smooth: np.ndarray, core: bool = False
                                  ) -> tuple[float, float, float] | None:
    """Median smoothed gray inside a coarse object (``box``: its bounding box; ``core``: ``BACKGROUND_BAND_PX``
    or more inside its outline) and in the unlabelled band around it, and the band's robust spread (1.4826
    times its median absolute deviation); None: no band."""
    band = BACKGROUND_BAND_PX
    box = tuple(slice(max(0, s.start - band), s.stop + band) for s in box)
    inside = coarse[box] == component
    around = ndi.maximum_filter(inside, size=2 * band + 1) & ~inside & (labels[box] == 0) & (coarse[box] == 0)
    if not around.any():
        return None
    local = smooth[box]
    ground = local[around]
    outside = float(np.median(ground))
    if core:  # away from the outline, where a rim or the blur of the coarse outline pulls it to the ground
        eroded = ndi.binary_erosion(inside, iterations=band)
        inside = eroded if eroded.any() else inside
    level = float(np.median(local[inside]))
    return level, outside, 1.4826 * float(np.median(np.abs(ground - outside)))


__all__ = ["BACKGROUND_BAND_PX", "GRAY_SMOOTHING_PX", "MAX_SEEN_SHARE", "MIN_TAKEN_SHARE", "PIECE_INSIDE_SHARE",
           "add_from_coarse_views", "fill_from_coarse_views"]
