"""A paste is resampled only where it can be non-zero, and that changes none of its pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from napari_synthseg.scene_objects import _outline
from napari_synthseg.scene_pasting import (
    _blur,
    _gaussian_kernel,
    _inverse,
    _resample,
    _resample_strips,
    _support_strips,
)


def _blob(rng: np.random.Generator, shape=(40, 56)) -> np.ndarray:
    """A padded crop's mask: a few random discs and a bar (non-convex), as float32 with a zero border."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for _ in range(3):
        cy, cx, r = rng.uniform(8, shape[0] - 8), rng.uniform(8, shape[1] - 8), rng.uniform(3, 8)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    mask[shape[0] // 2 - 1 : shape[0] // 2 + 1, 4:-4] = True
    return np.pad(mask[1:-1, 1:-1], 1).astype(np.float32)


def _box_warp(alpha: np.ndarray, angle: float, eff: float, flip: bool, clip: tuple[int, int]):
    """A paste's box, its clipped part and the warp from that part to the crop, as synthesize_scene builds them."""
    h, w = alpha.shape
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    box_h = int(math.ceil(eff * (abs(cos_a) * h + abs(sin_a) * w))) + 2
    box_w = int(math.ceil(eff * (abs(sin_a) * h + abs(cos_a) * w))) + 2
    inv = _inverse(cos_a, sin_a, eff, flip)
    dy, dx = min(clip[0], box_h - 1), min(clip[1], box_w - 1)  # the box's top/left cut by the scene edge
    centre_out = np.array([(box_h - 1) / 2.0 - dy, (box_w - 1) / 2.0 - dx])
    offset = np.array([(h - 1) / 2.0, (w - 1) / 2.0]) - inv @ centre_out
    return (box_h - dy, box_w - dx), inv, offset


@pytest.mark.parametrize("seed", range(12))
def test_strips_hold_every_nonzero_pixel_of_the_paste(seed):
    rng = np.random.default_rng(seed)
    alpha = _blob(rng)
    premult = alpha * rng.uniform(0.2, 1.0, size=alpha.shape).astype(np.float32)
    shape, inv, offset = _box_warp(alpha, rng.uniform(0, 2 * np.pi), float(np.exp(rng.uniform(-1, 1))),
                                   bool(rng.random() < 0.5), (int(rng.integers(0, 12)), int(rng.integers(0, 12))))
    for bands in (1, 3, 6):
        strips = _support_strips(_outline(alpha), inv, offset, shape, bands)
        covered = np.zeros(shape, dtype=bool)
        for y0, y1, x0, x1 in strips:
            assert 0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]
            covered[y0:y1, x0:x1] = True
        for array in (alpha, premult):
            whole = _resample(array, inv, offset, shape)
            assert not (whole[~covered] != 0).any(), f"non-zero pixels outside the strips (bands={bands})"
            roi = (0, shape[0], 0, shape[1])
            # the strips' own resampling starts at their corners: the same pixels up to float rounding
            np.testing.assert_allclose(_resample_strips(array, inv, offset, strips, roi), whole, atol=2e-5)
        # strips are much smaller than the box when the object is turned (the point of them)
        if bands == 6 and shape[0] * shape[1] > 4000:
            assert covered.sum() < shape[0] * shape[1]


def test_strips_of_a_paste_outside_its_box_are_empty():
    alpha = _blob(np.random.default_rng(0))
    inv = _inverse(1.0, 0.0, 1.0, False)
    assert _support_strips(_outline(alpha), inv, np.array([500.0, 500.0]), (30, 30), 4) == []


def test_outline_is_the_edge_of_the_mask():
    alpha = np.zeros((9, 9), dtype=np.float32)
    alpha[2:7, 2:7] = 1.0
    edge = {tuple(p) for p in _outline(alpha).astype(int)}
    assert (2, 2) in edge and (4, 2) in edge and (6, 6) in edge
    assert (4, 4) not in edge and (3, 3) not in edge
    assert len(edge) == 16


@pytest.mark.parametrize("sigma", [0.5, 0.73, 1.0, 1.5])
def test_blur_is_gaussian_filter(sigma):
    array = np.random.default_rng(1).random((23, 31)).astype(np.float32)
    expected = ndimage.gaussian_filter(array, sigma, mode="constant")
    assert np.array_equal(_blur(array, _gaussian_kernel(sigma)), expected)
