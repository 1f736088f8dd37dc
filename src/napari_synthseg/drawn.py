"""Objects drawn on a figure rather than imaged: scale bars, boxes, lettering (pure core).

A drawn object carries no detector noise (``shapes.is_flat``) and is shaped like an overlay
(``shapes.overlay_reason``); a line of text is found by its glyphs (``lettering``). Left out of the
model's labels and of the auto-segmentation, so that neither a bank nor a measurement holds them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .lettering import cut_by_edge, find_lettering, labels_on_image
from .relabel import renumber_kept
from .shapes import FLAT_RING_PX, MIN_JUDGED_AREA, is_flat, overlay_reason

# On an image, a flat bar lying along its rows or columns (within LEVEL_BAR_MAX_TILT degrees) is drawn
# from 5 times as long as wide: scale bars are drawn level, a particle lies that level by chance only.
# A particle cut by the image's edge lies along it too: such objects are not judged by this.
LEVEL_BAR_MIN_ASPECT, LEVEL_BAR_MAX_TILT = 5.0, 1.0
# A level bar is judged flat without this many pixels of its outline: a resampled figure blurs a
# drawn bar's edge over about two pixels, and a model's outline lies a pixel or two outside it.
LEVEL_BAR_EDGE_PX = 2
# An image in which fewer than a tenth of horizontal neighbours differ carries no detector noise (a
# binary mask, a rendered drawing; micrographs: 40 % and more): there every object is flat, and flatness
# cannot tell a drawn box from an imaged one.
NOISE_FREE_SHARE = 0.1
# An object that outlines a bar drawn in the image's extreme gray (``lettering.drawn_bars``), alone or with its
# label, is that bar whatever compression did to its flatness: it covers at least this share of the bar's box,
# the bar spans at least this share of its width, and it is at most half as tall as the bar is long.
OUTLINED_BAR_SHARE = 0.8


def _is_long_box(height: int, width: int) -> bool:
    """Whether an object's bounding box is long enough for a level bar (:data:`LEVEL_BAR_MIN_ASPECT`):
    a level bar fills its box, so its box's sides have its length and width."""
    return max(height, width) >= LEVEL_BAR_MIN_ASPECT * min(height, width)


def _is_level_bar(mask: np.ndarray, image: np.ndarray) -> bool:
    """For a mask in a long box (:func:`_is_long_box`): True when its long axis or one of its long sides
    (:func:`_has_level_side`) lies along the image's rows or columns (:data:`LEVEL_BAR_MAX_TILT`) and it is
    flat without :data:`LEVEL_BAR_EDGE_PX` of its outline."""
    rows, cols = np.nonzero(mask)
    c = np.cov(np.stack([rows, cols]).astype(np.float64), bias=True)
    angle = abs(np.degrees(0.5 * np.arctan2(2 * c[0, 1], c[0, 0] - c[1, 1])))  # long axis from the rows
    level = min(angle, abs(90.0 - angle)) <= LEVEL_BAR_MAX_TILT or _has_level_side(mask)
    return level and is_flat(mask, image, LEVEL_BAR_EDGE_PX)


def _has_level_side(mask: np.ndarray) -> bool:
    """Whether one long side of a mask in a long box runs straight (within :data:`LEVEL_BAR_EDGE_PX`) and
    level (:data:`LEVEL_BAR_MAX_TILT`) over the middle four fifths of its length: a model that outlined
    only part of a bar's width, or a bar with a glyph on it, leaves the bar's other side as drawn."""
    if mask.shape[0] > mask.shape[1]:
        mask = mask.T
    cols = np.flatnonzero(mask.any(axis=0))
    middle = cols[cols.size // 10:cols.size - cols.size // 10]
    if middle.size < 3:
        return False
    rows = np.arange(mask.shape[0])[:, None]
    inside = mask[:, middle]
    for side in (np.where(inside, rows, mask.shape[0]).min(axis=0), np.where(inside, rows, -1).max(axis=0)):
        slope, offset = np.polyfit(middle, side, 1)
        straight = np.abs(side - (slope * middle + offset)).max() <= LEVEL_BAR_EDGE_PX
        if straight and np.degrees(np.arctan(abs(slope))) <= LEVEL_BAR_MAX_TILT:
            return True
    return False


def _carries_noise(image: np.ndarray) -> bool:
    """Whether a 2D gray image carries detector noise (``NOISE_FREE_SHARE``; every fourth row is enough)."""
    rows = image[::4]
    if rows.shape[1] < 2:
        return True
    return np.count_nonzero(np.diff(rows, axis=1)) >= NOISE_FREE_SHARE * rows[:, 1:].size


def _outlining_bars(labels: np.ndarray, boxes: list, bars: np.ndarray) -> list[int]:
    """Ids of the objects of ``labels`` (their ``boxes``: ``ndi.find_objects``) that outline one of the drawn
    ``bars`` (:data:`OUTLINED_BAR_SHARE`), not cut by the image's edge."""
    ids = []
    for y0, y1, x0, x1 in bars[:, :4].astype(int):
        counts = np.bincount(labels[y0:y1, x0:x1].ravel().astype(np.int64))
        counts[0] = 0
        i = int(counts.argmax())
        if counts[i] < OUTLINED_BAR_SHARE * (y1 - y0) * (x1 - x0):
            continue
        rows, cols = boxes[i - 1]
        if (not cut_by_edge(boxes[i - 1], labels.shape) and x1 - x0 >= OUTLINED_BAR_SHARE * (cols.stop - cols.start)
                and rows.stop - rows.start <= 0.5 * (x1 - x0)):
            ids.append(i)
    return ids


def drop_drawn_overlays(labels: np.ndarray, image: np.ndarray, *, figure_marks: bool = True
                        ) -> tuple[np.ndarray, int]:
    """Labels without the objects that are drawn on the image: scale bars, boxes, lettering.

    An object is drawn when it is noise-free (one gray level against noisy surroundings, the
    flat test of :func:`overlay_reason`) *and* shaped like an overlay (straight bar, box or thin
    stroke). Both are needed: a saturated particle is flat but round, a rod or a fibre is long
    but carries the detector's noise. A bar lying along the image's rows or columns is drawn from 5
    times as long as wide when it is flat without two pixels of its outline (a resampled figure's
    blurred edge); not when the image's edge cuts it (a particle cut by the edge lies along it).
    Text drawn over the image ("200 nm", a panel letter beside others) is rarely flat once the
    figure was compressed; its glyphs are dropped as a line of glyphs drawn in strokes of the
    image's extreme gray (:func:`lettering.lettering_ids`). An object that outlines a bar drawn in the image's
    extreme gray (:func:`lettering.drawn_bars`), alone or with its label, goes however noisy its outline
    (:data:`OUTLINED_BAR_SHARE`). On an image without noise (a binary
    mask, a rendered drawing) every object is flat: only lettering (lines of text, a panel's letter) is left out.

    Parameters
    ----------
    labels
        2D instance labels, 0 = background.
    image
        The 2D gray image the labels outline (same shape).
    figure_marks
        Also a panel's letter, a scale bar's label and an object outlining a drawn bar however noisy
        (:func:`lettering.find_lettering`); False: not these (the auto-segmentation keeps them).

    Returns
    -------
    labels, n_dropped
        uint32 labels without the drawn objects, the others renumbered 1..k in id order, and
        how many were dropped.
    """
    labels, image = labels_on_image(labels, image, "drop_drawn_overlays")
    noisy = _carries_noise(image)
    keep = np.zeros(int(labels.max(initial=0)) + 1, dtype=bool)  # ids present and not drawn
    present = keep.copy()
    boxes = ndi.find_objects(labels)
    for i, sl in enumerate(boxes, start=1):
        if sl is None:
            continue
        present[i] = True
        cut = cut_by_edge(sl, labels.shape)
        level_bar_box = not cut and _is_long_box(*(s.stop - s.start for s in sl))
        margin = FLAT_RING_PX + 1  # the flat test's ring inside the crop, and a pixel beyond it
        sl = tuple(slice(max(s.start - margin, 0), s.stop + margin) for s in sl)
        mask = labels[sl] == i
        # flat first: it rules out nearly every real object without measuring its shape
        drawn = noisy and mask.sum() >= MIN_JUDGED_AREA and (
            (is_flat(mask, image[sl]) and overlay_reason(mask, image[sl]))
            or (level_bar_box and _is_level_bar(mask, image[sl])))
        keep[i] = not drawn
    lettering = find_lettering(labels, image, figure_marks=figure_marks)
    keep[lettering.ids] = False
    # without noise a level bar of the extreme gray may as well be imaged (a rod in a binary mask)
    if noisy and figure_marks:
        keep[_outlining_bars(labels, boxes, lettering.bars)] = False
    return renumber_kept(labels, keep), int(np.count_nonzero(present & ~keep))


__all__ = ["LEVEL_BAR_EDGE_PX", "LEVEL_BAR_MAX_TILT", "LEVEL_BAR_MIN_ASPECT", "NOISE_FREE_SHARE", "OUTLINED_BAR_SHARE",
           "drop_drawn_overlays"]
