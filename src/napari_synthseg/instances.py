"""Instance labels from the network's probability maps (pure core).

The network predicts three channels: foreground probability, each object's inner
distance normalised to 1 at its centre, and a boundary band. Because the distance is
normalised per object, every object, small or large, has a core above 0.5 that is cut off
from its neighbours' cores at the neck where they touch; those cores seed a watershed
over the foreground. This splits touching objects that plain connected components merge; pieces of one
textured particle, which meet along a long seam the network is unsure of, are joined again (``seams``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .interior_seeds import (
    DEFAULT_MIN_SEED_PROMINENCE,
    DEFAULT_MIN_SEED_SHARE,
    DEFAULT_MIN_SEED_WALL,
    seeding_interiors,
)
from .relabel import renumber_kept
from .seams import DEFAULT_JOIN_SEAM, join_along_weak_seams
from .substrate import SUBSTRATE_MAX_STEP, replace_support

#: Instance methods understood by ``probabilities_to_instances``.
METHODS = ("auto", "boundary", "distance", "watershed", "components")
#: Smallest object kept, in pixels: particles of 10 px are real objects (issue 18), and specks
#: are the confidence filter's job, not the area's.
DEFAULT_MIN_AREA = 10
#: Pixels whose foreground probability is above this are foreground (``predict`` and the
#: Segment dock read it through ``model.PredictionParams``).
DEFAULT_THRESHOLD = 0.5
#: Interior (seed) pixels have a predicted boundary probability below this: pixels the network
#: is confident are not on any outline, so a neck between touching particles cuts their seeds apart.
DEFAULT_BOUNDARY_THRESHOLD = 0.1
#: Interiors smaller than this many pixels seed nothing.
DEFAULT_MIN_SEED_AREA = 10
#: A peak of the predicted inner distance counts as an object's centre when it stands this much
#: (of the 0-1 scale) above the saddle to its neighbours (``basin_at``; chosen on dev_emps' tune half,
#: docs/curation.md).
BASIN_PEAK_HEIGHT = 0.05

_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)
_EIGHT_CONNECTED = ndi.generate_binary_structure(2, 2)


def probabilities_to_instances(prob: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD,
                               min_area: int = DEFAULT_MIN_AREA, fill_holes: bool = True, method: str = "auto",
                               seed_threshold: float = 0.5, seed_peak: float = 0.7, boundary_weight: float = 1.0,
                               fill_contours: bool = False, background_point: tuple[int, int] | None = None,
                               boundary_threshold: float = DEFAULT_BOUNDARY_THRESHOLD,
                               min_seed_area: int = DEFAULT_MIN_SEED_AREA,
                               min_seed_share: float = DEFAULT_MIN_SEED_SHARE,
                               min_seed_prominence: float | None = DEFAULT_MIN_SEED_PROMINENCE,
                               min_seed_wall: float | None = DEFAULT_MIN_SEED_WALL,
                               min_confidence: float = 0.0, drawn_on: np.ndarray | None = None,
                               join_seam: float | None = DEFAULT_JOIN_SEAM,
                               substrate_step: float | None = SUBSTRATE_MAX_STEP) -> np.ndarray:
    """Turn an ``(H, W, C)`` probability map into uint32 instance labels (1..n, 0 = background).

    Parameters
    ----------
    prob
        Channels ``[foreground, distance, boundary]`` in [0, 1]; only the first is needed for ``"watershed"``
        and ``"components"``, the first two for ``"distance"``; a 2D array is the foreground alone.
    threshold
        Foreground probability above which a pixel is object.
    min_area
        Objects smaller than this many pixels are removed.
    fill_holes
        Fill background regions enclosed by a single object.
    method
        ``"boundary"`` (seeds = interiors where the predicted boundary is below ``boundary_threshold``,
        watershed on the boundary map), ``"distance"`` (seeds = cores of the predicted distance, watershed
        on it), ``"watershed"`` (seeds at maxima of the foreground's distance transform), ``"components"``
        or ``"auto"`` (``"boundary"`` when the boundary channel exists, else ``"watershed"``).
    seed_threshold, seed_peak
        For ``"distance"``: a core (seed) is a region where the predicted distance exceeds ``seed_threshold``
        and reaches ``seed_peak`` somewhere (hysteresis against bumps near edges; ``seed_peak <= seed_threshold``:
        off).
    boundary_weight
        How much the boundary channel raises the watershed's landscape (lines follow the predicted boundary).
    fill_contours
        Before splitting, make object every region the foreground encloses, also between several objects (a
        model that outlines without filling): unreachable from ``background_point`` or the border (``fill_enclosed``).
    background_point
        ``(row, col)`` of a background pixel for ``fill_contours``; ``None`` = the border.
    boundary_threshold, min_seed_area, min_seed_share, min_seed_prominence, min_seed_wall
        For ``"boundary"``: interior pixels have a boundary probability below ``boundary_threshold``;
        interiors under ``min_seed_area`` pixels seed nothing, nor do those under ``min_seed_share`` of the
        largest in their blob (texture), unless the inner distance peaks in them ``min_seed_prominence``
        above the pass to a neighbour or the boundary walls them off at ``min_seed_wall``
        (``interior_seeds.seeding_interiors``; ``None`` turns a rescue off).
    min_confidence
        Objects of a lower mean foreground probability are removed (0 keeps all): specks come out faint.
    drawn_on
        The 2D gray image the probabilities were predicted from: objects drawn on it (scale bars, boxes,
        lettering; ``drawn.drop_drawn_overlays``) and the support (``substrate_step``) are left out. None keeps them.
    join_seam
        Touching objects whose seam under a boundary of 0.8 is this many times the smaller one's diameter are
        joined: pieces of one textured particle (``seams.join_along_weak_seams``; None: never).
    substrate_step
        With ``drawn_on``, an object over 0.3 of the image with a gray step across its outline below this share
        of the gray range is the support: replaced by what lies on it (``substrate.replace_support``; None: kept).
    """
    again = {k: v for k, v in locals().items() if k != "prob"} | {"substrate_step": None}  # a support's 2nd look
    prob, method = _checked_arguments(prob, method, min_area=min_area, min_seed_share=min_seed_share,
                                      min_confidence=min_confidence, min_seed_prominence=min_seed_prominence,
                                      min_seed_wall=min_seed_wall, join_seam=join_seam,
                                      substrate_step=substrate_step)
    probability = np.asarray(prob[..., 0], dtype=np.float32)
    foreground = probability > threshold
    if fill_contours:
        foreground = _fill_contours(foreground, background_point)
    labels = _split_into_objects(foreground, prob, method, boundary_threshold=boundary_threshold,
                                 min_seed_area=min_seed_area, min_seed_share=min_seed_share, seed_peak=seed_peak,
                                 min_seed_prominence=min_seed_prominence, min_seed_wall=min_seed_wall,
                                 seed_threshold=seed_threshold,
                                 boundary_weight=boundary_weight)
    labels = _kept_objects(labels.astype(np.uint32, copy=False), probability, threshold, min_area=min_area,
                           fill_holes=fill_holes, min_confidence=min_confidence, drawn_on=drawn_on)
    labels = _joined_pieces(labels, prob, join_seam)
    if drawn_on is None or substrate_step is None:
        return labels
    return replace_support(labels, prob, drawn_on, lambda seen: probabilities_to_instances(seen, **again),
                           max_step=substrate_step)[0]


def _joined_pieces(labels: np.ndarray, prob: np.ndarray, join_seam: float | None) -> np.ndarray:
    """``labels`` (numbered 1..n) with pieces joined along long weak seams (``join_seam``), numbered 1..n."""
    if join_seam is None or prob.shape[-1] < 3:
        return labels
    joined = join_along_weak_seams(labels, prob[..., 2], min_seam=join_seam)
    return labels if joined is labels else relabel_consecutive(joined)  # nothing joined: numbered already


def _kept_objects(labels: np.ndarray, probability: np.ndarray, threshold: float, *, min_area: int,
                  fill_holes: bool, min_confidence: float, drawn_on: np.ndarray | None) -> np.ndarray:
    """The split objects without the small, unconfident and drawn ones, holes filled, numbered 1..n
    (the last steps of ``probabilities_to_instances``)."""
    labels = remove_small_objects(labels, min_area)
    if fill_holes:
        labels = fill_object_holes(labels)
    if min_confidence > 0.0:
        labels = _confident_only(labels, probability, probability > threshold, min_confidence)
    if drawn_on is None:
        return relabel_consecutive(labels)
    from .drawn import drop_drawn_overlays

    return drop_drawn_overlays(labels, drawn_on)[0]  # numbered 1..n as it leaves the drawn ones out


def _checked_arguments(prob, method: str, *, min_area: int, min_seed_share: float, min_confidence: float,
                       min_seed_prominence: float | None = None,
                       min_seed_wall: float | None = None, join_seam: float | None = None,
                       substrate_step: float | None = None) -> tuple[np.ndarray, str]:
    """``prob`` as ``(H, W, C)`` and the method that will split it (``"auto"`` resolved), or a clear error
    for them or the other arguments of ``probabilities_to_instances``."""
    prob = np.asarray(prob)
    if prob.ndim == 2:
        prob = prob[..., None]
    if prob.ndim != 3 or prob.shape[-1] < 1 or prob.shape[0] < 1 or prob.shape[1] < 1:
        raise ValueError(f"prob must be (H, W, C) with C >= 1 channels, got shape {prob.shape}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "boundary" if prob.shape[-1] >= 3 else "watershed"
    if method == "boundary" and prob.shape[-1] < 3:
        raise ValueError("method 'boundary' needs a boundary channel (prob[..., 2]); "
                         "use method='watershed' for a foreground-only map")
    if method == "distance" and prob.shape[-1] < 2:
        raise ValueError("method 'distance' needs a distance channel (prob[..., 1]); "
                         "use method='watershed' for a foreground-only map")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area!r}")
    if not 0.0 <= min_seed_share <= 1.0:
        raise ValueError(f"min_seed_share must be between 0 and 1, got {min_seed_share!r}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
    if min_seed_prominence is not None and not 0.0 <= min_seed_prominence <= 1.0:
        raise ValueError(f"min_seed_prominence must be between 0 and 1 (or None), got {min_seed_prominence!r}")
    if min_seed_wall is not None and not 0.0 <= min_seed_wall <= 1.0:
        raise ValueError(f"min_seed_wall must be between 0 and 1 (or None), got {min_seed_wall!r}")
    if join_seam is not None and not join_seam > 0:
        raise ValueError(f"join_seam must be above 0 (or None: never join), got {join_seam!r}")
    if substrate_step is not None and not substrate_step > 0:
        raise ValueError(f"substrate_step must be above 0 (or None: keep the support), got {substrate_step!r}")
    return prob, method


def _split_into_objects(foreground: np.ndarray, prob: np.ndarray, method: str, *, boundary_threshold: float,
                        min_seed_area: int, min_seed_share: float, min_seed_prominence: float | None,
                        min_seed_wall: float | None,
                        seed_threshold: float, seed_peak: float, boundary_weight: float) -> np.ndarray:
    """The foreground split into objects by ``method`` (resolved; see ``probabilities_to_instances``)."""
    if method == "components":
        labels, _ = ndi.label(foreground, structure=_EIGHT_CONNECTED)
        return labels
    if method == "watershed":
        return _edt_watershed(foreground)
    if method == "boundary":
        distance = np.asarray(prob[..., 1], dtype=np.float32) if min_seed_prominence is not None else None
        return _boundary_watershed(foreground, np.asarray(prob[..., 2], dtype=np.float32),
                                   boundary_threshold, min_seed_area, min_seed_share,
                                   distance=distance, min_seed_prominence=min_seed_prominence,
                                   min_seed_wall=min_seed_wall)
    distance = np.asarray(prob[..., 1], dtype=np.float32)
    boundary = np.asarray(prob[..., 2], dtype=np.float32) if prob.shape[-1] >= 3 else None
    return _distance_watershed(foreground, distance, boundary, seed_threshold, seed_peak, boundary_weight)


def _confident_only(labels: np.ndarray, probability: np.ndarray, called: np.ndarray,
                    min_confidence: float) -> np.ndarray:
    """``labels`` without the objects the network is not confident about (``min_confidence``).

    Judged on the pixels the network ``called`` object (filled holes and contours do not count);
    an object whose blurred rim sinks its mean (a small particle) stays when its core, the
    object without its rim, is surer still: halfway from the bar to certainty, which specks
    of noise rarely reach.
    """
    inner = called & object_interior(labels)
    whole = remove_unconfident_objects(labels, probability, min_confidence, where=called)
    cores = remove_unconfident_objects(labels, probability, (1.0 + min_confidence) / 2,
                                       where=inner | (called & ~_has_interior(labels, inner)))
    return np.where(whole > 0, whole, cores)


def remove_unconfident_objects(labels: np.ndarray, probability: np.ndarray, min_confidence: float,
                               where: np.ndarray | None = None) -> np.ndarray:
    """Set objects whose mean ``probability`` is below ``min_confidence`` to 0 (not renumbered).

    ``where``: only these pixels count towards an object's mean (an object without any is kept).
    """
    labels = np.asarray(labels)
    if labels.size == 0 or not labels.any():
        return labels
    n = int(labels.max())
    counted = labels if where is None else np.where(where, labels, 0)
    sums = np.bincount(counted.ravel(), weights=np.asarray(probability, dtype=np.float64).ravel(), minlength=n + 1)
    counts = np.bincount(counted.ravel(), minlength=n + 1)
    weak = sums < min_confidence * counts
    weak[0] = False
    if not weak.any():
        return labels
    return np.where(weak[labels], 0, labels).astype(labels.dtype, copy=False)


def object_interior(labels: np.ndarray) -> np.ndarray:
    """True where a pixel and its four neighbours carry the same object id (the object minus its rim)."""
    labels = np.asarray(labels)
    inner = labels > 0
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        inner &= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] == centre
    return inner


def _has_interior(labels: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per pixel: does its object have any ``counted`` pixel (objects without one are judged on all)."""
    present = np.zeros(int(labels.max()) + 1, dtype=bool)
    present[labels[counted]] = True
    present[0] = False
    return present[labels]


def _boundary_watershed(foreground: np.ndarray, boundary: np.ndarray, boundary_threshold: float,
                        min_seed_area: int, min_seed_share: float, *, distance: np.ndarray | None = None,
                        min_seed_prominence: float | None = None, min_seed_wall: float | None = None) -> np.ndarray:
    interiors, _ = ndi.label(foreground & (boundary < boundary_threshold), structure=_FOUR_CONNECTED)
    if min_seed_area > 1:
        interiors = remove_small_objects(interiors, min_seed_area)
    seeds = seeding_interiors(interiors, foreground, boundary, min_share=min_seed_share, distance=distance,
                              min_prominence=min_seed_prominence, min_wall=min_seed_wall)
    return _split_by_seeds(boundary, seeds > 0, foreground, _FOUR_CONNECTED)


def _fill_contours(foreground: np.ndarray, background_point: tuple[int, int] | None) -> np.ndarray:
    if background_point is None:
        # Seeding the background from the whole border, not one corner: objects touching
        # two edges would otherwise cut the corner off and everything else would fill.
        return ndi.binary_fill_holes(foreground, structure=_FOUR_CONNECTED)
    from napari_synthseg.curation import fill_enclosed

    return np.asarray(fill_enclosed(foreground, background_point), dtype=bool) | foreground


def _split_by_seeds(landscape: np.ndarray, seeds: np.ndarray, foreground: np.ndarray,
                    seed_structure: np.ndarray) -> np.ndarray:
    """Label foreground components by the seeds they hold.

    A component with one seed is one object and one without seeds is one object; only
    components holding several seeds (clumps) are split, by a watershed of ``landscape``
    from the seeds. Skipping the watershed elsewhere keeps the cost proportional to the
    clumps, not to the whole foreground.
    """
    components, n_components = ndi.label(foreground, structure=_EIGHT_CONNECTED)
    markers, n_markers = ndi.label(seeds & foreground, structure=seed_structure)
    if n_components == 0:
        return components
    # Seeds lie inside the foreground, so each belongs to exactly one component.
    seed_component = np.zeros(n_markers + 1, dtype=np.int64)
    in_seed = markers > 0
    seed_component[markers[in_seed]] = components[in_seed]
    seeds_per_component = np.bincount(seed_component[1:], minlength=n_components + 1)
    seeds_per_component[0] = 0
    # Whole-component ids come after the seed ids, so the two never collide.
    component_label = np.arange(n_components + 1, dtype=np.int64) + n_markers
    component_label[0] = 0
    single = seed_component[1:][seeds_per_component[seed_component[1:]] == 1]
    single_ids = np.flatnonzero(seeds_per_component[seed_component] == 1)
    component_label[single] = single_ids
    labels = component_label[components]
    clumps = seeds_per_component[components] >= 2
    if clumps.any():
        from skimage.segmentation import watershed

        box = ndi.find_objects(clumps.astype(np.int8))[0]
        split = watershed(landscape[box], markers=np.where(clumps[box], markers[box], 0),
                          mask=clumps[box], connectivity=2)
        region = labels[box]
        region[clumps[box]] = split[clumps[box]]
    return labels


def _distance_watershed(foreground: np.ndarray, distance: np.ndarray, boundary: np.ndarray | None,
                        seed_threshold: float, seed_peak: float, boundary_weight: float) -> np.ndarray:
    cores = distance > seed_threshold
    if seed_peak > seed_threshold:
        regions, n_regions = ndi.label(cores, structure=_FOUR_CONNECTED)
        peaked = np.zeros(n_regions + 1, dtype=bool)
        peaked[regions[distance >= seed_peak]] = True
        peaked[0] = False
        cores = peaked[regions]
    landscape = -distance
    if boundary is not None:
        cores &= boundary < 0.5
        if boundary_weight:
            landscape = landscape + np.float32(boundary_weight) * boundary
    return _split_by_seeds(landscape, cores, foreground, _FOUR_CONNECTED)


def _edt_watershed(foreground: np.ndarray, min_distance: int = 7, smooth: float = 1.0) -> np.ndarray:
    """Classic split: watershed of the distance transform from its local maxima."""
    edt = ndi.distance_transform_edt(foreground).astype(np.float32)
    if smooth:
        edt = ndi.gaussian_filter(edt, smooth)
    # Maxima over a (2 * min_distance + 1)^2 window, not every local maximum: ridges of
    # elongated objects would otherwise shatter into many seeds.
    peaks = (edt == ndi.maximum_filter(edt, size=2 * min_distance + 1)) & (edt > 1.0)
    return _split_by_seeds(-edt, peaks, foreground, _EIGHT_CONNECTED)


def basin_at(distance: np.ndarray, mask: np.ndarray, point, *, peak_height: float = BASIN_PEAK_HEIGHT
             ) -> np.ndarray | None:
    """The part of ``mask`` that drains to the same peak of the inner ``distance`` as ``point``.

    ``distance`` is the network's normalised inner distance (1 at each object's centre), so an
    object it missed inside a larger prediction (a clump, or an object joined with background)
    still has a peak of its own; the watershed of the smoothed distance from the peaks that stand
    ``peak_height`` above their saddles cuts ``mask`` between them. None when ``mask`` holds fewer
    than two such peaks, or ``point`` is outside it.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    row, col = (int(v) for v in point)
    if np.shape(distance) != mask.shape:
        raise ValueError(f"the distance map has shape {np.shape(distance)} but the mask {mask.shape}")
    if not mask[row, col]:
        return None
    rows, cols = np.nonzero(mask)
    box = (slice(max(rows.min() - 2, 0), rows.max() + 3), slice(max(cols.min() - 2, 0), cols.max() + 3))
    inside = mask[box]
    # smoothed so that pixel noise on a flat top is not a peak of its own
    height = ndi.gaussian_filter(np.asarray(distance, dtype=np.float32)[box], 1.0) * inside
    peaks, n = ndi.label(h_maxima(height, peak_height) & inside)
    if n < 2:
        return None
    basins = watershed(-height, peaks, mask=inside)
    clicked = basins[row - box[0].start, col - box[1].start]
    if clicked == 0:
        return None
    region = np.zeros(mask.shape, dtype=bool)
    region[box] = basins == clicked
    return region


def remove_small_objects(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Set objects with fewer than ``min_area`` pixels to 0 (labels not renumbered)."""
    labels = np.asarray(labels)
    if min_area <= 1 or labels.size == 0:
        return labels
    areas = np.bincount(labels.ravel())
    small = areas < min_area
    small[0] = False
    if not small.any():
        return labels
    return np.where(small[labels], 0, labels).astype(labels.dtype, copy=False)


def fill_object_holes(labels: np.ndarray) -> np.ndarray:
    """Fill each background region that is enclosed by exactly one object with that object.

    Regions bordered by two or more objects (gaps between touching objects) stay
    background. Vectorised: one labelling of all holes, one look at their rims.
    """
    labels = np.asarray(labels)
    objects = labels > 0
    holes = ndi.binary_fill_holes(objects, structure=_FOUR_CONNECTED) & ~objects
    if not holes.any():
        return labels
    hole_ids, n_holes = ndi.label(holes, structure=_FOUR_CONNECTED)
    # (hole, object) pairs across every 4-neighbour step; a hole is a maximal 4-connected
    # background region, so all its neighbours outside it are object pixels.
    pair_parts = []
    for axis in (0, 1):
        front = tuple(slice(1, None) if d == axis else slice(None) for d in range(2))
        back = tuple(slice(None, -1) if d == axis else slice(None) for d in range(2))
        for here, there in ((front, back), (back, front)):
            h, o = hole_ids[here], labels[there]
            touching = (h > 0) & (o > 0)
            pair_parts.append(np.stack([h[touching].astype(np.int64), o[touching].astype(np.int64)]))
    pairs = np.unique(np.concatenate(pair_parts, axis=1), axis=1)
    owners_per_hole = np.bincount(pairs[0], minlength=n_holes + 1)
    owner = np.zeros(n_holes + 1, dtype=labels.dtype)
    single = owners_per_hole[pairs[0]] == 1
    owner[pairs[0][single]] = pairs[1][single]
    fill = owner[hole_ids]
    return np.where(fill > 0, fill, labels).astype(labels.dtype, copy=False)


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber labels to 1..n in order of first label value, as uint32."""
    labels = np.asarray(labels)
    present = np.unique(labels)
    present = present[present != 0]
    if present.size == 0:
        return np.zeros(labels.shape, dtype=np.uint32)
    keep = np.zeros(int(present[-1]) + 1, dtype=bool)
    keep[present] = True
    return renumber_kept(labels, keep)
