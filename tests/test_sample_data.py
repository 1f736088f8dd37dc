"""Tests for the built-in EM-like sample scenes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_synthseg._napari.sample import sample_grains
from napari_synthseg.image_io import read_image
from napari_synthseg.sample_data import make_sample_scene, write_sample_folder

SHAPE = (384, 512)


@pytest.fixture(scope="module")
def scene():
    return make_sample_scene(seed=5, shape=SHAPE)


def test_shapes_dtypes_and_determinism(scene):
    image, labels = scene
    assert image.shape == labels.shape == SHAPE
    assert image.dtype == np.uint8 and labels.dtype == np.uint32
    again = make_sample_scene(seed=5, shape=SHAPE)
    np.testing.assert_array_equal(image, again[0])
    np.testing.assert_array_equal(labels, again[1])
    other = make_sample_scene(seed=6, shape=SHAPE)
    assert not np.array_equal(image, other[0])


def test_labels_are_sequential_instances(scene):
    _, labels = scene
    ids = np.unique(labels)
    assert ids[0] == 0
    assert list(ids[1:]) == list(range(1, len(ids)))
    assert len(ids) - 1 >= 5
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() >= 15
    assert areas.max() / np.median(areas) > 5  # sizes vary a lot


def test_labels_cover_the_grains(scene):
    image, labels = scene
    fraction = (labels > 0).mean()
    assert 0.03 < fraction < 0.6
    background = image[ndimage.maximum_filter(labels, size=5) == 0]
    # bright sulfide pixels lie inside labelled grains (the scale bar box excepted)
    corner = np.zeros(SHAPE, dtype=bool)
    corner[-40:, -100:] = True
    bright = (image > 160) & ~corner
    assert bright.sum() > 50
    assert (labels[bright] > 0).mean() > 0.95
    # the background is dark gray, most grains are brighter
    assert 30 < np.median(background) < 65
    level = np.median(background)
    grain_medians = ndimage.median(image, labels, np.arange(1, labels.max() + 1))
    assert (grain_medians > level).mean() > 0.55
    # some grains are only slightly brighter than the background (silicates)
    assert ((grain_medians > level) & (grain_medians < level + 45)).sum() >= 2


def test_some_grains_touch():
    touching = 0
    for seed in range(3):
        _, labels = make_sample_scene(seed=seed, shape=(384, 512))
        right = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
        touching += int(right.sum())
    assert touching > 0


def test_scale_bar_box_is_drawn_and_not_labelled(scene):
    image, labels = scene
    height, width = SHAPE
    # the box always covers this part of the corner (size >= 14x40, margin <= 7)
    inside = (slice(height - 16, height - 7), slice(width - 42, width - 7))
    assert np.all(labels[inside] == 0)
    box = image[inside].astype(float)
    assert box.std() > 20 or abs(box.mean() - 47) > 40  # painted marks, not plain background


def test_bad_shape():
    with pytest.raises(ValueError, match="too small"):
        make_sample_scene(shape=(10, 300))
    with pytest.raises(ValueError, match="two integers"):
        make_sample_scene(shape=(10,))


def test_write_sample_folder(tmp_path):
    images_dir, masks_dir = write_sample_folder(tmp_path / "out", n=2, seed=4, shape=(96, 128))
    images = sorted(images_dir.glob("*.png"))
    masks = sorted(masks_dir.glob("*.tif"))
    assert [p.stem for p in images] == [p.stem for p in masks] and len(images) == 2
    image, labels = make_sample_scene(seed=4, shape=(96, 128))
    np.testing.assert_array_equal(read_image(images[0]), image)
    np.testing.assert_array_equal(read_image(masks[0]), labels)
    assert not list(images_dir.glob(".*.tmp*"))
    with pytest.raises(ValueError, match="n must be"):
        write_sample_folder(tmp_path / "none", n=0)


def test_napari_sample_layers():
    layers = sample_grains()
    assert [layer[2] for layer in layers] == ["image", "labels"]
    assert layers[0][1]["name"] == "grains" and layers[1][1]["name"] == "grains ground truth"
    assert layers[0][0].shape == layers[1][0].shape
    assert layers[1][0].max() > 10


@pytest.mark.parametrize("seed", [3, 7])
def test_every_ground_truth_object_is_one_connected_piece(seed):
    _, labels = make_sample_scene(seed=seed, shape=(384, 512))
    ids = np.unique(labels)[1:]
    pieces = [ndimage.label(labels == i)[1] for i in ids]
    assert pieces and max(pieces) == 1
