"""Synthetic training scenes: bank objects pasted through their masks onto realistic backgrounds.

Pure core (numpy/scipy). Two pieces:

- :class:`BackgroundSource` learns what the background of real images looks like
  (its intensity distribution, its texture as patches, its power spectrum) and makes
  new backgrounds of any size cheaply.
- :func:`synthesize_scene` pastes randomly transformed bank objects onto such a
  background and returns the image with its instance labels.

Everything expensive (float conversion of the crops, their mip levels, background
patches, spectrally shaped noise fields) is prepared once and cached, so that one
512x512 scene costs milliseconds.
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

from .image_io import iter_planes, read_image, to_gray, to_unit_float
from .relabel import renumber_kept

try:  # skimage's Cython affine warp is ~2x faster than scipy's spline code for order 1
    from skimage.transform._warps_cy import _warp_fast
except ImportError:  # private API: fall back to scipy if it moves
    _warp_fast = None

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
#: Smallest scene side accepted.
MIN_SCENE_SIDE = 8


# ----------------------------------------------------------------------------- helpers


def _unit_gray(image: np.ndarray) -> np.ndarray:
    """Gray float32 in [0, 1] scaled by the *input* dtype's range (RGB included).

    ``to_gray`` returns float in the input's units, so integer RGB must be divided by
    the original dtype's maximum, not rescaled by min/max; this keeps bank crops and
    backgrounds on one scale.
    """
    image = np.asarray(image)
    dtype = image.dtype
    gray = to_gray(image)
    if np.issubdtype(dtype, np.integer) and gray.dtype != dtype:
        info = np.iinfo(dtype)
        return np.clip((gray - info.min) / float(info.max - info.min), 0.0, 1.0).astype(np.float32)
    if np.issubdtype(gray.dtype, np.floating) and gray.size:
        lo, hi = float(np.nanmin(gray)), float(np.nanmax(gray))
        # float gray in 8- or 16-bit units (e.g. to_gray of an RGB image): keep that
        # scale instead of stretching each image or crop to its own min/max
        for top in (255.0, 65535.0):
            if lo >= 0.0 and 1.0 < hi <= top:
                return np.nan_to_num(gray.astype(np.float32) / np.float32(top))
    return to_unit_float(gray)


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator or an integer seed, got {type(rng).__name__}")


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


def _scene_shape(shape) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), got {shape!r}") from None
    if height < MIN_SCENE_SIDE or width < MIN_SCENE_SIDE:
        raise ValueError(
            f"scene shape {tuple(shape)!r} is too small; use at least ({MIN_SCENE_SIDE}, {MIN_SCENE_SIDE})"
        )
    return height, width


_NORMAL_FIELDS: dict[int, np.ndarray] = {}


def _field_side(shape: tuple[int, int]) -> int:
    # a pure function of the requested shape, so crops never depend on call history
    return max(256, 1 << int(math.ceil(math.log2(max(shape) + 1))))


def _standard_normal_field(side: int) -> np.ndarray:
    """A fixed standard-normal field (side x side), generated once per process."""
    cached = _NORMAL_FIELDS.get(side)
    if cached is None:
        cached = np.random.default_rng(0x5EED + side).standard_normal((side, side), dtype=np.float32)
        cached.setflags(write=False)
        _NORMAL_FIELDS[side] = cached
    return cached


def _random_crop(fieldarr: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random window of ``fieldarr`` with random flips (a view, no copy)."""
    height, width = shape
    oy = int(rng.integers(0, fieldarr.shape[0] - height + 1))
    ox = int(rng.integers(0, fieldarr.shape[1] - width + 1))
    flips = rng.integers(0, 2, size=2)
    window = fieldarr[oy : oy + height, ox : ox + width]
    return window[:: -1 if flips[0] else 1, :: -1 if flips[1] else 1]


def _dihedral(patch: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/reflections of a square patch."""
    out = []
    for base in (patch, patch[:, ::-1]):
        for k in range(4):
            out.append(np.rot90(base, k))
    return out


# ----------------------------------------------------------------------------- backgrounds


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
        if labels is None:
            masks = [estimate_background_mask(g) for g in grays]
        else:
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

        values = [g[m] for g, m in zip(grays, masks)]
        if sum(v.size for v in values) < 16:
            raise ValueError("the images have (almost) no background pixels to learn from; check the labels")
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

        side = int(min(patch, *(min(g.shape) for g in grays)))
        side -= side % 2
        if side < 4:
            raise ValueError("background images are too small (need at least 4x4 pixels)")
        raw, raw_images = _collect_patches(grays, masks, side, max_patches, gen)
        raw -= raw.mean(axis=(1, 2), keepdims=True)
        spectrum = np.sqrt(np.mean(np.abs(np.fft.fft2(raw)) ** 2, axis=0)).astype(np.float32)
        spectrum[0, 0] = 0.0
        ramp = np.sin(np.pi * (np.arange(side) + 0.5) / side).astype(np.float32)
        window = ramp[:, None] * ramp[None, :]
        variants = np.stack([v for p in raw for v in _dihedral(p * window)]).astype(np.float32)
        return cls(
            mean=float(pool.mean()),
            std=float(pool.std()),
            image_means=image_means,
            pool=np.concatenate([pool, pool]),
            quantiles=quantiles,
            patches=variants,
            spectrum=spectrum,
            patch=side,
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


# ----------------------------------------------------------------------------- objects


@dataclass
class PreparedObject:
    """A bank object ready for pasting: float crops at a few resolutions.

    ``levels[k]`` is ``(premultiplied image, mask)`` downsampled by ``2**k``; the
    image is pre-multiplied by the mask so bilinear resampling never mixes in the
    crop's own background.
    """

    levels: list[tuple[np.ndarray, np.ndarray]]
    mean: float
    area: int
    source: str = ""


class PreparedObjects:
    """All objects of a bank converted once for fast synthesis (see :func:`prepare_objects`)."""

    def __init__(self, objects: list[PreparedObject]):
        self.objects = objects
        groups: dict[str, list[int]] = {}
        for i, obj in enumerate(objects):
            groups.setdefault(obj.source, []).append(i)
        #: object indices per source image
        self.groups = {name: np.asarray(ids) for name, ids in groups.items()}

    def __len__(self) -> int:
        return len(self.objects)


def _prepare_one(image: np.ndarray, mask: np.ndarray, index: int) -> PreparedObject | None:
    image = np.asarray(image)
    mask = np.asarray(mask)
    gray = _unit_gray(image)
    if gray.ndim != 2 or mask.ndim != 2 or gray.shape != mask.shape:
        raise ValueError(
            f"bank object {index}: image {image.shape} and mask {mask.shape} must be 2D and of the same shape"
        )
    alpha = (mask > 0).astype(np.float32)
    area = int(alpha.sum())
    if area == 0:
        return None
    premult = gray * alpha
    mean = float(premult.sum() / area)
    # a zero border makes every resampler treat "outside the crop" the same way
    levels = [(np.pad(premult, 1), np.pad(alpha, 1))]
    while min(levels[-1][1].shape) >= 8:
        p, a = levels[-1]
        h, w = (p.shape[0] // 2) * 2, (p.shape[1] // 2) * 2
        levels.append(
            (
                p[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)),
                a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)),
            )
        )
    return PreparedObject(levels=levels, mean=mean, area=area)


def prepare_objects(bank) -> PreparedObjects:
    """Convert a bank's objects once for :func:`synthesize_scene` (cached per list).

    Parameters
    ----------
    bank
        An ObjectBank (its ``objects()`` are used), a :class:`PreparedObjects`, or a
        sequence of objects with ``.image`` and ``.mask``.

    Raises
    ------
    ValueError
        The bank is empty or no object has any mask pixel.
    """
    if isinstance(bank, PreparedObjects):
        prepared = bank
    else:
        objects = bank.objects() if callable(getattr(bank, "objects", None)) else bank
        if not isinstance(objects, (list, tuple)):
            objects = list(objects)
        # keyed by the identity of the first and last items: the cache holds the
        # list, so these ids cannot be reused while the entry lives
        key = (len(objects), id(objects[0]), id(objects[-1])) if len(objects) else None
        hit = _OBJECT_CACHE.get(key) if key is not None else None
        if hit is not None and hit[0][0] is objects[0] and hit[0][-1] is objects[-1]:
            _OBJECT_CACHE.move_to_end(key)
            prepared = hit[2]
        else:
            items = []
            for i, obj in enumerate(objects):
                try:
                    image, mask = obj.image, obj.mask
                except AttributeError:
                    raise TypeError(f"bank object {i} has no .image/.mask; pass an ObjectBank or BankObjects") from None
                one = _prepare_one(image, mask, i)
                if one is not None:
                    one.source = str((getattr(obj, "meta", None) or {}).get("source", ""))
                    items.append(one)
            prepared = PreparedObjects(items)
            if objects:
                _OBJECT_CACHE[key] = (objects, len(objects), prepared)  # type: ignore[index]
                while len(_OBJECT_CACHE) > 4:
                    _OBJECT_CACHE.popitem(last=False)
    if len(prepared) == 0:
        raise ValueError("the object bank is empty (or all its masks are empty); add objects to it first")
    return prepared


_OBJECT_CACHE: OrderedDict[tuple, tuple[Any, int, PreparedObjects]] = OrderedDict()


# ----------------------------------------------------------------------------- scenes


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

        identity = eff == 1.0 and angles[i] == 0.0 and not flips[i]
        if identity:
            # plain copy: the box is the crop itself plus a 1-pixel margin
            sy, sx = y0 - top - 1, x0 - left - 1
            out_p = _window(premult, sy, sx, y1 - y0, x1 - x0)
            out_a = _window(alpha, sy, sx, y1 - y0, x1 - x0)
        else:
            # output pixel -> source pixel: flip . scale^-1 . rotate^-1
            inv = _inverse(cos_a, sin_a, eff, bool(flips[i]))
            centre_out = np.array([(box_h - 1) / 2.0 - (y0 - top), (box_w - 1) / 2.0 - (x0 - left)])
            centre_src = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
            offset = centre_src - inv @ centre_out
            out_shape = (y1 - y0, x1 - x0)
            out_p = _resample(premult, inv, offset, out_shape)
            out_a = _resample(alpha, inv, offset, out_shape)
        if blurs[i]:
            out_p = ndimage.gaussian_filter(out_p, sigmas[i], mode="constant")
            out_a = ndimage.gaussian_filter(out_a, sigmas[i], mode="constant")
        visible = out_a > 0.5
        if not visible.any():
            continue
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
    dropped = (areas > 0) & ~keep
    dropped[0] = False
    if dropped.any():
        erase = dropped[labels]
        image[erase] = background[erase]
    labels = renumber_kept(labels, keep)

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


__all__ = [
    "BACKGROUND_KINDS",
    "TRAINING_SCENE_PARAMS",
    "BackgroundSource",
    "PreparedObject",
    "PreparedObjects",
    "estimate_background_mask",
    "prepare_objects",
    "synthesize_scene",
]
