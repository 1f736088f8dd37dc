"""Training targets from instance labels (pure numpy; no Keras needed)."""

import subprocess
import sys

import numpy as np
import pytest

from napari_synthseg.model.targets import label_edges, labels_to_targets


@pytest.fixture
def touching_squares():
    labels = np.zeros((14, 20), np.uint32)
    labels[3:10, 3:10] = 1
    labels[3:10, 10:17] = 7  # shares the column boundary 9|10 with label 1
    return labels


def test_foreground_is_the_union_of_objects(touching_squares):
    targets = labels_to_targets(touching_squares)
    assert targets.shape == (14, 20, 3) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 0], touching_squares > 0)


def test_boundary_is_a_two_pixel_band_on_both_sides_of_every_edge(touching_squares):
    boundary = labels_to_targets(touching_squares)[..., 2].astype(bool)
    # between the two squares: the last column of one and the first of the other
    assert boundary[3:10, 9].all() and boundary[3:10, 10].all()
    # the object/background edge: inner ring and outer ring
    assert boundary[5, 3] and boundary[5, 2] and not boundary[5, 1]
    assert boundary[2, 5] and boundary[3, 5] and not boundary[4, 5]
    # deep inside an object, and far in the background, nothing
    assert not boundary[6, 6] and not boundary[0, 0]
    # the 9x16 box around both squares, minus the two 5x5 cores, minus the 4 outer corners
    # (they touch the squares only diagonally)
    assert boundary.sum() == 9 * 16 - 2 * 25 - 4


def test_distance_peaks_once_per_object_even_when_touching(touching_squares):
    distance = labels_to_targets(touching_squares)[..., 1]
    assert distance.max() == pytest.approx(1.0)
    assert (distance[touching_squares == 0] == 0).all()
    for label in (1, 7):
        inside = distance[touching_squares == label]
        assert inside.max() == pytest.approx(1.0)  # normalised by this object's own maximum
    # the seam between the touching squares is a valley, not a ridge
    assert distance[6, 9] == 0 and distance[6, 10] == 0
    assert distance[6, 6] == pytest.approx(1.0) and distance[6, 13] == pytest.approx(1.0)
    # values fall towards the edges
    assert distance[6, 3] < distance[6, 4] < distance[6, 5]


def test_objects_of_different_sizes_are_each_normalised_to_one():
    labels = np.zeros((40, 40), np.int32)
    labels[2:6, 2:6] = 1
    labels[10:38, 10:38] = 2
    distance = labels_to_targets(labels)[..., 1]
    assert distance[labels == 1].max() == pytest.approx(1.0)
    assert distance[labels == 2].max() == pytest.approx(1.0)


def test_image_border_is_not_an_edge():
    labels = np.ones((8, 8), np.uint8)
    targets = labels_to_targets(labels)
    assert not targets[..., 2].any()
    assert targets[..., 1].max() == pytest.approx(1.0)


def test_empty_huge_ids_bool_and_stacks():
    assert not labels_to_targets(np.zeros((5, 6), np.uint16)).any()
    labels = np.zeros((6, 6), np.uint32)
    labels[1:5, 1:5] = 4_000_000_000
    assert labels_to_targets(labels)[..., 1].max() == pytest.approx(1.0)
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    np.testing.assert_array_equal(labels_to_targets(mask), labels_to_targets(labels))
    stack = np.stack([labels, np.zeros_like(labels)])
    out = labels_to_targets(stack)
    assert out.shape == (2, 6, 6, 3)
    np.testing.assert_array_equal(out[0], labels_to_targets(labels))


def test_bad_labels_are_rejected_clearly():
    with pytest.raises(TypeError, match="integer"):
        labels_to_targets(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="2D"):
        labels_to_targets(np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="non-negative"):
        labels_to_targets(-np.ones((4, 4), np.int16))


def test_label_edges_touching_only_between_objects(touching_squares):
    edges, touching = label_edges(touching_squares)
    assert touching[3:10, 9].all() and touching[3:10, 10].all()
    assert touching.sum() == 14
    assert (edges | ~touching).all()


def test_targets_module_does_not_import_keras():
    code = ("import sys, napari_synthseg.model.targets, napari_synthseg.model.sidecar; "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
