"""Tests for synthetic scenes and background sources."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from napari_synthseg.sample_data import make_sample_scene
from napari_synthseg.synthesis import (
    BACKGROUND_KINDS,
    BackgroundSource,
    estimate_background_mask,
    prepare_objects,
    synthesize_scene,
)


@dataclass
class Obj:
    image: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)


def _square(value: float, side: int, dtype=np.float32) -> Obj:
    image = np.full((side + 4, side + 4), value, dtype=dtype)
    mask = np.zeros(image.shape, dtype=bool)
    mask[2:-2, 2:-2] = True
    return Obj(image, mask)


def _objects_from_labels(image, labels):
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
        out.append(Obj(image[sl], labels[sl] == i))
    return out


@pytest.fixture(scope="module")
def sample():
    image, labels = make_sample_scene(seed=3, shape=(256, 320))
    return image, labels


@pytest.fixture(scope="module")
def bank(sample):
    return _objects_from_labels(*sample)


@pytest.fixture(scope="module")
def source(sample):
    image, labels = sample
    return BackgroundSource.from_images([image], [labels], patch=32)


FLAT = BackgroundSource.from_images([np.full((32, 32), 0.1, dtype=np.float32)], patch=16)
NO_TRANSFORMS = dict(
    scale_range=(1.0, 1.0),
    rotate=False,
    flip=False,
    brightness=0.0,
    contrast=0.0,
    blur_prob=0.0,
    noise_std=0.0,
    background_kinds="flat",
)


def test_shapes_dtypes_and_range(bank, source):
    image, labels = synthesize_scene(bank, (96, 130), np.random.default_rng(0), source, n_objects=(5, 10))
    assert image.shape == labels.shape == (96, 130)
    assert image.dtype == np.float32 and labels.dtype == np.uint32
    assert 0.0 <= image.min() and image.max() <= 1.0
    ids = np.unique(labels)
    assert ids[0] == 0 and list(ids[1:]) == list(range(1, len(ids)))  # renumbered 1..n
    assert len(ids) > 2


def test_same_seed_same_scene_different_seed_different(bank, source):
    a = synthesize_scene(bank, (80, 80), np.random.default_rng(7), source)
    b = synthesize_scene(bank, (80, 80), np.random.default_rng(7), source)
    c = synthesize_scene(bank, (80, 80), np.random.default_rng(8), source)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_every_background_kind(bank, source):
    for kind in BACKGROUND_KINDS:
        image, labels = synthesize_scene(bank, (64, 64), np.random.default_rng(1), source, background_kinds=kind)
        assert image.shape == (64, 64) and np.isfinite(image).all()
    image, _ = synthesize_scene(bank, (64, 64), 3, source, background_kinds={"texture": 1.0, "flat": 0.0})
    assert image.std() > 0


def test_no_backgrounds_gives_noise_background(bank):
    image, labels = synthesize_scene(bank, (64, 64), np.random.default_rng(0), None, n_objects=0)
    assert labels.max() == 0
    assert image.std() > 0.005  # plain noise, not flat


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    sides=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    n_objects=st.integers(0, 12),
    touch=st.floats(0.0, 1.0),
)
def test_labels_mark_exactly_the_pasted_pixels(seed, sides, n_objects, touch):
    values = [0.3 + 0.15 * i for i in range(len(sides))]
    rng = np.random.default_rng(seed)
    objects = []
    for value, side in zip(values, sides):
        mask = rng.random((side + 2, side + 1)) < 0.7
        mask[0, 0] = True
        objects.append(Obj(np.full(mask.shape, value, dtype=np.float32), mask))
    image, labels = synthesize_scene(
        objects, (24, 20), np.random.default_rng(seed), FLAT, n_objects=n_objects, touch_prob=touch, **NO_TRANSFORMS
    )
    background = image[labels == 0]
    if background.size:
        assert np.all(background == background[0])
    for label in range(1, int(labels.max()) + 1):
        pixels = image[labels == label]
        assert pixels.size >= 10  # slivers are dropped
        assert np.all(pixels == pixels[0])
        assert np.float32(pixels[0]) in np.float32(values)
        if background.size:
            assert pixels[0] != background[0]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_transformed_objects_are_pasted_only_through_their_masks(seed):
    objects = [_square(0.6, 9), _square(0.9, 5)]
    params = dict(NO_TRANSFORMS, scale_range=(0.4, 2.5), rotate=True, flip=True, blur_prob=0.5)
    image, labels = synthesize_scene(
        objects, (40, 40), np.random.default_rng(seed), FLAT, n_objects=(1, 6), soft_edges=False, **params
    )
    unlabelled = image[labels == 0]
    assert np.all(unlabelled == unlabelled[0])
    for label in range(1, int(labels.max()) + 1):
        pixels = image[labels == label]
        assert np.allclose(pixels, pixels.mean(), atol=1e-4)
        assert min(abs(pixels.mean() - 0.6), abs(pixels.mean() - 0.9)) < 1e-4


def test_later_objects_occlude_earlier_ones_and_scene_smaller_than_objects():
    objects = [_square(0.4, 70), _square(0.8, 70)]
    for seed in range(5):
        image, labels = synthesize_scene(
            objects, (16, 16), np.random.default_rng(seed), FLAT, n_objects=2, touch_prob=0.0, **NO_TRANSFORMS
        )
        # a 70x70 square centred anywhere in the 16x16 scene covers all of it: only the last is left
        assert np.all(labels == 1)
        assert np.all(image == image[0, 0]) and image[0, 0] in (np.float32(0.4), np.float32(0.8))


def test_touch_prob_makes_objects_touch(bank, source):
    def touching_pairs(touch):
        count = 0
        for seed in range(6):
            _, labels = synthesize_scene(
                bank, (192, 192), np.random.default_rng(seed), source, n_objects=12, touch_prob=touch,
                scale_range=(0.5, 0.8),
            )
            right = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
            down = (labels[1:] != labels[:-1]) & (labels[1:] > 0) & (labels[:-1] > 0)
            count += int(right.sum() + down.sum())
        return count

    assert touching_pairs(1.0) > 2 * touching_pairs(0.0)


def test_integer_crops_share_the_background_scale():
    # a uint8 crop of value 128 must land at 128/255 (like backgrounds read from uint8 images)
    image = np.full((10, 10), 128, dtype=np.uint8)
    obj = Obj(image, np.ones((10, 10), dtype=bool))
    out, labels = synthesize_scene([obj], (32, 32), 0, FLAT, n_objects=1, **NO_TRANSFORMS)
    assert np.allclose(out[labels == 1], 128 / 255)
    rgb = np.full((12, 12, 3), 255, dtype=np.uint8)
    src = BackgroundSource.from_images([rgb], patch=8)
    assert src.mean == pytest.approx(1.0, abs=1e-3)


def test_bad_input_raises_clear_errors(bank, source):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="empty"):
        synthesize_scene([], (32, 32), rng)
    with pytest.raises(ValueError, match="empty"):
        synthesize_scene([Obj(np.zeros((4, 4)), np.zeros((4, 4), bool))], (32, 32), rng)
    with pytest.raises(ValueError, match="too small"):
        synthesize_scene(bank, (4, 32), rng)
    with pytest.raises(ValueError, match="scale_range"):
        synthesize_scene(bank, (32, 32), rng, scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="n_objects"):
        synthesize_scene(bank, (32, 32), rng, n_objects=(-1, 3))
    with pytest.raises(ValueError, match="touch_prob"):
        synthesize_scene(bank, (32, 32), rng, touch_prob=2)
    with pytest.raises(ValueError, match="unknown background kind"):
        synthesize_scene(bank, (32, 32), rng, source, background_kinds=["marble"])
    with pytest.raises(ValueError, match="real backgrounds"):
        synthesize_scene(bank, (32, 32), rng, None, background_kinds="texture")
    with pytest.raises(ValueError, match="same shape"):
        synthesize_scene([Obj(np.zeros((4, 4)), np.ones((4, 5), bool))], (32, 32), rng)
    with pytest.raises(TypeError, match="image"):
        synthesize_scene([object()], (32, 32), rng)
    with pytest.raises(ValueError, match="empty list"):
        synthesize_scene(bank, (32, 32), rng, [])
    with pytest.raises(ValueError, match="do not match"):
        BackgroundSource.from_images([np.zeros((20, 20))], [np.zeros((10, 10), np.uint32)])


def test_background_source_matches_real_background_statistics(sample, source):
    image, labels = sample
    real_mask = (ndimage.maximum_filter(labels, size=7) == 0) & estimate_background_mask(image)
    real = image[real_mask] / 255.0
    assert source.mean == pytest.approx(real.mean(), abs=0.01)
    for kind in BACKGROUND_KINDS:
        made = np.stack([source.make_background((96, 96), np.random.default_rng(s), kind) for s in range(6)])
        assert made.dtype == np.float32
        assert made.mean() == pytest.approx(real.mean(), abs=0.03), kind
        if kind != "flat":
            per_image_std = made.std(axis=(1, 2)).mean()
            assert 0.4 * real.std() < per_image_std < 2.0 * real.std(), kind


def test_background_estimate_excludes_grains(sample):
    image, labels = sample
    background = estimate_background_mask(image)
    bright_grains = (labels > 0) & (image > 150)
    assert not background[bright_grains].any()
    assert background.mean() > 0.5


def test_backgrounds_list_is_accepted_and_cached(bank, sample):
    image, _ = sample
    images = [image]
    a = synthesize_scene(bank, (48, 48), np.random.default_rng(2), images)
    b = synthesize_scene(bank, (48, 48), np.random.default_rng(2), images)
    np.testing.assert_array_equal(a[0], b[0])


def test_prepare_objects_is_cached_per_list(bank):
    assert prepare_objects(bank) is prepare_objects(bank)
    prepared = prepare_objects(bank)
    assert prepare_objects(prepared) is prepared


def test_real_object_bank(tmp_path, sample):
    from napari_synthseg.bank import ObjectBank

    image, labels = sample
    obj_bank = ObjectBank(tmp_path / "bank")
    added = obj_bank.add_from_labels(image, labels, source="sample")
    assert added > 5
    scene, scene_labels = synthesize_scene(obj_bank, (64, 64), np.random.default_rng(0), n_objects=(5, 8))
    again, again_labels = synthesize_scene(obj_bank, (64, 64), np.random.default_rng(0), n_objects=(5, 8))
    np.testing.assert_array_equal(scene, again)
    np.testing.assert_array_equal(scene_labels, again_labels)
    assert scene_labels.max() >= 1


NO_MOVES = dict(rotate=False, flip=False, brightness=0.0, contrast=0.0, blur_prob=0.0, noise_std=0.0,
                soft_edges=False, scale_range=(1.0, 1.0))


def test_restyled_objects_sit_close_to_the_background_level():
    flat = np.full((64, 64), 0.2, dtype=np.float32)
    source = BackgroundSource.from_images([flat])
    bright = _square(0.9, 10)
    image, labels = synthesize_scene([bright], (64, 64), 1, source, n_objects=1, restyle_prob=1.0,
                                     restyle_contrast=(0.05, 0.05), background_kinds="flat", **NO_MOVES)
    inside, outside = image[labels > 0], image[labels == 0]
    assert labels.max() == 1
    # the square keeps its polarity but only 0.05 above its surroundings, not 0.7
    assert inside.mean() - outside.mean() == pytest.approx(0.05, abs=0.01)
    inverted, labels = synthesize_scene([bright], (64, 64), 1, source, n_objects=1, restyle_prob=1.0,
                                        invert_prob=1.0, restyle_contrast=(0.05, 0.05),
                                        background_kinds="flat", **NO_MOVES)
    assert inverted[labels > 0].mean() < inverted[labels == 0].mean()


def test_rims_are_darker_than_the_object_core():
    image, labels = synthesize_scene([_square(0.8, 16)], (48, 48), 2, None, n_objects=1, rim_prob=1.0,
                                     background_kinds="flat", **NO_MOVES)
    obj = labels > 0
    core = ndimage.binary_erosion(obj, iterations=3)
    assert image[obj & ~core].mean() < image[core].mean() - 0.02


def test_grouped_scenes_take_objects_and_background_from_one_source():
    dark_bg = np.full((64, 64), 0.1, dtype=np.float32)
    light_bg = np.full((64, 64), 0.9, dtype=np.float32)
    source = BackgroundSource.from_images([dark_bg, light_bg], names=["a", "b"])
    objects = [Obj(o.image, o.mask, {"source": name}) for o, name in
               ((_square(0.5, 6), "a"), (_square(0.6, 6), "b"))]
    for seed in range(6):
        image, labels = synthesize_scene(objects, (64, 64), seed, source, n_objects=8, group_prob=1.0,
                                         background_kinds="flat", **NO_MOVES)
        values = np.unique(np.round(image[labels > 0], 2))
        level = image[labels == 0].mean()
        assert values.size == 1  # one source's objects only
        # ... on that source's background level (its own image, within the level jitter)
        assert (values[0] == 0.5) == (abs(level - 0.1) < abs(level - 0.9))


def test_coverage_bounds_the_object_area():
    objects = [_square(0.8, 20)]
    fractions = [(synthesize_scene(objects, (128, 128), seed, None, n_objects=(1, 60), coverage=(0.1, 0.2),
                                   touch_prob=0.0, **NO_MOVES)[1] > 0).mean() for seed in range(5)]
    assert max(fractions) < 0.3
    assert min(fractions) > 0.02
    with pytest.raises(ValueError, match="coverage"):
        synthesize_scene(objects, (32, 32), 0, None, coverage=(0.1, 1.5))


def _disc(value: float, radius: int) -> Obj:
    yy, xx = np.mgrid[-radius - 2 : radius + 3, -radius - 2 : radius + 3]
    mask = yy**2 + xx**2 <= radius**2
    return Obj(np.full(mask.shape, value, dtype=np.float32), mask)


def _shared_boundary(labels: np.ndarray) -> int:
    """4-neighbour pixel pairs where two different objects meet."""
    right = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
    down = (labels[1:] != labels[:-1]) & (labels[1:] > 0) & (labels[:-1] > 0)
    return int(right.sum() + down.sum())


def test_cluster_prob_builds_agglomerates_whose_objects_keep_their_shape():
    # discs of six gray levels (each level names its disc, so every label's pasted area is known)
    discs = [_disc(0.3 + 0.1 * k, radius) for k, radius in enumerate((5, 6, 7, 8, 9, 10))]
    area = {round(float(d.image[0, 0]), 3): int(d.mask.sum()) for d in discs}
    kept, touching, alone = [], 0, 0
    for seed in range(8):
        params = dict(NO_MOVES, n_objects=12, touch_prob=0.0)
        image, labels = synthesize_scene(discs, (160, 160), np.random.default_rng(seed), FLAT, cluster_prob=1.0,
                                         **params)
        touching += _shared_boundary(labels)
        # the dividing line between touching objects is in the boundary target the network learns
        from napari_synthseg.model.targets import label_edges, labels_to_targets

        between = label_edges(labels)[1]
        assert between.any() and (labels_to_targets(labels)[..., 2][between] == 1).all()
        alone += _shared_boundary(synthesize_scene(discs, (160, 160), np.random.default_rng(seed), FLAT,
                                                   cluster_prob=0.0, **params)[1])
        border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
        for label in range(1, int(labels.max()) + 1):
            if label in border:
                continue  # cut by the scene's edge, not by a neighbour
            value = round(float(image[labels == label][0]), 3)
            kept.append((labels == label).sum() / area[value])
        # every object of the agglomerate (not cut by the scene's edge) touches another one
        ids = [k for k in range(1, int(labels.max()) + 1) if k not in border]
        grown = [ndimage.binary_dilation(labels == k) for k in ids]
        assert all(((labels > 0) & (labels != k) & g).any() for k, g in zip(ids, grown))
    assert touching > 2 * max(alone, 1)  # random placement touches only by chance
    # each object loses at most a few percent to each of its (few) neighbours
    assert min(kept) >= 0.6 and np.median(kept) >= 0.85


def test_cluster_prob_scenes_are_reproducible_and_default_scenes_unchanged(bank, source):
    first = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, cluster_prob=0.5)
    again = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, cluster_prob=0.5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    plain = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source)
    explicit = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, cluster_prob=0.0)
    np.testing.assert_array_equal(plain[1], explicit[1])  # the default draws nothing more
    with pytest.raises(ValueError, match="cluster_prob"):
        synthesize_scene(bank, (32, 32), np.random.default_rng(0), cluster_prob=1.5)


def _touching_gray_gaps(image: np.ndarray, labels: np.ndarray) -> list[float]:
    """|mean gray difference| of every pair of objects that share a boundary."""
    n = int(labels.max()) + 1
    means = np.bincount(labels.ravel(), image.ravel(), n) / np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    pairs = set()
    for a, b in ((labels[:, 1:], labels[:, :-1]), (labels[1:], labels[:-1])):
        meet = (a != b) & (a > 0) & (b > 0)
        pairs |= {tuple(sorted(p)) for p in zip(a[meet].tolist(), b[meet].tolist())}
    return [abs(means[x] - means[y]) for x, y in pairs]


def test_alike_prob_gives_touching_objects_their_neighbours_gray_level():
    # two materials far apart in gray, placed against each other: alike neighbours take the gray
    # their partner was pasted with, keeping their own texture
    rng = np.random.default_rng(0)
    textured = [Obj(np.clip(value + 0.05 * rng.standard_normal(d.mask.shape), 0, 1).astype(np.float32), d.mask)
                for value, d in ((0.25, _disc(0.0, 8)), (0.85, _disc(0.0, 9)))]
    params = dict(NO_MOVES, n_objects=10, touch_prob=1.0)
    gaps = {p: [] for p in (0.0, 1.0)}
    for seed in range(6):
        for p in gaps:
            image, labels = synthesize_scene(textured, (128, 128), np.random.default_rng(seed), FLAT,
                                             alike_prob=p, **params)
            gaps[p] += _touching_gray_gaps(image, labels)
            if p == 1.0:
                assert max(image[labels == k].std() for k in range(1, int(labels.max()) + 1)) > 0.02
    assert len(gaps[0.0]) > 10 and len(gaps[1.0]) > 10
    apart = {p: float(np.mean(np.array(g) > 0.3)) for p, g in gaps.items()}
    assert apart[0.0] > 0.25  # about half the pairs are of two materials, 0.6 apart
    assert apart[1.0] < 0.1, apart  # a pair may still meet where neither was placed against the other


def test_alike_prob_scenes_are_reproducible_and_default_scenes_unchanged(bank, source):
    first = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, alike_prob=0.5)
    again = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, alike_prob=0.5)
    np.testing.assert_array_equal(first[0], again[0])
    plain = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source)
    explicit = synthesize_scene(bank, (96, 96), np.random.default_rng(4), source, alike_prob=0.0)
    np.testing.assert_array_equal(plain[0], explicit[0])  # the default draws nothing more
    np.testing.assert_array_equal(plain[1], first[1])  # only gray levels change, not placement
    with pytest.raises(ValueError, match=r"alike_prob must be in \[0, 1\], got 1.5"):
        synthesize_scene(bank, (32, 32), np.random.default_rng(0), alike_prob=1.5)
