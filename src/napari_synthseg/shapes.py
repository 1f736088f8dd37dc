"""Object shapes: split clumps at their necks, and judge whether a mask is one particle (pure core).

Two users: :func:`split_clumps` splits the clumps of a whole label image (auto-segmentation),
:func:`judge_shape` decides what a single banked object is: one particle (kept), a clump of
round particles (split into them), or text, a scale bar or an info box (left out).
:func:`overlay_reason` says whether a mask is shaped like something drawn on a figure (a bar, a box,
a stroke); ``drawn.drop_drawn_overlays`` uses it to leave those out of a whole label image.

Every threshold is a scale-free ratio of the object's own geometry, so a 10-pixel particle and
a 1000-pixel one are judged alike. The yardstick is the *inscribed radius* ``r`` (half the
width of the object at its widest point) and the number of inscribed disks its area holds,
``area / (pi r^2)``: 1 for a disk, ``k`` for an ellipse ``k`` times as long as wide, about
``4 L / (pi w)`` for a stroke of length ``L`` and width ``w``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi

from .substrate import SUBSTRATE_MIN_SHARE

# Neck: narrower than this share of the smaller part's inscribed radius (a waist a third deep
# on both sides, plainly two particles; an ellipse or a convex grain has no waist at all).
NECK_RATIO = 0.7
# Round part of a clump: it holds at most 4 inscribed disks (an ellipse up to 4:1) ...
ROUND_MAX_DISKS = 4.0
# ... and is nearly convex (a disk or a grain >= 0.9; two touching disks together 0.88).
ROUND_MIN_SOLIDITY = 0.8
# Thin stroke: its area holds >= 5 inscribed disks (a line at least ~4 times as long as wide)
# with no neck to split at ...
STROKE_MIN_DISKS = 5.0
# ... and bends or branches: under 75 % of its convex hull (letters 0.3-0.75; a round particle
# >= 0.9, a clump of round particles >= 0.8 unless it branches).
STROKE_MAX_SOLIDITY = 0.75
# Clump with no clear necks: >= 4 disks' worth of area and an outline that is not nearly convex.
LUMP_MIN_DISKS = 4.0
# Straight bar: at least 10 times as long as wide (second moments), like a scale bar or a rule.
BAR_MIN_ASPECT = 10.0
# Box: fills >= 95 % of its axis-aligned bounding box (a disk fills 79 %, a tilted square <= 90 %).
BOX_MIN_FILL = 0.95
# Flat fill: a drawn overlay carries no detector noise, so its inside varies (median absolute
# deviation) less than a quarter as much as the background beside it, or less than 1 % of its
# contrast to that background: about one 8-bit gray level, what compressing a figure leaves in a
# drawn fill (a bar at 254-255 beside a background of deviation 3 is not flat by the first test).
FLAT_NOISE_SHARE, FLAT_CONTRAST_SHARE = 0.25, 0.01
# Width of the ring of background beside an object that the flat test compares it with.
FLAT_RING_PX = 2
# The flat test judges an object without this many pixels of its outline, where it blends with its
# surroundings (``drawn`` judges level bars without more).
FLAT_EDGE_PX = 1
# Evidence of a clump: two parts of comparable size (the smaller >= 1/4 of the larger's area);
# a jagged grain's outline only throws off small bumps.
CLUMP_MIN_PART_SHARE = 0.25
# A clump is mostly its particles: when round parts hold under half its area, the rest is
# irregular (a torn film, a textured region) and the object is not a clump of particles.
CLUMP_MIN_ROUND_SHARE = 0.5
# Below this many pixels an outline has too few pixels to tell a letter from a particle.
MIN_JUDGED_AREA = 10
# A neck must dip at least one pixel below the smaller peak: pixel steps on an outline are no necks.
MIN_NECK_DEPTH = 1.0
# Maybe several particles: two touching disks hold two inscribed disks' area and fill 88 % of their
# convex hull; a disk, an ellipse or a convex grain fills >= 90 %. Labels that merged touching particles
# without a neck (blurred, or a small one beside a large one) look like this; the training then does
# not teach their inside (``clump_interiors``), while the bank, which needs a verdict, keeps them.
# A region as large as a support (``substrate.SUBSTRATE_MIN_SHARE`` of the image: a film, a matrix)
# is no clump of particles and is not judged so.
MAYBE_SEVERAL_MIN_DISKS = 2.0
MAYBE_SEVERAL_MAX_SOLIDITY = 0.9

#: Verdicts recorded in a banked object's ``shape_verdict`` metadata.
SINGLE, SPLIT, SMALL, PIECES = "single", "split from clump", "too small to judge", "several pieces, not judged"
#: Why an object is a clump that the bank leaves out (and the training teaches only its outline).
NOT_SPLIT_CLEANLY = "clump not split cleanly"
#: Reasons an object (or a part of a clump) is left out of the bank.
LEFT_OUT_REASONS = ("straight bar", "flat box", "thin stroke", NOT_SPLIT_CLEANLY)


@dataclass
class ShapeMeasures:
    """Scale-free shape figures of one mask (see the module docstring); ``solidity`` (pixels
    over convex-hull pixels) is measured when first asked for, as most verdicts never need it."""

    area: int
    inscribed_radius: float
    disks: float
    aspect: float
    box_fill: float
    mask: np.ndarray = field(repr=False, compare=False)

    @cached_property
    def solidity(self) -> float:
        from skimage.morphology import convex_hull_image

        return min(1.0, self.area / max(int(convex_hull_image(self.mask).sum()), 1))


@dataclass
class ShapeVerdict:
    """What :func:`judge_shape` made of a mask.

    Attributes
    ----------
    parts
        Bool masks (the input's shape) to keep: the object itself, or the parts of a clump.
    shape
        The kept parts' verdict: :data:`SINGLE`, :data:`SPLIT`, :data:`SMALL` or :data:`PIECES`
        (none kept: "").
    left_out
        One reason from :data:`LEFT_OUT_REASONS` per object or clump part left out.
    """

    parts: list = field(default_factory=list)
    shape: str = ""
    left_out: list = field(default_factory=list)


def _inscribed(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Distance map (to the nearest outside pixel, the crop's edge counting as outside) and the
    inscribed radius: its maximum less half a pixel, the distance from a pixel centre to the edge."""
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return dist, max(float(dist.max()) - 0.5, 0.5)


def measure_shape(mask: np.ndarray) -> ShapeMeasures:
    """Area, inscribed radius, inscribed disks held, solidity, aspect and box fill of a 2D mask."""
    mask = np.asarray(mask, dtype=bool)
    area = int(mask.sum())
    if area == 0:
        raise ValueError("the mask is empty; pass a mask with object pixels")
    _, radius = _inscribed(mask)
    points = np.argwhere(mask).astype(np.float64)
    # Second moments of the pixels as unit squares (+1/12), so a one-pixel line has a width.
    small, large = np.linalg.eigvalsh(np.cov(points.T, bias=True)) + 1.0 / 12.0 if area > 1 else (1.0, 1.0)
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    return ShapeMeasures(area=area, inscribed_radius=radius, disks=area / (np.pi * radius * radius),
                         aspect=float(np.sqrt(large / small)), box_fill=float(area / box), mask=mask)


def split_at_necks(mask: np.ndarray, *, neck_ratio: float = NECK_RATIO, min_part_area: int = MIN_JUDGED_AREA
                   ) -> tuple[np.ndarray, int]:
    """Split one object where it narrows to a neck: parts as labels ``1..k`` (0 outside).

    Every peak of the distance map seeds a watershed basin; neighbouring basins merge, highest
    pass first, unless the pass between them (the neck's half-width) is narrower than
    ``neck_ratio`` times the smaller basin's peak (its inscribed radius) and at least a pixel
    lower. Measured against the *smaller* part, so a small particle on a big one splits too.
    Basins under ``min_part_area`` pixels always merge.

    Parameters
    ----------
    mask
        2D bool mask of one object.

    Returns
    -------
    labels : numpy.ndarray
        int32 labels of the parts, the mask's shape.
    k : int
        How many parts (1 when nothing splits).
    """
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"split_at_necks needs a 2D mask, got shape {mask.shape}")
    dist, _ = _inscribed(mask)
    peaks = (ndi.maximum_filter(dist, size=3) == dist) & mask
    markers, k = ndi.label(peaks, structure=np.ones((3, 3), dtype=bool))
    if k < 2:
        return mask.astype(np.int32), int(mask.any())
    basins = watershed(-dist, markers, mask=mask, connectivity=2)
    height = np.asarray(ndi.maximum(dist, basins, np.arange(k + 1)), dtype=np.float64)
    area = np.bincount(basins.ravel(), minlength=k + 1).astype(np.int64)
    roots = _merged_basins(_basin_passes(basins, dist, k), height, area, k, neck_ratio=neck_ratio,
                           min_part_area=min_part_area)
    kept = np.unique(roots[1:])
    lut = np.zeros(k + 1, dtype=np.int32)
    lut[1:] = np.searchsorted(kept, roots[1:]) + 1
    return lut[basins], int(kept.size)


def _basin_passes(basins: np.ndarray, dist: np.ndarray, k: int) -> dict[tuple[int, int], float]:
    """The pass between each two touching basins ``(a, b)``, a < b: the highest min(dist) over their
    touching (8-neighbour) pixel pairs."""
    passes: dict[tuple[int, int], float] = {}
    for a, b, da, db in ((basins[:-1], basins[1:], dist[:-1], dist[1:]),
                         (basins[:, :-1], basins[:, 1:], dist[:, :-1], dist[:, 1:]),
                         (basins[:-1, :-1], basins[1:, 1:], dist[:-1, :-1], dist[1:, 1:]),
                         (basins[:-1, 1:], basins[1:, :-1], dist[:-1, 1:], dist[1:, :-1])):
        touching = (a != b) & (a > 0) & (b > 0)
        if not touching.any():
            continue
        low, high = np.minimum(a[touching], b[touching]), np.maximum(a[touching], b[touching])
        level = np.minimum(da[touching], db[touching])
        keys = low.astype(np.int64) * (k + 1) + high
        order = np.lexsort((level, keys))
        last = np.r_[keys[order][1:] != keys[order][:-1], True]  # highest level of each key
        for key, value in zip(keys[order][last], level[order][last]):
            pair = divmod(int(key), k + 1)
            passes[pair] = max(passes.get(pair, 0.0), float(value))
    return passes


def _merged_basins(passes: dict[tuple[int, int], float], height: np.ndarray, area: np.ndarray, k: int, *,
                   neck_ratio: float, min_part_area: int) -> np.ndarray:
    """Each basin's root after merging, highest pass first, every pair that is not a neck (``split_at_necks``).

    ``height`` and ``area`` (per basin, 0 = outside) are updated in place as basins merge.
    """
    parent = list(range(k + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    while True:
        best = None
        for (a, b), level in passes.items():
            lower = min(height[a], height[b])
            separate = (level < neck_ratio * lower and lower - level >= MIN_NECK_DEPTH
                        and min(area[a], area[b]) >= min_part_area)
            if not separate and (best is None or level > best[1]):
                best = ((a, b), level)
        if best is None:
            break
        (a, b), _ = best
        # b joins a: its height, area and passes go to a (the higher pass to a shared neighbour wins)
        parent[b] = a
        height[a], area[a] = max(height[a], height[b]), area[a] + area[b]
        merged: dict[tuple[int, int], float] = {}
        for (c, d), level in passes.items():
            c, d = root(c), root(d)
            if c != d:
                pair = (min(c, d), max(c, d))
                merged[pair] = max(merged.get(pair, 0.0), level)
        passes = merged
    return np.array([root(i) for i in range(k + 1)])


def is_flat(mask: np.ndarray, image: np.ndarray | None, edge: int = FLAT_EDGE_PX) -> bool:
    """True when the object, less ``edge`` pixels of its outline, is one gray level against its
    surroundings (a drawn overlay)."""
    if image is None:
        return False
    image = np.asarray(image, dtype=np.float64)
    inside = _inner_part(mask, edge)
    ring = ndi.binary_dilation(mask, iterations=FLAT_RING_PX) & ~mask
    if not ring.any():
        return False
    values, around = image[inside], image[ring]
    middle, level = float(np.median(values)), float(np.median(around))
    spread_inside = float(np.median(np.abs(values - middle)))
    spread_around = float(np.median(np.abs(around - level)))
    return spread_inside <= max(FLAT_NOISE_SHARE * spread_around, FLAT_CONTRAST_SHARE * abs(middle - level))


def _inner_part(mask: np.ndarray, edge: int) -> np.ndarray:
    """``mask`` less ``edge`` pixels of its outline, or less as much as leaves a judgeable inside."""
    for width in range(edge, 0, -1):
        inside = ndi.binary_erosion(mask, iterations=width)
        if inside.sum() >= MIN_JUDGED_AREA:
            return inside
    return mask


def overlay_reason(mask: np.ndarray, image: np.ndarray | None = None,
                   measures: ShapeMeasures | None = None) -> str | None:
    """Why a mask looks like a drawn overlay (``"straight bar"``, ``"flat box"``, ``"thin
    stroke"``) rather than a particle, or None. ``image`` (the crop under the mask, with some
    surroundings) is needed for the flat-box test only."""
    m = measure_shape(mask) if measures is None else measures
    if m.aspect >= BAR_MIN_ASPECT:
        return "straight bar"
    if m.box_fill >= BOX_MIN_FILL and is_flat(mask, image):
        return "flat box"
    if m.disks >= STROKE_MIN_DISKS and m.solidity < STROKE_MAX_SOLIDITY:
        return "thin stroke"
    return None


def _is_round(m: ShapeMeasures) -> bool:
    return m.disks <= ROUND_MAX_DISKS and m.solidity >= ROUND_MIN_SOLIDITY


def judge_shape(mask: np.ndarray, image: np.ndarray | None = None, *, min_part_area: int = MIN_JUDGED_AREA,
                neck_ratio: float = NECK_RATIO) -> ShapeVerdict:
    """Judge one object mask: a single particle, a clump to split, or an overlay to leave out.

    1. Too small to judge (< :data:`MIN_JUDGED_AREA` pixels) or made of several 8-connected
       pieces (a hand-drawn label, not one outline): kept as it is.
    2. Split at necks (:func:`split_at_necks`). When two or more parts come out and every part
       is round (at most :data:`ROUND_MAX_DISKS` inscribed disks, solidity >=
       :data:`ROUND_MIN_SOLIDITY`), the parts are kept: a clump of particles.
    3. Otherwise the whole object is tested as an overlay (:func:`overlay_reason`: straight
       bar, flat box, thin stroke - text and panel letters) and left out if it is one.
    4. Without two parts of comparable size (:data:`CLUMP_MIN_PART_SHARE`) it is one particle
       whose outline has bumps: kept whole, unless it holds several disks' worth of area
       (:data:`LUMP_MIN_DISKS`) with a concave outline - a clump without clear necks, left out.
    5. A clump whose round parts hold at least :data:`CLUMP_MIN_ROUND_SHARE` of its area keeps
       those and leaves out the rest; otherwise all of it is left out.

    Parameters
    ----------
    mask
        2D bool mask of one object (a crop with some margin is best).
    image
        The gray crop under ``mask`` (same shape), for the flat-box test; optional.
    min_part_area
        Smallest part a clump may split into, in pixels.

    Returns
    -------
    ShapeVerdict
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"judge_shape needs a 2D mask, got shape {mask.shape}")
    if image is not None and np.shape(image) != mask.shape:
        raise ValueError(f"image shape {np.shape(image)} differs from the mask shape {mask.shape}")
    if not mask.any():
        raise ValueError("the mask is empty; pass a mask with object pixels")
    if mask.sum() < MIN_JUDGED_AREA:
        return ShapeVerdict([mask], SMALL)
    if ndi.label(mask, structure=np.ones((3, 3), dtype=bool))[1] > 1:
        return ShapeVerdict([mask], PIECES)  # not one outline: kept as it was drawn
    parts, k = split_at_necks(mask, neck_ratio=neck_ratio, min_part_area=max(int(min_part_area), 1))
    pieces = [parts == i for i in range(1, k + 1)]
    measures = [measure_shape(piece) for piece in pieces]
    if k >= 2 and all(_is_round(m) for m in measures):
        return ShapeVerdict(pieces, SPLIT)
    whole = measure_shape(mask) if k >= 2 else measures[0]
    reason = overlay_reason(mask, image, whole)
    if reason is not None:
        return ShapeVerdict([], "", [reason])
    areas = sorted((m.area for m in measures), reverse=True)
    clump = k >= 2 and areas[1] >= CLUMP_MIN_PART_SHARE * areas[0]
    if not clump:  # one particle, perhaps with bumps on its outline
        if whole.disks >= LUMP_MIN_DISKS and whole.solidity < ROUND_MIN_SOLIDITY:
            return ShapeVerdict([], "", [NOT_SPLIT_CLEANLY])
        return ShapeVerdict([mask], SINGLE)
    kept = [piece for piece, m in zip(pieces, measures) if _is_round(m)]
    if sum(int(piece.sum()) for piece in kept) < CLUMP_MIN_ROUND_SHARE * whole.area:
        return ShapeVerdict([], "", [NOT_SPLIT_CLEANLY])
    return ShapeVerdict(kept, SPLIT, [NOT_SPLIT_CLEANLY] * (k - len(kept)))


def split_clumps(labels: np.ndarray, n: int, min_area: int, *, neck_ratio: float | None = None
                 ) -> tuple[np.ndarray, int]:
    """Split the clumps of a label image at their necks (distance-transform watershed, per object).

    With ``neck_ratio=None`` (the auto-segmentation's default) only objects whose area is
    well above that of their largest inscribed disk (so not one round blob) are examined,
    and a neck is narrower than half the object's largest inscribed radius, so the deep
    parts of the distance map fall apart there; with a number, each object is split by
    :func:`split_at_necks` (necks measured against the smaller part, as :func:`judge_shape`
    does, so a small particle on a big one splits off too). Edits ``labels`` in place;
    returns it and the new largest id.
    """
    from skimage.segmentation import watershed

    if n == 0:
        return labels, n
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    next_id = n + 1
    big_enough = max(4 * min_area, 64)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or areas[i] < big_enough:
            continue
        rows = slice(max(sl[0].start - 1, 0), sl[0].stop + 1)
        cols = slice(max(sl[1].start - 1, 0), sl[1].stop + 1)
        crop = labels[rows, cols]
        obj = crop == i
        # Cheap test first: a blob filling most of its bounding box cannot have a neck.
        if areas[i] > 0.8 * obj.shape[0] * obj.shape[1]:
            continue
        if neck_ratio is not None:
            parts, k = split_at_necks(obj, neck_ratio=neck_ratio,
                                      min_part_area=max(int(min_area), 1))
            if k >= 2:
                ids = np.concatenate([[0, i], np.arange(next_id, next_id + k - 1)]).astype(labels.dtype)
                crop[obj] = ids[parts[obj]]
                next_id += k - 1
            continue
        dist = ndi.distance_transform_edt(obj)
        rmax = float(dist.max())
        if areas[i] < 1.6 * np.pi * rmax * rmax:
            continue
        # Cores deeper than half the largest radius: a neck narrower than that
        # separates them. (Cheaper than h-maxima, which needs a grey reconstruction.)
        markers, k = ndi.label(dist > max(1.5, 0.5 * rmax), structure=np.ones((3, 3), dtype=bool),
                               output=np.int32)
        if k < 2:
            continue
        parts = watershed(-dist, markers, mask=obj)
        part_areas = np.bincount(parts.ravel(), minlength=k + 1)[1:]
        if (part_areas < min_area).any():
            continue  # splitting would only chip off specks
        # Part 1 keeps the old id; the others get fresh ids.
        ids = np.concatenate([[0, i], np.arange(next_id, next_id + k - 1)]).astype(labels.dtype)
        crop[obj] = ids[parts[obj]]
        next_id += k - 1
    return labels, next_id - 1


def clump_interiors(labels: np.ndarray, *, min_area: int = 64) -> np.ndarray:
    """Pixels inside objects whose shape says "several particles", away from their outline.

    An object that :func:`judge_shape` would split at necks, or judges a lump without clear
    necks, or that holds two inscribed disks' area with a concave outline (as two touching
    particles do; :data:`MAYBE_SEVERAL_MIN_DISKS`), may be touching particles that the labels
    merged: where they meet inside it is not known (the two-disk test leaves out regions as large
    as a support, ``substrate.SUBSTRATE_MIN_SHARE`` of the image). Its pixels not 4-adjacent to another label
    (background or a neighbour) are True; its outline and every other object (round, convex,
    thin) are False. Objects under ``min_area`` pixels are not judged.

    Parameters
    ----------
    labels
        2D instance labels, 0 = background.
    min_area
        Smallest object judged, in pixels.

    Returns
    -------
    ndarray of bool, the shape of ``labels``
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"clump_interiors needs 2D labels, got shape {labels.shape}")
    inside = np.zeros(labels.shape, dtype=bool)
    if not labels.any():
        return inside
    areas = np.bincount(labels.ravel())
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or areas[i] < max(int(min_area), MIN_JUDGED_AREA):
            continue
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        obj = labels[sl] == i
        if _maybe_several(obj, two_disk_test=areas[i] < SUBSTRATE_MIN_SHARE * labels.size):
            # the outline stays known: it borders background whatever the particles inside are
            inside[sl] |= ndi.binary_erosion(obj, border_value=1)
    return inside


def _maybe_several(obj: np.ndarray, two_disk_test: bool = True) -> bool:
    if two_disk_test:
        whole = measure_shape(obj)
        if whole.disks >= MAYBE_SEVERAL_MIN_DISKS and whole.solidity < MAYBE_SEVERAL_MAX_SOLIDITY:
            return True
    verdict = judge_shape(obj)
    return verdict.shape == SPLIT or NOT_SPLIT_CLEANLY in verdict.left_out


