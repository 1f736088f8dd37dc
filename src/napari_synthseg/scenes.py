"""Synthetic training scenes: bank objects pasted through their masks onto realistic backgrounds.

Pure core (numpy/scipy). :func:`synthesize_scene` pastes randomly transformed bank objects
(prepared once by :func:`napari_synthseg.scene_objects.prepare_objects`) onto a background
from :mod:`napari_synthseg.backgrounds` and returns the image with its instance labels.
Every random number of a scene is drawn up front, in a fixed order, so a seed always gives
the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._synthesis_common import _as_generator, _field_side, _random_crop, _standard_normal_field
from .backgrounds import _background_source, _draw_kind
from .relabel import renumber_kept
from .scene_objects import prepare_objects
from .scene_params import SceneParams
from .scene_pasting import (
    _blur,
    _centred_offset,
    _gaussian_kernel,
    _inverse,
    _resample,
    _resample_strips,
    _restyle,
    _slide_against,
    _support_strips,
    _window,
)

#: Scene settings that training uses unless told otherwise (chosen by measurement:
#: docs/benchmarks-archive.md, "Scene recipe"). ``synthesize_scene``'s own defaults stay neutral.
TRAINING_SCENE_PARAMS = {
    "coverage": (0.05, 0.6), "group_prob": 0.7, "restyle_prob": 0.3, "invert_prob": 0.0, "rim_prob": 0.2,
}
#: Objects left with fewer visible pixels than this are removed from the scene.
MIN_VISIBLE_PIXELS = 10
#: Range of the share of an agglomerated object (and of each neighbour it touches) that the
#: two may overlap: enough for a shared outline, little enough that each keeps its shape.
CLUSTER_OVERLAP = (0.01, 0.08)
#: A paste's box is resampled in bands of rows of about this many pixels (at most
#: ``_MAX_BANDS``), each only as wide as the object there: fewer pixels, few extra calls.
_BAND_AREA = 4000
_MAX_BANDS = 6


_DEFAULT = SceneParams()


def synthesize_scene(
    bank,
    shape=_DEFAULT.shape,
    rng=None,
    backgrounds=None,
    *,
    n_objects=_DEFAULT.n_objects,
    scale_range=_DEFAULT.scale_range,
    rotate: bool = _DEFAULT.rotate,
    flip: bool = _DEFAULT.flip,
    brightness: float = _DEFAULT.brightness,
    contrast: float = _DEFAULT.contrast,
    blur_prob: float = _DEFAULT.blur_prob,
    noise_std=_DEFAULT.noise_std,
    touch_prob: float = _DEFAULT.touch_prob,
    background_kinds=_DEFAULT.background_kinds,
    soft_edges: bool = _DEFAULT.soft_edges,
    restyle_prob: float = _DEFAULT.restyle_prob,
    restyle_contrast=_DEFAULT.restyle_contrast,
    invert_prob: float = _DEFAULT.invert_prob,
    rim_prob: float = _DEFAULT.rim_prob,
    group_prob: float = _DEFAULT.group_prob,
    coverage=_DEFAULT.coverage,
    cluster_prob: float = _DEFAULT.cluster_prob,
    alike_prob: float = _DEFAULT.alike_prob,
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
        numpy Generator or integer seed (None: fresh entropy). The same seed gives the same scene.
    backgrounds
        None (plain noise background), a :class:`BackgroundSource`, or real images
        (arrays or paths) to build one from (cached).
    n_objects, scale_range, rotate, flip, brightness, contrast, blur_prob, noise_std, touch_prob, \
background_kinds, soft_edges, restyle_prob, restyle_contrast, invert_prob, rim_prob, group_prob, coverage, \
cluster_prob, alike_prob
        The scene's settings, described (with their defaults) in
        :class:`~napari_synthseg.scene_params.SceneParams`; ``**params.as_dict()`` passes
        a ``SceneParams`` (shape included).

    Returns
    -------
    image : np.ndarray
        float32 ``(height, width)`` in [0, 1].
    labels : np.ndarray
        uint32 ``(height, width)``, objects numbered 1..n in pasting order.
    """
    settings = SceneParams(
        shape=shape, n_objects=n_objects, scale_range=scale_range, rotate=rotate, flip=flip, brightness=brightness,
        contrast=contrast, blur_prob=blur_prob, noise_std=noise_std, touch_prob=touch_prob,
        background_kinds=background_kinds, soft_edges=soft_edges, restyle_prob=restyle_prob,
        restyle_contrast=restyle_contrast, invert_prob=invert_prob, rim_prob=rim_prob, group_prob=group_prob,
        coverage=coverage, cluster_prob=cluster_prob, alike_prob=alike_prob)
    return _make_scene(bank, _as_generator(rng), backgrounds, settings)


def _make_scene(bank, rng: np.random.Generator, backgrounds, settings: SceneParams) -> tuple[np.ndarray, np.ndarray]:
    """``synthesize_scene`` with its settings checked."""
    height, width = settings.shape
    weights = None if settings.background_kinds is None else dict(settings.background_kinds)
    prepared = prepare_objects(bank)
    source = _background_source(backgrounds)
    group_image = group_members = None
    if settings.group_prob > 0 and rng.random() < settings.group_prob:
        name = prepared.objects[int(rng.integers(len(prepared)))].source
        group_members = prepared.groups[name]
        if source is not None:
            group_image = source.image_index(name)
    background = _scene_background(source, weights, (height, width), rng, group_image)
    draws = _ObjectDraws.draw(rng, settings, prepared.objects, group_members, (height, width))
    image = background.copy()
    labels = np.zeros((height, width), dtype=np.uint32)
    _paste_all(image, labels, prepared.objects, draws, settings)
    labels = _drop_slivers(image, labels, background, draws.count)
    if settings.noise_std[1] > 0:
        sd = rng.uniform(*settings.noise_std)
        if sd > 0:
            field = _standard_normal_field(_field_side((height, width)))
            image += _random_crop(field, (height, width), rng) * np.float32(sd)
    np.clip(image, 0.0, 1.0, out=image)
    return image, labels


def _scene_background(source, weights, shape: tuple[int, int], rng: np.random.Generator,
                      group_image: int | None) -> np.ndarray:
    """A scene's background: from ``source``, or plain noise or a flat level without one."""
    if source is not None:
        kind = _draw_kind(rng, weights) if weights else None
        return source.make_background(shape, rng, kind, image=group_image)
    if weights is not None and set(weights) - {"noise", "flat"}:
        raise ValueError("background kinds other than 'noise' and 'flat' need real backgrounds; pass backgrounds=")
    kind = _draw_kind(rng, weights) if weights else "noise"
    level = rng.uniform(0.05, 0.35)
    if kind == "flat":
        return np.full(shape, level, dtype=np.float32)
    crop = _random_crop(_standard_normal_field(_field_side(shape)), shape, rng)
    background = crop * np.float32(rng.uniform(0.01, 0.05)) + np.float32(level)
    np.clip(background, 0.0, 1.0, out=background)
    return background


@dataclass
class _ObjectDraws:
    """Every per-object random number of a scene, drawn at once (a fixed order and number of draws)."""

    count: int
    which: np.ndarray
    scales: np.ndarray
    angles: np.ndarray
    flips: np.ndarray
    shifts: np.ndarray
    gains: np.ndarray
    blurs: np.ndarray
    sigmas: np.ndarray
    touches: np.ndarray
    partners: np.ndarray
    directions: np.ndarray
    reaches: np.ndarray
    centres_y: np.ndarray
    centres_x: np.ndarray
    restyles: np.ndarray
    rims: np.ndarray
    clusters: np.ndarray
    restyle_levels: np.ndarray | None = None
    inverts: np.ndarray | None = None
    texture_gains: np.ndarray | None = None
    rim_widths: np.ndarray | None = None
    rim_depths: np.ndarray | None = None
    overlaps: np.ndarray | None = None
    alikes: np.ndarray | None = None

    @classmethod
    def draw(cls, rng: np.random.Generator, settings: SceneParams, objects, group_members,
             shape: tuple[int, int]) -> _ObjectDraws:
        """Draw a scene's objects; with ``settings.coverage``, ``count`` stops at the target area."""
        height, width = shape
        count = int(rng.integers(settings.n_objects[0], settings.n_objects[1] + 1))
        which = rng.integers(0, len(objects), size=count)
        if group_members is not None:
            which = group_members[which % group_members.size]
        scales = np.exp(rng.uniform(math.log(settings.scale_range[0]), math.log(settings.scale_range[1]), size=count))
        quarter = rng.integers(0, 4, size=count)
        free_angle = np.where(rng.random(count) < 0.75, rng.uniform(-np.pi / 4, np.pi / 4, size=count), 0.0)
        draws = dict(
            which=which, scales=scales,
            angles=(quarter * (np.pi / 2) + free_angle) if settings.rotate else np.zeros(count),
            flips=(rng.random(count) < 0.5) if settings.flip else np.zeros(count, dtype=bool),
            shifts=rng.uniform(-settings.brightness, settings.brightness, size=count),
            gains=1.0 + rng.uniform(-settings.contrast, settings.contrast, size=count),
            blurs=rng.random(count) < settings.blur_prob,
            sigmas=rng.uniform(0.5, 1.5, size=count),
            touches=rng.random(count) < settings.touch_prob,
            partners=rng.random(count),
            directions=rng.uniform(0, 2 * np.pi, size=count),
            reaches=rng.uniform(0.55, 1.0, size=count),
            centres_y=rng.uniform(0, height, size=count),
            centres_x=rng.uniform(0, width, size=count),
        )
        if settings.coverage is not None and count > 0:
            target = rng.uniform(*settings.coverage) * height * width
            expected = np.cumsum([objects[int(k)].area for k in which] * scales**2)
            count = min(count, max(1, int(np.searchsorted(expected, target)) + 1))
        if settings.restyle_prob > 0 or settings.rim_prob > 0:  # drawn only when used: older scenes stay the same
            r_lo, r_hi = settings.restyle_contrast
            draws.update(
                restyles=rng.random(count) < settings.restyle_prob,
                restyle_levels=np.exp(rng.uniform(math.log(r_lo), math.log(r_hi), size=count)),
                inverts=rng.random(count) < settings.invert_prob,
                texture_gains=np.exp(rng.uniform(math.log(0.5), math.log(1.5), size=count)),
                rims=rng.random(count) < settings.rim_prob,
                rim_widths=rng.integers(1, 4, size=count),
                rim_depths=rng.uniform(0.03, 0.2, size=count),
            )
        else:
            draws.update(restyles=np.zeros(count, dtype=bool), rims=np.zeros(count, dtype=bool))
        if settings.cluster_prob > 0:  # drawn only when used, so older scenes stay the same
            draws.update(clusters=rng.random(count) < settings.cluster_prob,
                         overlaps=rng.uniform(CLUSTER_OVERLAP[0], CLUSTER_OVERLAP[1], size=count))
        else:
            draws.update(clusters=np.zeros(count, dtype=bool))
        if settings.alike_prob > 0:  # drawn only when used, so older scenes stay the same
            draws.update(alikes=rng.random(count) < settings.alike_prob)
        return cls(count=count, **draws)


def _paste_all(image: np.ndarray, labels: np.ndarray, objects, draws: _ObjectDraws,
               settings: SceneParams) -> None:
    """Place and paste the drawn objects in order (later ones occlude earlier ones), in place."""
    height, width = labels.shape
    count = draws.count
    # each object's visible pixels so far (only agglomerates read them)
    visible_areas = np.zeros(count + 1, dtype=np.int64) if settings.cluster_prob > 0 else None
    placed: list[tuple[float, float, float]] = []  # (cy, cx, radius) of pasted objects
    extents: list[float] = []  # half-diagonal of each pasted object's box
    # each object's mean gray as pasted (only look-alike neighbours read them); NaN: nothing visible
    grays = np.full(count, np.nan) if draws.alikes is not None else None
    for i in range(count):
        obj = objects[int(draws.which[i])]
        scale = float(draws.scales[i])
        level = max(0, int(math.floor(math.log2(0.75 / scale)))) if scale < 0.75 else 0
        level = min(level, len(obj.levels) - 1)
        premult, alpha = obj.levels[level]
        eff = scale * (2**level)
        flip = bool(draws.flips[i])
        h, w = alpha.shape
        cos_a, sin_a = math.cos(draws.angles[i]), math.sin(draws.angles[i])
        half_y = eff * (abs(cos_a) * h + abs(sin_a) * w) / 2.0
        half_x = eff * (abs(sin_a) * h + abs(cos_a) * w) / 2.0
        radius = math.sqrt(obj.area / math.pi) * scale
        box_h, box_w = int(math.ceil(2 * half_y)) + 2, int(math.ceil(2 * half_x)) + 2
        cy, cx, partner = _centre(i, draws, placed, extents, labels, visible_areas, alpha,
                                  (cos_a, sin_a, eff, flip), (box_h, box_w), (half_y, half_x), radius)
        alike_gray = None
        if grays is not None and partner is not None and draws.alikes[i] and not math.isnan(grays[partner]):
            alike_gray = float(grays[partner])
        placed.append((cy, cx, radius))
        extents.append(math.hypot(half_y, half_x))

        top, left = int(round(cy - box_h / 2.0)), int(round(cx - box_w / 2.0))
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + box_h, height), min(left + box_w, width)
        if y1 <= y0 or x1 <= x0:
            continue
        if eff == 1.0 and draws.angles[i] == 0.0 and not flip:
            # plain copy: the box is the crop itself plus a 1-pixel margin
            warp = None
            corner = (y0 - top - 1, x0 - left - 1)
        else:
            # output pixel -> source pixel: flip . scale^-1 . rotate^-1
            inv = _inverse(cos_a, sin_a, eff, flip)
            (a, b), (c, d) = inv.tolist()
            out_y, out_x = (box_h - 1) / 2.0 - (y0 - top), (box_w - 1) / 2.0 - (x0 - left)
            offset = np.array([(h - 1) / 2.0 - (a * out_y + b * out_x), (w - 1) / 2.0 - (c * out_y + d * out_x)])
            warp, corner = (inv, offset), None
        sigma = draws.sigmas[i] if draws.blurs[i] else 0.0
        pasted = _paste_one(image[y0:y1, x0:x1], premult, alpha, obj.outlines[level], warp, corner, sigma,
                            obj.mean, i, draws, settings.soft_edges, alike_gray)
        if pasted is None:
            continue
        pasted, (py, px) = pasted
        rows, cols = slice(y0 + py, y0 + py + pasted.shape[0]), slice(x0 + px, x0 + px + pasted.shape[1])
        window = labels[rows, cols]
        if grays is not None:
            grays[i] = float(image[rows, cols][pasted].mean())
        if visible_areas is not None:
            covered = np.bincount(window[pasted], minlength=count + 1)
            visible_areas[: covered.size] -= covered
            visible_areas[i + 1] += int(pasted.sum())
        np.copyto(window, np.uint32(i + 1), where=pasted)


def _centre(i, draws, placed, extents, labels, visible_areas, alpha, transform, box, halves, radius):
    """Where object ``i`` goes, ``(y, x, partner)``: slid against a partner (agglomerate), beside one
    (touch) or anywhere (partner None)."""
    anywhere = (float(draws.centres_y[i]), float(draws.centres_x[i]), None)
    if placed and draws.clusters[i]:
        cos_a, sin_a, eff, flip = transform
        partner = int(draws.partners[i] * len(placed))
        probe = _resample(alpha, _inverse(cos_a, sin_a, eff, flip),
                          _centred_offset(cos_a, sin_a, eff, flip, alpha.shape, box), box) > 0.5
        spot = _slide_against(labels, visible_areas, probe, placed[partner][:2],
                              extents[partner] + math.hypot(*halves), float(draws.directions[i]),
                              float(draws.overlaps[i]))
        return anywhere if spot is None else (*spot, partner)
    if placed and draws.touches[i]:
        partner = int(draws.partners[i] * len(placed))
        py, px, pr = placed[partner]
        reach = draws.reaches[i] * (pr + radius)
        return py + reach * math.sin(draws.directions[i]), px + reach * math.cos(draws.directions[i]), partner
    return anywhere


def _paste_one(target: np.ndarray, premult: np.ndarray, alpha: np.ndarray, outline: np.ndarray, warp, corner,
               sigma: float, mean: float, i: int, draws: _ObjectDraws, soft_edges: bool,
               alike_gray: float | None = None):
    """Paste object ``i`` into ``target`` (its clipped box in the image).

    ``warp`` is ``(inv, offset)`` mapping box pixels to crop pixels, or None for a plain copy
    of the crop from ``corner``; ``sigma`` blurs the paste (0: no blur); ``alike_gray``, when
    given, is the mean gray the visible pixels are shifted to (a look-alike neighbour's). Only the part of the
    box that the paste can reach (``outline``, see :func:`_support_strips`) is resampled.
    Returns ``(visible, (y, x))``: the visible pixels of the part starting at ``(y, x)`` of the
    box, or None when nothing is visible.
    """
    box_h, box_w = target.shape
    radius = int(4.0 * sigma + 0.5) if sigma else 0  # gaussian_filter's reach (truncate=4)
    if warp is None:
        roi = (0, box_h, 0, box_w)
    elif box_h * box_w < _BAND_AREA // 2:  # small: finding the strips would cost more than they save
        strips, roi = [(0, box_h, 0, box_w)], (0, box_h, 0, box_w)
    else:
        strips = _support_strips(outline, *warp, target.shape, max(1, min(_MAX_BANDS, box_h * box_w // _BAND_AREA)))
        if not strips:
            return None
        roi = (max(min(s[0] for s in strips) - radius, 0), min(max(s[1] for s in strips) + radius, box_h),
               max(min(s[2] for s in strips) - radius, 0), min(max(s[3] for s in strips) + radius, box_w))
    ry0, ry1, rx0, rx1 = roi
    # the mask first: an object that ends up invisible costs no image resampling
    out_a = _window(alpha, *corner, box_h, box_w) if warp is None else _resample_strips(alpha, *warp, strips, roi)
    kernel = _gaussian_kernel(sigma) if sigma else None
    if sigma:
        out_a = _blur(out_a, kernel)
    visible = out_a > 0.5
    if not visible.any():
        return None
    values = _window(premult, *corner, box_h, box_w) if warp is None else _resample_strips(premult, *warp, strips, roi)
    if sigma:
        values = _blur(values, kernel)
    values /= np.maximum(out_a, np.float32(1e-3))
    values *= np.float32(draws.gains[i])
    values += np.float32(mean * (1.0 - draws.gains[i]) + draws.shifts[i])
    part = target[ry0:ry1, rx0:rx1]
    if draws.restyles[i] or draws.rims[i]:
        box_visible = np.zeros(target.shape, dtype=bool)
        box_visible[ry0:ry1, rx0:rx1] = visible
        _restyle(values, target, box_visible, visible, mean, bool(draws.restyles[i]),
                 float(draws.restyle_levels[i]), bool(draws.inverts[i]), float(draws.texture_gains[i]),
                 int(draws.rim_widths[i]) if draws.rims[i] else 0, float(draws.rim_depths[i]))
    if alike_gray is not None:
        values += np.float32(alike_gray - float(values[visible].mean()))
    np.clip(values, 0.0, 1.0, out=values)
    if soft_edges:
        # partial-coverage edge band: blend; the visible part is copied exactly below
        blend = values - part
        blend *= out_a
        blend += part
        np.copyto(part, blend, where=out_a > 0)
    np.copyto(part, values, where=visible)
    return visible, (ry0, rx0)


def _drop_slivers(image: np.ndarray, labels: np.ndarray, background: np.ndarray, count: int) -> np.ndarray:
    """Objects under ``MIN_VISIBLE_PIXELS`` erased from the image (back to ``background``); labels renumbered 1..n."""
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    keep = areas >= MIN_VISIBLE_PIXELS
    dropped = (areas > 0) & ~keep
    dropped[0] = False
    if dropped.any():
        np.copyto(image, background, where=dropped[labels])
    return renumber_kept(labels, keep)


__all__ = ["CLUSTER_OVERLAP", "MIN_VISIBLE_PIXELS", "TRAINING_SCENE_PARAMS", "synthesize_scene"]
