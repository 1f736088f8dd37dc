"""Lettering drawn on a micrograph: a line of glyphs inked in the image's extreme gray (pure core).

Figures and instrument exports carry labels ("200 nm", "(d)", "Au NPs") that a segmenter outlines
glyph by glyph, or a few glyphs to an object ("50", "nm"). One glyph alone can look like a particle,
and one row of particles can look like a line of text; both together rarely: a line of text is at
least three objects of about the same height standing on one baseline, side by side, each drawn in
strokes of the purest white or black of the image. On a plain ground, two such objects holding three
glyphs are text too, and so are glyphs hanging from one top line (a "µ" or a "p" descends below the
baseline), and so is a panel's letter ("b", "(a)") alone in a top corner of the figure, and a scale bar's
label next to its bar. Text is typeset
in the extreme colour, where a particle carries shading and detector
noise; and its ink is thin strokes, where the darkest core of a particle (a row of particles in a
superlattice is inked as deeply as text) is a filled disc. A hollow particle's rim is a stroke too,
but a closed one: a line in which every glyph's ink is a ring is a row of hollow particles. Objects
cut by the image's edge are never glyphs: pieces of one grain cut by the bottom edge all end on it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# A line of text: at least three glyphs (two objects side by side is any touching pair) ...
GLYPHS_PER_LINE = 3
# ... counted as the pieces of ink at least three tenths of their object's height tall (a segmenter
# outlines "50" or "nm" as one object; the dot of an "i" or a JPEG speck is no glyph) ...
MIN_GLYPH_SHARE = 0.3
# ... in objects whose bottoms, or tops, lie within a tenth of the taller one's height (one baseline,
# or one top line where a glyph descends below the baseline) ...
BASELINE_TOLERANCE = 0.1
# ... with a gap under 0.6 heights between neighbours (letter and word spacing, not the next particle) ...
MAX_GAP = 0.6
# ... of heights within 1.5 times each other (capitals, digits and lower case of one font) ...
MAX_HEIGHT_RATIO = 1.5
# ... whose boxes overlap by at most a fifth of a height (kerned pairs such as "Vo" or "/n") ...
MAX_OVERLAP = 0.2
# ... each inked within 5 % of the image's gray range from its extreme (the 0.5th / 99.5th
# percentile): the brightest tenth of a white glyph (the darkest of a black one) is pure ink.
INK_FROM_EXTREME = 0.05
# Strokes: the ink (the object's pixels past halfway from its surroundings to its extreme tenth)
# is at most a fifth of the object's height from its nearest edge (glyphs 0.08-0.18 of their
# height, JPEG-blurred bold ones included; a particle's core, a disc, about 0.35).
MAX_STROKE_RADIUS = 0.2
# The ring of surroundings that tells a bright glyph from a dark one.
RING_PX = 2
# Text is drawn on a plain ground: the gray of the unlabelled pixels one to three pixels around a line's
# glyphs spreads (interquartile range, median over the line) by at most a tenth of the glyphs' contrast
# against it (figure labels 0.01-0.07; the bright flecks of a mottled ore grain, glyph-like one by one,
# stand among cracks and other flecks: 0.10-0.22).
GROUND_PX, MAX_GROUND_SPREAD = 3, 0.1
# A panel's letter ("b", "(a)") stands alone in a top corner of the figure, where a reader starts: a glyph
# or a short line on a plain ground within one and a half of its heights of the top edge and of a side edge
# (a label's margin is about one height of its capitals; a lowercase letter is two thirds of that, and a
# parenthesis before it is seldom outlined: dev_emps' tune letters up to 1.5 heights from an edge; the bottom
# corners hold scale bars and instruments' data bars, beside which particles are cut), and small
# beside the image (at most a fifth of its shorter side; a particle that fills a corner is larger). Its ink
# bends: it fills under 0.8 of its convex hull (the letters of dev_emps' tune half 0.43-0.75), where a rod's
# ink, one straight stroke, fills nearly all of it (an "l" or an "I" alone is kept as a rod would be).
CORNER_MARGIN, MAX_CORNER_SHARE, MAX_CORNER_INK_SOLIDITY = 1.5, 0.2, 0.8
# A scale bar's label ("200 nm", "1 µm") is text however few its glyphs: it stands within one of its heights
# above, below or beside a bar drawn in the image's extreme gray, and is at most half as tall as the bar is
# long. The bar: level, at least a tenth of the image's width long (dev_emps' scale bars 0.11-0.33 of it;
# saturated flecks and highlights of particles 0.09 at most), at least BAR_MIN_PX thick and BAR_MIN_ASPECT
# times as long, filling BAR_MIN_FILL of its box and making up most of the ink connected to it (a glyph may touch
# it; a strip of an info box's black fill between its white lines is a small part of that fill).
MIN_BAR_SHARE, BAR_MIN_PX, BAR_MIN_ASPECT, BAR_MIN_FILL = 0.1, 2, 5.0, 0.8


class _Glyph(NamedTuple):
    kind: str  # "ring": its ink encloses a hole; else "open"
    glyphs: int  # pieces of ink at least MIN_GLYPH_SHARE of its height tall (one at least)
    spread: float  # of the ground around it (MAX_GROUND_SPREAD)
    ink: np.ndarray  # its ink, in the crop
    bright: bool  # inked in the image's white, not its black


def _glyph(mask: np.ndarray, crop: np.ndarray, low: float, high: float,
           unlabelled: np.ndarray) -> _Glyph | None:
    """The object as a glyph when it is drawn in strokes of the image's extreme gray on its side, else None
    (the ground's spread is measured over the ``unlabelled`` pixels around it)."""
    values = crop[mask]
    span = max(high - low, 1e-12)
    dark_tenth, bright_tenth = np.percentile(values, [10, 90])
    if high - bright_tenth > INK_FROM_EXTREME * span and dark_tenth - low > INK_FROM_EXTREME * span:
        return None  # inked on neither side: most objects end here, before the ring is measured
    ring = ndi.binary_dilation(mask, iterations=RING_PX) & ~mask
    around = float(np.median(crop[ring])) if ring.any() else float(np.median(values))
    bright = np.median(values) >= around
    core = float(bright_tenth if bright else dark_tenth)
    if (high - core if bright else core - low) > INK_FROM_EXTREME * span:
        return None
    middle = (core + around) / 2.0
    ink = mask & ((crop > middle) if bright else (crop < middle))
    rows = np.flatnonzero(mask.any(axis=1))
    height = rows[-1] - rows[0] + 1
    if float(ndi.distance_transform_edt(np.pad(ink, 1)).max()) > MAX_STROKE_RADIUS * height:
        return None
    pieces = ndi.find_objects(ndi.label(ink, structure=np.ones((3, 3)))[0])
    glyphs = sum(s[0].stop - s[0].start >= MIN_GLYPH_SHARE * height for s in pieces)
    kind = "ring" if (ndi.binary_fill_holes(ink) & ~ink).any() else "open"
    return _Glyph(kind, max(glyphs, 1), _ground_spread(mask, crop, unlabelled, core), ink, bool(bright))


def _bends(ink: np.ndarray) -> bool:
    """Whether ``ink`` fills under :data:`MAX_CORNER_INK_SOLIDITY` of its convex hull (not one straight stroke)."""
    from skimage.morphology import convex_hull_image

    if not ink.any():  # an object in a region of its own extreme gray has no ink apart from it (and no hull)
        return False
    return np.count_nonzero(ink) < MAX_CORNER_INK_SOLIDITY * np.count_nonzero(convex_hull_image(ink))


def _ground_spread(mask: np.ndarray, crop: np.ndarray, unlabelled: np.ndarray, core: float) -> float:
    """Interquartile range of the ground one to :data:`GROUND_PX` pixels around an object, over its
    contrast (``core`` against the ground's median); unlabelled pixels only, unless under ten."""
    ground = ndi.binary_dilation(mask, iterations=GROUND_PX) & ~ndi.binary_dilation(mask)
    free = ground & unlabelled
    # never empty: a judged object is not cut by the image's edge, so the crop holds ground beyond it
    values = crop[free] if np.count_nonzero(free) >= 10 else crop[ground]
    q1, middle, q3 = np.percentile(values, [25, 50, 75])
    return float((q3 - q1) / max(abs(core - middle), 1e-6))


def _side_by_side(boxes: np.ndarray, top_line: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``a < b`` of boxes ``(y0, y1, x0, x1)`` that stand on one baseline, or (``top_line``)
    hang from one top line, next to each other."""
    top, bottom, left, right = (boxes[:, k, None] for k in range(4))
    heights = bottom - top
    taller = np.maximum(heights, heights.T)
    tolerance = np.maximum(1.0, BASELINE_TOLERANCE * taller)
    aligned = np.abs(bottom - bottom.T) <= tolerance
    if top_line:
        aligned |= np.abs(top - top.T) <= tolerance
    ratio = heights / heights.T
    gap = np.maximum(left.T - right, left - right.T)
    pairs = (aligned & (ratio >= 1.0 / MAX_HEIGHT_RATIO) & (ratio <= MAX_HEIGHT_RATIO)
             & (gap >= -MAX_OVERLAP * taller) & (gap <= MAX_GAP * taller))
    return np.nonzero(np.triu(pairs, k=1))


def _lines(boxes: np.ndarray, top_line: bool) -> np.ndarray:
    """The line (an index) of each box: boxes side by side (:func:`_side_by_side`), transitively."""
    first, second = _side_by_side(boxes, top_line)
    n = len(boxes)
    return connected_components(coo_matrix((np.ones(first.size), (first, second)), shape=(n, n)),
                                directed=False)[1]


def _on_plain_ground(line: np.ndarray, text: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    """``text`` without the lines whose glyphs stand on a ground spreading past :data:`MAX_GROUND_SPREAD`
    (the line's median)."""
    text = text.copy()
    for k in np.unique(line[text]):
        if np.median(spreads[line == k]) > MAX_GROUND_SPREAD:
            text[line == k] = False
    return text


def _in_lines(boxes: np.ndarray, open_ink: np.ndarray, glyphs: np.ndarray, spreads: np.ndarray | None, *,
              top_line: bool, min_objects: int) -> np.ndarray:
    """Which boxes belong to a line of text: ``min_objects`` or more side by side (:func:`_side_by_side`)
    holding :data:`GLYPHS_PER_LINE` glyphs, one of them not a ring, and, given ``spreads``, standing on a
    plain ground (:data:`MAX_GROUND_SPREAD`, the line's median)."""
    line = _lines(boxes, top_line)
    # a row of hollow particles is a row of rings; text has letters that are not ("200 nm", "(d)")
    text = ((np.bincount(line)[line] >= min_objects) & (np.bincount(line, weights=glyphs)[line] >= GLYPHS_PER_LINE)
            & (np.bincount(line, weights=open_ink)[line] > 0))
    return text if spreads is None else _on_plain_ground(line, text, spreads)


def _in_corner(boxes: np.ndarray, bent: np.ndarray, spreads: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which boxes belong to a panel's letter: a line (:func:`_lines`, of any length) on a plain ground whose
    box lies within :data:`CORNER_MARGIN` of its height of the image's top edge and of a side edge, its
    height at most :data:`MAX_CORNER_SHARE` of the image's shorter side, its ink ``bent`` in one glyph at least."""
    line = _lines(boxes, top_line=True)
    n_lines = int(line.max()) + 1
    top, left = np.full(n_lines, np.inf), np.full(n_lines, np.inf)
    right, height = np.zeros(n_lines), np.zeros(n_lines)
    np.minimum.at(top, line, boxes[:, 0])
    np.minimum.at(left, line, boxes[:, 2])
    np.maximum.at(right, line, boxes[:, 3])
    np.maximum.at(height, line, boxes[:, 1] - boxes[:, 0])
    margin = CORNER_MARGIN * height
    corner = ((top <= margin) & (np.minimum(left, shape[1] - right) <= margin)
              & (height <= MAX_CORNER_SHARE * min(shape)) & (np.bincount(line, weights=bent) > 0))
    return _on_plain_ground(line, corner[line], spreads)


def drawn_bars(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """The level bars drawn on a 2D gray ``image`` in its extreme gray (within :data:`INK_FROM_EXTREME` of ``low``
    or ``high``, its 0.5th and 99.5th percentiles), not cut by its edge: scale bars (:data:`MIN_BAR_SHARE`,
    :data:`BAR_MIN_PX`, :data:`BAR_MIN_ASPECT`, :data:`BAR_MIN_FILL`). Rows ``(y0, y1, x0, x1, bright)``
    (float, ``(k, 5)``; ``bright`` 1 for a white bar, 0 for a black one)."""
    span = max(high - low, 1e-12)
    run = int(MIN_BAR_SHARE * image.shape[1]) | 1  # odd: the two filters' windows then mirror each other
    bars = []
    for bright, ink in ((1, image >= high - INK_FROM_EXTREME * span), (0, image <= low + INK_FROM_EXTREME * span)):
        rows = np.flatnonzero(np.count_nonzero(ink, axis=1) >= run)  # only these can hold a run that long
        for group in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if rows.size else ():
            band = slice(max(group[0] - 1, 0), group[-1] + 2)
            bars += [(*box, bright) for box in _long_runs(ink, band, run)]
    return np.asarray(bars, dtype=np.float64).reshape(-1, 5)


def _long_runs(ink: np.ndarray, band: slice, run: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` of the bars (:func:`drawn_bars`) that runs of ``ink`` at least ``run`` long
    make in the rows of ``band``."""
    # an opening along the rows: runs of ink at least ``run`` long
    long_runs = ndi.maximum_filter1d(ndi.minimum_filter1d(ink[band].view(np.uint8), run, axis=1), run, axis=1)
    pieces, _ = ndi.label(long_runs, structure=np.ones((3, 3)))
    boxes = []
    for k, (ys, xs) in enumerate(ndi.find_objects(pieces), start=1):
        y0, y1 = ys.start + band.start, ys.stop + band.start
        if (y1 - y0 >= BAR_MIN_PX and xs.stop - xs.start >= BAR_MIN_ASPECT * (y1 - y0) and y0 > 0 and xs.start > 0
                and y1 < ink.shape[0] and xs.stop < ink.shape[1]
                and np.mean(pieces[ys, xs] == k) >= BAR_MIN_FILL and _is_own_stroke(ink, (slice(y0, y1), xs))):
            boxes.append((y0, y1, xs.start, xs.stop))
    return boxes


def _is_own_stroke(ink: np.ndarray, box: tuple[slice, slice]) -> bool:
    """Whether the stroke of ``ink`` that fills ``box`` is mostly that box: at most twice its ink, and within
    the box grown by its length on every side (a stroke reaching further is no bar)."""
    grow = box[1].stop - box[1].start
    window = tuple(slice(max(s.start - grow, 0), s.stop + grow) for s in box)
    strokes, _ = ndi.label(ink[window], structure=np.ones((3, 3)))
    inner = tuple(slice(s.start - w.start, s.stop - w.start) for s, w in zip(box, window))
    mine = strokes == np.bincount(strokes[inner][ink[box]]).argmax()  # the bar's ink lies in one stroke
    reaches_out = ((window[0].start > 0 and mine[0].any()) or (window[1].start > 0 and mine[:, 0].any())
                   or (window[0].stop < ink.shape[0] and mine[-1].any())
                   or (window[1].stop < ink.shape[1] and mine[:, -1].any()))
    return not reaches_out and 2 * np.count_nonzero(ink[box]) >= np.count_nonzero(mine)


def _by_a_bar(boxes: np.ndarray, bright: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """Which boxes are a bar's label (:func:`drawn_bars`): inked in its gray (``bright`` as it is), at most half
    as tall as it is long, within their height above or below it (centred within their height of its ends) or
    beside it (within their height of an end)."""
    if not len(bars):
        return np.zeros(len(boxes), dtype=bool)
    top, bottom, left, right = (boxes[:, k, None] for k in range(4))
    y0, y1, x0, x1 = (bars[None, :, k] for k in range(4))
    height, centre = bottom - top, (left + right) / 2.0
    above = (bottom <= y0 + 1) & (y0 - bottom <= height)
    below = (top >= y1 - 1) & (top - y1 <= height)
    over = (above | below) & (centre >= x0 - height) & (centre <= x1 + height)
    level = (top <= y1 + height) & (bottom >= y0 - height)
    beside = level & (((left >= x1) & (left - x1 <= height)) | ((right <= x0) & (x0 - right <= height)))
    same_ink = bright[:, None] == bars[None, :, 4]
    return (same_ink & (height <= 0.5 * (x1 - x0)) & (over | beside)).any(axis=1)


def cut_by_edge(box: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    """Whether an object's bounding ``box`` touches the edge of an image of ``shape``."""
    return any(s.start == 0 or s.stop >= n for s, n in zip(box, shape))


def labels_on_image(labels, image, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """2D ``labels`` and the float32 gray ``image`` they outline, checked to share one shape."""
    labels = np.asarray(labels)
    image = np.asarray(image, dtype=np.float32)
    if labels.ndim != 2 or image.shape != labels.shape:
        raise ValueError(f"{caller} needs 2D labels and a gray image of the same shape, "
                         f"got {labels.shape} and {image.shape}")
    return labels, image


class Lettering(NamedTuple):
    """What :func:`find_lettering` found drawn on an image."""

    ids: np.ndarray  # sorted ids (int64) of the objects that are lettering
    bars: np.ndarray  # the bars drawn on the image (:func:`drawn_bars`), ``(k, 5)``


def lettering_ids(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Ids of the objects in ``labels`` that are glyphs of a line of text, of a panel's letter in a top corner
    or of a scale bar's label, drawn on ``image`` (:func:`find_lettering`)."""
    return find_lettering(labels, image).ids


def find_lettering(labels: np.ndarray, image: np.ndarray, *, figure_marks: bool = True) -> Lettering:
    """The objects in ``labels`` that are glyphs of a line of text, of a panel's letter in a top corner or of a
    scale bar's label, drawn on ``image``, and the bars drawn on it.

    Parameters
    ----------
    labels
        2D instance labels, 0 = background.
    image
        The 2D gray image the labels outline (same shape).
    figure_marks
        Also a panel's letter and a scale bar's label (and the bars); False: lines of text only, no bars.

    Returns
    -------
    Lettering
        ``ids``: sorted ids (int64), empty when there is no lettering; ``bars``: :func:`drawn_bars`.
    """
    labels, image = labels_on_image(labels, image, "lettering_ids")
    low, high = (float(v) for v in np.percentile(image, [0.5, 99.5]))
    bars = drawn_bars(image, low, high) if figure_marks else np.zeros((0, 5))
    ids, boxes, open_ink, glyphs, spreads, bent, bright = [], [], [], [], [], [], []
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        # cut by the image's edge, an object's height and bottom are the edge's, not its own
        if sl is None or cut_by_edge(sl, labels.shape):
            continue
        pad = tuple(slice(max(s.start - GROUND_PX, 0), s.stop + GROUND_PX) for s in sl)
        glyph = _glyph(labels[pad] == i, image[pad], low, high, labels[pad] == 0)
        if glyph is not None:
            ids.append(i)
            boxes.append((sl[0].start, sl[0].stop, sl[1].start, sl[1].stop))
            open_ink.append(glyph.kind == "open")
            glyphs.append(glyph.glyphs)
            spreads.append(glyph.spread)
            bright.append(glyph.bright)
            height = sl[0].stop - sl[0].start
            # only near the top edge can it be a panel's letter: the hull is measured there alone
            bent.append(figure_marks and sl[0].start <= CORNER_MARGIN * height and _bends(glyph.ink))
    if not ids:
        return Lettering(np.zeros(0, dtype=np.int64), bars)
    boxes, open_ink = np.asarray(boxes, dtype=np.float64), np.asarray(open_ink, dtype=np.float64)
    # three objects on one baseline are text on any ground (a label on a noisy film) ...
    text = _in_lines(boxes, open_ink, np.ones(len(ids)), None, top_line=False, min_objects=GLYPHS_PER_LINE)
    # ... two objects holding three glyphs, or glyphs hanging from one top line, only on a plain ground
    text |= _in_lines(boxes, open_ink, np.asarray(glyphs, dtype=np.float64), np.asarray(spreads),
                      top_line=True, min_objects=2)
    # ... and a panel's letter, alone in a corner of the figure, on a plain ground; a scale bar's label
    if figure_marks:
        text |= _in_corner(boxes, np.asarray(bent, dtype=np.float64), np.asarray(spreads), labels.shape)
        text |= _by_a_bar(boxes, np.asarray(bright, dtype=np.float64), bars)
    return Lettering(np.asarray(ids, dtype=np.int64)[text], bars)
