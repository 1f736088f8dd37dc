"""Objects larger than the network's view, filled from coarser views of the plane (pure core).

Inside an object wider than its receptive field the network sees no outline, only the object's own
flat inside, and a full-size view often calls that inside background: a large grain comes out as
its rim. A shrunk view of the plane sees such an object whole. ``fill_from_coarse_views`` keeps the
full-size view's objects and outlines and adds, to each object wider than the network's view, the
unlabelled pixels of its convex hull that a coarser view calls foreground and whose gray level is
nearer the coarse object's than the background's around it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

#: Width, in pixels, of the band around a coarse object whose gray level stands for the background.
BACKGROUND_BAND_PX = 8
#: Gaussian smoothing (pixels) of the gray levels compared, so that noise does not pick pixels one by one.
GRAY_SMOOTHING_PX = 2.0


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
    labels = np.asarray(labels)
    views = [np.asarray(view, dtype=bool) for view in coarse_views]
    if labels.ndim != 2 or np.shape(gray) != labels.shape or any(view.shape != labels.shape for view in views):
        raise ValueError(f"labels {labels.shape}, gray {np.shape(gray)} and the coarse views "
                         f"{[view.shape for view in views]} must be 2D planes of one shape")
    views = [view for view in views if view.any()]
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
            inside, outside = levels[component]
            local = smooth[box]
            take = (hull & (filled[box] == 0) & (coarse[box] == component)
                    & (np.abs(local - inside) < np.abs(local - outside)))
            if take.any():
                if filled is labels:
                    filled = labels.copy()
                filled[box][take] = label
                added += int(take.sum())
    return filled, added


def _inscribed_radius(mask: np.ndarray, reach: float) -> float:
    """Radius of the largest disc inside ``mask`` (the box's edge counts as outside), to within a
    twelfth of ``reach``: measured on every ``step``-th pixel, which is all a comparison with it needs."""
    step = max(1, int(reach // 12))
    return step * float(ndi.distance_transform_edt(np.pad(mask[::step, ::step], 1)).max())


def _object_and_background_levels(coarse: np.ndarray, component: int, box: tuple[slice, slice],
                                  labels: np.ndarray, smooth: np.ndarray) -> tuple[float, float] | None:
    """Median smoothed gray inside a coarse object (``box``: its bounding box) and in the unlabelled
    band around it (None: no band)."""
    band = BACKGROUND_BAND_PX
    box = tuple(slice(max(0, s.start - band), s.stop + band) for s in box)
    inside = coarse[box] == component
    around = ndi.maximum_filter(inside, size=2 * band + 1) & ~inside & (labels[box] == 0) & (coarse[box] == 0)
    if not around.any():
        return None
    local = smooth[box]
    return float(np.median(local[inside])), float(np.median(local[around]))


__all__ = ["BACKGROUND_BAND_PX", "GRAY_SMOOTHING_PX", "fill_from_coarse_views"]
