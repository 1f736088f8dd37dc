"""Objects wider than the network's view filled from a coarser view (``coarse_fill``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_synthseg.coarse_fill import add_from_coarse_views, fill_from_coarse_views


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


def _two_grains_and_a_found_one(shape=(300, 700)):
    """Three mid-gray grains with dark rims on a darker noisy ground, of radius 70, 70 and 75: the finer view
    labelled the first in three pieces, the second not at all, the third whole; a coarse view sees all three
    whole."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = rng.normal(50.0, 8.0, shape)
    grains = [np.hypot(yy - 150, xx - cx) < radius for cx, radius in ((110, 70), (340, 70), (570, 75))]
    for grain in grains:
        image[grain] = rng.normal(110.0, 8.0, int(grain.sum()))
        image[grain & ~ndi.binary_erosion(grain, iterations=5)] = 25.0
    labels = np.zeros(shape, dtype=np.uint32)
    labels[grains[0] & (yy < 110) & (xx < 90)] = 1  # three pieces of the first grain
    labels[grains[0] & (yy > 175) & (xx < 90)] = 2
    labels[grains[0] & (yy > 150) & (xx > 140)] = 3
    labels[grains[2]] = 4  # the third, seen whole
    coarse = np.zeros(shape, dtype=bool)
    for grain in grains:
        coarse |= ndi.binary_dilation(grain, iterations=3)  # blurred a little beyond the rims
    return image, labels, coarse, grains


def test_a_wide_grain_outlined_in_pieces_or_not_at_all_is_taken_whole_from_the_coarse_view():
    image, labels, coarse, grains = _two_grains_and_a_found_one()
    rims = image == 25.0
    found, added = add_from_coarse_views(labels, [coarse], image, reach=48)
    assert added == 2 and found is not labels
    for grain in grains[:2]:
        ids, counts = np.unique(found[grain], return_counts=True)
        # one new object, the pieces in it; the dark rim, of neither the inside's gray nor the ground's, only
        # where a piece held it
        assert ids[counts.argmax()] > 1 and counts.max() >= 0.9 * (grain & ~rims).sum()
        assert ((found == ids[counts.argmax()]) & ~grain).sum() == 0  # the blur beyond it has the ground's gray
    assert found.max() == 3 and len(np.unique(found)) == 4  # the one seen whole first, then the two taken
    np.testing.assert_array_equal(found == 1, labels == 4)
    assert labels.max() == 4 and not labels[grains[1]].any()  # the input is not changed
    # no smaller view, nothing to add; a reach as wide as the grains: the finer view saw across them
    assert add_from_coarse_views(labels, [], image, reach=48) == (labels, 0)
    assert add_from_coarse_views(labels, [coarse], image, reach=80)[1] == 0


def test_only_objects_like_the_finer_views_pieces_and_not_its_neighbours_are_added():
    image, labels, coarse, grains = _two_grains_and_a_found_one()
    # larger than any object the finer view found (its pieces): a support or a blur of many, not one of its objects
    small = labels.copy()
    small[grains[2]] = 0
    assert add_from_coarse_views(small, [coarse], image, reach=48)[1] == 0
    # a finer object reaching out of the coarse object is a neighbour the coarse view blurred in: left alone
    reaching = labels.copy()
    reaching[140:160, 170:260] = 2
    found, added = add_from_coarse_views(reaching, [coarse], image, reach=48)
    assert added == 1
    np.testing.assert_array_equal(found[grains[0]], reaching[grains[0]])
    # the finer view labelled half of it or more: it saw the object
    half = labels.copy()
    half[grains[0] & (np.mgrid[:300, :700][1] < 110)] = 1
    assert add_from_coarse_views(half, [coarse & ~grains[1]], image, reach=48)[1] == 0
    # what the finer view was sure of and the instance step left out (a support, a drawn bar) stays out
    seen = (labels > 0) | grains[1]
    found, added = add_from_coarse_views(labels, [coarse], image, reach=48, seen=seen)
    assert added == 1 and not found[grains[1]].any()
    with pytest.raises(ValueError, match="seen"):
        add_from_coarse_views(labels, [coarse], image, reach=48, seen=seen[:10])
    # a coarse blob of the ground's gray and noise is blur, not an object
    flat = image.copy()
    flat[grains[1]] = np.random.default_rng(4).normal(50.0, 8.0, int(grains[1].sum()))
    assert add_from_coarse_views(labels, [coarse & ~grains[0]], flat, reach=48)[1] == 0


def test_the_coarse_view_functions_check_their_planes():
    for function in (fill_from_coarse_views, add_from_coarse_views):
        with pytest.raises(ValueError, match="one shape"):
            function(np.zeros((10, 10), np.uint32), [np.zeros((10, 12), bool)], np.zeros((10, 10)), 4)
        with pytest.raises(ValueError, match="2D"):
            function(np.zeros((2, 10, 10), np.uint32), [np.zeros((2, 10, 10), bool)], np.zeros((2, 10, 10)), 4)
