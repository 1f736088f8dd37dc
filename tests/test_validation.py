"""RealValidation: real images scored through predict, within a pixel budget."""

import numpy as np
import pytest
from scipy import ndimage as ndi

keras = pytest.importorskip("keras")

from napari_synthseg.curation import OUTLINE_RING_PX  # noqa: E402
from napari_synthseg.model.validation import (  # noqa: E402
    REAL_VALIDATION_SIDE,
    RealValidation,
    explicit_background,
    object_agreement,
)


@pytest.fixture(scope="module")
def threshold_network():
    """A 1x1 'network' whose foreground is the normalised intensity thresholded at 0.5."""
    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(3, 1, activation="sigmoid")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[[[20.0, 20.0, 0.0]]]], np.float32), np.array([-10.0, -10.0, -10.0], np.float32)])
    return model


def _grainy(image):
    """The image with a micrograph's grain: perfectly flat shapes are left out as drawn boxes."""
    noise = np.random.default_rng(0).integers(-8, 9, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def _two_squares():
    image = np.full((120, 150), 10, np.uint8)
    first, second = np.zeros(image.shape, np.uint16), np.zeros(image.shape, np.uint16)
    image[20:50, 20:50], first[20:50, 20:50] = 200, 1
    image[60:90, 90:120], second[60:90, 90:120] = 200, 2
    return _grainy(image), first, second


def test_real_validation_scores_the_segmentation_against_the_masks(threshold_network):
    image, first, second = _two_squares()
    network = {"depth": 0, "pad_multiple": 1}
    both = RealValidation([(image, first + second)], network=network, normalization="percentile")
    assert both.score(threshold_network) == pytest.approx(1.0)
    # the segmentation finds both squares, the mask holds one: half of the union agrees
    one = RealValidation([(image, first)], network=network, normalization="percentile")
    assert one.score(threshold_network) == pytest.approx(0.5)


def test_real_validation_keeps_to_its_pixel_budget():
    rng = np.random.default_rng(0)
    small = [(rng.integers(0, 255, (100, 100), dtype=np.uint8), np.ones((100, 100), np.uint8)) for _ in range(3)]
    kept = RealValidation(small, network={"depth": 2}, normalization="percentile", max_pixels=25_000)
    assert len(kept.pairs) == 2 and kept.pixels == 20_000
    # one image always counts; a large one by its centred window
    large = np.zeros((1500, 1200), np.uint8)
    labels = np.zeros((1500, 1200), np.uint8)
    labels[750, 600] = 1
    kept = RealValidation([(large, labels)], network={"depth": 2}, normalization="anchored", max_pixels=10)
    image, mask, known = kept.pairs[0]
    assert known is None and image.shape == (REAL_VALIDATION_SIDE, REAL_VALIDATION_SIDE) and mask.sum() == 1


def test_real_validation_rejects_bad_input():
    image = np.zeros((40, 50), np.uint8)
    with pytest.raises(ValueError, match="same height and width"):
        RealValidation([(image, image[:10])], network={}, normalization="percentile")
    with pytest.raises(ValueError, match="real_validation is empty"):
        RealValidation([], network={}, normalization="percentile")
    with pytest.raises(ValueError, match="real_validation_pixels must be a positive integer"):
        RealValidation([(image, image)], network={}, normalization="percentile", max_pixels=0.5)


def test_real_validation_with_known_masks_scores_only_what_a_person_said(threshold_network):
    image, first, second = _two_squares()
    network = {"depth": 0, "pad_multiple": 1}
    # the person picked the first square and said nothing about the second: full agreement
    known = np.zeros(image.shape, bool)
    known[10:60, 10:60] = True
    picked = RealValidation([(image, first, known)], network=network, normalization="percentile")
    assert picked.score(threshold_network) == pytest.approx(1.0)
    # a rejected region (known background) holding the second square, which the segmentation calls
    # object, costs the background share: calling everything object cannot win
    rejected = np.zeros(image.shape, bool)
    rejected[55:95, 85:125] = True
    both_said = RealValidation([(image, first, known | rejected)], network=network, normalization="percentile")
    # the ring that Curation.known adds is no background evidence
    ring = ndi.binary_dilation(first > 0, iterations=OUTLINE_RING_PX)
    background = (known | rejected) & ~ring
    assert both_said.score(threshold_network) == pytest.approx((1.0 + (background.sum() - 900) / background.sum()) / 2)
    # without the known mask the second square counts against the segmentation
    assert RealValidation([(image, first)], network=network, normalization="percentile").score(
        threshold_network) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one mask per image"):
        RealValidation([(image, first, known[:10])], network=network, normalization="percentile")
    with pytest.raises(ValueError, match="known mask for every image"):
        RealValidation([(image, first, known), (image, first)], network=network, normalization="percentile")


def test_a_merge_with_a_touching_neighbour_loses_the_picked_object(threshold_network):
    """Two touching squares come out as one instance: the picked one is not matched (IoU 0.5)."""
    image = np.full((100, 120), 10, np.uint8)
    image[20:50, 20:80] = 200
    picked = np.zeros(image.shape, np.uint16)
    picked[20:50, 20:50] = 7
    network = {"depth": 0, "pad_multiple": 1}
    merged = RealValidation([(_grainy(image), picked, picked > 0)], network=network, normalization="percentile")
    assert merged.score(threshold_network) == pytest.approx(0.0)  # IoU 0.5: no match
    image[20:50, 50] = 10  # a dark line splits them: each its own instance
    apart = RealValidation([(_grainy(image), picked, picked > 0)], network=network, normalization="percentile")
    assert apart.score(threshold_network) == pytest.approx(1.0)


def test_a_slightly_wrong_outline_costs_in_proportion():
    """One pixel too fat all round costs the pixels it gets wrong, not the whole background term."""
    labels = np.zeros((60, 60), np.int32)
    labels[21:49, 21:49] = 3
    predicted = np.zeros(labels.shape, np.int32)
    predicted[20:50, 20:50] = 9
    assert object_agreement(predicted, labels) == pytest.approx([28 * 28 / (30 * 30)])
    known = ndi.binary_dilation(labels > 0)
    assert not explicit_background(labels, known, 1).any()  # the ring alone is no background evidence
    assert explicit_background(labels, np.ones_like(known), 1).sum() == (~known).sum()


def test_object_agreement_of_split_and_missed_objects():
    labels = np.zeros((40, 80), np.int32)
    labels[10:30, 10:30], labels[10:30, 50:70] = 1, 2
    predicted = np.zeros(labels.shape, np.int32)
    predicted[10:30, 10:25], predicted[10:30, 25:30] = 4, 5  # split 3 : 1
    assert object_agreement(predicted, labels) == pytest.approx([0.75, 0.0])
    assert object_agreement(predicted, np.zeros_like(labels)).size == 0
