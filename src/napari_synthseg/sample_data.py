"""Built-in sample data: EM-like scenes of mineral grains with ground-truth labels (pure core).

The scenes imitate SEM back-scattered images of ore grains in epoxy (see ``seed_em``):
a dark-gray, scratched, noisy and unevenly lit background; bright grains (sulfides)
with dark pits; many mid-gray grains (silicates) only slightly brighter than the
background, with darker rims and dark pores; a few darker grains; some grains touch.
A scale-bar box sits in the lower-right corner and is *not* labelled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import measure
from skimage.draw import line_aa, polygon

from .image_io import write_png, write_tiff
from .relabel import renumber_kept

#: Reference size the grain sizes below are tuned for.
_REFERENCE_SHAPE = (768, 1024)
#: Grains left with fewer visible pixels than this are dropped from the labels.
_MIN_VISIBLE = 15


def _check_shape(shape) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}") from None
    if height < 64 or width < 64:
        raise ValueError(f"shape {shape!r} is too small for a sample scene; use at least (64, 64)")
    return height, width


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency random field in about [-1, 1], by cubic zoom of a coarse grid."""
    coarse = rng.uniform(-1.0, 1.0, size=cells).astype(np.float32)
    zoom = (shape[0] / cells[0], shape[1] / cells[1])
    field = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
    return field[: shape[0], : shape[1]]


def _background(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    height, width = shape
    level = rng.uniform(0.165, 0.205)
    image = np.full(shape, level, dtype=np.float32)
    # uneven lighting: a smooth field plus a gentle gradient
    image += 0.018 * _smooth_field(rng, shape, (4, 5))
    ramp_y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    ramp_x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    gy, gx = rng.uniform(-0.012, 0.012, size=2)
    image += gy * ramp_y + gx * ramp_x
    # mottled epoxy texture
    mottle = rng.standard_normal(shape).astype(np.float32)
    image += 0.045 * ndimage.gaussian_filter(mottle, 2.0 * scale)

    # polishing scratches: mostly in one or two families of directions, a few odd ones
    scratches = np.zeros(shape, dtype=np.float32)
    n_scratches = int(rng.integers(40, 90) * scale)
    families = rng.uniform(0, np.pi, size=2)
    diag = float(np.hypot(height, width))
    for _ in range(max(n_scratches, 1)):
        angle = families[rng.integers(2)] + rng.normal(0, 0.12) if rng.random() < 0.75 else rng.uniform(0, np.pi)
        length = diag * rng.uniform(0.05, 0.6)
        y0, x0 = rng.uniform(0, height), rng.uniform(0, width)
        y1, x1 = y0 + length * np.sin(angle), x0 + length * np.cos(angle)
        rr, cc, val = line_aa(int(y0), int(x0), int(y1), int(x1))
        keep = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        depth = rng.uniform(0.015, 0.07) * (1.0 if rng.random() < 0.85 else -0.6)
        scratches[rr[keep], cc[keep]] += depth * val[keep].astype(np.float32)
    image -= ndimage.gaussian_filter(scratches, 0.6)

    # dark specks and pits in the epoxy (not grains, not labelled)
    n_specks = int(rng.integers(15, 40) * scale * scale)
    ys = rng.integers(0, height, n_specks)
    xs = rng.integers(0, width, n_specks)
    specks = np.zeros(shape, dtype=np.float32)
    specks[ys, xs] = rng.uniform(0.5, 1.0, n_specks)
    specks = ndimage.grey_dilation(specks, size=(3, 3))
    image -= 0.12 * ndimage.gaussian_filter(specks, 0.8)
    return image


def _grain_mask(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Random grain outline rasterised into a tight boolean box."""
    if rng.random() < 0.5:
        # angular, irregular polygon
        n_vertices = int(rng.integers(5, 11))
        theta = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
        r = rng.uniform(0.65, 1.1, n_vertices)
    else:
        # blobby outline from a few low harmonics
        theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        r = np.ones_like(theta)
        for harmonic in range(2, 6):
            r += rng.uniform(0, 0.22) / harmonic * 2 * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
        r = np.clip(r, 0.45, None)
    aspect = rng.uniform(1.0, 1.8) if rng.random() < 0.8 else rng.uniform(1.8, 3.5)
    orientation = rng.uniform(0, np.pi)
    x = radius * r * np.cos(theta) * np.sqrt(aspect)
    y = radius * r * np.sin(theta) / np.sqrt(aspect)
    cos_o, sin_o = np.cos(orientation), np.sin(orientation)
    xr, yr = x * cos_o - y * sin_o, x * sin_o + y * cos_o
    yr -= yr.min() - 1
    xr -= xr.min() - 1
    box = (int(np.ceil(yr.max())) + 2, int(np.ceil(xr.max())) + 2)
    mask = np.zeros(box, dtype=bool)
    rr, cc = polygon(yr, xr, box)
    mask[rr, cc] = True
    return mask


def _grain_pixels(
    rng: np.random.Generator, mask: np.ndarray, kind: str, background: float, size_scale: float
) -> np.ndarray:
    """Intensities of one grain inside its box (only mask pixels matter)."""
    inside = ndimage.distance_transform_edt(mask).astype(np.float32)
    shape = mask.shape
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    tilt = rng.uniform(-1, 1, 2) / max(shape)
    if kind == "sulfide":
        base = rng.uniform(0.72, 0.95)
        values = base + 0.05 * (tilt[0] * yy + tilt[1] * xx)
        values += 0.02 * rng.standard_normal(shape).astype(np.float32)
        n_pits = int(rng.integers(0, 3))
        pit_depth = rng.uniform(0.35, 0.6)
        edge = rng.uniform(0.05, 0.15)
        values -= edge * (inside <= 1.0)
        # irregular dark pits and cracks: the top tail of a smooth random field
        field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), rng.uniform(1.0, 2.5))
        cut = np.quantile(field, 1.0 - rng.uniform(0.03, 0.15))
        pits = np.clip((field - cut) / (0.3 * abs(cut) + 1e-6), 0, 1) * (inside > 1.5)
        values -= rng.uniform(0.4, 0.65) * pits
    elif kind == "silicate":
        base = background + rng.uniform(0.03, 0.16)
        values = base + 0.02 * (tilt[0] * yy + tilt[1] * xx)
        values += 0.012 * ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.0)
        n_pits = int(rng.integers(0, 2 + mask.sum() // 600))
        pit_depth = rng.uniform(0.08, 0.16)
        # darker rim, often only around part of the outline
        rim_width = max(1.0, rng.uniform(2.0, 5.0) * size_scale)
        cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
        angle = np.arctan2(yy - cy, xx - cx)
        coverage = np.clip(np.cos(angle - rng.uniform(0, 2 * np.pi)) + rng.uniform(0.5, 2.0), 0, 1)
        rim = np.clip(1.0 - (inside - 1.0) / rim_width, 0, 1) * coverage
        values = values * (1 - rim) + (background - rng.uniform(0.07, 0.14)) * rim
    else:  # dark grain
        base = background - rng.uniform(0.03, 0.08)
        values = base + 0.01 * ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.0)
        n_pits = int(rng.integers(0, 2))
        pit_depth = rng.uniform(0.03, 0.06)
        values -= rng.uniform(0.02, 0.05) * (inside <= 2.0)

    # pores/pits: small dark blobs well inside the grain
    candidates = np.flatnonzero(inside.ravel() > 3.0)
    if n_pits and candidates.size:
        centres = rng.choice(candidates, size=min(n_pits, candidates.size), replace=False)
        pits = np.zeros(shape, dtype=np.float32)
        pits.ravel()[centres] = 1.0
        radius = rng.uniform(1.0, 3.5)
        pits = ndimage.gaussian_filter(pits, radius) * (2 * np.pi * radius * radius)
        values -= pit_depth * np.clip(pits * 1.6, 0, 1)
    return values.astype(np.float32)


def _draw_scale_bar(rng: np.random.Generator, image: np.ndarray) -> tuple[slice, slice]:
    """Paint a scale-bar box (bar, end ticks, text-like marks) in the lower-right corner."""
    height, width = image.shape
    box_h = max(14, int(round(height * rng.uniform(0.03, 0.045))))
    box_w = max(40, int(round(width * rng.uniform(0.09, 0.14))))
    margin = int(rng.integers(2, 8))
    y0, x0 = height - margin - box_h, width - margin - box_w
    rows, cols = slice(y0, y0 + box_h), slice(x0, x0 + box_w)
    dark_box = rng.random() < 0.5
    box_value, ink = (0.08, 0.95) if dark_box else (0.62, 0.05)
    box = np.full((box_h, box_w), box_value, dtype=np.float32)
    # the bar with end ticks
    bar_y = box_h // 2
    bar_w = max(1, box_h // 10)
    box[bar_y - bar_w // 2 : bar_y - bar_w // 2 + bar_w, 2:-2] = ink if dark_box else 0.95
    box[2:-2, 2 : 2 + bar_w] = ink if dark_box else 0.95
    box[2:-2, -2 - bar_w : -2] = ink if dark_box else 0.95
    # a label panel with glyph-like strokes ("100 µm")
    panel = (slice(2, box_h - 2), slice(box_w // 4, box_w - box_w // 4))
    box[panel] = 0.08 if dark_box else 0.9
    glyph_ink = 0.95 if dark_box else 0.05
    ph = box_h - 4
    pw = box_w - 2 * (box_w // 4)
    n_glyphs = int(rng.integers(4, 7))
    glyph_w = max(2, pw // (n_glyphs + 1))
    stroke = max(1, ph // 8)
    for i in range(n_glyphs):
        gx0 = box_w // 4 + glyph_w // 2 + i * glyph_w
        gy0, gy1 = 2 + ph // 5, 2 + ph - ph // 5
        glyph = box[gy0:gy1, gx0 : gx0 + max(1, glyph_w - 2)]
        style = rng.integers(3)
        if style == 0:  # a bar like "1"
            glyph[:, glyph.shape[1] // 2 : glyph.shape[1] // 2 + stroke] = glyph_ink
        else:  # a ring like "0" or an arch like "m"
            glyph[:stroke, :] = glyph_ink
            glyph[:, :stroke] = glyph_ink
            glyph[:, -stroke:] = glyph_ink
            if style == 1:
                glyph[-stroke:, :] = glyph_ink
    image[rows, cols] = box
    return rows, cols


def make_sample_scene(seed: int = 0, shape: tuple[int, int] = (768, 1024)) -> tuple[np.ndarray, np.ndarray]:
    """Make one realistic EM-like scene of mineral grains with its ground truth.

    Parameters
    ----------
    seed
        Random seed; the same seed always gives the same scene.
    shape
        ``(height, width)`` of the scene, at least ``(64, 64)``.

    Returns
    -------
    image : np.ndarray
        uint8 gray image ``(H, W)``.
    labels : np.ndarray
        uint32 instance labels ``(H, W)``: one id per grain (its visible pixels), 0 for
        the background and the scale-bar box.
    """
    height, width = _check_shape(shape)
    rng = np.random.default_rng(seed)
    scale = float(np.sqrt(height * width / (_REFERENCE_SHAPE[0] * _REFERENCE_SHAPE[1])))
    size_scale = min(height, width) / _REFERENCE_SHAPE[0]

    image = _background(rng, (height, width), scale)
    background = float(np.median(image))
    labels = np.zeros((height, width), dtype=np.uint32)

    # a smaller shape is the same kind of scene at a lower resolution: grains shrink
    # with the image and their number follows the aspect ratio
    n_grains = max(3, int(rng.integers(45, 75) * (scale / size_scale) ** 2))
    kinds = rng.choice(["sulfide", "silicate", "dark"], size=n_grains, p=[0.32, 0.56, 0.12])
    radii = np.maximum(np.exp(rng.uniform(np.log(5.5), np.log(55.0), n_grains)) * size_scale, 3.0)
    centres: list[tuple[float, float, float]] = []
    for index in range(n_grains):
        mask = _grain_mask(rng, radii[index])
        box_h, box_w = mask.shape
        if centres and rng.random() < 0.3:
            # set it against an earlier grain so that some grains touch
            py, px, pr = centres[int(rng.integers(len(centres)))]
            direction = rng.uniform(0, 2 * np.pi)
            reach = 0.85 * (pr + radii[index])
            cy, cx = py + reach * np.sin(direction), px + reach * np.cos(direction)
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        y0, x0 = int(round(cy - box_h / 2)), int(round(cx - box_w / 2))
        centres.append((cy, cx, float(radii[index])))
        values = _grain_pixels(rng, mask, str(kinds[index]), background, min(size_scale, 1.0))
        # clip the grain's box to the image
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = min(box_h, height - y0), min(box_w, width - x0)
        if sy1 <= sy0 or sx1 <= sx0:
            continue
        sub_mask = mask[sy0:sy1, sx0:sx1]
        target = (slice(y0 + sy0, y0 + sy1), slice(x0 + sx0, x0 + sx1))
        np.copyto(image[target], values[sy0:sy1, sx0:sx1], where=sub_mask)
        np.copyto(labels[target], np.uint32(index + 1), where=sub_mask)

    # soft edges as in a real micrograph, then detector noise
    image = ndimage.gaussian_filter(image, 0.7)
    image += rng.normal(0.0, 0.012, size=image.shape).astype(np.float32)

    rows, cols = _draw_scale_bar(rng, image)
    labels[rows, cols] = 0

    # A grain cut into visible pieces by a grain on top of it is as many objects as a person
    # would outline: give each connected piece its own id (scores then judge splits fairly).
    labels = measure.label(labels, background=0, connectivity=1).astype(np.uint32)
    # drop slivers left by occlusion, the border and the scale bar; renumber 1..n
    areas = np.bincount(labels.ravel())
    keep = areas >= _MIN_VISIBLE
    labels = renumber_kept(labels, keep)

    image8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image8, labels


def write_sample_folder(
    out_dir: str | os.PathLike,
    n: int = 4,
    seed: int = 0,
    shape: tuple[int, int] = (768, 1024),
) -> tuple[Path, Path]:
    """Write ``n`` sample scenes as ``images/<stem>.png`` and ``masks/<stem>.tif``.

    Scene ``i`` uses seed ``seed + i``; files are written atomically.

    Returns
    -------
    (images_dir, masks_dir)
    """
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    out = Path(out_dir)
    images_dir, masks_dir = out / "images", out / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for i in range(int(n)):
        image, labels = make_sample_scene(seed=seed + i, shape=shape)
        stem = f"sample_{seed + i:04d}"
        write_png(images_dir / f"{stem}.png", image)
        write_tiff(masks_dir / f"{stem}.tif", labels)
    return images_dir, masks_dir
