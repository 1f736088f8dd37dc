"""Drawn objects left out of a label image: scale bars, boxes, lettering (``drawn``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk

from napari_synthseg.drawn import drop_drawn_overlays
from napari_synthseg.shapes import measure_shape
from test_lettering import _micrograph


def _drawn_and_real_objects():
    """A noisy image with drawn overlays (exact gray levels) and real objects (carrying noise)."""
    rng = np.random.default_rng(3)
    image = rng.normal(80.0, 6.0, (200, 300))
    labels = np.zeros(image.shape, dtype=np.int32)
    drawn = {
        1: (slice(180, 186), slice(20, 140)),   # scale bar: 6 x 120, one gray level
        2: (slice(20, 60), slice(230, 290)),    # info box
    }
    for i, sl in drawn.items():
        labels[sl] = i
        image[sl] = 255.0
    letter = np.zeros(image.shape, dtype=bool)  # an "L": a bent stroke, 3 px wide
    letter[20:60, 20:23] = True
    letter[57:60, 20:45] = True
    labels[letter], image[letter] = 3, 255.0
    rr, cc = disk((100, 100), 15)
    labels[rr, cc], image[rr, cc] = 4, rng.normal(200.0, 6.0, rr.size)  # a particle
    labels[120:124, 150:250] = 5  # a rod 25 times as long as wide, with the detector's noise
    image[120:124, 150:250] = rng.normal(200.0, 6.0, (4, 100))
    rr, cc = disk((60, 150), 12)
    labels[rr, cc], image[rr, cc] = 6, 255.0  # a saturated particle: flat, but round
    return labels, image


def test_drop_drawn_overlays_leaves_out_bars_boxes_and_letters_only():
    labels, image = _drawn_and_real_objects()
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 3
    # the particle, the rod and the saturated particle are kept, renumbered 1..3 in id order
    assert set(np.unique(kept)) == {0, 1, 2, 3}
    for old, new in ((4, 1), (5, 2), (6, 3)):
        assert np.array_equal(kept == new, labels == old)
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5, 6}  # the input is not changed
    gaps = np.where(labels > 0, labels * 10, 0)  # ids 10..60: the kept ones still come out 1..3
    assert set(np.unique(drop_drawn_overlays(gaps, image)[0])) == {0, 1, 2, 3}
    assert drop_drawn_overlays(np.zeros((5, 5), np.int32), np.zeros((5, 5)))[1] == 0
    # a binary image has no noise to be flat against: its boxes and bars are what it shows, all kept;
    # only lettering goes, the "L" alone in its top left corner (a panel's letter)
    binary = np.where(labels > 0, 255.0, 0.0)
    kept, n = drop_drawn_overlays(labels, binary)
    assert n == 1 and not kept[labels == 3].any() and np.array_equal(kept > 0, (labels > 0) & (labels != 3))
    with pytest.raises(ValueError, match="same shape"):
        drop_drawn_overlays(labels, image[:100])
    with pytest.raises(ValueError, match="2D labels"):
        drop_drawn_overlays(labels[None], image[None])


def test_a_compressed_scale_bar_is_left_out_and_a_rod_of_the_same_shape_kept():
    """A figure's compression leaves a drawn bar one gray level of wobble (253-255, deviation 1): flat against
    its contrast, though not against a quiet background; a rod of the same shape carries the detector's noise."""
    rng = np.random.default_rng(5)
    image = rng.normal(111.0, 4.5, (120, 300)).round()  # background: median absolute deviation about 3
    labels = np.zeros(image.shape, np.int32)
    labels[100:114, 20:290] = 1  # the bar, 14 x 270
    image[100:114, 20:290] = rng.choice([253.0, 254.0, 255.0], size=(14, 270), p=[0.3, 0.3, 0.4])
    labels[40:54, 20:290] = 2  # a bright rod of the same shape, with noise
    image[40:54, 20:290] = rng.normal(200.0, 6.0, (14, 270)).round()
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 1 and np.array_equal(kept > 0, labels == 2)


def _stadium(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float], radius: float):
    """Pixels within ``radius`` of the segment from ``start`` to ``end`` ((row, col) points)."""
    rows, cols = np.mgrid[:shape[0], :shape[1]].astype(float)
    (r0, c0), (r1, c1) = start, end
    t = np.clip(((rows - r0) * (r1 - r0) + (cols - c0) * (c1 - c0)) / ((r1 - r0) ** 2 + (c1 - c0) ** 2), 0, 1)
    return np.hypot(rows - r0 - t * (r1 - r0), cols - c0 - t * (c1 - c0)) <= radius


def test_a_blurred_level_scale_bar_is_left_out_and_tilted_cut_or_noisy_bars_kept():
    """A resampled figure blurs a drawn bar's edge, and a model outlines it a pixel or two wide with round
    ends: under 10 times as long as wide, and not flat once its blurred edge is in, it is still a flat bar along
    the image's rows. The same flat bar tilted (a saturated rod), cut by the image's edge or carrying noise is kept."""
    rng = np.random.default_rng(8)
    shape = (260, 300)
    image = rng.normal(111.0, 4.5, shape).round()
    labels = np.zeros(shape, np.int32)
    bars = {1: ((30, 80), (30, 144)), 2: ((80, 80), (80, 144)), 3: ((150, 90), (128, 150)),
            4: ((230, -6), (230, 64))}  # level, level with noise, tilted 20 degrees, cut by the left edge
    for i, (start, end) in bars.items():
        drawn = _stadium(shape, start, end, 5)
        core = rng.normal(200.0, 6.0, shape).round() if i == 2 else rng.choice([253.0, 254.0, 255.0], shape)
        weight = ndimage.gaussian_filter(drawn.astype(float), 0.8)  # the resampled figure's blur
        image = image * (1 - weight) + core * weight
        labels[_stadium(shape, start, end, 6.5)] = i  # the model's outline, a pixel or two out
    image = image.round()
    assert measure_shape(labels == 1).aspect < 10  # not a straight bar by its length alone
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 1
    assert np.array_equal(kept > 0, np.isin(labels, [2, 3, 4]))


def test_a_scale_bar_outlined_in_part_is_left_out_by_its_level_side():
    """A model may outline a bar's full width along part of its length and only a strip along its bottom
    elsewhere: the mask's long axis then tilts by more than a degree, but its bottom side is still the
    bar's, straight and level. The same shape sheared by 3 degrees (a saturated wedge) is kept."""
    rng = np.random.default_rng(9)
    shape = (240, 300)
    image = rng.normal(111.0, 4.5, shape).round()
    labels = np.zeros(shape, np.int32)
    cols = np.arange(shape[1])
    for i, (top, tilt) in {1: (60, 0.0), 2: (160, 3.0)}.items():
        shift = np.round((cols - 40) * np.tan(np.radians(tilt))).astype(int)  # rows moved per column
        bar = np.zeros(shape, bool)
        outline = np.zeros(shape, bool)
        for c in range(40, 260):
            bar[top + shift[c]:top + 12 + shift[c], c] = True
            # full width over the right part, the bottom three rows over the left part
            first = top - 1 if c >= 140 else top + 10
            outline[first + shift[c]:top + 13 + shift[c], c] = True
        core = rng.choice([253.0, 254.0, 255.0], shape)
        weight = ndimage.gaussian_filter(bar.astype(float), 0.8)
        image = image * (1 - weight) + core * weight
        labels[outline] = i
    image = image.round()
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 1
    assert np.array_equal(kept > 0, labels == 2)


def _noisy_micrograph(seed):
    return _micrograph(seed, gray=111.0, noise=4.5)


def test_a_scale_bar_the_model_outlined_is_left_out_however_noisy():
    """A model may outline a drawn bar a few pixels wide, so that the object holds the image's noise around
    it (not flat); drawn in the image's extreme gray, level and long, the bar is still found in the image, and
    an object outlining it, alone or with its label outlined together, is left out."""
    image, labels, rng = _noisy_micrograph(21)
    image[150:156, 150:270] = 255.0 - np.abs(rng.normal(0.0, 3.0, (6, 120)))  # the bar, 120 x 6
    labels[147:159, 147:273] = 1  # outlined three pixels wide
    rr, cc = disk((60, 80), 14)
    labels[rr, cc], image[rr, cc] = 2, rng.normal(190.0, 6.0, rr.size)  # a particle
    assert drop_drawn_overlays(labels, image)[1] == 1
    labels[130:149, 195:225] = 1  # the bar and the label above it, outlined as one object
    image[132:146, 200:220] = 255.0
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 1 and np.array_equal(kept > 0, labels == 2)
    # in a binary image a level bar of the extreme gray may as well be imaged: kept
    assert drop_drawn_overlays(labels, np.where(labels > 0, 255.0, 0.0))[1] == 0


def test_a_particle_holding_a_level_saturated_band_is_kept():
    """A bright particle whose saturated top reads as a long level run: the particle is taller than half that run
    is long, as no bar with its label is."""
    image, labels, rng = _noisy_micrograph(22)
    rr, cc = disk((100, 160), 60)
    labels[rr, cc], image[rr, cc] = 1, rng.normal(190.0, 6.0, rr.size)
    image[97:103, 103:217] = 255.0  # 114 x 6: a level run of the image's white across it
    assert drop_drawn_overlays(labels, image)[1] == 0
