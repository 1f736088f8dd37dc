"""Lettering drawn on a micrograph: a line of glyphs inked in the image's extreme gray (pure core).

Figures and instrument exports carry labels ("200 nm", "(d)", "Au NPs") that a segmenter outlines
glyph by glyph. One glyph alone can look like a particle, and one row of particles can look like
a line of text; both together rarely: a line of text is at least three objects of about the same
height standing on one baseline, side by side, each drawn in strokes of the purest white or black
of the image. Text is typeset in the extreme colour, where a particle carries shading and detector
noise; and its ink is thin strokes, where the darkest core of a particle (a row of particles in a
superlattice is inked as deeply as text) is a filled disc. A hollow particle's rim is a stroke too,
but a closed one: a line in which every glyph's ink is a ring is a row of hollow particles. Objects
cut by the image's edge are never glyphs: pieces of one grain cut by the bottom edge all end on it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# A line of text: at least three glyphs (two objects side by side is any touching pair) ...
GLYPHS_PER_LINE = 3
# ... whose bottoms lie within a tenth of the taller one's height (one baseline) ...
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


def _glyph(mask: np.ndarray, crop: np.ndarray, low: float, high: float) -> str | None:
    """``"open"`` or ``"ring"`` (its ink encloses a hole) when the object is drawn in strokes of
    the image's extreme gray on its side, else None."""
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
    return "ring" if (ndi.binary_fill_holes(ink) & ~ink).any() else "open"


def _side_by_side(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of boxes ``(y0, y1, x0, x1)`` that stand on one baseline next to each other."""
    heights = boxes[:, 1] - boxes[:, 0]
    order = np.argsort(boxes[:, 1], kind="stable")
    first, second = [], []
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1:]:
            taller = max(heights[a], heights[b])
            # sorted by bottom: once b's bottom is past any tolerance a could allow, stop
            if boxes[b, 1] - boxes[a, 1] > max(1.0, BASELINE_TOLERANCE * MAX_HEIGHT_RATIO * heights[a]):
                break
            if boxes[b, 1] - boxes[a, 1] > max(1.0, BASELINE_TOLERANCE * taller):
                continue
            if not 1.0 / MAX_HEIGHT_RATIO <= heights[b] / heights[a] <= MAX_HEIGHT_RATIO:
                continue
            gap = max(boxes[b, 2] - boxes[a, 3], boxes[a, 2] - boxes[b, 3])
            if -MAX_OVERLAP * taller <= gap <= MAX_GAP * taller:
                first.append(a)
                second.append(b)
    return np.asarray(first, dtype=np.intp), np.asarray(second, dtype=np.intp)


def labels_on_image(labels, image, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """2D ``labels`` and the float32 gray ``image`` they outline, checked to share one shape."""
    labels = np.asarray(labels)
    image = np.asarray(image, dtype=np.float32)
    if labels.ndim != 2 or image.shape != labels.shape:
        raise ValueError(f"{caller} needs 2D labels and a gray image of the same shape, "
                         f"got {labels.shape} and {image.shape}")
    return labels, image


def lettering_ids(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Ids of the objects in ``labels`` that are glyphs of a line of text drawn on ``image``.

    Parameters
    ----------
    labels
        2D instance labels, 0 = background.
    image
        The 2D gray image the labels outline (same shape).

    Returns
    -------
    numpy.ndarray
        Sorted ids (int64); empty when there is no such line.
    """
    labels, image = labels_on_image(labels, image, "lettering_ids")
    low, high = (float(v) for v in np.percentile(image, [0.5, 99.5]))
    ids, boxes, open_ink = [], [], []
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        # cut by the image's edge, an object's height and bottom are the edge's, not its own
        if sl is None or sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == labels.shape[0] \
                or sl[1].stop == labels.shape[1]:
            continue
        pad = tuple(slice(max(s.start - RING_PX, 0), s.stop + RING_PX) for s in sl)
        glyph = _glyph(labels[pad] == i, image[pad], low, high)
        if glyph is not None:
            ids.append(i)
            boxes.append((sl[0].start, sl[0].stop, sl[1].start, sl[1].stop))
            open_ink.append(glyph == "open")
    if len(ids) < GLYPHS_PER_LINE:
        return np.zeros(0, dtype=np.int64)
    first, second = _side_by_side(np.asarray(boxes, dtype=np.float64))
    n = len(ids)
    graph = coo_matrix((np.ones(first.size), (first, second)), shape=(n, n))
    _, line = connected_components(graph, directed=False)
    sizes = np.bincount(line)
    # a row of hollow particles is a row of rings; text has letters that are not ("200 nm", "(d)")
    with_open = np.bincount(line, weights=np.asarray(open_ink, dtype=np.float64)) > 0
    return np.asarray(ids, dtype=np.int64)[(sizes[line] >= GLYPHS_PER_LINE) & with_open[line]]
