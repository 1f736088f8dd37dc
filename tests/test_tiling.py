import numpy as np
import pytest

from napari_synthseg.tiling import (
    TiledAccumulator,
    blend_window,
    count_tiles,
    fit_tile,
    iter_tile_batches,
    iter_tiles,
    tile_starts,
)


@pytest.mark.parametrize("length,tile,overlap", [(1, 8, 2), (8, 8, 2), (9, 8, 2), (100, 32, 8), (97, 16, 0),
                                                 (1000, 256, 64), (257, 256, 64)])
def test_tile_starts_cover_the_length(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] + tile == length  # last tile flush with the end
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + tile] = True
    assert covered.all()
    # neighbours overlap by at least `overlap`
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_tile_starts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)
    with pytest.raises(ValueError, match="tile"):
        tile_starts(100, 0, 0)
    with pytest.raises(ValueError, match="length"):
        tile_starts(0, 16, 4)


def test_blend_window_is_smooth_positive_and_sums_to_one_across_overlap():
    window = blend_window((32, 48), 8)
    assert window.dtype == np.float32 and window.shape == (32, 48)
    assert window.min() > 0
    assert window[8:-8, 8:-8].min() == pytest.approx(1.0)
    row = window[16]
    assert np.all(np.diff(row[:9]) >= 0)  # rises monotonically over the ramp
    assert row[0] < 1e-3 and row[-1] < 1e-3  # tile edges (padding in view) barely count
    # two tiles overlapping by exactly the ramp width: their weights add up to 1
    tile, overlap = 48, 8
    total = np.zeros(tile * 2 - overlap)
    total[:tile] += row
    total[tile - overlap:] += row
    np.testing.assert_allclose(total[8:-8], 1.0, atol=2e-4)


def test_blend_window_on_tiles_smaller_than_two_ramps():
    window = blend_window((5, 3), 64)
    assert window.shape == (5, 3) and window.min() > 0


@pytest.mark.parametrize("shape,tile,overlap", [((97, 131), 32, 8), ((20, 300), 64, 16), ((10, 10), 64, 16)])
def test_iter_tiles_cover_every_pixel_with_one_tile_shape(shape, tile, overlap):
    tiles = list(iter_tiles(shape, tile, overlap))
    assert len(tiles) == count_tiles(shape, tile, overlap)
    hits = np.zeros(shape, int)
    tile_shapes = set()
    for rows, cols in tiles:
        hits[rows, cols] += 1
        tile_shapes.add(hits[rows, cols].shape)
    assert hits.min() >= 1
    assert len(tile_shapes) == 1
    batches = list(iter_tile_batches(shape, tile, overlap, 3))
    assert sum(batches, []) == tiles
    assert all(1 <= len(b) <= 3 for b in batches)


def test_accumulator_reconstructs_a_smooth_field_exactly():
    rng = np.random.default_rng(0)
    shape = (70, 90)
    truth = rng.random(shape + (3,)).astype(np.float32)
    tile, overlap = 32, 8
    acc = TiledAccumulator(shape, 3, blend_window((tile, tile), overlap))
    for batch in iter_tile_batches(shape, tile, overlap, 4):
        acc.add_batch(batch, np.stack([truth[s] for s in batch]))
    # every tile predicts the truth, so the weighted mean is the truth
    np.testing.assert_allclose(acc.result(), truth, rtol=1e-5, atol=1e-6)
    assert acc.result() is acc.result()
    with pytest.raises(RuntimeError):
        acc.add((slice(0, 32), slice(0, 32)), truth[:32, :32])


def test_accumulator_blends_disagreeing_tiles_without_a_step():
    shape, tile, overlap = (16, 48), 32, 16
    acc = TiledAccumulator(shape, 1, blend_window((16, tile), overlap))
    tiles = list(iter_tiles(shape, tile, overlap))
    assert len(tiles) == 2
    acc.add(tiles[0], np.zeros((16, tile, 1)))
    acc.add(tiles[1], np.ones((16, tile, 1)))
    row = acc.result()[8, :, 0]
    assert row[0] == 0 and row[-1] == 1
    steps = np.diff(row)
    assert steps.min() >= 0 and steps.max() < 0.25  # a ramp, not a seam


def test_accumulator_refuses_uncovered_pixels_and_wrong_shapes():
    acc = TiledAccumulator((40, 40), 2, blend_window((16, 16), 4))
    with pytest.raises(ValueError, match="shape"):
        acc.add((slice(0, 16), slice(0, 16)), np.zeros((16, 16, 3)))
    acc.add((slice(0, 16), slice(0, 16)), np.zeros((16, 16, 2)))
    with pytest.raises(ValueError, match="not covered"):
        acc.result()


@pytest.mark.parametrize("length,tile,overlap,multiple", [(2112, 1024, 64, 8), (2656, 512, 64, 8), (2112, 256, 64, 8),
                                                           (100, 256, 64, 8), (1000, 300, 10, 1)])
def test_fit_tile_keeps_the_tile_count_and_wastes_less(length, tile, overlap, multiple):
    fitted = fit_tile(length, tile, overlap, multiple)
    assert fitted <= tile and fitted % multiple == 0 or fitted == length
    n = len(tile_starts(length, tile, overlap))
    assert len(tile_starts(length, fitted, overlap)) == n
    if n > 1:
        # smaller by a multiple would need another tile
        assert fitted - multiple <= overlap or len(tile_starts(length, fitted - multiple, overlap)) > n
    assert fit_tile(2112, 1024, 64, 8) == 752  # 3 tiles of 752 instead of 3 of 1024


def test_iter_tiles_takes_a_rectangular_tile():
    tiles = list(iter_tiles((100, 60), (40, 24), 8))
    assert {(r.stop - r.start, c.stop - c.start) for r, c in tiles} == {(40, 24)}
    hits = np.zeros((100, 60), int)
    for rows, cols in tiles:
        hits[rows, cols] += 1
    assert hits.min() >= 1
