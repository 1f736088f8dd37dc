"""How Add outlines an object the model missed, around one click (pure core).

Three sources, tried in `curation.add_object`'s order: the model's foreground blob at the
click, the image's local threshold region, and the first narrowed to the second where the blob
joins several objects.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

ADD_BLOB_EXCESS = 3.0
"""A probability blob this many times larger than the image's region at the click, holding that
region, joins several objects: Add takes the image's region (docs/curation.md, "Add on
background")."""


def foreground_probability(probability, shape) -> np.ndarray:
    """The foreground channel of ``probability`` (a map, or the model's output stack), checked against ``shape``."""
    probability = np.asarray(probability, dtype=np.float32)
    if probability.ndim == 3 and probability.shape[:2] == tuple(shape):
        probability = probability[..., 0]  # the model's output stack: foreground comes first
    if probability.shape != tuple(shape):
        raise ValueError(f"the probability map has shape {probability.shape} but the image has shape "
                         f"{tuple(shape)}; pass the foreground probability of this image")
    return probability


def component_at(mask: np.ndarray, row: int, col: int) -> np.ndarray:
    """The connected region of ``mask`` holding ``(row, col)`` (empty when that pixel is not in it)."""
    regions, _ = ndi.label(mask)
    return regions == regions[row, col] if mask[row, col] else np.zeros(mask.shape, bool)


def grow_from_probability(foreground: np.ndarray, row: int, col: int, allowed: np.ndarray):
    """The blob of ``foreground`` at the click, cut where it falls to half its peak.

    A missed object is one the model saw too faintly (its mean probability under the
    confidence filter, or under 0.5): half the blob's own peak follows its outline
    whatever its strength, as a full width at half maximum does.
    """
    window = (slice(max(row - 2, 0), row + 3), slice(max(col - 2, 0), col + 3))
    local = foreground[window]
    peak = float(local.max())
    if peak < 0.05:
        return None, f"the model sees nothing at (row {row}, col {col}) (probability {peak:.2f})"
    level = min(max(peak / 2.0, 0.05), 0.5)
    seed = np.unravel_index(int(np.argmax(local)), local.shape)
    seed_row, seed_col = seed[0] + window[0].start, seed[1] + window[1].start
    region = component_at((foreground >= level) & allowed, seed_row, seed_col)
    return region, f"the model's probability at (row {row}, col {col}) ({peak:.2f}) outlines no object"


def grow_from_image(image: np.ndarray, row: int, col: int, allowed: np.ndarray):
    """The region on the click's side of a local Otsu threshold, in a window that grows until
    the region stops at its edges (an object brighter or darker than what surrounds it)."""
    from skimage.filters import gaussian, threshold_otsu

    from .image_io import to_gray, to_unit_float

    gray = gaussian(to_unit_float(to_gray(np.asarray(image))), sigma=1.0, preserve_range=True)
    if gray.shape != allowed.shape:
        raise ValueError(f"the image has shape {gray.shape} but the curation is of shape {allowed.shape}; "
                         "pass the curated image")
    half = 32
    while True:
        box = (slice(max(row - half, 0), row + half + 1), slice(max(col - half, 0), col + half + 1))
        local = gray[box]
        if float(local.max()) - float(local.min()) < 1e-6:
            return None, f"the image is flat around (row {row}, col {col})"
        level = threshold_otsu(local)
        side = local >= level if gray[row, col] >= level else local < level
        region = component_at(side & allowed[box], row - box[0].start, col - box[1].start)
        whole = (box[0].start == 0 and box[1].start == 0
                 and box[0].stop >= gray.shape[0] and box[1].stop >= gray.shape[1])
        touches = region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()
        if not touches or whole or half >= 256:
            full = np.zeros(gray.shape, bool)
            full[box] = region
            return full, f"the image outlines no object at (row {row}, col {col})"
        half *= 2


def narrowed_by_image(grown, image, row: int, col: int, allowed: np.ndarray, min_area: int):
    """``grown`` (a region and its reason), or the image's region at the click (of at least
    ``min_area`` pixels) when the region is a blob of several objects: more than `ADD_BLOB_EXCESS`
    times the image's region, holding at least 80 % of it. A young model sees touching grains as
    one faint blob where the image already shows the clicked grain's outline."""
    region, why = grown
    if image is None or region is None:
        return region, why
    outlined, _ = grow_from_image(image, row, col, allowed)
    size = int(outlined.sum()) if outlined is not None else 0
    if (min_area <= size and int(region.sum()) > ADD_BLOB_EXCESS * size
            and int((outlined & region).sum()) >= 0.8 * size):
        return outlined, why
    return region, why
