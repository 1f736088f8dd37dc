"""Classical automatic segmentation at full resolution (pure core).

Every step is a whole-array numpy/scipy/scikit-image operation; the only Python
loops run over planes of a stack and over the few objects that need splitting.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .image_io import is_rgb, iter_planes, to_gray
from .shapes import split_clumps

METHODS = ("otsu", "li", "triangle", "local", "manual", "contours", "combined", "edge")
POLARITIES = ("bright", "dark", "auto")

# Global thresholds are computed on a strided sample of at most this many pixels:
# the histogram of 5 megapixels is no better than that of half a million.
_MAX_THRESHOLD_SAMPLES = 500_000
_EIGHT = np.ones((3, 3), dtype=bool)


# --------------------------------------------------------------------------- helpers
def _sample(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """A strided sample of the valid pixels of a 2D plane (for histogram statistics)."""
    step = max(1, int(np.sqrt(values.size / _MAX_THRESHOLD_SAMPLES)))
    sub = values[::step, ::step]
    if valid is not None:
        sub = sub[valid[::step, ::step]]
    return np.ravel(sub)


def _label(mask: np.ndarray, connectivity: int = 2) -> tuple[np.ndarray, int]:
    structure = _EIGHT if connectivity == 2 else None
    labels, n = ndi.label(mask, structure=structure, output=np.int32)
    return labels, int(n)


def _border_ids(labels: np.ndarray) -> np.ndarray:
    """Unique non-zero label ids on the outermost rows and columns."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    ids = np.unique(edge)
    return ids[ids != 0]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background region that does not touch the image border.

    Equivalent to ``ndi.binary_fill_holes`` but one labelling pass instead of an
    iterative propagation, which is several times faster on large images.
    """
    background, n = _label(~mask, connectivity=1)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, dtype=bool)
    outside[_border_ids(background)] = True
    return ~outside[background]


def _keep_by_area(labels: np.ndarray, n: int, min_area: int, max_area: int | None) -> np.ndarray:
    """Zero objects outside [min_area, max_area] and renumber the rest 1..k in raster order."""
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= max(min_area, 1)
    if max_area is not None:
        keep &= areas <= max_area
    keep[0] = False
    lut = np.zeros(areas.size, dtype=np.uint32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return np.take(lut, labels)


# --------------------------------------------------------------------------- polarity
def choose_polarity(gray: np.ndarray, mask: np.ndarray | None = None) -> str:
    """Decide whether the objects of a 2D image are brighter or darker than the background.

    The image is split in two phases by Otsu's threshold. The background is taken to
    be the phase that forms one large connected region and dominates the image
    border; objects are the phase broken into many compact pieces. Each cue votes
    with a weight; ties fall back to "the minority phase is the object".

    Parameters
    ----------
    gray
        2D intensity image (any real dtype).
    mask
        Optional bool array, True where pixels count (e.g. outside a scale bar).

    Returns
    -------
    str
        ``"bright"`` or ``"dark"``.
    """
    from skimage.filters import threshold_otsu

    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"choose_polarity needs a 2D image, got shape {gray.shape}")
    values = _sample(gray, mask)
    if values.size == 0 or float(values.min()) == float(values.max()):
        return "bright"
    t = float(threshold_otsu(values))
    bright = gray > t
    if mask is not None:
        valid = mask
    else:
        valid = np.ones(gray.shape, dtype=bool)
    frac_bright = float(bright[valid].mean())

    border = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    border_valid = np.concatenate([valid[0], valid[-1], valid[:, 0], valid[:, -1]])
    border_bright = float(border[border_valid].mean()) if border_valid.any() else frac_bright

    score = 0.0  # > 0 means "objects are bright"
    # Background dominates the border more than its share of the image.
    score += 2.0 * (frac_bright - border_bright)
    # The minority phase is usually the objects. (Weights 2 : 1 : 1 were picked on real
    # images, in-sample: docs/benchmarks.md, "Why these defaults".)
    score += 1.0 * (0.5 - frac_bright)
    # Background is one big connected region; objects come in many pieces.
    score += _fragmentation(bright & valid) - _fragmentation(~bright & valid)
    return "bright" if score >= 0 else "dark"


def _fragmentation(phase: np.ndarray) -> float:
    """1 - (largest component / whole phase): 0 for one connected region, ~1 for many pieces."""
    step = max(1, int(np.sqrt(phase.size / 250_000)))
    sub = phase[::step, ::step]
    total = int(sub.sum())
    if total == 0:
        return 0.0
    labels, n = _label(sub, connectivity=2)
    largest = int(np.bincount(labels.ravel())[1:].max()) if n else 0
    return 1.0 - largest / total


# --------------------------------------------------------------------------- scale bar
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
    # Noise and texture make short, scattered steps; the threshold sits above them.
    noise = 1.4826 * float(np.median(np.abs(np.diff(window[::2, ::2], axis=1)))) / np.sqrt(2)
    threshold = max(0.08 * contrast, 5.0 * noise)
    line_threshold = max(threshold, 5.0 * np.sqrt(3.0) * noise)
    tolerance = max(0.4 * threshold, 3.0 * noise)
    # Steps between rows (horizontal edges) and between columns (vertical edges); the
    # extra last row/column stands for the image border, which closes a flush box.
    horizontal = np.ones((height + 1, width), dtype=bool)
    horizontal[:-1] = _straight_edges(window, threshold, line_threshold, tolerance)
    vertical = np.ones((width + 1, height), dtype=bool)
    vertical[:-1] = _straight_edges(np.ascontiguousarray(window.T), threshold, line_threshold, tolerance)

    top = _line_candidates(horizontal[:-1], max(12, int(0.6 * min_w)), 32)
    left = _line_candidates(vertical[:-1], max(6, int(0.7 * min_h)), 96)
    if top.size == 0 or left.size == 0:
        return None
    bottom = np.append(top[top >= height - near], height)
    right = np.append(left[left >= width - near], width)

    h_counts = np.pad(np.cumsum(horizontal, axis=1, dtype=np.int32), ((0, 0), (1, 0)))
    v_counts = np.pad(np.cumsum(vertical, axis=1, dtype=np.int32), ((0, 0), (1, 0)))
    y0 = top[:, None, None, None]
    y1 = bottom[None, :, None, None]
    x0 = left[None, None, :, None]
    x1 = right[None, None, None, :]
    box_h, box_w = y1 - y0, x1 - x0
    ok = (box_h >= min_h) & (box_h <= max_h) & (box_w >= min_w) & (box_w <= max_w) & (box_w >= 1.2 * box_h)
    if not ok.any():
        return None
    y0, y1, x0, x1 = (np.broadcast_to(a, ok.shape)[ok] for a in (y0, y1, x0, x1))
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
    if not good.any():
        return None
    # Rank by the outline seen less what is missing: sub-boxes inside the box (the bar,
    # the text panel) see less of it, boxes stretched over a grain miss more.
    score = seen - 0.5 * (lengths.sum(axis=0) - seen)
    order = np.flatnonzero(good)
    order = order[np.argsort(-score[order], kind="stable")]
    for index in order[:64]:
        box = (int(y0[index]), int(y1[index]), int(x0[index]), int(x1[index]))
        if _has_flat_rim(window, box, max(0.06 * contrast, 3.0 * noise)):
            return _snap_sides(window, box)
    return None


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


# --------------------------------------------------------------------------- foreground
def _global_threshold(values: np.ndarray, method: str) -> float:
    from skimage import filters

    if method == "otsu":
        return float(filters.threshold_otsu(values))
    if method == "li":
        return float(filters.threshold_li(values))
    return float(filters.threshold_triangle(values))


def _edge_threshold(smooth: np.ndarray, valid: np.ndarray | None, bright: bool) -> float:
    """Otsu's threshold or one of the two 3-class Otsu levels: the one whose outline has the
    strongest mean gradient.

    On three-phase images (dark rods in a gray matrix on a bright film) Otsu's split puts the
    middle phase with the objects; the object outline is where intensity changes most. A level
    is considered only if its foreground covers 1-80 % of the image and has at least half as
    many objects as Otsu's, so that a few letters with sharp edges are never chosen over the
    particles. Better labels than Otsu's, and a better model trained on them
    (docs/benchmarks.md, "Why these defaults").
    """
    from skimage import filters

    values = _sample(smooth, valid)
    otsu = float(filters.threshold_otsu(values))
    try:
        levels = [float(t) for t in filters.threshold_multiotsu(values, classes=3)]
    except ValueError:  # too few distinct gray levels for three classes
        return otsu
    gradient = np.hypot(ndi.sobel(smooth, 0), ndi.sobel(smooth, 1))

    def judge(t: float) -> tuple[float, int]:
        foreground = smooth > t if bright else smooth < t
        if valid is not None:
            foreground &= valid
        if not 0.01 <= foreground.mean() <= 0.8:
            return 0.0, 0
        outline = foreground & ~ndi.binary_erosion(foreground)
        labels, n = _label(foreground)
        objects = int((np.bincount(labels.ravel())[1:] >= 30).sum()) if n else 0
        return float(gradient[outline].mean()), objects

    best, (best_score, otsu_objects) = otsu, judge(otsu)
    for level in levels:
        score, objects = judge(level)
        if score > best_score and objects >= 0.5 * otsu_objects:
            best, best_score = level, score
    return best


def _threshold_foreground(smooth, valid, method, threshold, bright, block_size):
    if method == "manual":
        t = float(threshold)
        return smooth > t if bright else smooth < t
    if method == "local":
        local_mean = ndi.uniform_filter(smooth, size=block_size, mode="reflect")
        # A margin of a few percent of the intensity range keeps flat, noisy
        # background from splitting into "above its own mean" specks.
        lo, hi = np.percentile(_sample(smooth, valid), [1, 99])
        offset = np.float32(0.03 * (hi - lo))
        return smooth > local_mean + offset if bright else smooth < local_mean - offset
    if method == "edge":
        t = _edge_threshold(smooth, valid, bright)
    else:
        t = _global_threshold(_sample(smooth, valid), method)
    return smooth > t if bright else smooth < t


def _contour_foreground(smooth, valid, bright, contour_fraction, sigma):
    """The reference's enclosed-by-contours method, vectorised.

    The darkest ``contour_fraction`` of pixels (in the orientation where objects are
    bright) are contour pixels. Non-contour regions connected (4-connectivity) to the
    image border are background; every other non-contour region is an object core,
    and the contour pixels right around a core (its rim) join it.
    """
    oriented = smooth if bright else -smooth
    cut = np.percentile(_sample(oriented, valid), 100.0 * contour_fraction)
    contour = oriented <= cut
    if valid is not None:
        contour &= valid
    passable = ~contour
    regions, n = _label(passable, connectivity=1)
    if n == 0:
        return np.zeros(smooth.shape, dtype=bool), None
    reached = np.zeros(n + 1, dtype=bool)
    reached[_border_ids(regions)] = True
    # The ignore region (scale bar) counts as reached background, never as an object.
    if valid is not None and not valid.all():
        reached[np.unique(regions[~valid])] = True
    reached[0] = False
    core = passable & ~reached[regions]
    if not core.any():
        return core, None
    rim_width = max(2, int(round(2 * sigma)) + 1)
    grown = ndi.binary_dilation(core, iterations=rim_width, mask=contour | core)
    return grown, core


def _check_params(method, polarity, threshold, sigma, min_area, max_area, contour_fraction, block_size):
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {', '.join(POLARITIES)}; got {polarity!r}")
    if method == "manual":
        if threshold is None:
            raise ValueError("method='manual' needs a threshold value: pass threshold=<intensity> "
                             "(in the image's units, after RGB -> gray)")
    if threshold is not None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise TypeError(f"threshold must be a number, got {threshold!r}") from None
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
    if not np.isscalar(sigma) or not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a number >= 0 (0 = no smoothing); got {sigma!r}")
    if int(min_area) != min_area or min_area < 0:
        raise ValueError(f"min_area must be an integer >= 0; got {min_area!r}")
    if max_area is not None and (max_area <= 0 or max_area < min_area):
        raise ValueError(f"max_area must be None or >= min_area ({min_area}); got {max_area!r}")
    if not 0.0 < contour_fraction < 0.5:
        raise ValueError(f"contour_fraction must be in (0, 0.5), e.g. 0.05; got {contour_fraction!r}")
    if int(block_size) != block_size or block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd integer >= 3, e.g. 51; got {block_size!r}")
    return threshold


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


def _ignore_for_plane(ignore_mask, ignore_box, gray2d, index):
    """Bool mask of pixels to leave out, or None."""
    shape = gray2d.shape
    ignore = None
    if ignore_mask is not None:
        ignore = ignore_mask if ignore_mask.ndim == 2 else ignore_mask[index]
    box = resolve_ignore_box(gray2d, ignore_box)
    if box is not None:
        boxed = ~cut_box(np.ones(shape, dtype=bool), box)
        ignore = boxed if ignore is None else (ignore | boxed)
    return ignore


# --------------------------------------------------------------------------- public API
def autosegment(image, *, sigma=1.5, method="otsu", threshold=None, polarity="auto",
                min_area=30, max_area=None, fill_holes=True, clear_border=False,
                ignore_mask=None, ignore_box="auto", split_touching=True,
                contour_fraction=0.05, block_size=51, rgb=None) -> np.ndarray:
    """Segment objects in an image (or each plane of a stack) at full resolution.

    Parameters
    ----------
    image
        2D gray, RGB/RGBA (last axis of 3 or 4), uint8/uint16/float, or a stack
        ``(..., Y, X)`` (each plane on its own).
    sigma
        Gaussian smoothing before thresholding, in pixels (0 = none).
    method
        ``"otsu"``, ``"li"``, ``"triangle"`` (global), ``"local"`` (adaptive, window
        ``block_size``), ``"manual"`` (needs ``threshold``), ``"contours"`` (regions
        enclosed by the darkest ``contour_fraction`` of pixels), ``"combined"``
        (Otsu - or the manual ``threshold`` if given - united with contours) or ``"edge"``
        (Otsu or a 3-class Otsu level, whichever outlines objects along the strongest
        edges; for three-phase images).
    threshold
        Intensity for ``method="manual"`` (or ``"combined"``), in the image's units.
    polarity
        ``"bright"`` objects, ``"dark"`` objects, or ``"auto"`` (per plane, see
        :func:`choose_polarity`).
    min_area, max_area
        Object size limits in pixels (``max_area=None``: no upper limit).
    fill_holes
        Fill holes inside objects (pores, unfilled outlines).
    clear_border
        Remove objects touching the image border.
    ignore_mask
        Bool array (Y, X) or the stack's shape; True pixels never become objects.
    ignore_box
        ``(y0, y1, x0, x1)`` to leave out, None, or ``"auto"`` to detect a scale-bar
        box in a corner (:func:`find_scale_bar`).
    split_touching
        Split clumps at narrow necks (distance-transform watershed on the objects that
        are not a single blob).
    contour_fraction
        Fraction of darkest pixels taken as contours by ``"contours"``/``"combined"``.
    block_size
        Odd window size for ``method="local"``.
    rgb
        Whether the last axis holds colour channels; None guesses (size 3 or 4).

    Returns
    -------
    numpy.ndarray
        uint32 instance labels with the image's spatial shape; 0 is background and
        ids are unique across the whole stack.
    """
    threshold = _check_params(method, polarity, threshold, sigma, min_area, max_area,
                              contour_fraction, block_size)
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must be a real-valued (bool, integer or float) array; got dtype {image.dtype}")
    if rgb is None:
        # A (Y, X, 3) array is read as RGB, napari's convention; pass rgb=False for a 3-plane stack.
        rgb = is_rgb(image)
    if rgb and (image.ndim < 3 or image.shape[-1] not in (3, 4)):
        raise ValueError(f"rgb=True needs a last axis of 3 or 4 channels; got shape {image.shape}")
    gray = to_gray(image, rgb=bool(rgb))
    if gray.ndim < 2:
        raise ValueError(f"image must be at least 2D (Y, X); got shape {image.shape}")
    if gray.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); pass an image with pixels")
    if ignore_mask is not None:
        ignore_mask = np.asarray(ignore_mask)
        if ignore_mask.dtype != np.bool_:
            raise TypeError(f"ignore_mask must be a bool array; got dtype {ignore_mask.dtype}")
        if ignore_mask.shape not in (gray.shape[-2:], gray.shape):
            raise ValueError(f"ignore_mask shape {ignore_mask.shape} must be {gray.shape[-2:]} "
                             f"or {gray.shape}")
    ignore_box = check_ignore_box(ignore_box)

    out = np.zeros(gray.shape, dtype=np.uint32)
    offset = 0
    for index in iter_planes(gray.shape):
        plane = gray[index]
        labels = _segment_plane(
            plane, _ignore_for_plane(ignore_mask, ignore_box, plane, index),
            sigma=sigma, method=method, threshold=threshold, polarity=polarity,
            min_area=int(min_area), max_area=max_area, fill_holes=fill_holes,
            clear_border=clear_border, split_touching=split_touching,
            contour_fraction=contour_fraction, block_size=int(block_size))
        if offset:
            labels[labels > 0] += np.uint32(offset)
        out[index] = labels
        offset = int(labels.max()) if labels.any() else offset
    return out


def _segment_plane(gray, ignore, *, sigma, method, threshold, polarity, min_area, max_area,
                   fill_holes, clear_border, split_touching, contour_fraction, block_size):
    smooth = np.nan_to_num(np.asarray(gray, dtype=np.float32))
    if sigma > 0:
        smooth = ndi.gaussian_filter(smooth, sigma, mode="nearest", truncate=3.0)
    valid = None if ignore is None else ~ignore
    sample = _sample(smooth, valid)
    if sample.size == 0 or float(sample.min()) == float(sample.max()):
        return np.zeros(gray.shape, dtype=np.uint32)  # nothing to tell apart

    bright = (choose_polarity(smooth, valid) if polarity == "auto" else polarity) == "bright"
    if method in ("contours", "combined"):
        foreground, _ = _contour_foreground(smooth, valid, bright, contour_fraction, sigma)
        if method == "combined":
            foreground |= _threshold_foreground(smooth, valid, "manual" if threshold is not None else "otsu",
                                                threshold, bright, block_size)
    else:
        foreground = _threshold_foreground(smooth, valid, method, threshold, bright, block_size)
    if valid is not None:
        foreground &= valid
    if fill_holes:
        foreground = _fill_holes(foreground)
        if valid is not None:
            foreground &= valid
    labels, n = _label(foreground, connectivity=2)
    if split_touching and n:
        labels, n = split_clumps(labels, n, min_area)
    if clear_border and n:
        drop = np.zeros(n + 1, dtype=bool)
        drop[_border_ids(labels)] = True
        labels[drop[labels]] = 0
    return _keep_by_area(labels, n, min_area, max_area)
