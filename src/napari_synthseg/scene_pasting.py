"""How one bank object is laid into a scene: affine resampling, agglomerate sliding, restyling.

Pure core (numpy/scipy/scikit-image). Helpers of :func:`napari_synthseg.scenes.synthesize_scene`:
the box-to-crop transform of a paste and its bilinear resampling, the search that slides an
object against its neighbours until their outlines touch, and the new gray level or dark rim
given to a pasted object.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

try:  # skimage's Cython affine warp is ~2x faster than scipy's spline code for order 1
    from skimage.transform._warps_cy import _warp_fast
except ImportError:  # private API: fall back to scipy if it moves
    _warp_fast = None

#: Steps of the bisection that slides an agglomerated object against its neighbours
#: (2**-8 of the starting distance: well under a pixel).
_CLUSTER_STEPS = 8


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


def _restyle(values: np.ndarray, target: np.ndarray, box_visible: np.ndarray, visible: np.ndarray,
             original_mean: float, restyle: bool, contrast: float, invert: bool, texture_gain: float,
             rim_width: int, rim_depth: float) -> None:
    """Give a pasted object a new contrast to its local background and/or a darker rim (in place).

    ``target`` is the paste's whole box and ``box_visible`` its visible pixels there (the local
    background is the rest of the box); ``values`` and ``visible`` cover the part of the box
    the paste reaches.
    """
    around = ~box_visible
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


def _resample(array: np.ndarray, inv: np.ndarray, offset, out_shape: tuple[int, int]) -> np.ndarray:
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


def _support_strips(outline: np.ndarray, inv: np.ndarray, offset: np.ndarray, box_shape: tuple[int, int],
                    bands: int) -> list[tuple[int, int, int, int]]:
    """Bands of rows of an output box, each with the columns outside which a warped paste is zero.

    A bilinear sample is non-zero only within one source pixel of the support (alpha > 0),
    and that region's extent along any output row is reached on the squares of its
    ``outline`` pixels: so each band's span comes from the outline mapped forward, widened by
    how far one source pixel reaches (plus one pixel for rounding). Returns
    ``(y0, y1, x0, x1)`` for each of up to ``bands`` bands that holds any of the paste.
    """
    box_h, box_w = box_shape
    (a, b), (c, d) = inv.tolist()
    det = a * d - b * c
    forward = np.array([[d / det, -b / det], [-c / det, a / det]])
    points = outline @ forward.T
    points -= forward @ offset  # (y, x) in the box
    ys, xs = points[:, 0], points[:, 1]
    reach_y = (abs(d) + abs(b)) / abs(det) + 1.0
    reach_x = (abs(c) + abs(a)) / abs(det) + 1.0
    top = max(math.floor(float(ys.min()) - reach_y), 0)
    bottom = min(math.ceil(float(ys.max()) + reach_y) + 1, box_h)
    if bottom <= top:
        return []
    bands = min(bands, bottom - top)
    if bands == 1:
        lows, highs = [float(xs.min()) - reach_x], [float(xs.max()) + reach_x]
        edges = [top, bottom]
    else:
        edges = [top + (bottom - top) * k // bands for k in range(bands + 1)]
        # the points each band sees: every y within reach_y of one of its rows
        starts = np.array(edges[:-1], dtype=float)[:, None]
        stops = np.array(edges[1:], dtype=float)[:, None]
        near = (ys >= starts - reach_y) & (ys <= stops - 1 + reach_y)
        lows = (np.where(near, xs, np.inf).min(axis=1) - reach_x).tolist()
        highs = (np.where(near, xs, -np.inf).max(axis=1) + reach_x).tolist()
    strips = []
    for y0, y1, lo, hi in zip(edges[:-1], edges[1:], lows, highs):
        if hi < lo:  # no part of the object in this band
            continue
        x0, x1 = max(math.floor(lo), 0), min(math.ceil(hi) + 1, box_w)
        if x1 > x0:
            strips.append((y0, y1, x0, x1))
    return strips


def _resample_strips(array: np.ndarray, inv: np.ndarray, offset: np.ndarray, strips, roi) -> np.ndarray:
    """:func:`_resample` into the ``roi`` ``(y0, y1, x0, x1)`` of a box, only inside ``strips`` (zeros elsewhere)."""
    (a, b), (c, d) = inv.tolist()
    oy, ox = offset.tolist()
    if len(strips) == 1 and strips[0] == tuple(roi):
        y0, y1, x0, x1 = roi
        return _resample(array, inv, (oy + a * y0 + b * x0, ox + c * y0 + d * x0), (y1 - y0, x1 - x0))
    ry0, ry1, rx0, rx1 = roi
    out = np.zeros((ry1 - ry0, rx1 - rx0), dtype=np.float32)
    for y0, y1, x0, x1 in strips:
        shifted = (oy + a * y0 + b * x0, ox + c * y0 + d * x0)
        out[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0] = _resample(array, inv, shifted, (y1 - y0, x1 - x0))
    return out


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """The weights ``ndimage.gaussian_filter(..., sigma)`` uses (truncated at 4 sigma), made once per paste."""
    radius = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x**2)
    return (weights / weights.sum())[::-1]


def _blur(array: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``ndimage.gaussian_filter(array, sigma, mode="constant")`` with :func:`_gaussian_kernel`'s weights."""
    out = np.empty_like(array)
    ndimage.correlate1d(array, kernel, 0, out, mode="constant")
    return ndimage.correlate1d(out, kernel, 1, out, mode="constant")


def _window(array: np.ndarray, sy: int, sx: int, h: int, w: int) -> np.ndarray:
    """``array[sy:sy+h, sx:sx+w]`` with zeros where the window leaves the array."""
    out = np.zeros((h, w), dtype=np.float32)
    ay0, ax0 = max(sy, 0), max(sx, 0)
    ay1, ax1 = min(sy + h, array.shape[0]), min(sx + w, array.shape[1])
    if ay1 > ay0 and ax1 > ax0:
        out[ay0 - sy : ay1 - sy, ax0 - sx : ax1 - sx] = array[ay0:ay1, ax0:ax1]
    return out
