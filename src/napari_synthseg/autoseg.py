"""Classical automatic segmentation at full resolution (pure core).

Every step is a whole-array numpy/scipy/scikit-image operation; the only Python
loops run over planes of a stack and over the few objects that need splitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage as ndi

from .drawn import drop_drawn_overlays
from .image_io import gray_planes, iter_planes
from .relabel import renumber_kept, stack_planes
from .scalebar import check_ignore_box, cut_box, resolve_ignore_box
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
    return renumber_kept(labels, keep)


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


# --------------------------------------------------------------------------- foreground
def _global_threshold(values: np.ndarray, method: str) -> float:
    from skimage import filters

    if method == "otsu":
        return float(filters.threshold_otsu(values))
    if method == "li":
        return float(filters.threshold_li(values))
    return float(filters.threshold_triangle(values))


def edge_threshold(smooth: np.ndarray, valid: np.ndarray | None, bright: bool) -> float:
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
        t = edge_threshold(smooth, valid, bright)
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


@dataclass(frozen=True)
class AutosegParams:
    """The settings of :func:`autosegment`, checked when made: the one place their defaults live.

    ``autosegment``'s signature, the command line and the large-image segmenter read their defaults here.
    ``as_dict()`` gives ``autosegment``'s keywords; ``from_dict`` checks a dict of them.
    A bad value raises ``ValueError`` (``TypeError`` for a threshold that is no number),
    one line naming the setting and what it accepts.
    """

    sigma: float = 1.5
    method: str = "otsu"
    threshold: float | None = None
    polarity: str = "auto"
    min_area: int = 30
    max_area: int | None = None
    fill_holes: bool = True
    clear_border: bool = False
    ignore_box: str | tuple[int, int, int, int] | None = "auto"
    split_touching: bool = True
    contour_fraction: float = 0.05
    block_size: int = 51
    drop_overlays: bool = True

    def __post_init__(self) -> None:
        threshold = _checked_threshold(self.method, self.polarity, self.threshold, self.sigma, self.min_area,
                                       self.max_area, self.contour_fraction, self.block_size)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "ignore_box", check_ignore_box(self.ignore_box))

    @classmethod
    def from_dict(cls, params: Mapping) -> AutosegParams:
        """Settings from ``autosegment`` keywords; a key that is no setting is an error."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown auto-segmentation setting(s) {', '.join(map(repr, unknown))}; "
                             f"use {', '.join(names)}")
        return cls(**params)

    def as_dict(self) -> dict:
        """``autosegment``'s keywords."""
        return asdict(self)


def _checked_threshold(method, polarity, threshold, sigma, min_area, max_area, contour_fraction, block_size):
    """Every setting checked; the threshold as a float (or None)."""
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
_DEFAULT = AutosegParams()


def autosegment(image, *, sigma=_DEFAULT.sigma, method=_DEFAULT.method, threshold=_DEFAULT.threshold,
                polarity=_DEFAULT.polarity, min_area=_DEFAULT.min_area, max_area=_DEFAULT.max_area,
                fill_holes=_DEFAULT.fill_holes, clear_border=_DEFAULT.clear_border, ignore_mask=None,
                ignore_box=_DEFAULT.ignore_box, split_touching=_DEFAULT.split_touching,
                contour_fraction=_DEFAULT.contour_fraction, block_size=_DEFAULT.block_size,
                drop_overlays=_DEFAULT.drop_overlays, rgb=None) -> np.ndarray:
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
        box in a corner or a data bar (:func:`napari_synthseg.scalebar.find_scale_bar`).
    split_touching
        Split clumps at narrow necks (distance-transform watershed on the objects that
        are not a single blob).
    contour_fraction
        Fraction of darkest pixels taken as contours by ``"contours"``/``"combined"``.
    block_size
        Odd window size for ``method="local"``.
    drop_overlays
        Leave out objects drawn on the image: scale bars, boxes, lines of text (as ``predict`` does, but for
        panel letters, scale bars' labels and bars outlined with noise: ``drop_drawn_overlays``).
    rgb
        Whether the last axis holds colour channels; None guesses (size 3 or 4).

    Returns
    -------
    numpy.ndarray
        uint32 instance labels with the image's spatial shape; 0 is background and
        ids are unique across the whole stack.
    """
    settings = AutosegParams(sigma=sigma, method=method, threshold=threshold, polarity=polarity, min_area=min_area,
                             max_area=max_area, fill_holes=fill_holes, clear_border=clear_border,
                             ignore_box=ignore_box, split_touching=split_touching,
                             contour_fraction=contour_fraction, block_size=block_size,
                             drop_overlays=drop_overlays)
    threshold, ignore_box = settings.threshold, settings.ignore_box
    gray = gray_planes(image, rgb)
    ignore_mask = _checked_ignore_mask(ignore_mask, gray.shape)

    def plane_labels():
        for index in iter_planes(gray.shape):
            plane = gray[index]
            yield index, _segment_plane(
                plane, _ignore_for_plane(ignore_mask, ignore_box, plane, index),
                sigma=sigma, method=method, threshold=threshold, polarity=polarity,
                min_area=int(min_area), max_area=max_area, fill_holes=fill_holes,
                clear_border=clear_border, split_touching=split_touching,
                contour_fraction=contour_fraction, block_size=int(block_size), drop_overlays=drop_overlays)

    out = np.zeros(gray.shape, dtype=np.uint32)
    stack_planes(out, plane_labels())
    return out


def _checked_ignore_mask(ignore_mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """``ignore_mask`` as a bool array of one plane's or the whole stack's ``shape`` (None stays None)."""
    if ignore_mask is None:
        return None
    ignore_mask = np.asarray(ignore_mask)
    if ignore_mask.dtype != np.bool_:
        raise TypeError(f"ignore_mask must be a bool array; got dtype {ignore_mask.dtype}")
    if ignore_mask.shape not in (shape[-2:], shape):
        raise ValueError(f"ignore_mask shape {ignore_mask.shape} must be {shape[-2:]} or {shape}")
    return ignore_mask


def _segment_plane(gray, ignore, *, sigma, method, threshold, polarity, min_area, max_area,
                   fill_holes, clear_border, split_touching, contour_fraction, block_size, drop_overlays):
    plane = np.nan_to_num(np.asarray(gray, dtype=np.float32))
    smooth = ndi.gaussian_filter(plane, sigma, mode="nearest", truncate=3.0) if sigma > 0 else plane
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
    labels = _keep_by_area(labels, n, min_area, max_area)
    if drop_overlays:
        # the unsmoothed plane: drawn means noise-free. Panel letters, scale bars' labels and bars outlined with
        # noise stay: with them left out of the labels a run learns from, three runs found fewer true objects
        # (docs/benchmarks.md, "Panel letters and scale bars' labels left out")
        labels, _ = drop_drawn_overlays(labels, plane, figure_marks=False)
    return labels
