"""Lettering drawn on a micrograph: lines of glyphs left out, rows of particles kept."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from napari_synthseg.drawn import drop_drawn_overlays
from napari_synthseg.lettering import lettering_ids

# Strokes of five glyphs, 24 px tall and 3 px wide: "1", "7", "L", "H", "T" (rows, cols relative to the glyph).
GLYPHS = (
    ((slice(0, 24), slice(6, 9)),),
    ((slice(0, 3), slice(0, 14)), (slice(0, 24), slice(11, 14))),
    ((slice(0, 24), slice(0, 3)), (slice(21, 24), slice(0, 14))),
    ((slice(0, 24), slice(0, 3)), (slice(0, 24), slice(11, 14)), (slice(10, 13), slice(0, 14))),
    ((slice(0, 3), slice(0, 14)), (slice(0, 24), slice(6, 9))),
)


def _draw_text(image, labels, top, left, glyphs, ink, first_id):
    """Glyphs side by side from (top, left), 6 px apart, each outlined 1 px wider than its ink
    (as a segmenter outlines a blurred glyph); the ink varies by a few gray levels toward the
    middle gray (JPEG's ringing: not flat); returns the ids given."""
    rng = np.random.default_rng(first_id)
    ids = []
    for k, strokes in enumerate(glyphs):
        ink_mask = np.zeros(image.shape, dtype=bool)
        x = left + k * 20
        for rows, cols in strokes:
            ink_mask[top + rows.start:top + rows.stop, x + cols.start:x + cols.stop] = True
        image[ink_mask] = ink - np.sign(ink - 128.0) * np.abs(rng.normal(0.0, 3.0, ink_mask.sum()))
        labels[ndi.binary_dilation(ink_mask)] = first_id + k
        ids.append(first_id + k)
    return ids


def _micrograph(seed=0, gray=120.0, noise=8.0):
    rng = np.random.default_rng(seed)
    return rng.normal(gray, noise, (200, 320)), np.zeros((200, 320), dtype=np.int32), rng


def _shaded_disc(image, labels, rng, centre, radius, core, edge, label):
    """A particle: its gray level runs from ``edge`` at the rim to ``core`` in the middle, with noise."""
    rr, cc = disk(centre, radius, shape=image.shape)
    depth = 1.0 - np.hypot(rr - centre[0], cc - centre[1]) / radius
    image[rr, cc] = edge + (core - edge) * depth + rng.normal(0.0, 6.0, rr.size)
    labels[rr, cc] = label


def test_white_and_black_text_lines_found_particles_kept():
    image, labels, rng = _micrograph()
    white = _draw_text(image, labels, 160, 200, GLYPHS, 255.0, 1)         # "200 nm" in a corner
    black = _draw_text(image, labels, 10, 10, GLYPHS[:3], 0.0, 10)         # a black caption
    for k, x in enumerate((60, 110, 160)):
        _shaded_disc(image, labels, rng, (90, x), 14, core=200.0, edge=150.0, label=20 + k)
    assert lettering_ids(labels, image).tolist() == white + black


def test_rows_of_particles_inked_as_deep_as_text_are_kept():
    """A superlattice row of dark-cored particles (their cores the image's darkest pixels) and a row of
    saturated white particles stand on one baseline like text, but their ink is a filled disc."""
    image, labels, rng = _micrograph(1)
    for k in range(6):
        _shaded_disc(image, labels, rng, (50, 30 + 26 * k), 12, core=0.0, edge=90.0, label=1 + k)
        rr, cc = disk((130, 30 + 26 * k), 12)
        image[rr, cc], labels[rr, cc] = 255.0, 10 + k
    assert lettering_ids(labels, image).size == 0
    kept, n = drop_drawn_overlays(labels, image)
    assert n == 0 and kept.max() == 12


def test_a_row_of_hollow_particles_is_kept():
    """Hollow particles' dark rims are strokes of the image's darkest gray, side by side on one baseline
    like text, but every one is a closed ring; the same row with one open rim (a "C") is text."""
    image, labels, rng = _micrograph(5)
    for k in range(5):
        rr, cc = disk((100, 30 + 30 * k), 12)
        rim = np.hypot(rr - 100, cc - 30 - 30 * k) >= 9
        image[rr[rim], cc[rim]] = np.abs(rng.normal(0.0, 3.0, rim.sum()))
        labels[rr, cc] = 1 + k
    assert lettering_ids(labels, image).size == 0
    opened = labels == 5
    image[opened & (np.arange(320) > 150) & (np.abs(np.arange(200) - 100) < 4)[:, None]] = 120.0
    assert lettering_ids(labels, image).tolist() == [1, 2, 3, 4, 5]


def test_two_glyphs_or_gray_strokes_are_not_a_line_of_text():
    image, labels, rng = _micrograph(2)
    _draw_text(image, labels, 60, 20, GLYPHS[:2], 255.0, 1)  # two white glyphs: any touching pair
    _draw_text(image, labels, 100, 20, GLYPHS, 170.0, 10)    # five gray strokes: not the extreme ink
    image[150:190, 260:300] = 255.0  # the image's brightest pixels are elsewhere (a saturated region)
    assert lettering_ids(labels, image).size == 0


def test_pieces_cut_by_the_image_edge_are_not_glyphs():
    """Pieces of one saturated grain cut by the bottom edge all end on it, as glyphs on a baseline would."""
    image, labels, rng = _micrograph(4)
    _draw_text(image, labels, 200 - 24, 100, GLYPHS, 255.0, 1)
    assert labels[-1].any()  # the outlines reach the edge
    assert lettering_ids(labels, image).size == 0


def test_drop_drawn_overlays_leaves_out_text_lines_and_counts_them():
    image, labels, rng = _micrograph(3)
    text = _draw_text(image, labels, 160, 200, GLYPHS, 255.0, 1)
    _shaded_disc(image, labels, rng, (80, 80), 15, core=200.0, edge=150.0, label=9)
    kept, n = drop_drawn_overlays(labels, image)
    assert n == len(text)
    assert np.array_equal(kept, (labels == 9).astype(kept.dtype))


def test_lettering_ids_errors_and_empty_input():
    image, labels, _ = _micrograph()
    assert lettering_ids(labels, image).size == 0
    with pytest.raises(ValueError, match="same shape"):
        lettering_ids(labels, image[:100])
    with pytest.raises(ValueError, match="2D labels"):
        lettering_ids(labels[None], image[None])


def test_autosegment_leaves_lines_of_text_out_unless_kept():
    """The auto-segmentation is what a run's model learns from: a line of text it labelled would be taught
    as particles. Left out by default, kept with ``drop_overlays=False`` (``--keep-overlays``)."""
    from napari_synthseg.autoseg import autosegment

    image, truth, rng = _micrograph(7)
    for k, x in enumerate((60, 110, 160)):
        _shaded_disc(image, truth, rng, (90, x), 14, core=200.0, edge=160.0, label=1 + k)
    text = np.zeros_like(truth)
    _draw_text(image, text, 160, 200, GLYPHS, 255.0, 1)
    kept = autosegment(image, method="otsu", polarity="bright", drop_overlays=False)
    dropped = autosegment(image, method="otsu", polarity="bright")
    on_text = np.unique(kept[text > 0])
    assert on_text[on_text > 0].size == len(GLYPHS)  # the glyphs were segmented, one object each
    assert dropped.max() == kept.max() - len(GLYPHS) == 3
    assert not dropped[text > 0].any()
    assert np.array_equal(dropped > 0, (kept > 0) & ~np.isin(kept, on_text))  # the particles untouched


def _stroke_glyph(image, labels, top, left, strokes, label):
    """One object outlining the given strokes ((row0, row1, col0, col1), relative to ``top, left``), inked
    white with a little noise, outlined 1 px wider than its ink."""
    ink = np.zeros(image.shape, dtype=bool)
    for r0, r1, c0, c1 in strokes:
        ink[top + r0:top + r1, left + c0:left + c1] = True
    image[ink] = 255.0 - np.abs(np.random.default_rng(label).normal(0.0, 3.0, ink.sum()))
    labels[ndi.binary_dilation(ink)] = label


def test_a_glyph_descending_below_the_baseline_is_in_the_line():
    """'m', 'µ', 'n': the 'µ' descends below the baseline the others stand on, but all three hang from one
    top line (the x-height): a line of text, though only two of its glyphs share a baseline and those two
    stand too far apart to be neighbours."""
    image, labels, rng = _micrograph(8)
    m = ((0, 16, 0, 3), (0, 3, 0, 14), (0, 16, 6, 8), (0, 16, 11, 14))
    mu = ((0, 22, 0, 3), (13, 16, 0, 14), (0, 16, 11, 14))  # its left stroke descends 6 px
    n = ((0, 16, 0, 3), (0, 3, 0, 14), (0, 16, 11, 14))
    for k, strokes in enumerate((m, mu, n)):
        _stroke_glyph(image, labels, 150, 200 + 20 * k, strokes, 1 + k)
    _shaded_disc(image, labels, rng, (60, 80), 15, core=200.0, edge=150.0, label=9)
    assert lettering_ids(labels, image).tolist() == [1, 2, 3]


def test_glyphs_outlined_together_count_one_by_one():
    """A segmenter outlines "50" and "nm" as two objects: each holds two glyphs of ink, so the two make a
    line of four glyphs. Two objects of one glyph each, one of them with a speck of ink beside it (a
    JPEG artefact, under three tenths of its height), are still any touching pair."""
    image, labels, rng = _micrograph(9)
    five_zero = ((0, 3, 0, 12), (0, 12, 0, 3), (10, 13, 0, 12), (10, 24, 9, 12), (21, 24, 0, 12),
                 (0, 24, 18, 21), (0, 24, 27, 30), (0, 3, 18, 30), (21, 24, 18, 30))
    n_m = ((6, 24, 0, 3), (6, 9, 0, 12), (6, 24, 9, 12), (6, 24, 18, 21), (6, 9, 18, 36), (6, 24, 27, 30),
           (6, 24, 33, 36))
    _stroke_glyph(image, labels, 150, 180, five_zero, 1)
    _stroke_glyph(image, labels, 150, 218, n_m, 2)
    assert lettering_ids(labels, image).tolist() == [1, 2]
    image, labels, rng = _micrograph(10)
    _stroke_glyph(image, labels, 150, 180, ((0, 24, 0, 3), (20, 24, 8, 11)), 1)  # "1" and a 4-px speck
    _stroke_glyph(image, labels, 150, 200, ((0, 3, 0, 14), (0, 24, 11, 14)), 2)  # "7"
    assert lettering_ids(labels, image).size == 0


def test_glyphs_counted_in_pairs_only_on_a_plain_ground():
    """The bright flecks of a mottled grain can be glyph-like one by one: two such objects holding four
    pieces of ink are a line only where the ground around them is plain; three objects on one baseline
    are text on any ground (a label on a noisy film)."""
    five_zero = ((0, 3, 0, 12), (0, 12, 0, 3), (10, 13, 0, 12), (10, 24, 9, 12), (21, 24, 0, 12),
                 (0, 24, 18, 21), (0, 24, 27, 30), (0, 3, 18, 30), (21, 24, 18, 30))
    n_m = ((6, 24, 0, 3), (6, 9, 0, 12), (6, 24, 9, 12), (6, 24, 18, 21), (6, 9, 18, 36), (6, 24, 27, 30),
           (6, 24, 33, 36))
    image, labels, rng = _micrograph(11)
    image[130:190, 160:270] += rng.normal(0.0, 30.0, (60, 110))  # a rough ground around the pair
    _stroke_glyph(image, labels, 150, 180, five_zero, 1)
    _stroke_glyph(image, labels, 150, 218, n_m, 2)
    assert lettering_ids(labels, image).size == 0
    image, labels, rng = _micrograph(12)
    image[140:200, 190:320] += rng.normal(0.0, 30.0, (60, 130))
    text = _draw_text(image, labels, 160, 200, GLYPHS, 255.0, 1)
    assert lettering_ids(labels, image).tolist() == text


B = ((0, 24, 0, 3), (10, 13, 0, 14), (21, 24, 0, 14), (10, 24, 11, 14))  # a "b": its bowl a closed ring
SEVEN = ((0, 3, 0, 14), (0, 24, 11, 14))
C = ((0, 3, 0, 14), (0, 24, 0, 3), (21, 24, 0, 14))


@pytest.mark.parametrize(("top", "left", "strokes", "rough", "dropped"), [
    (10, 10, B, False, True),       # a panel's "b" in the top left corner
    (12, 296, SEVEN, False, True),  # a "7" in the top right corner
    (30, 34, C, False, True),       # the "c" of "(c)": its capitals' margin, 1.3 of its own height
    (10, 50, C, False, False),      # two of its heights from the side edge: no panel's letter
    (90, 150, B, False, False),     # the same glyph in the middle: a particle as likely as a letter
    (166, 10, B, False, False),     # a bottom corner: beside a scale bar, where particles are cut
    (10, 10, B, True, False),       # on a rough ground: a bright fleck of a mottled grain
    (10, 10, ((0, 24, 0, 5),), False, False),  # one straight stroke: a rod as likely as an "l"
])
def test_a_panel_letter_alone_in_a_top_corner_is_lettering(top, left, strokes, rough, dropped):
    """One glyph is no line of text, but alone in a top corner of the figure, on a plain ground, it is a
    panel's letter ("b", "(a)")."""
    image, labels, rng = _micrograph(13)
    if rough:
        image[:60, :60] += rng.normal(0.0, 30.0, (60, 60))
    _stroke_glyph(image, labels, top, left, strokes, 1)
    _shaded_disc(image, labels, rng, (100, 250), 15, core=200.0, edge=150.0, label=2)
    assert lettering_ids(labels, image).tolist() == ([1] if dropped else [])


def test_a_stroke_as_tall_as_a_fifth_of_the_image_is_no_panel_letter():
    """A thin bright particle can lie in a top corner too; a panel's letter is small beside the figure."""
    image, labels, rng = _micrograph(14)
    _stroke_glyph(image, labels, 10, 10, ((0, 36, 0, 3), (33, 36, 0, 20)), 1)  # an "L" 36 px tall: kept
    assert lettering_ids(labels, image).tolist() == [1]
    image, labels, rng = _micrograph(14)
    _stroke_glyph(image, labels, 10, 10, ((0, 45, 0, 4), (41, 45, 0, 25)), 1)  # 45 px of 200: over a fifth
    assert lettering_ids(labels, image).size == 0


def _scale_bar(image, rows=slice(140, 145), cols=slice(200, 300), ink=255.0):
    image[rows, cols] = ink - np.abs(np.random.default_rng(0).normal(0.0, 2.0, image[rows, cols].shape))


@pytest.mark.parametrize(("top", "left", "bar_ink", "dropped"), [
    (112, 240, 255.0, True),   # a "7" centred just above a white bar: its label
    (147, 240, 255.0, True),   # ... or just below it
    (130, 170, 255.0, True),   # ... or beside its left end
    (50, 240, 255.0, False),   # the same glyph far above the bar: one glyph, no line
    (112, 240, 0.0, False),    # a black bar: a white glyph is not its label
])
def test_a_scale_bars_label_is_lettering_however_few_its_glyphs(top, left, bar_ink, dropped):
    """"5 nm" may be two objects or one: too few for a line, but a label stands by its bar."""
    image, labels, rng = _micrograph(15)
    _scale_bar(image, ink=bar_ink)
    _stroke_glyph(image, labels, top, left, SEVEN, 1)
    _shaded_disc(image, labels, rng, (60, 80), 15, core=200.0, edge=150.0, label=2)
    assert lettering_ids(labels, image).tolist() == ([1] if dropped else [])


def test_drawn_bars_are_long_level_strokes_of_the_extreme_gray():
    from napari_synthseg.lettering import drawn_bars

    image, labels, rng = _micrograph(16)
    _scale_bar(image)                                     # 100 x 5 px, white: a bar
    image[20:24, 20:45] = 255.0                           # 25 px: under a tenth of the width (a highlight)
    image[60:100, 180:300] = 0.0                          # a black info box ...
    image[70:72, 190:290] = image[86:88, 190:290] = 255.0  # ... with two thin white lines across it
    bars = drawn_bars(image, *np.percentile(image, [0.5, 99.5]))
    # the white bar and lines, not the strips of the box's black fill between them (each under half the fill)
    assert sorted(bars.tolist()) == [[70.0, 72.0, 190.0, 290.0, 1.0], [86.0, 88.0, 190.0, 290.0, 1.0],
                                     [140.0, 145.0, 200.0, 300.0, 1.0]]
    assert drawn_bars(np.full((50, 50), 7.0), 7.0, 7.0).shape == (0, 5)


def test_an_object_without_ink_of_its_own_in_a_corner_is_judged_quietly():
    """An object inside a region of its own extreme gray has no ink that stands out from its surroundings: it is
    no panel's letter, and judging it raises no warning (an empty hull)."""
    import warnings

    image, labels, rng = _micrograph(17)
    image[5:45, 5:70] = 255.0  # a saturated region in the top left corner ...
    labels[10:30, 10:30] = 1   # ... and an object inside it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lettering_ids(labels, image).size == 0


def test_the_auto_segmentation_keeps_panel_letters_that_predict_leaves_out():
    """A run learns from the auto-segmentation: lines of text leave it, a panel's letter and a scale bar's label
    stay (left out there too, three runs found fewer true objects); ``predict`` leaves them out."""
    from napari_synthseg.autoseg import autosegment

    image, truth, rng = _micrograph(18)
    for k, x in enumerate((100, 160, 220)):
        _shaded_disc(image, truth, rng, (110, x), 14, core=200.0, edge=160.0, label=1 + k)
    _stroke_glyph(image, truth, 10, 10, B, 4)
    auto = autosegment(image, method="otsu", polarity="bright")
    assert auto.max() == 4 and auto[20, 11] > 0  # the three particles and the "b"
    kept, n = drop_drawn_overlays(auto, image)
    assert n == 1 and kept[20, 11] == 0 and kept.max() == 3
