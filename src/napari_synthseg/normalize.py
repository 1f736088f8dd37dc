"""Robust intensity normalisation shared by training and prediction (pure core)."""

from __future__ import annotations

import numpy as np

#: Default percentiles mapped to 0 and 1.
DEFAULT_PERCENTILES = (1.0, 99.8)


def percentile_range(image: np.ndarray, low: float = DEFAULT_PERCENTILES[0],
                     high: float = DEFAULT_PERCENTILES[1], max_samples: int = 1_000_000) -> tuple[float, float]:
    """Intensities at the ``low`` and ``high`` percentiles, from a strided sample for big images."""
    flat = np.asarray(image).ravel()
    if flat.size == 0:
        return 0.0, 1.0
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    lo, hi = np.percentile(flat.astype(np.float32), [low, high])
    return float(lo), float(hi)


def percentile_normalize(image: np.ndarray, low: float = DEFAULT_PERCENTILES[0],
                         high: float = DEFAULT_PERCENTILES[1],
                         value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map intensities so the ``low``/``high`` percentiles become 0 and 1 (float32, not clipped).

    Works the same for uint8, uint16 and float images, so a model trained on one sees the
    others on the same scale. ``value_range`` skips the percentile computation (for tiles
    of one big image, which must share the whole image's range).
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = value_range if value_range is not None else percentile_range(image, low, high)
    # a reversed range (hi < lo, see ``anchored_range``) inverts the image
    span = hi - lo
    scale = np.float32(1.0 / (span if abs(span) > 1e-6 else 1e-6))
    return (image - np.float32(lo)) * scale


#: Where ``anchored_range`` puts the background and the object gray levels.
ANCHORS = (0.25, 0.75)


def anchored_range(image: np.ndarray, *, sigma: float = 1.5, ignore_box="auto",
                   max_pixels: int = 4_000_000) -> tuple[float, float]:
    """Value range that maps an image's background to 0.25 and its objects to 0.75.

    The image is split in two phases by Otsu's threshold on a smoothed copy, the object
    phase is chosen by ``choose_polarity`` (with a scale-bar box left out), and the medians
    of the two phases are the anchors. Give the result to ``percentile_normalize`` as
    ``value_range``: for dark objects the range is reversed, so the normalised image always
    shows bright objects on a dark background at the same two levels, whatever the image's
    polarity, contrast or dtype. A flat image gets its plain min/max range.

    Parameters
    ----------
    image
        2D gray image, any real dtype.
    sigma
        Smoothing before the threshold and the polarity decision (as ``autosegment``).
    ignore_box
        ``"auto"`` (detect a scale-bar box in a corner), None, or ``(y0, y1, x0, x1)``.
    max_pixels
        Larger images are decided on a strided copy.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    from .autoseg import choose_polarity
    from .scalebar import find_scale_bar

    gray = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if gray.ndim != 2:
        raise ValueError(f"anchored_range needs a 2D image, got shape {gray.shape}")
    step = int(np.ceil(np.sqrt(gray.size / max_pixels))) if gray.size > max_pixels else 1
    small = gray[::step, ::step]
    smooth = ndi.gaussian_filter(small, sigma / step, mode="nearest", truncate=3.0) if sigma > 0 else small
    valid = np.ones(small.shape, dtype=bool)
    if isinstance(ignore_box, str):
        box = find_scale_bar(small)  # found on the strided copy: already in its coordinates
    elif ignore_box is not None:
        box = tuple(int(v) // step for v in ignore_box)
    else:
        box = None
    if box is not None:
        y0, y1, x0, x1 = box
        valid[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = False
    values = smooth[valid]
    if values.size == 0 or float(values.min()) == float(values.max()):
        lo = float(gray.min())
        return lo, max(float(gray.max()), lo + 1.0)
    t = float(threshold_otsu(values))
    bright = choose_polarity(smooth, valid) == "bright"
    above, below = values[values > t], values[values <= t]
    objects, background = (above, below) if bright else (below, above)
    if objects.size == 0 or background.size == 0:
        return float(values.min()), float(values.max())
    bg, obj = float(np.median(background)), float(np.median(objects))
    low_anchor, high_anchor = ANCHORS
    span = (obj - bg) / (high_anchor - low_anchor)
    return bg - low_anchor * span, bg + (1.0 - low_anchor) * span


#: Input normalisations a model can be trained with (recorded in its sidecar as ``mode``).
NORMALIZATIONS = ("percentile", "anchored")


def normalization_range(image: np.ndarray, mode: str = "percentile", low: float = DEFAULT_PERCENTILES[0],
                        high: float = DEFAULT_PERCENTILES[1]) -> tuple[float, float]:
    """The intensities a whole 2D image's ``mode`` maps to 0 and 1 (``percentile_normalize``'s
    ``value_range``): its ``low``/``high`` percentiles, or ``anchored_range``."""
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")
    if mode == "anchored":
        return anchored_range(image)
    return percentile_range(image, low, high)


def normalize_image(image: np.ndarray, mode: str = "percentile") -> np.ndarray:
    """A whole 2D image scaled for the network as a model with normalisation ``mode`` sees it."""
    return percentile_normalize(image, value_range=normalization_range(image, mode))
