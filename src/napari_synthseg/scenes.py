"""Synthetic training scenes: bank objects pasted through their masks onto realistic backgrounds.

Pure core (numpy/scipy). :func:`synthesize_scene` pastes randomly transformed bank objects
(prepared once by :func:`napari_synthseg.scene_objects.prepare_objects`) onto a background
from :mod:`napari_synthseg.backgrounds` and returns the image with its instance labels.
Every random number of a scene is drawn up front, in a fixed order, so a seed always gives
the same scene.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ._synthesis_common import _as_generator, _field_side, _random_crop, _scene_shape, _standard_normal_field
from .backgrounds import _background_source, _draw_kind, _kind_weights
from .scene_objects import prepare_objects

try:  # skimage's Cython affine warp is ~2x faster than scipy's spline code for order 1
    from skimage.transform._warps_cy import _warp_fast
except ImportError:  # private API: fall back to scipy if it moves
    _warp_fast = None


#: Scene settings that training uses unless told otherwise (chosen by measurement:
#: docs/benchmarks.md, "Recipe choice"). ``synthesize_scene``'s own defaults stay neutral.
TRAINING_SCENE_PARAMS = {
    "coverage": (0.05, 0.6), "group_prob": 0.7, "restyle_prob": 0.3, "invert_prob": 0.0, "rim_prob": 0.2,
}
#: Objects left with fewer visible pixels than this are removed from the scene.
MIN_VISIBLE_PIXELS = 10
#: Range of the share of an agglomerated object (and of each neighbour it touches) that the
#: two may overlap: enough for a shared outline, little enough that each keeps its shape.
CLUSTER_OVERLAP = (0.01, 0.08)
#: Steps of the bisection that slides an agglomerated object against its neighbours
#: (2**-8 of the starting distance: well under a pixel).
_CLUSTER_STEPS = 8


def _range_pair(value, name: str, *, low: float = 0.0, integer: bool = False) -> tuple[float, float]:
    """Normalise a number or (lo, hi) pair, checking lo <= hi and lo >= low."""
    if np.isscalar(value):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
        if len(pair) != 2:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    try:
        lo, hi = (int(v) if integer else float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < low or hi < lo:
        raise ValueError(f"{name}={value!r} is not a valid range: need {low} <= low <= high")
    return lo, hi


def _probability(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value



def synthesize_scene(
    bank,
    shape,
    rng,
    backgrounds=None,
    *,
    n_objects=(30, 60),
    scale_range=(0.5, 2.0),
    rotate: bool = True,
    flip: bool = True,
    brightness: float = 0.15,
    contrast: float = 0.2,
    blur_prob: float = 0.3,
    noise_std=(0.0, 0.03),
    touch_prob: float = 0.5,
    background_kinds=None,
    soft_edges: bool = True,
    restyle_prob: float = 0.0,
    restyle_contrast=(0.03, 0.4),
    invert_prob: float = 0.0,
    rim_prob: float = 0.0,
    group_prob: float = 0.0,
    coverage=None,
    cluster_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Make one synthetic training scene and its instance labels.

    Bank objects are pasted *through their masks* (only mask pixels are copied) with
    random scale, rotation (90-degree steps plus an arbitrary angle), flip,
    brightness/contrast and optional blur. Later objects occlude earlier ones; the
    labels keep only each object's visible pixels, and objects left with fewer than
    :data:`MIN_VISIBLE_PIXELS` visible pixels are erased from image and labels.

    Parameters
    ----------
    bank
        ObjectBank, list of BankObject-like items (``.image``, ``.mask``) or
        :class:`PreparedObjects`. Crops are scaled to [0, 1] by their dtype.
    shape
        ``(height, width)`` of the scene, at least 8x8.
    rng
        numpy Generator (or integer seed). The same seed gives the same scene.
    backgrounds
        None (plain noise background), a :class:`BackgroundSource`, or real images
        (arrays or paths) to build one from (cached).
    n_objects
        Number of pasted objects, an int or an inclusive ``(low, high)`` range.
        With ``coverage`` this is the most objects a scene gets.
    cluster_prob
        Probability that an object joins an agglomerate: it is slid, from a random
        direction, against a random earlier object until it touches the objects there
        along its outline, overlapping them (and being overlapped) by only
        :data:`CLUSTER_OVERLAP` of their areas. Clusters of touching particles with
        their true dividing lines, which ``touch_prob`` (centres placed at 0.55-1 of
        the summed radii, often deep overlaps) rarely gives. Takes precedence over
        ``touch_prob`` for the objects it picks.
    coverage
        None, or a ``(low, high)`` range of the fraction of the scene that objects
        should cover: a target is drawn and objects are pasted until their (scaled)
        areas add up to it. Without it, a bank of large objects fills whole scenes,
        and a network trained on them calls everything foreground.
    scale_range
        ``(low, high)`` scale factors, drawn log-uniformly.
    rotate, flip
        Allow random rotations / mirror flips.
    brightness, contrast
        Maximal additive brightness shift and relative contrast change per object.
    blur_prob
        Probability that an object is blurred (sigma 0.5-1.5 px).
    noise_std
        Range of the standard deviation of Gaussian noise over the whole scene.
    touch_prob
        Probability that an object is placed against (touching or overlapping) an
        earlier one rather than anywhere.
    background_kinds
        None (defaults), one kind, a list of kinds, or a ``{kind: weight}`` mapping;
        kinds are :data:`BACKGROUND_KINDS`.
    soft_edges
        Blend the 1-pixel band of partial coverage at object edges (as a real
        micrograph does) instead of a hard cut.
    restyle_prob
        Probability that an object's gray level is replaced: its mean is set to the
        local background level plus a random contrast from ``restyle_contrast``
        (log-uniform, in [0, 1] image units), keeping its inner texture (scaled by
        0.5-1.5). This shows the network objects only slightly brighter or darker than
        their surroundings, which objects banked from thresholds never are.
    restyle_contrast
        ``(low, high)`` absolute contrast of restyled objects against the local background.
    invert_prob
        Probability that a restyled object's contrast sign is flipped (a bright object
        becomes darker than the background), for mixed-polarity data.
    rim_prob
        Probability that an object gets a darker rim 1-3 px wide (as edges often look in
        SEM/TEM images).
    group_prob
        Probability that a scene is made from one source image: all its objects come
        from the image a random object came from (bank meta ``source``), on a
        background with that image's level and texture (when ``backgrounds`` is a
        BackgroundSource whose ``names`` include it). Keeps scenes consistent on
        mixed data (bright-on-dark beside dark-on-bright images).

    Returns
    -------
    image : np.ndarray
        float32 ``(height, width)`` in [0, 1].
    labels : np.ndarray
        uint32 ``(height, width)``, objects numbered 1..n in pasting order.
    """
    height, width = _scene_shape(shape)
    rng = _as_generator(rng)
    n_lo, n_hi = _range_pair(n_objects, "n_objects", integer=True)
    s_lo, s_hi = _range_pair(scale_range, "scale_range", low=1e-3)
    noise_lo, noise_hi = _range_pair(noise_std, "noise_std")
    brightness = _range_pair(brightness, "brightness")[1]
    contrast = _range_pair(contrast, "contrast")[1]
    if contrast >= 1.0:
        raise ValueError(f"contrast must be below 1 (a relative change), got {contrast}")
    blur_prob = _probability(blur_prob, "blur_prob")
    touch_prob = _probability(touch_prob, "touch_prob")
    group_prob = _probability(group_prob, "group_prob")
    if coverage is not None:
        c_lo, c_hi = _range_pair(coverage, "coverage")
        if c_hi > 1.0:
            raise ValueError(f"coverage must lie in [0, 1], got {coverage!r}")
    restyle_prob = _probability(restyle_prob, "restyle_prob")
    invert_prob = _probability(invert_prob, "invert_prob")
    rim_prob = _probability(rim_prob, "rim_prob")
    cluster_prob = _probability(cluster_prob, "cluster_prob")
    r_lo, r_hi = _range_pair(restyle_contrast, "restyle_contrast", low=1e-4)
    weights = _kind_weights(background_kinds)
    prepared_all = prepare_objects(bank)
    prepared = prepared_all.objects
    source = _background_source(backgrounds)
    group_image = None
    group_members = None
    if group_prob > 0 and rng.random() < group_prob:
        name = prepared[int(rng.integers(len(prepared)))].source
        group_members = prepared_all.groups[name]
        if source is not None:
            group_image = source.image_index(name)

    # -- background
    if source is None:
        if weights is not None and set(weights) - {"noise", "flat"}:
            raise ValueError("background kinds other than 'noise' and 'flat' need real backgrounds; pass backgrounds=")
        kind = _draw_kind(rng, weights) if weights else "noise"
        level = rng.uniform(0.05, 0.35)
        if kind == "flat":
            background = np.full((height, width), level, dtype=np.float32)
        else:
            crop = _random_crop(_standard_normal_field(_field_side((height, width))), (height, width), rng)
            background = crop * np.float32(rng.uniform(0.01, 0.05)) + np.float32(level)
            np.clip(background, 0.0, 1.0, out=background)
    else:
        kind = _draw_kind(rng, weights) if weights else None
        background = source.make_background((height, width), rng, kind, image=group_image)
    image = background.copy()
    labels = np.zeros((height, width), dtype=np.uint32)

    # -- all per-object random numbers at once (a fixed number of draws per scene)
    count = int(rng.integers(n_lo, n_hi + 1))
    which = rng.integers(0, len(prepared), size=count)
    if group_members is not None:
        which = group_members[which % group_members.size]
    scales = np.exp(rng.uniform(math.log(s_lo), math.log(s_hi), size=count))
    quarter = rng.integers(0, 4, size=count)
    free_angle = np.where(rng.random(count) < 0.75, rng.uniform(-np.pi / 4, np.pi / 4, size=count), 0.0)
    angles = (quarter * (np.pi / 2) + free_angle) if rotate else np.zeros(count)
    flips = (rng.random(count) < 0.5) if flip else np.zeros(count, dtype=bool)
    shifts = rng.uniform(-brightness, brightness, size=count)
    gains = 1.0 + rng.uniform(-contrast, contrast, size=count)
    blurs = rng.random(count) < blur_prob
    sigmas = rng.uniform(0.5, 1.5, size=count)
    touches = rng.random(count) < touch_prob
    partners = rng.random(count)
    directions = rng.uniform(0, 2 * np.pi, size=count)
    reaches = rng.uniform(0.55, 1.0, size=count)
    centres_y = rng.uniform(0, height, size=count)
    centres_x = rng.uniform(0, width, size=count)
    if coverage is not None and count > 0:
        target = rng.uniform(c_lo, c_hi) * height * width
        expected = np.cumsum([prepared[int(k)].area for k in which] * scales**2)
        count = min(count, max(1, int(np.searchsorted(expected, target)) + 1))
    if restyle_prob > 0 or rim_prob > 0:  # drawn only when used, so older scenes stay the same
        restyles = rng.random(count) < restyle_prob
        restyle_levels = np.exp(rng.uniform(math.log(r_lo), math.log(r_hi), size=count))
        inverts = rng.random(count) < invert_prob
        texture_gains = np.exp(rng.uniform(math.log(0.5), math.log(1.5), size=count))
        rims = rng.random(count) < rim_prob
        rim_widths = rng.integers(1, 4, size=count)
        rim_depths = rng.uniform(0.03, 0.2, size=count)
    else:
        restyles = rims = np.zeros(count, dtype=bool)
    if cluster_prob > 0:  # drawn only when used, so older scenes stay the same
        clusters = rng.random(count) < cluster_prob
        overlaps = rng.uniform(CLUSTER_OVERLAP[0], CLUSTER_OVERLAP[1], size=count)
        visible_areas = np.zeros(count + 1, dtype=np.int64)  # each object's visible pixels so far
    else:
        clusters = np.zeros(count, dtype=bool)

    placed: list[tuple[float, float, float]] = []  # (cy, cx, radius) of pasted objects
    extents: list[float] = []  # half-diagonal of each pasted object's box
    for i in range(count):
        obj = prepared[int(which[i])]
        scale = float(scales[i])
        level = max(0, int(math.floor(math.log2(0.75 / scale)))) if scale < 0.75 else 0
        level = min(level, len(obj.levels) - 1)
        premult, alpha = obj.levels[level]
        eff = scale * (2**level)
        h, w = alpha.shape
        cos_a, sin_a = math.cos(angles[i]), math.sin(angles[i])
        half_y = eff * (abs(cos_a) * h + abs(sin_a) * w) / 2.0
        half_x = eff * (abs(sin_a) * h + abs(cos_a) * w) / 2.0
        radius = math.sqrt(obj.area / math.pi) * scale

        box_h, box_w = int(math.ceil(2 * half_y)) + 2, int(math.ceil(2 * half_x)) + 2
        if placed and clusters[i]:
            partner = int(partners[i] * len(placed))
            probe = _resample(alpha, _inverse(cos_a, sin_a, eff, bool(flips[i])),
                              _centred_offset(cos_a, sin_a, eff, bool(flips[i]), alpha.shape, (box_h, box_w)),
                              (box_h, box_w)) > 0.5
            spot = _slide_against(labels, visible_areas, probe, placed[partner][:2],
                                  extents[partner] + math.hypot(half_y, half_x), float(directions[i]),
                                  float(overlaps[i]))
            cy, cx = spot if spot is not None else (float(centres_y[i]), float(centres_x[i]))
        elif placed and touches[i]:
            py, px, pr = placed[int(partners[i] * len(placed))]
            reach = reaches[i] * (pr + radius)
            cy = py + reach * math.sin(directions[i])
            cx = px + reach * math.cos(directions[i])
        else:
            cy, cx = float(centres_y[i]), float(centres_x[i])
        placed.append((cy, cx, radius))
        extents.append(math.hypot(half_y, half_x))

        top, left = int(round(cy - box_h / 2.0)), int(round(cx - box_w / 2.0))
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + box_h, height), min(left + box_w, width)
        if y1 <= y0 or x1 <= x0:
            continue

        # the mask first: an object that ends up invisible costs no image resampling
        identity = eff == 1.0 and angles[i] == 0.0 and not flips[i]
        if identity:
            # plain copy: the box is the crop itself plus a 1-pixel margin
            sy, sx = y0 - top - 1, x0 - left - 1
            out_a = _window(alpha, sy, sx, y1 - y0, x1 - x0)
        else:
            # output pixel -> source pixel: flip . scale^-1 . rotate^-1
            inv = _inverse(cos_a, sin_a, eff, bool(flips[i]))
            centre_out = np.array([(box_h - 1) / 2.0 - (y0 - top), (box_w - 1) / 2.0 - (x0 - left)])
            centre_src = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
            offset = centre_src - inv @ centre_out
            out_a = _resample(alpha, inv, offset, (y1 - y0, x1 - x0))
        if blurs[i]:
            out_a = ndimage.gaussian_filter(out_a, sigmas[i], mode="constant")
        visible = out_a > 0.5
        if not visible.any():
            continue
        if identity:
            out_p = _window(premult, sy, sx, y1 - y0, x1 - x0)
        else:
            out_p = _resample(premult, inv, offset, (y1 - y0, x1 - x0))
        if blurs[i]:
            out_p = ndimage.gaussian_filter(out_p, sigmas[i], mode="constant")
        values = out_p / np.maximum(out_a, np.float32(1e-3))
        gain = np.float32(gains[i])
        values *= gain
        values += np.float32(obj.mean * (1.0 - gains[i]) + shifts[i])
        target = image[y0:y1, x0:x1]
        if restyles[i] or rims[i]:
            _restyle(values, target, visible, obj.mean, bool(restyles[i]), float(restyle_levels[i]),
                     bool(inverts[i]), float(texture_gains[i]), int(rim_widths[i]) if rims[i] else 0,
                     float(rim_depths[i]))
        np.clip(values, 0.0, 1.0, out=values)
        if soft_edges:
            # partial-coverage edge band: blend; the visible part is copied exactly below
            blend = values - target
            blend *= out_a
            blend += target
            np.copyto(target, blend, where=out_a > 0)
        np.copyto(target, values, where=visible)
        window = labels[y0:y1, x0:x1]
        if cluster_prob > 0:
            covered = np.bincount(window[visible], minlength=count + 1)
            visible_areas[: covered.size] -= covered
            visible_areas[i + 1] += int(visible.sum())
        np.copyto(window, np.uint32(i + 1), where=visible)

    # -- drop slivers, renumber 1..n, erase dropped objects from the image
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    keep = areas >= MIN_VISIBLE_PIXELS
    keep[0] = False
    lut = np.zeros(areas.size, dtype=np.uint32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    dropped = (areas > 0) & ~keep
    dropped[0] = False
    if dropped.any():
        erase = dropped[labels]
        image[erase] = background[erase]
    labels = lut[labels]

    if noise_hi > 0:
        sd = rng.uniform(noise_lo, noise_hi)
        if sd > 0:
            field = _standard_normal_field(_field_side((height, width)))
            image += _random_crop(field, (height, width), rng) * np.float32(sd)
    np.clip(image, 0.0, 1.0, out=image)
    return image, labels


def _inverse(cos_a: float, sin_a: float, eff: float, flip: bool) -> np.ndarray:
    """Output pixel -> source pixel matrix of a paste: flip . scale^-1 . rotate^-1."""
    inv = np.array([[cos_a, sin_a], [-sin_a, cos_a]]) / eff
    if flip:
        inv[1] = -inv[1]
    return inv


def _centred_offset(cos_a, sin_a, eff, flip, source_shape, box_shape) -> np.ndarray:
    """Offset that puts the source's centre at the centre of an unclipped output box."""
    centre_out = np.array([(box_shape[0] - 1) / 2.0, (box_shape[1] - 1) / 2.0])
    centre_src = np.array([(source_shape[0] - 1) / 2.0, (source_shape[1] - 1) / 2.0])
    return centre_src - _inverse(cos_a, sin_a, eff, flip) @ centre_out


def _overlap_share(labels: np.ndarray, visible_areas: np.ndarray, probe: np.ndarray, probe_area: int,
                   cy: float, cx: float) -> float:
    """Largest share of the probe, or of any object it would cover, that lies under the other.

    ``probe`` is the object's mask in its unclipped box, centred at ``(cy, cx)`` the way
    ``synthesize_scene`` places boxes.
    """
    height, width = labels.shape
    box_h, box_w = probe.shape
    top, left = int(round(cy - box_h / 2.0)), int(round(cx - box_w / 2.0))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + box_h, height), min(left + box_w, width)
    if y1 <= y0 or x1 <= x0:
        return 0.0
    under = labels[y0:y1, x0:x1][probe[y0 - top : y1 - top, x0 - left : x1 - left]]
    covered = np.bincount(under, minlength=visible_areas.size)[1:]
    total = int(covered.sum())
    if total == 0:
        return 0.0
    return max(total / probe_area, float((covered / np.maximum(visible_areas[1:], 1)).max()))


def _slide_against(labels, visible_areas, probe, centre, reach, direction, overlap) -> tuple[float, float] | None:
    """Centre where ``probe``, slid along ``direction`` towards ``centre``, first overlaps the
    objects it meets by about ``overlap`` of their (or its) area; None if no such place.

    Starts ``reach`` away (the boxes cannot meet the partner there), stepping further out
    while other objects are in the way, then bisects the distance: the answer is the nearest
    distance found whose overlap stays within ``overlap``.
    """
    py, px = centre
    dy, dx = math.sin(direction), math.cos(direction)
    probe_area = max(int(probe.sum()), 1)

    def too_much(distance: float) -> bool:
        share = _overlap_share(labels, visible_areas, probe, probe_area, py + distance * dy, px + distance * dx)
        return share > overlap

    if not too_much(0.0):
        return py, px  # nothing there to touch (the partner was covered up): sit on its centre
    near, far = 0.0, float(reach)
    for _ in range(4):  # other objects of the agglomerate in the way: further out
        if not too_much(far):
            break
        near, far = far, far + 0.5 * reach
    else:
        return None
    for _ in range(_CLUSTER_STEPS):
        middle = 0.5 * (near + far)
        if too_much(middle):
            near = middle
        else:
            far = middle
    return py + far * dy, px + far * dx


def _restyle(values: np.ndarray, target: np.ndarray, visible: np.ndarray, original_mean: float,
             restyle: bool, contrast: float, invert: bool, texture_gain: float, rim_width: int,
             rim_depth: float) -> None:
    """Give a pasted object a new contrast to its local background and/or a darker rim (in place)."""
    around = ~visible
    local = float(target[around].mean()) if around.any() else float(target.mean())
    inside = values[visible]
    mean = float(inside.mean())
    if restyle:
        # keep the object's polarity against its surroundings unless inverted
        sign = 1.0 if original_mean >= local else -1.0
        if invert:
            sign = -sign
        values -= np.float32(mean)
        values *= np.float32(texture_gain)
        values += np.float32(local + sign * contrast)
    if rim_width > 0:
        core = ndimage.binary_erosion(visible, iterations=rim_width)
        values[visible & ~core] -= np.float32(rim_depth)


def _resample(array: np.ndarray, inv: np.ndarray, offset: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Bilinear affine resampling (output pixel -> ``inv @ p + offset`` in ``array``), zeros outside."""
    global _warp_fast
    if _warp_fast is not None:
        # skimage works in (x, y) homogeneous coordinates
        matrix = np.array(
            [[inv[1, 1], inv[1, 0], offset[1]], [inv[0, 1], inv[0, 0], offset[0]], [0.0, 0.0, 1.0]], dtype=np.float32
        )
        try:
            return np.asarray(_warp_fast(array, matrix, output_shape=out_shape, order=1, mode="constant", cval=0.0))
        except (TypeError, ValueError):  # signature changed in some skimage version
            _warp_fast = None
    return ndimage.affine_transform(array, inv, offset, out_shape, order=1, mode="constant", prefilter=False)


def _window(array: np.ndarray, sy: int, sx: int, h: int, w: int) -> np.ndarray:
    """``array[sy:sy+h, sx:sx+w]`` with zeros where the window leaves the array."""
    out = np.zeros((h, w), dtype=np.float32)
    ay0, ax0 = max(sy, 0), max(sx, 0)
    ay1, ax1 = min(sy + h, array.shape[0]), min(sx + w, array.shape[1])
    if ay1 > ay0 and ax1 > ax0:
        out[ay0 - sy : ay1 - sy, ax0 - sx : ax1 - sx] = array[ay0:ay1, ax0:ax1]
    return out


__all__ = ["CLUSTER_OVERLAP", "MIN_VISIBLE_PIXELS", "TRAINING_SCENE_PARAMS", "synthesize_scene"]
