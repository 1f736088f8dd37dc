"""Backgrounds for synthetic scenes, learned from the background of real images.

Pure core (numpy/scipy). :class:`BackgroundSource` learns what the background of real
images looks like (its intensity distribution, its texture as patches, its power spectrum)
and makes new backgrounds of any size cheaply; :func:`estimate_background_mask` finds the
background of an image that has no segmentation.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, special

from ._synthesis_common import (
    _as_generator,
    _field_side,
    _random_crop,
    _scene_shape,
    _standard_normal_field,
    _unit_gray,
)
from .image_io import iter_planes, read_image


class NoBackgroundError(ValueError):
    """The images give (almost) no background pixels to learn a background from."""


#: Background kinds a :class:`BackgroundSource` can make.
BACKGROUND_KINDS = ("texture", "spectral", "resampled", "blocks", "noise", "flat")
#: How often each kind is drawn when ``background_kinds`` is None.
DEFAULT_KIND_WEIGHTS = {
    "texture": 0.35,
    "spectral": 0.3,
    "resampled": 0.1,
    "blocks": 0.1,
    "noise": 0.1,
    "flat": 0.05,
}

def _dihedral(patch: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/reflections of a square patch."""
    out = []
    for base in (patch, patch[:, ::-1]):
        for k in range(4):
            out.append(np.rot90(base, k))
    return out


def estimate_background_mask(image: np.ndarray, *, sigma: float = 2.0, margin: int = 5) -> np.ndarray:
    """Guess which pixels are background without a segmentation.

    The background is taken as the pixels whose smoothed value lies within the
    image's central intensity mode (about 3 standard deviations of the main histogram
    peak); everything else larger than a speck, grown by ``margin`` pixels, is treated
    as object (so dark rims and halos are excluded as well).

    Parameters
    ----------
    image
        2D gray image (any dtype).

    Returns
    -------
    np.ndarray
        bool mask, True on background.
    """
    gray = _unit_gray(image)
    if gray.ndim != 2:
        raise ValueError(f"expected a 2D gray image, got shape {gray.shape}")
    factor = int(math.sqrt(gray.size / 1.5e6)) + 1
    if factor > 1:
        # large micrographs: decide on a block-averaged copy (a coarse mask is enough here)
        h, w = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
        small = gray[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        coarse = estimate_background_mask(small, sigma=max(sigma / factor, 0.5), margin=-(-margin // factor))
        full = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)
        return np.pad(full, ((0, gray.shape[0] - h), (0, gray.shape[1] - w)), mode="edge")
    smooth = ndimage.gaussian_filter(gray, sigma)
    lo, hi = np.percentile(smooth, [0.5, 99.5])
    if hi - lo < 1e-6:
        return np.ones(gray.shape, dtype=bool)
    hist, edges = np.histogram(smooth, bins=256, range=(lo, hi))
    peak = int(np.argmax(hist))
    half = hist[peak] / 2.0
    below = np.flatnonzero(hist[:peak] < half)
    above = np.flatnonzero(hist[peak:] < half)
    left = below[-1] if below.size else 0
    right = peak + above[0] if above.size else hist.size - 1
    bin_width = edges[1] - edges[0]
    spread = max((right - left) * bin_width / 2.355, bin_width)
    centre = (edges[peak] + edges[peak + 1]) / 2.0
    objects = np.abs(smooth - centre) > 3.0 * spread
    # specks and scratch fragments belong to the background texture, not to objects
    lab, n = ndimage.label(objects)
    if n:
        sizes = np.bincount(lab.ravel())
        small = sizes < 64
        small[0] = True
        objects = ~small[lab]
    if margin > 0:
        objects = ndimage.maximum_filter(objects.view(np.uint8), size=2 * margin + 1).astype(bool)
    return ~objects


def _as_image_list(images) -> list[np.ndarray]:
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim >= 2):
        images = [images]
    out = []
    for item in images:
        array = read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
        gray = _unit_gray(array)
        if gray.ndim < 2 or gray.size == 0:
            raise ValueError(f"background images must be 2D (or stacks of 2D), got shape {array.shape}")
        for idx in iter_planes(gray.shape):
            out.append(np.ascontiguousarray(gray[idx]))
    if not out:
        raise ValueError("no background images given; pass at least one real image")
    return out


@dataclass(eq=False)
class BackgroundSource:
    """What the background of real images looks like, and a maker of new ones.

    Build it with :meth:`from_images`; call :meth:`make_background`. All values are
    float32 in [0, 1], on the same scale as ``image_io.to_unit_float`` of the images.

    Attributes
    ----------
    mean, std
        Mean and standard deviation of the background pixels.
    image_means
        Mean background level of each source image (a scene picks one).
    pool
        Shuffled background pixel values (for the "resampled" and "blocks" kinds).
    quantiles
        Background intensity quantiles at ``np.linspace(0, 1, len(quantiles))``.
    patches
        Zero-mean background patches, pre-multiplied by a sine window, with all 8
        rotations/reflections: ``(n, patch, patch)`` float32.
    spectrum
        Amplitude spectrum of the background texture, ``(patch, patch)``.
    patch
        Patch side in pixels.
    seed
        Seed of the spectrally shaped noise fields.
    names
        Name of each source image (e.g. its path), or empty; lets a scene take its
        background from the image its objects came from (see ``synthesize_scene``'s
        ``group_prob``).
    patch_images
        Index (into ``image_means``) of the image each entry of ``patches`` came from.
    """

    mean: float
    std: float
    image_means: np.ndarray
    pool: np.ndarray
    quantiles: np.ndarray
    patches: np.ndarray
    spectrum: np.ndarray
    patch: int
    seed: int = 0
    names: tuple = ()
    patch_images: np.ndarray | None = None
    _fields: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_images(
        cls,
        images,
        labels=None,
        *,
        patch: int = 64,
        rng=None,
        max_patches: int = 128,
        pool_size: int = 1 << 20,
        names=None,
    ) -> BackgroundSource:
        """Learn the background of real images.

        Parameters
        ----------
        images
            One image or a sequence of images (arrays or paths; gray, RGB or stacks).
        labels
            Matching object labels/masks (> 0 = object), or None to estimate the
            background with :func:`estimate_background_mask`.
        patch
            Side of the texture patches (reduced for small images).
        rng
            Generator or seed for choosing pixels and patches (default: seed 0).
        max_patches, pool_size
            How many distinct patches and background pixels to keep.
        names
            Optional name of each (2D) image, usually the path its bank objects record
            as ``source``.
        """
        gen = _as_generator(0 if rng is None else rng)
        grays = _as_image_list(images)
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != len(grays):
                raise ValueError(f"got {len(names)} names for {len(grays)} image planes; give one name per 2D image")
        masks = _background_masks(grays, labels)
        values = [g[m] for g, m in zip(grays, masks)]
        if sum(v.size for v in values) < 16:
            raise NoBackgroundError("the images have (almost) no background pixels to learn from; check the labels")
        image_means = np.array([v.mean() for v in values if v.size], dtype=np.float32)
        # position of each image in image_means (images without background have none)
        mean_index = np.cumsum([v.size > 0 for v in values]) - 1
        kept_names = tuple(n for n, v in zip(names, values) if v.size) if names is not None else ()
        # each image's values shifted to the common mean: the level comes from image_means, and
        # the pooled spread (std, resampled/blocks/spectral textures) stays each image's own
        # texture instead of the gap between dark and bright images' backgrounds
        common = float(np.mean(image_means))
        all_values = np.concatenate([v - v.mean() + common for v in values if v.size])
        take = min(int(pool_size), all_values.size)
        # with replacement: a permutation of tens of millions of pixels costs seconds
        pool = all_values[gen.integers(0, all_values.size, size=take)].astype(np.float32)
        quantiles = np.quantile(pool, np.linspace(0.0, 1.0, 1025)).astype(np.float32)

        variants, spectrum, raw_images = _texture_patches(grays, masks, patch, max_patches, gen)
        return cls(
            mean=float(pool.mean()),
            std=float(pool.std()),
            image_means=image_means,
            pool=np.concatenate([pool, pool]),
            quantiles=quantiles,
            patches=variants,
            spectrum=spectrum,
            patch=spectrum.shape[0],
            seed=int(gen.integers(0, 2**31)),
            names=kept_names,
            patch_images=np.repeat(mean_index[raw_images], 8).astype(np.int32),
        )

    # -- the kinds -------------------------------------------------------------

    def image_index(self, name) -> int | None:
        """Index of the image called ``name`` (see ``names``), or None."""
        try:
            return self.names.index(str(name))
        except ValueError:
            return None

    def make_background(self, shape, rng, kind: str | None = None, image: int | None = None) -> np.ndarray:
        """Make one background image.

        Parameters
        ----------
        shape
            ``(height, width)``.
        rng
            numpy Generator (or seed).
        kind
            One of :data:`BACKGROUND_KINDS`, or None to draw one with
            :data:`DEFAULT_KIND_WEIGHTS`.
        image
            Index of one source image: its background level and texture patches are
            used instead of those of a random image.

        Returns
        -------
        np.ndarray
            float32 ``(height, width)`` in [0, 1].
        """
        shape = _scene_shape(shape)
        rng = _as_generator(rng)
        if kind is None:
            kind = _draw_kind(rng, DEFAULT_KIND_WEIGHTS)
        if kind not in BACKGROUND_KINDS:
            raise ValueError(f"unknown background kind {kind!r}; choose one of {', '.join(BACKGROUND_KINDS)}")
        which = int(rng.integers(self.image_means.size))
        if image is not None and 0 <= int(image) < self.image_means.size:
            which = int(image)
        level = float(self.image_means[which]) + rng.normal(0.0, 0.3) * self.std
        if kind == "flat":
            return np.full(shape, np.clip(level, 0.0, 1.0), dtype=np.float32)
        if kind == "noise":
            out = _random_crop(_standard_normal_field(_field_side(shape)), shape, rng) * np.float32(self.std)
        elif kind == "resampled":
            out = self._pool_values(shape[0] * shape[1], rng).reshape(shape) - np.float32(self.mean)
        elif kind == "blocks":
            block = int(rng.integers(4, 33))
            gh, gw = -(-shape[0] // block), -(-shape[1] // block)
            grid = self._pool_values(gh * gw, rng).reshape(gh, gw) - np.float32(self.mean)
            canvas = np.empty((gh, block, gw, block), dtype=np.float32)
            canvas[...] = grid[:, None, :, None]
            out = canvas.reshape(gh * block, gw * block)[: shape[0], : shape[1]]
        elif kind == "texture":
            out = self._tiled_texture(shape, rng, None if image is None else which)
        else:
            out = _random_crop(self._spectral_field(_field_side(shape)), shape, rng)
        out = out + np.float32(level)
        if rng.random() < 0.5:
            # gentle uneven lighting: separable low-frequency ramps
            amp = rng.uniform(0.0, 0.5, size=4) * self.std
            phase = rng.uniform(0, 2 * np.pi, size=2)
            ys = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)
            xs = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)
            out += (amp[0] * ys + amp[1] * np.cos(np.pi * ys + phase[0])).astype(np.float32)[:, None]
            out += (amp[2] * xs + amp[3] * np.cos(np.pi * xs + phase[1])).astype(np.float32)[None, :]
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def _pool_values(self, count: int, rng: np.random.Generator) -> np.ndarray:
        size = self.pool.size // 2
        start = int(rng.integers(0, size))
        if count <= size:
            return self.pool[start : start + count]
        return np.resize(np.roll(self.pool[:size], -start), count)

    def _tiled_texture(self, shape: tuple[int, int], rng: np.random.Generator, image: int | None = None) -> np.ndarray:
        """Overlap-add of random windowed patches (50 % overlap; variance preserved)."""
        p = self.patch
        step = p // 2
        ny = -(-shape[0] // step) + 2
        nx = -(-shape[1] // step) + 2
        ny += ny % 2
        nx += nx % 2
        own = None
        if image is not None and self.patch_images is not None:
            own = np.flatnonzero(self.patch_images == image)
        if own is not None and own.size:
            index = own[rng.integers(0, own.size, size=(ny, nx))]
        else:
            index = rng.integers(0, self.patches.shape[0], size=(ny, nx))
        canvas = np.zeros(((ny + 1) * step, (nx + 1) * step), dtype=np.float32)
        for a in (0, 1):
            for b in (0, 1):
                tiles = self.patches[index[a::2, b::2]]
                gy, gx = tiles.shape[:2]
                rows, cols = slice(a * step, a * step + gy * p), slice(b * step, b * step + gx * p)
                canvas[rows, cols] += tiles.transpose(0, 2, 1, 3).reshape(gy * p, gx * p)
        oy = int(rng.integers(step, canvas.shape[0] - step - shape[0] + 1))
        ox = int(rng.integers(step, canvas.shape[1] - step - shape[1] + 1))
        return canvas[oy : oy + shape[0], ox : ox + shape[1]]

    def _spectral_field(self, side: int) -> np.ndarray:
        """Noise with the background's spectrum and intensity distribution (zero mean), cached."""
        cached = self._fields.get(side)
        if cached is not None:
            return cached
        gen = np.random.default_rng([self.seed, side])
        white = gen.standard_normal((side, side), dtype=np.float32)
        p = self.patch
        freq = np.fft.fftfreq(side)
        index = np.round(freq * p).astype(int) % p
        amplitude = self.spectrum[index[:, None], index[None, :]]
        shaped = np.real(np.fft.ifft2(np.fft.fft2(white) * amplitude)).astype(np.float32)
        shaped -= shaped.mean()
        sd = shaped.std()
        if sd > 0:
            shaped /= sd
            levels = np.linspace(0.0, 1.0, self.quantiles.size, dtype=np.float32)
            shaped = np.interp(special.ndtr(shaped), levels, self.quantiles).astype(np.float32) - np.float32(self.mean)
        shaped.setflags(write=False)
        self._fields[side] = shaped
        return shaped


def _background_masks(grays: list[np.ndarray], labels) -> list[np.ndarray]:
    """Each image's background pixels: outside its labels (grown a little) and in its main intensity mode."""
    if labels is None:
        return [estimate_background_mask(g) for g in grays]
    label_list = _as_label_list(labels)
    if len(label_list) != len(grays):
        raise ValueError(f"got {len(grays)} images but {len(label_list)} label images; give one per image")
    masks = []
    for gray, lab in zip(grays, label_list):
        if lab.shape != gray.shape:
            raise ValueError(f"labels of shape {lab.shape} do not match their image's shape {gray.shape}")
        # grow objects a little so their rims and halos are not taken as background
        objects = ndimage.maximum_filter((lab > 0).astype(np.uint8), size=7)
        # unlabelled non-background (missed grains, a scale bar) is left out too
        masks.append((objects == 0) & estimate_background_mask(gray))
    return masks


def _texture_patches(grays, masks, patch: int, max_patches: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windowed zero-mean background patches (8 variants each), their amplitude spectrum, their images."""
    side = int(min(patch, *(min(g.shape) for g in grays)))
    side -= side % 2
    if side < 4:
        raise ValueError("background images are too small (need at least 4x4 pixels)")
    raw, raw_images = _collect_patches(grays, masks, side, max_patches, rng)
    raw -= raw.mean(axis=(1, 2), keepdims=True)
    spectrum = np.sqrt(np.mean(np.abs(np.fft.fft2(raw)) ** 2, axis=0)).astype(np.float32)
    spectrum[0, 0] = 0.0
    ramp = np.sin(np.pi * (np.arange(side) + 0.5) / side).astype(np.float32)
    window = ramp[:, None] * ramp[None, :]
    variants = np.stack([v for p in raw for v in _dihedral(p * window)]).astype(np.float32)
    return variants, spectrum, raw_images


def _as_label_list(labels) -> list[np.ndarray]:
    if isinstance(labels, np.ndarray):
        labels = [labels]
    out = []
    for item in labels:
        array = read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
        for idx in iter_planes(array.shape):
            out.append(array[idx])
    return out


def _collect_patches(grays, masks, side: int, max_patches: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Background patches with no object pixels (or, failing that, as few as possible), and their images."""
    step = max(side // 2, 1)
    candidates = []  # (object fraction, image index, y, x)
    for i, mask in enumerate(masks):
        h, w = mask.shape
        if h < side or w < side:
            continue
        # object pixels per step x step cell; a patch is 2x2 cells (side = 2 * step)
        cy, cx = h // step, w // step
        cells = (~mask[: cy * step, : cx * step]).reshape(cy, step, cx, step).sum(axis=(1, 3), dtype=np.int32)
        count = cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]
        yy, xx = np.meshgrid(np.arange(cy - 1) * step, np.arange(cx - 1) * step, indexing="ij")
        frac = (count / float(side * side)).ravel()
        candidates.append(np.stack([frac, np.full(frac.size, i), yy.ravel(), xx.ravel()], axis=1))
    if not candidates:
        raise ValueError(f"background images are smaller than the patch size {side}")
    table = np.concatenate(candidates)
    clean = table[table[:, 0] == 0]
    if clean.shape[0] < 8:
        # crowded images: take the least covered patches and fill their object pixels
        order = np.argsort(table[:, 0], kind="stable")
        clean = table[order[: max(8, min(max_patches, order.size))]]
    chosen = clean[rng.permutation(clean.shape[0])[:max_patches]]
    patches = np.empty((chosen.shape[0], side, side), dtype=np.float32)
    for k, (_, i, y, x) in enumerate(chosen):
        i, y, x = int(i), int(y), int(x)
        crop = grays[i][y : y + side, x : x + side]
        keep = masks[i][y : y + side, x : x + side]
        fill = crop[keep].mean() if keep.any() else crop.mean()
        patches[k] = np.where(keep, crop, fill)
    return patches, chosen[:, 1].astype(np.int64)


def _draw_kind(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right").clip(0, len(names) - 1))]


def _kind_weights(background_kinds) -> dict[str, float] | None:
    if background_kinds is None:
        return None
    if isinstance(background_kinds, str):
        background_kinds = [background_kinds]
    if isinstance(background_kinds, Mapping):
        weights = {str(k): float(v) for k, v in background_kinds.items()}
    else:
        weights = {str(k): 1.0 for k in background_kinds}
    unknown = [k for k in weights if k not in BACKGROUND_KINDS]
    if unknown:
        raise ValueError(f"unknown background kind(s) {unknown}; choose from {', '.join(BACKGROUND_KINDS)}")
    if not weights or any(v < 0 for v in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"background_kinds needs at least one kind with a positive weight, got {background_kinds!r}")
    return weights


_SOURCE_CACHE: OrderedDict[tuple, tuple[Any, BackgroundSource]] = OrderedDict()


def _background_source(backgrounds) -> BackgroundSource | None:
    if backgrounds is None or isinstance(backgrounds, BackgroundSource):
        return backgrounds
    items = [backgrounds] if isinstance(backgrounds, (np.ndarray, str, os.PathLike)) else list(backgrounds)
    if not items:
        raise ValueError("backgrounds is an empty list; pass real images, a BackgroundSource or None")
    key = tuple(id(x) for x in items)
    hit = _SOURCE_CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], items)):
        _SOURCE_CACHE.move_to_end(key)
        return hit[1]
    source = BackgroundSource.from_images(items)
    _SOURCE_CACHE[key] = (items, source)  # holding the items keeps their ids from being reused
    while len(_SOURCE_CACHE) > 2:
        _SOURCE_CACHE.popitem(last=False)
    return source


__all__ = ["BACKGROUND_KINDS", "DEFAULT_KIND_WEIGHTS", "BackgroundSource", "estimate_background_mask"]
