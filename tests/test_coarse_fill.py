"""Objects wider than the network's view filled from a coarser view (``coarse_fill``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_synthseg.coarse_fill import fill_from_coarse_views


def _grain_seen_as_its_rim(radius=90, centre=(120, 120), shape=(240, 360)):
    """A mid-gray grain with a dark rim on a darker noisy ground; labels cover only an open band along its
    outline (what a full-size view gives inside a grain wider than it sees); the coarse view sees it whole."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    distance = np.hypot(yy - centre[0], xx - centre[1])
    image = rng.normal(50.0, 8.0, shape)
    grain = distance < radius
    image[grain] = rng.normal(120.0, 8.0, int(grain.sum()))
    image[grain & (distance >= radius - 5)] = 25.0  # the dark rim
    labels = np.zeros(shape, dtype=np.uint32)
    band = grain & (distance >= radius - 20)
    band &= ~((yy > centre[0] - 10) & (yy < centre[0] + 10) & (xx > centre[1]))  # open: no hole to fill
    labels[band] = 1
    coarse = distance < radius + 3  # the coarse view's outline lies a little outside, blurred
    return image, labels, coarse, grain


def test_a_wide_grain_seen_as_its_rim_is_filled_whole_from_the_coarse_view():
    image, labels, coarse, grain = _grain_seen_as_its_rim()
    filled, added = fill_from_coarse_views(labels, [coarse], image, reach=48)
    assert added > 0 and filled is not labels
    assert ((filled == 1) & grain).sum() >= 0.97 * grain.sum()
    assert ((filled > 0) & ~grain).sum() == 0  # the coarse outline's blur beyond the grain has the ground's gray
    np.testing.assert_array_equal(filled[labels > 0], labels[labels > 0])  # what was labelled stays as it was
    assert labels.max() == 1 and (labels > 0).sum() < 0.5 * grain.sum()  # the input is not changed


def test_objects_the_network_saw_across_are_left_as_they_are():
    image, labels, coarse, grain = _grain_seen_as_its_rim()
    # its hull holds no disc wider than the network's reach: it saw the outline from inside
    filled, added = fill_from_coarse_views(labels, [coarse], image, reach=100)
    assert added == 0 and filled is labels
    # a coarse view that does not see the object adds nothing
    filled, added = fill_from_coarse_views(labels, [np.zeros_like(coarse)], image, reach=48)
    assert added == 0 and filled is labels


def test_the_background_in_a_bay_and_other_objects_are_never_taken():
    image, labels, coarse, grain = _grain_seen_as_its_rim()
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    bay = grain & (xx > 150) & (np.abs(yy - 120) < 30)  # a bay of background reaching into the grain
    image[bay] = 50.0
    labels[bay] = 0
    labels[(np.abs(yy - 120) < 8) & (np.abs(xx - 120) < 8)] = 2  # another object inside the hull
    filled, _ = fill_from_coarse_views(labels, [coarse], image, reach=48)
    assert (filled[bay] == 0).mean() > 0.9  # its gray is the background's, not the grain's
    np.testing.assert_array_equal(filled == 2, labels == 2)
    assert ((filled == 1) & grain & ~bay).sum() >= 0.9 * (grain & ~bay).sum()


def test_fill_from_coarse_views_checks_its_planes():
    with pytest.raises(ValueError, match="one shape"):
        fill_from_coarse_views(np.zeros((10, 10), np.uint32), [np.zeros((10, 12), bool)], np.zeros((10, 10)), 4)
    with pytest.raises(ValueError, match="2D"):
        fill_from_coarse_views(np.zeros((2, 10, 10), np.uint32), [np.zeros((2, 10, 10), bool)],
                              np.zeros((2, 10, 10)), 4)
