"""What backgrounds and scenes share: the [0, 1] gray scale, seeds, scene shapes and fixed noise fields.

Pure core (numpy). A crop or an image goes through :func:`_unit_gray` so that bank objects
and backgrounds sit on one intensity scale; the standard-normal fields are made once per
process and cropped, so noise costs no random draws per pixel.
"""

from __future__ import annotations

import math

import numpy as np

from .image_io import to_gray, to_unit_float

#: Smallest scene side accepted.
MIN_SCENE_SIDE = 8


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
