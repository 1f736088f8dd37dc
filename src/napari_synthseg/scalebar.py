"""Find a microscope's scale-bar / info box or data bar, and leave it out (pure core).

A box in a corner (``find_scale_bar``) or a strip across the full width (``find_data_bar``)
holds the microscope's settings, a scale bar and text: no objects. Auto-segmentation, input
normalisation and prediction all leave it out through ``resolve_ignore_box`` and ``cut_box``.
Both searches run on a strided copy of the image, with whole-array operations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def find_scale_bar(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """Find a microscope scale-bar / info box in a corner, or a data bar across a 2D image.

    A box is recognised by what makes it a box rather than a grain: its outline is
    made of long, straight, axis-aligned intensity steps, and just inside each side
    runs a strip of nearly constant intensity (the box's fill). Sides lying on the
    image border need no edge, and a side may lose part of its edge where a grain of
    about the fill's brightness touches it. Each corner is searched. A data bar (the
    strip many SEMs print under the image: a flat white or black fill with text) runs
    the full width at the bottom or top (``find_data_bar``). The largest box found wins.

    Parameters
    ----------
    gray
        2D image.

    Returns
    -------
    tuple or None
        ``(y0, y1, x0, x1)`` (end exclusive, padded by a few pixels) or None.
    """
    found = _subsampled(gray, "find_scale_bar")
    if found is None:
        return None
    small, step, contrast = found
    h, w = np.shape(gray)
    hs, ws = small.shape
    ch, cw = min(hs, max(40, int(0.22 * hs))), min(ws, max(80, int(0.45 * ws)))
    best = None
    bar = _data_bar(small, contrast)
    if bar is not None:
        best = ((bar[1] - bar[0]) * (bar[3] - bar[2]), bar)
    # Flip each corner's window so that the image corner is its lower-right pixel.
    for flip_y in (False, True):
        for flip_x in (False, True):
            rows = slice(0, ch) if flip_y else slice(hs - ch, hs)
            cols = slice(0, cw) if flip_x else slice(ws - cw, ws)
            window = np.asarray(small[rows, cols], dtype=np.float32)
            window = window[::-1 if flip_y else 1, ::-1 if flip_x else 1]
            found = _box_in_corner(window, (hs, ws), contrast)
            if found is None:
                continue
            by0, by1, bx0, bx1 = found
            if flip_y:
                by0, by1 = ch - by1, ch - by0
            if flip_x:
                bx0, bx1 = cw - bx1, cw - bx0
            box = (rows.start + by0, rows.start + by1, cols.start + bx0, cols.start + bx1)
            area = (box[1] - box[0]) * (box[3] - box[2])
            if best is None or area > best[0]:
                best = (area, box)
    if best is None:
        return None
    y0, y1, x0, x1 = (v * step for v in best[1])
    # Enough to cover an outline softened by blur or JPEG ringing, and no more.
    pad = max(2, int(round(0.001 * max(h, w)))) + step - 1
    return (max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad))


def find_data_bar(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """Find a data bar: a strip across the full width, at the bottom or top of a 2D image.

    Many SEMs print their settings, the scale bar and a logo in such a strip. It is
    recognised by its fill: at least half of every row is one flat intensity (white or
    black), while just outside the strip that intensity is (almost) absent. The strip
    must be 2-25 % of the image's height.

    Parameters
    ----------
    gray
        2D image.

    Returns
    -------
    tuple or None
        ``(y0, y1, 0, width)`` (end exclusive) or None.
    """
    found = _subsampled(gray, "find_data_bar")
    if found is None:
        return None
    small, step, contrast = found
    h, w = np.shape(gray)
    bar = _data_bar(small, contrast)
    if bar is None:
        return None
    return (bar[0] * step, min(h, bar[1] * step), 0, w)


def _subsampled(gray: np.ndarray, caller: str) -> tuple[np.ndarray, int, float] | None:
    """A strided copy of a 2D image, its stride and its intensity range; None if too small or flat."""
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"{caller} needs a 2D image, got shape {gray.shape}")
    h, w = gray.shape
    if h < 32 or w < 32:
        return None
    # Boxes and bars are tens of pixels tall: a subsampled image keeps them and costs far less.
    step = max(1, int(np.sqrt(h * w / 1_300_000)))
    small = gray[::step, ::step]
    # The intensity range needs no more than ~100k pixels.
    stride = max(1, int(np.sqrt(small.size / 100_000)))
    lo, hi = np.percentile(small[::stride, ::stride], [0.5, 99.5])
    if not hi > lo:
        return None
    return small, step, float(hi - lo)


def _data_bar(small: np.ndarray, contrast: float) -> tuple[int, int, int, int] | None:
    """``find_data_bar`` on an already subsampled image (its coordinates)."""
    height, width = small.shape
    tolerance = 0.04 * contrast
    band = max(8, int(0.25 * height))
    min_rows = max(6, int(np.ceil(0.02 * height)))
    for at_top in (False, True):
        # Rows counted from the image edge: row 0 is the edge row, the band reaches inwards.
        # only these rows are converted: the bar lies within them
        rows = np.asarray(small[:band + 8] if at_top else small[::-1][:band + 8], dtype=np.float32)
        counts, edges = np.histogram(rows[:band], bins=64)
        # The fill is one of the band's most common intensities (the image's own
        # background may be more common when the bar is thin).
        for k in np.argsort(counts)[::-1][:3]:
            if counts[k] == 0:
                break
            inside = rows[:band][(rows[:band] >= edges[k]) & (rows[:band] <= edges[k + 1])]
            fill = float(np.median(inside))
            share = (np.abs(rows - fill) <= tolerance).mean(axis=1)
            # Rows of text in the bar fill less of the width: a 5-row median rides over them.
            filled = ndi.median_filter(share, size=5, mode="nearest") >= 0.5
            if filled[:band].all():
                continue  # flat all the way in: a background, not a bar
            n = int(np.argmin(filled[:band]))
            if not min_rows <= n <= int(0.25 * height):
                continue
            # Just outside the bar (past its outline) the fill's intensity must be rare.
            outside = share[n + 2:n + 8]
            if outside.size and float(outside.mean()) < 0.1:
                return (0, n, 0, width) if at_top else (height - n, height, 0, width)
    return None


def _straight_edges(window: np.ndarray, threshold: float, line_threshold: float, tolerance: float) -> np.ndarray:
    """Pixels on sharp, straight, horizontal steps of ``window`` (bool, window's shape).

    A pixel counts when the step across it (rows above vs below) exceeds ``threshold``,
    is the strongest across its neighbours (so a blurred, slanting grain edge lights
    a thin staircase, not a band), and one side runs flat along the row, as a box's
    fill does beside its outline.
    """
    height, width = window.shape
    # A step, or a thin drawn line (an end tick) between two equally bright sides.
    # Noise is sqrt(3) times stronger on the second difference than on the step.
    step = np.abs(window[2:] - window[:-2])
    line = np.abs(2 * window[1:-1] - window[2:] - window[:-2])
    step = np.where(line > line_threshold, np.maximum(step, line), step)
    peak = step > threshold
    peak[1:] &= step[1:] >= step[:-1]
    peak[:-1] &= step[:-1] >= step[1:]
    flat_along = np.zeros((height, width), dtype=bool)
    flat_along[:, 1:-1] = np.abs(window[:, 2:] - window[:, :-2]) <= tolerance
    peak &= flat_along[2:] | flat_along[:-2]
    edges = np.zeros((height, width), dtype=bool)
    edges[1:-1] = peak
    # A sharp step (or a thin drawn line) lights the rows beside it unevenly; a pixel
    # of slack across keeps a straight outline one unbroken line. One-pixel gaps
    # along it (noise, JPEG) are bridged.
    peak = edges.copy()
    edges[1:] |= peak[:-1]
    edges[:-1] |= peak[1:]
    edges[:, 1:-1] |= edges[:, :-2] & edges[:, 2:]
    return edges


def _line_candidates(edges: np.ndarray, length: int, limit: int) -> np.ndarray:
    """Rows of ``edges`` holding a run of at least ``length`` edge pixels (longest first, at most ``limit``)."""
    columns = np.arange(edges.shape[1])
    last_gap = np.maximum.accumulate(np.where(edges, -1, columns), axis=1)
    longest = (columns - last_gap).max(axis=1)
    rows = np.flatnonzero(longest >= length)
    if rows.size > limit:
        rows = np.sort(rows[np.argsort(-longest[rows], kind="stable")[:limit]])
    return rows


def _box_in_corner(window: np.ndarray, shape: tuple[int, int], contrast: float):
    """Best box ``(y0, y1, x0, x1)`` in a window whose lower-right pixel is an image corner."""
    hs, ws = shape
    height, width = window.shape
    min_h, max_h = max(8, int(0.008 * hs)), max(12, int(0.2 * hs))
    min_w, max_w = max(32, int(0.04 * ws)), width
    near = max(10, int(0.03 * max(hs, ws)))
    horizontal, vertical, noise = _edge_maps(window, contrast)
    top = _line_candidates(horizontal[:-1], max(12, int(0.6 * min_w)), 32)
    left = _line_candidates(vertical[:-1], max(6, int(0.7 * min_h)), 96)
    if top.size == 0 or left.size == 0:
        return None
    bottom = np.append(top[top >= height - near], height)
    right = np.append(left[left >= width - near], width)
    y0 = top[:, None, None, None]
    y1 = bottom[None, :, None, None]
    x0 = left[None, None, :, None]
    x1 = right[None, None, None, :]
    box_h, box_w = y1 - y0, x1 - x0
    ok = (box_h >= min_h) & (box_h <= max_h) & (box_w >= min_w) & (box_w <= max_w) & (box_w >= 1.2 * box_h)
    if not ok.any():
        return None
    y0, y1, x0, x1 = (np.broadcast_to(a, ok.shape)[ok] for a in (y0, y1, x0, x1))
    good, score = _outlined_boxes(horizontal, vertical, y0, y1, x0, x1)
    if not good.any():
        return None
    order = np.flatnonzero(good)
    order = order[np.argsort(-score[order], kind="stable")]
    for index in order[:64]:
        box = (int(y0[index]), int(y1[index]), int(x0[index]), int(x1[index]))
        if _has_flat_rim(window, box, max(0.06 * contrast, 3.0 * noise)):
            return _snap_sides(window, box)
    return None


def _edge_maps(window: np.ndarray, contrast: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Straight steps between rows (horizontal edges) and between columns (vertical edges) of a window.

    Returns ``(horizontal, vertical, noise)``: bool maps of shape ``(height + 1, width)`` and
    ``(width + 1, height)`` whose extra last row stands for the image border (which closes a
    flush box), and the window's noise level.
    """
    height, width = window.shape
    # Noise and texture make short, scattered steps; the threshold sits above them.
    noise = 1.4826 * float(np.median(np.abs(np.diff(window[::2, ::2], axis=1)))) / np.sqrt(2)
    threshold = max(0.08 * contrast, 5.0 * noise)
    line_threshold = max(threshold, 5.0 * np.sqrt(3.0) * noise)
    tolerance = max(0.4 * threshold, 3.0 * noise)
    horizontal = np.ones((height + 1, width), dtype=bool)
    horizontal[:-1] = _straight_edges(window, threshold, line_threshold, tolerance)
    vertical = np.ones((width + 1, height), dtype=bool)
    vertical[:-1] = _straight_edges(np.ascontiguousarray(window.T), threshold, line_threshold, tolerance)
    return horizontal, vertical, noise


def _outlined_boxes(horizontal: np.ndarray, vertical: np.ndarray, y0: np.ndarray, y1: np.ndarray,
                    x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which candidate boxes the edge maps outline, and each one's score (higher: better outlined).

    ``y0, y1, x0, x1`` are the candidates' sides (1D, one entry per box) in a window of the edge
    maps' size (`_edge_maps`).
    """
    height, width = vertical.shape[1], horizontal.shape[1]
    h_counts = np.pad(np.cumsum(horizontal, axis=1, dtype=np.int32), ((0, 0), (1, 0)))
    v_counts = np.pad(np.cumsum(vertical, axis=1, dtype=np.int32), ((0, 0), (1, 0)))
    # A side at row y0 spans columns x0..x1 inclusive of the corner pixels.
    x_end, y_end = np.minimum(x1 + 1, width), np.minimum(y1 + 1, height)
    cover = np.stack([
        (h_counts[y0, x_end] - h_counts[y0, x0]) / (x_end - x0),
        (h_counts[y1, x_end] - h_counts[y1, x0]) / (x_end - x0),
        (v_counts[x0, y_end] - v_counts[x0, y0]) / (y_end - y0),
        (v_counts[x1, y_end] - v_counts[x1, y0]) / (y_end - y0),
    ])
    # Sides on the image border prove nothing. Of the others, one may be partly hidden
    # by a grain as bright as the fill; the rest must be sharp.
    drawn = np.stack([np.ones_like(y0, dtype=bool), y1 < height, np.ones_like(y0, dtype=bool), x1 < width])
    lengths = np.stack([x_end - x0, x_end - x0, y_end - y0, y_end - y0]) * drawn
    seen = (cover * lengths).sum(axis=0)
    # A box flush in the corner shows only two sides, as does a grain cut by the corner:
    # those two must be nearly whole.
    flush = ~drawn[1] & ~drawn[3]
    good = ((seen >= np.where(flush, 0.85, 0.65) * lengths.sum(axis=0))
            & (np.where(drawn, cover, 1.0).min(axis=0) >= 0.3))
    # A box's outline stops at its corners; a grain's straight flank that happens to
    # line up with the box's top and bottom runs on past them.
    reach_y = np.maximum(4, (y1 - y0) // 2)
    reach_x = np.maximum(4, (x1 - x0) // 4)
    above = np.maximum(y0 - 1 - reach_y, 0)
    below = np.minimum(y1 + 2 + reach_y, height)
    before = np.maximum(x0 - 1 - reach_x, 0)
    runs_on = (
        ((v_counts[x0, np.maximum(y0 - 1, above)] - v_counts[x0, above]) > 0.6 * reach_y)
        | ((v_counts[x0, below] - v_counts[x0, np.minimum(y1 + 2, below)]) > 0.6 * reach_y)
        | ((h_counts[y0, np.maximum(x0 - 1, before)] - h_counts[y0, before]) > 0.6 * reach_x)
        | (((h_counts[y1, np.maximum(x0 - 1, before)] - h_counts[y1, before]) > 0.6 * reach_x) & (y1 < height))
    )
    good &= ~runs_on
    # Rank by the outline seen less what is missing: sub-boxes inside the box (the bar,
    # the text panel) see less of it, boxes stretched over a grain miss more.
    score = seen - 0.5 * (lengths.sum(axis=0) - seen)
    return good, score


def _snap_sides(window: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Move each drawn side of ``box`` onto the strongest step within two pixels.

    Candidate lines carry a pixel of slack; the snapped box is exact, so little padding
    is needed.
    """
    y0, y1, x0, x1 = box
    height, width = window.shape

    def snap(image, position, start, stop, limit):
        # First row inside (top) or first row past (bottom) the box: a step between
        # rows r - 1 and r; rows 0 and ``limit`` are the image border.
        options = np.arange(max(1, position - 2), min(limit - 1, position + 2) + 1)
        if options.size == 0:
            return position
        steps = np.abs(image[options, start:stop] - image[options - 1, start:stop]).mean(axis=1)
        return int(options[np.argmax(steps)])

    top = snap(window, y0, x0, x1, height)
    left = snap(window.T, x0, y0, y1, width)
    bottom = snap(window, y1, x0, x1, height) if y1 < height else height
    right = snap(window.T, x1, y0, y1, width) if x1 < width else width
    return top, bottom, left, right


def _has_flat_rim(window: np.ndarray, box: tuple[int, int, int, int], tolerance: float) -> bool:
    """Whether a strip just inside each side of ``box`` runs flat along that side.

    The fill may change level once or twice (a text panel), but a box's rim is never
    textured the way a grain's is.
    """
    y0, y1, x0, x1 = box
    height, width = window.shape
    sides = (
        [window[y0 + k, x0 + 2:x1 - 1] for k in (1, 2)],
        [window[y1 - k, x0 + 2:x1 - 1] for k in (1, 2)] if y1 < height else None,
        [window[y0 + 2:y1 - 1, x0 + k] for k in (1, 2)],
        [window[y0 + 2:y1 - 1, x1 - k] for k in (1, 2)] if x1 < width else None,
    )
    # The bar and its end ticks cross the short sides' strips; the long ones stay clear.
    for strips, needed in zip(sides, (0.75, 0.75, 0.6, 0.6)):
        if strips is None:
            continue
        flatness = max(float(np.mean(np.abs(np.diff(strip)) <= tolerance)) if strip.size > 1 else 0.0
                       for strip in strips)
        if flatness < needed:
            return False
    return True


# --------------------------------------------------------------------------- the box left out
def check_ignore_box(ignore_box):
    """``ignore_box`` checked: ``"auto"``, None, or a tuple of four ints ``(y0, y1, x0, x1)``."""
    if ignore_box is None or (isinstance(ignore_box, str) and ignore_box == "auto"):
        return ignore_box
    try:
        if isinstance(ignore_box, str):
            raise ValueError
        y0, y1, x0, x1 = (int(v) for v in ignore_box)
    except (TypeError, ValueError):
        raise ValueError(f"ignore_box must be 'auto', None or (y0, y1, x0, x1); got {ignore_box!r}") from None
    return y0, y1, x0, x1


def resolve_ignore_box(gray2d: np.ndarray, ignore_box) -> tuple[int, int, int, int] | None:
    """The box to leave out of a 2D image: ``"auto"`` detects a scale-bar / info box
    (:func:`find_scale_bar`), ``(y0, y1, x0, x1)`` is used as given, None means none."""
    ignore_box = check_ignore_box(ignore_box)
    return find_scale_bar(gray2d) if isinstance(ignore_box, str) else ignore_box


def cut_box(foreground: np.ndarray, box: tuple[int, int, int, int] | None,
            offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Zero ``foreground`` (in place) inside ``box``, given in coordinates where the array starts
    at ``offset`` (a tile's first row and column); returns it."""
    if box is not None:
        y0, y1, x0, x1 = box
        rows = slice(max(y0 - offset[0], 0), max(y1 - offset[0], 0))
        cols = slice(max(x0 - offset[1], 0), max(x1 - offset[1], 0))
        foreground[rows, cols] = 0
    return foreground
