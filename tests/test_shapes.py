"""Tests of the shape judge: clumps split at necks, text / bars / boxes left out (hand-made masks)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk, polygon
from skimage.morphology import convex_hull_image
from skimage.transform import rotate

from napari_synthseg.shapes import (
    PIECES,
    SINGLE,
    SMALL,
    SPLIT,
    judge_shape,
    measure_shape,
    split_at_necks,
    split_clumps,
)


def discs(centres, radii, shape):
    """Union mask of disks and each disk's own mask."""
    union, each = np.zeros(shape, bool), []
    for centre, radius in zip(centres, radii):
        one = np.zeros(shape, bool)
        one[disk(centre, radius, shape=shape)] = True
        union |= one
        each.append(one)
    return union, each


def assert_split_into(mask, truth):
    """The verdict splits ``mask`` into one part per true disk, each close to it in area and place."""
    verdict = judge_shape(mask)
    assert verdict.shape == SPLIT and verdict.left_out == []
    assert len(verdict.parts) == len(truth)
    for part in verdict.parts:
        best = max(truth, key=lambda one: (part & one).sum())
        assert abs(int(part.sum()) - int(best.sum())) <= 0.08 * best.sum()
        assert (part & best).sum() >= 0.9 * part.sum()
    assert np.array_equal(np.logical_or.reduce(verdict.parts), mask)  # nothing lost, no overlap
    assert sum(int(p.sum()) for p in verdict.parts) == int(mask.sum())


def test_two_touching_discs_split_into_two():
    assert_split_into(*discs([(15, 15), (15, 34)], [10, 10], (30, 50)))


def test_two_small_touching_discs_split_into_two():
    assert_split_into(*discs([(7, 7), (7, 16)], [5, 5], (14, 24)))


def test_big_and_small_disc_split_by_the_smaller_ones_neck():
    # the small disk's neck is measured against its own radius, not the big one's
    assert_split_into(*discs([(15, 15), (15, 31)], [12, 5], (30, 45)))


def test_three_discs_split_into_three():
    assert_split_into(*discs([(15, 15), (15, 34), (31, 25)], [10, 10, 10], (45, 50)))


def test_chain_of_discs_split_into_each():
    assert_split_into(*discs([(12, 12 + 19 * i) for i in range(5)], [10] * 5, (25, 110)))
    # a long chain of small disks: straight and 11 times as long as wide, still a clump, not a bar
    assert_split_into(*discs([(8, 8 + 11 * i) for i in range(10)], [6] * 10, (17, 120)))


def test_agglomerate_of_seven_discs_split():
    angles = np.arange(6) * np.pi / 3
    centres = [(30, 30)] + [(30 + 19 * np.sin(a), 30 + 19 * np.cos(a)) for a in angles]
    assert_split_into(*discs(centres, [10] * 7, (60, 60)))


def single(mask):
    verdict = judge_shape(mask)
    assert verdict.shape == SINGLE and verdict.left_out == [] and len(verdict.parts) == 1
    assert np.array_equal(verdict.parts[0], mask)


def test_disc_ellipse_and_grains_stay_whole():
    yy, xx = np.mgrid[:60, :80]
    single(discs([(20, 20)], [12], (40, 40))[0])
    single(discs([(6, 6)], [3], (13, 13))[0])
    single(((yy - 30) / 10) ** 2 + ((xx - 40) / 20) ** 2 <= 1)  # 2:1 ellipse
    tilted = rotate((((yy - 30) / 6) ** 2 + ((xx - 40) / 24) ** 2 <= 1).astype(float), 30, order=0) > 0.5
    single(tilted)  # 4:1 ellipse at 30 degrees
    rng = np.random.default_rng(3)
    for _ in range(5):
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(10, 17, 9)
        grain = np.zeros((40, 40), bool)
        grain[polygon(20 + radii * np.sin(angles), 20 + radii * np.cos(angles), grain.shape)] = True
        single(convex_hull_image(grain))  # convex irregular grain


def test_overlapping_discs_without_a_waist_stay_whole():
    # centres 1.4 radii apart: the neck is 71 % of the radius, no waist a third deep
    mask, _ = discs([(15, 15), (15, 29)], [10, 10], (30, 45))
    single(mask)


# Letters drawn as strokes on a 4 x 6 grid (x, y; y down), as a figure's panel letters and labels.
GLYPHS = {
    "E": [[(4, 0), (0, 0), (0, 6), (4, 6)], [(0, 3), (3, 3)]],
    "F": [[(4, 0), (0, 0), (0, 6)], [(0, 3), (3, 3)]],
    "H": [[(0, 0), (0, 6)], [(4, 0), (4, 6)], [(0, 3), (4, 3)]],
    "K": [[(0, 0), (0, 6)], [(4, 0), (0, 3.5)], [(1.3, 2.6), (4, 6)]],
    "L": [[(0, 0), (0, 6), (4, 6)]],
    "M": [[(0, 6), (0, 0), (2, 3), (4, 0), (4, 6)]],
    "N": [[(0, 6), (0, 0), (4, 6), (4, 0)]],
    "T": [[(0, 0), (4, 0)], [(2, 0), (2, 6)]],
    "V": [[(0, 0), (2, 6), (4, 0)]],
    "W": [[(0, 0), (1, 6), (2, 2), (3, 6), (4, 0)]],
    "X": [[(0, 0), (4, 6)], [(4, 0), (0, 6)]],
    "Y": [[(0, 0), (2, 3), (4, 0)], [(2, 3), (2, 6)]],
    "Z": [[(0, 0), (4, 0), (0, 6), (4, 6)]],
    "C": [[(2 + 2 * np.cos(a), 3 + 3 * np.sin(a)) for a in np.linspace(0.8, 2 * np.pi - 0.8, 12)]],
    "S": [[(4, 0.5), (3, 0), (1, 0), (0, 1), (0, 2), (1, 3), (3, 3), (4, 4), (4, 5), (3, 6), (1, 6), (0, 5.5)]],
    "1": [[(1, 1), (2, 0), (2, 6)], [(1, 6), (3, 6)]],
    "2": [[(0, 1), (1, 0), (3, 0), (4, 1), (4, 2), (0, 6), (4, 6)]],
    "7": [[(0, 0), (4, 0), (1.5, 6)]],
}


def glyph(char, unit, pad=4):
    """A letter ``6 * unit`` pixels tall with strokes ``unit`` pixels wide (round pen)."""
    canvas = np.zeros((6 * unit + 2 * pad + 1, 4 * unit + 2 * pad + 1), bool)
    for stroke in GLYPHS[char]:
        for (x0, y0), (x1, y1) in zip(stroke[:-1], stroke[1:]):
            for t in np.linspace(0.0, 1.0, 8 * unit + 2):
                centre = (pad + unit * (y0 + t * (y1 - y0)), pad + unit * (x0 + t * (x1 - x0)))
                canvas[disk(centre, unit / 2 + 0.3, shape=canvas.shape)] = True
    return canvas


@pytest.mark.parametrize("unit", [2, 3, 5, 8])
def test_letters_are_left_out_as_thin_strokes(unit):
    strokes = 0
    for char in GLYPHS:
        mask = glyph(char, unit)
        assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1, char
        verdict = judge_shape(mask)
        # every letter is left out; a compact one (a small "W") may count as a clump without necks
        assert verdict.parts == [] and verdict.left_out in (["thin stroke"], ["clump not split cleanly"]), (
            char, unit, measure_shape(mask))
        strokes += verdict.left_out == ["thin stroke"]
    assert strokes >= len(GLYPHS) - 2


def test_antialiased_rendered_letter_is_left_out():
    # a letter drawn with smooth strokes, blurred and thresholded like a scanned figure label
    canvas = np.zeros((80, 70))
    for (r0, c0), (r1, c1) in [((10, 12), (70, 12)), ((40, 12), (10, 55)), ((40, 12), (70, 55))]:  # "K"
        for t in np.linspace(0, 1, 200):
            canvas[disk((r0 + t * (r1 - r0), c0 + t * (c1 - c0)), 3.2, shape=canvas.shape)] = 1.0
    mask = ndimage.gaussian_filter(canvas, 1.0) > 0.5
    assert judge_shape(mask, canvas).left_out == ["thin stroke"]


def test_scale_bar_and_flat_box_left_out_textured_rectangle_kept():
    rng = np.random.default_rng(0)
    bar = np.zeros((20, 130), bool)
    bar[8:13, 10:120] = True  # 110 x 5: a scale bar
    assert judge_shape(bar).left_out == ["straight bar"]
    tilted = rotate(np.pad(bar, 40).astype(float), 25, order=0) > 0.5
    assert judge_shape(tilted).left_out == ["straight bar"]

    box = np.zeros((40, 80), bool)
    box[10:30, 10:70] = True  # 60 x 20, 3:1: a label box
    background = 40.0 + rng.normal(0, 8, box.shape)
    drawn = np.where(box, 230.0, background)  # drawn in one gray level on a noisy micrograph
    assert judge_shape(box, drawn).left_out == ["flat box"]
    clean = np.where(box, 230.0, 40.0)  # on a noise-free figure
    assert judge_shape(box, clean).left_out == ["flat box"]
    particle = np.where(box, 190.0, 40.0) + rng.normal(0, 3, box.shape)  # a rectangular particle: noisy
    verdict = judge_shape(box, particle)
    assert verdict.shape == SINGLE and verdict.left_out == []
    assert judge_shape(box).shape == SINGLE  # no image: flatness unknown, kept


def test_small_and_several_piece_masks_kept_as_they_are():
    speck = np.zeros((6, 6), bool)
    speck[1:3, 1:4] = True
    assert judge_shape(speck).shape == SMALL
    pieces, _ = discs([(6, 6), (6, 20)], [4, 4], (12, 30))
    verdict = judge_shape(pieces)
    assert verdict.shape == PIECES and len(verdict.parts) == 1 and np.array_equal(verdict.parts[0], pieces)


def test_split_at_necks_labels_and_bad_input():
    mask, _ = discs([(15, 15), (15, 34)], [10, 10], (30, 50))
    parts, k = split_at_necks(mask)
    assert k == 2 and parts.dtype == np.int32 and set(np.unique(parts)) == {0, 1, 2}
    assert np.array_equal(parts > 0, mask)
    assert split_at_necks(mask, neck_ratio=0.05)[1] == 1  # only hairline necks count: nothing splits
    with pytest.raises(ValueError, match="2D"):
        judge_shape(np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match="empty"):
        judge_shape(np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="differs"):
        judge_shape(mask, np.zeros((3, 3)))


def test_split_clumps_relative_necks_split_a_small_disc_off_a_big_one():
    mask, _ = discs([(20, 20), (20, 38)], [14, 5], (40, 50))
    labels = mask.astype(np.int32)
    old, n_old = split_clumps(labels.copy(), 1, 10)
    new, n_new = split_clumps(labels.copy(), 1, 10, neck_ratio=0.7)
    assert n_old == 1 and n_new == 2  # half the *largest* radius misses the small disk's neck
    assert np.array_equal(new > 0, mask)


def test_clump_keeps_its_round_parts_only_when_they_are_most_of_it():
    mask, truth = discs([(20, 20), (20, 39)], [10, 10], (50, 60))
    mask[32:36, 8:40] = True  # a thin bar hanging under the clump by a 2-pixel neck
    mask[30:32, 19:21] = True
    verdict = judge_shape(mask)
    assert verdict.shape == SPLIT and len(verdict.parts) == 2
    assert verdict.left_out == ["clump not split cleanly"]  # the bar
    for part, disc in zip(sorted(verdict.parts, key=lambda p: np.argwhere(p)[:, 1].mean()), truth):
        assert (part & disc).sum() >= 0.9 * disc.sum()

    # two rods side by side (neither round) with a small disk: the rods are no particles to
    # keep, and a disk that is a small share of the clump is not kept on its own
    rods = np.zeros((40, 85), bool)
    rods[5:17, 5:65] = True
    rods[20:32, 5:65] = True
    rods[17:20, 33:36] = True  # the neck between them
    rods |= discs([(18, 72)], [6], rods.shape)[0]  # the disk at their end
    rods[17:20, 64:67] = True
    verdict = judge_shape(rods)
    assert verdict.parts == [] and verdict.left_out == ["clump not split cleanly"]


def test_irregular_grain_with_bumps_stays_whole():
    # a bean-shaped grain (solidity 0.76, so not a "round" part) with three knobs behind necks
    grain = discs([(30, 30)], [20], (60, 70))[0] & ~discs([(30, 46)], [14], (60, 70))[0]
    for angle in (np.pi / 2, np.pi, 3 * np.pi / 2):
        dy, dx = np.sin(angle), np.cos(angle)
        grain |= discs([(30 + 25 * dy, 30 + 25 * dx)], [4], grain.shape)[0]
        for t in np.linspace(18, 22, 9):  # a neck 2 pixels wide
            y, x = int(round(30 + t * dy)), int(round(30 + t * dx))
            grain[y : y + 2, x : x + 2] = True
    assert split_at_necks(grain)[1] == 4  # the knobs split off as parts ...
    single(grain)  # ... but they are bumps on one grain, not particles of a clump


def test_clump_interiors_marks_the_inside_of_clumps_only():
    from napari_synthseg.shapes import clump_interiors

    shape = (120, 160)
    pair, _ = discs([(30, 30), (30, 52)], [12, 12], shape)          # two touching discs: one label
    chain, _ = discs([(90, 20), (90, 38), (90, 56)], [10, 10, 10], shape)
    single, _ = discs([(40, 120)], [15], shape)                     # one round particle
    labels = np.zeros(shape, np.int32)
    labels[pair], labels[chain], labels[single] = 1, 2, 3
    inside = clump_interiors(labels)
    for clump in (pair, chain):
        # the inside of a clump is unknown, its outline is not
        assert inside[clump].mean() > 0.8
        outline = clump & ~ndimage.binary_erosion(clump)
        assert not inside[outline].any()
    assert not inside[single].any() and not inside[labels == 0].any()
    assert not clump_interiors(np.zeros(shape, np.int32)).any()
    # objects under min_area are not judged
    assert not clump_interiors(labels, min_area=10_000).any()
    with pytest.raises(ValueError, match="2D"):
        clump_interiors(labels[None])


def test_clump_interiors_marks_merged_particles_without_necks():
    """Touching particles whose crevices a blurred threshold filled have no neck left, but they
    hold two disks' worth of area with a concave outline: their inside is not taught."""
    from napari_synthseg.shapes import clump_interiors

    shape = (90, 180)
    corner, _ = discs([(30, 30), (30, 47), (47, 47)], [9, 9, 9], shape)        # an L of three particles
    beside, _ = discs([(40, 120), (40, 140), (24, 132)], [12, 8, 8], shape)    # a large one, two small
    merged = [ndimage.gaussian_filter(m.astype(float), 3) > 0.5 for m in (corner, beside)]
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    ellipse = ((rows - 75) / 8.0) ** 2 + ((cols - 90) / 20.0) ** 2 <= 1    # one particle, 2.5 disks, convex
    labels = np.zeros(shape, np.int32)
    for i, m in enumerate([*merged, ellipse], start=1):
        labels[m] = i
    for m in merged:
        assert judge_shape(m).shape == SINGLE  # the bank's judge sees one particle ...
    inside = clump_interiors(labels)
    for m in merged:  # ... the training does not teach where its particles meet
        assert inside[m].mean() > 0.7
    assert not inside[ellipse].any()
    # the same shape filling four tenths of its image is a support (a film, a matrix), not a clump
    support = merged[0][18:60, 18:60]
    assert support.mean() > 0.3
    assert not clump_interiors(support.astype(np.int32)).any()
