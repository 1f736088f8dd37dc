import numpy as np
import pytest

from napari_synthseg.normalize import (
    ANCHORS,
    anchored_range,
    normalization_range,
    normalize_image,
    percentile_normalize,
)


def grains(bright: bool, seed: int = 0, shape=(200, 240)):
    """Round grains on a flat noisy background; dark grains on a bright one when not ``bright``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(12):
        cy, cx, r = rng.integers(20, shape[0] - 20), rng.integers(20, shape[1] - 20), rng.integers(6, 14)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    background, objects = (60.0, 180.0) if bright else (200.0, 90.0)
    image = np.where(mask, objects, background) + rng.normal(0, 4, shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


@pytest.mark.parametrize("bright", [True, False])
def test_anchored_range_puts_background_and_objects_at_the_anchors(bright):
    image, mask = grains(bright)
    lo, hi = anchored_range(image)
    assert (lo < hi) == bright  # dark objects: a reversed range, which inverts
    x = percentile_normalize(image, value_range=(lo, hi))
    assert abs(np.median(x[~mask]) - ANCHORS[0]) < 0.03
    assert abs(np.median(x[mask]) - ANCHORS[1]) < 0.03


def test_anchored_range_is_the_same_for_uint16_float_and_a_strided_decision():
    image, mask = grains(True, seed=1)
    x8 = percentile_normalize(image, value_range=anchored_range(image))
    wide = image.astype(np.uint16) * 257
    x16 = percentile_normalize(wide, value_range=anchored_range(wide))
    strided = percentile_normalize(image, value_range=anchored_range(image, max_pixels=5000))
    assert np.allclose(x8, x16, atol=1e-3)
    assert abs(np.median(strided[mask]) - ANCHORS[1]) < 0.05


def test_anchored_range_of_a_flat_image_and_bad_shapes():
    lo, hi = anchored_range(np.full((30, 30), 7, np.uint8))
    assert hi > lo and np.isfinite(percentile_normalize(np.full((30, 30), 7), value_range=(lo, hi))).all()
    with pytest.raises(ValueError, match="2D"):
        anchored_range(np.zeros((2, 30, 30)))


def test_reversed_value_range_inverts():
    image = np.array([[0.0, 5.0, 10.0]])
    assert np.allclose(percentile_normalize(image, value_range=(10.0, 0.0)), [[1.0, 0.5, 0.0]])


def test_normalize_image_dispatches_on_the_mode():
    image, mask = grains(False, seed=2)
    assert np.allclose(normalize_image(image), percentile_normalize(image))
    anchored = normalize_image(image, "anchored")
    assert np.median(anchored[mask]) > np.median(anchored[~mask])  # dark grains come out bright
    with pytest.raises(ValueError, match="normalization must be one of"):
        normalization_range(image, "zscore")
