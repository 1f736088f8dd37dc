"""Finding the scale-bar / info box and the SEM data bar, and leaving it out."""

from pathlib import Path

import numpy as np
import pytest

from napari_synthseg.autoseg import autosegment
from napari_synthseg.scalebar import find_data_bar, find_scale_bar

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_find_scale_bar_synthetic():
    rng = np.random.default_rng(0)
    image = rng.normal(50, 5, (400, 600))
    image[100:140, 100:160] = rng.normal(230, 5, (40, 60))  # a bright grain, away from corners (noisy: imaged)
    image[362:392, 420:590] = 180  # the info box in the lower right corner
    image[370:385, 450:520] = 5    # its text
    box = find_scale_bar(image)
    assert box is not None
    y0, y1, x0, x1 = box
    assert y0 <= 362 and y1 >= 392 and x0 <= 420 and x1 >= 590
    assert y0 > 340 and x0 > 400
    labels = autosegment(image)
    assert labels[362:392, 420:590].max() == 0 and labels[120, 130] > 0
    assert find_scale_bar(rng.normal(50, 5, (400, 600))) is None


def _with_data_bar(rng, fill, text, top=False, rows=40):
    """A 400x600 textured field with two grains and a full-width SEM data bar of ``rows`` rows."""
    image = _textured_background(rng, (400, 600))
    image[100:140, 100:160] = rng.normal(230, 5, (40, 60))  # grains carry the detector's noise, not drawn boxes
    image[200:260, 300:340] = rng.normal(230, 5, (60, 40))
    bar = slice(0, rows) if top else slice(400 - rows, 400)
    image[bar] = fill
    strip = image[bar]
    for x0 in range(20, 560, 70):  # words of text in the bar
        strip[rows // 3: rows // 3 + 10, x0:x0 + 40:3] = text
    return np.clip(image, 0, 255).astype(np.uint8)


def test_find_data_bar_bottom_and_top():
    rng = np.random.default_rng(5)
    white = _with_data_bar(rng, 255, 0)
    assert find_data_bar(white) == (360, 400, 0, 600)
    # find_scale_bar returns the bar (padded), and the auto-segmentation leaves it out
    y0, y1, x0, x1 = find_scale_bar(white)
    assert 350 <= y0 <= 360 and y1 == 400 and (x0, x1) == (0, 600)
    labels = autosegment(white)
    assert labels[y0:].max() == 0 and labels[120, 130] > 0 and labels[230, 320] > 0
    black_top = _with_data_bar(rng, 0, 255, top=True, rows=30)
    assert find_data_bar(black_top) == (0, 30, 0, 600)


def test_find_data_bar_none_on_flat_backgrounds():
    rng = np.random.default_rng(6)
    assert find_data_bar(np.clip(_textured_background(rng, (300, 400)), 0, 255).astype(np.uint8)) is None
    # Dark field: saturated black background with grains down to the bottom edge.
    image = np.zeros((300, 400), dtype=np.uint8)
    for y, x in [(40, 50), (120, 300), (200, 100), (280, 250), (290, 370)]:
        image[max(0, y - 12):y + 12, max(0, x - 12):x + 12] = 200
    assert find_data_bar(image) is None
    # A flat band at the bottom that is the image's own background, not a bar.
    image = np.zeros((300, 400), dtype=np.uint8)
    image[:200] = np.clip(_textured_background(rng, (200, 400)), 0, 255)
    image[60:100, 100:160] = 255
    assert find_data_bar(image) is None
    # Too thin to be a bar (under 2 % of the height), and the wrong dimensionality.
    assert find_data_bar(_with_data_bar(rng, 255, 0, rows=5)) is None
    with pytest.raises(ValueError, match="2D image"):
        find_data_bar(np.zeros((3, 40, 40)))


def _box_iou(a, b):
    ih = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    iw = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = ih * iw
    return inter / ((a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter)


@pytest.mark.parametrize("seed", [0, 5, 13, 16])
def test_find_scale_bar_on_sample_scenes(seed, monkeypatch):
    from napari_synthseg import sample_data

    drawn = []
    draw = sample_data._draw_scale_bar

    def recording_draw(rng, image):
        rows, cols = draw(rng, image)
        drawn.append((rows.start, rows.stop, cols.start, cols.stop))
        return rows, cols

    # The generator knows where it painted the box (dark or light; grains touch it in 13, 16).
    monkeypatch.setattr(sample_data, "_draw_scale_bar", recording_draw)
    image, _ = sample_data.make_sample_scene(seed)
    truth = drawn[0]
    box = find_scale_bar(image)
    assert box is not None
    assert box[0] <= truth[0] and box[1] >= truth[1] and box[2] <= truth[2] and box[3] >= truth[3]
    assert _box_iou(box, truth) > 0.8


def _textured_background(rng, shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 50 + 0.02 * yy + 0.01 * xx + rng.normal(0, 4, shape)


def test_find_scale_bar_box_touched_by_bright_grain():
    rng = np.random.default_rng(1)
    image = _textured_background(rng, (300, 400))
    y0, y1, x0, x1 = 262, 292, 270, 394
    image[y0:y1, x0:x1] = 165                      # box fill
    image[y0 + 4:y1 - 4, x0 + 40:x1 - 30] = 220    # text panel
    image[y0 + 8:y1 - 8, x0 + 50:x1 - 40:6] = 10   # glyph strokes
    image[y0 + 14:y0 + 16, x0 + 3:x0 + 38] = 250   # the bar
    yy, xx = np.mgrid[:300, :400]
    # A bright, textured grain as bright as the panel overlaps the box's top-left part;
    # the box is painted over it, as on a micrograph.
    grain = (yy - 250) ** 2 + ((xx - 265) / 1.4) ** 2 < 32**2
    box_mask = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    image[grain & ~box_mask] = 235 + rng.normal(0, 8, int((grain & ~box_mask).sum()))
    box = find_scale_bar(np.clip(image, 0, 255).astype(np.uint8))
    assert box is not None
    assert box[0] <= y0 and box[1] >= y1 and box[2] <= x0 and box[3] >= x1
    assert _box_iou(box, (y0, y1, x0, x1)) > 0.75


def test_find_scale_bar_none_without_a_box():
    rng = np.random.default_rng(2)
    plain = np.clip(_textured_background(rng, (300, 400)), 0, 255).astype(np.uint8)
    assert find_scale_bar(plain) is None
    # A big, bright, nearly rectangular grain with straight sides, away from corners,
    # and round grains cut by the image corner.
    image = _textured_background(rng, (300, 400))
    image[110:180, 140:300] = 210 + rng.normal(0, 6, (70, 160))
    yy, xx = np.mgrid[:300, :400]
    image[(yy - 299) ** 2 + (xx - 399) ** 2 < 40**2] = 200
    image[(yy - 0) ** 2 + (xx - 0) ** 2 < 30**2] = 20
    assert find_scale_bar(np.clip(image, 0, 255).astype(np.uint8)) is None


def test_find_scale_bar_on_seed_em():
    from napari_synthseg.image_io import read_image, to_gray

    files = sorted((SHARED / "seed_em").glob("*/*.jpg"))
    if not files:
        pytest.skip(f"shared seed_em images not found under {SHARED / 'seed_em'}")
    missed = []
    for path in files:
        gray = to_gray(read_image(path))
        h, w = gray.shape
        box = find_scale_bar(gray)
        # Each has a light info box with a bar and "100 мкм" flush in the lower right.
        if (box is None or box[1] < 0.97 * h or box[3] < 0.97 * w
                or not 20 <= box[1] - box[0] <= 0.06 * h
                or not 2.5 * (box[1] - box[0]) <= box[3] - box[2] <= 0.12 * w):
            missed.append((path.name, box))
    assert not missed


# --------------------------------------------------------------------------- the box left out
def test_ignore_box_is_checked_resolved_and_cut_in_tile_coordinates():
    from napari_synthseg.scalebar import check_ignore_box, cut_box, resolve_ignore_box

    assert check_ignore_box("auto") == "auto" and check_ignore_box(None) is None
    assert check_ignore_box([1.0, 2, 3, 4]) == (1, 2, 3, 4)
    for bad in ("corner", (1, 2, 3), ("a", 2, 3, 4)):
        with pytest.raises(ValueError, match=r"ignore_box must be 'auto', None or \(y0, y1, x0, x1\)"):
            check_ignore_box(bad)
    image = np.full((64, 64), 50, np.uint8)
    assert resolve_ignore_box(image, "auto") is None and resolve_ignore_box(image, (0, 5, 0, 5)) == (0, 5, 0, 5)
    # a tile starting at row 10, column 20 of the image: only the box's part inside it is cut
    tile = np.ones((10, 10), np.float32)
    cut_box(tile, (15, 40, 0, 25), offset=(10, 20))
    assert tile[5:, :5].sum() == 0 and tile[:5].all() and tile[:, 5:].all()
    assert cut_box(np.ones((4, 4)), None).all()
