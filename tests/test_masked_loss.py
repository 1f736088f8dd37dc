"""The known channel: targets of curated images and a loss that ignores unknown pixels (issue 17)."""

import numpy as np
import pytest

from napari_synthseg.curation import Curation, pick_object, reject_object
from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss
from napari_synthseg.model.targets import curation_targets, labels_to_targets, with_known


def scene():
    labels = np.zeros((2, 24, 24), np.uint32)
    labels[:, 4:12, 3:9], labels[:, 4:12, 9:15], labels[:, 16:22, 16:22] = 1, 2, 3
    return labels


def test_known_everywhere_is_the_three_channel_loss():
    truth = labels_to_targets(scene())
    pred = np.random.default_rng(1).random(truth.shape).astype(np.float32)
    loss = SegmentationLoss()
    assert float(loss(with_known(truth), pred)) == pytest.approx(float(loss(truth, pred)), rel=1e-6)


def test_unknown_pixels_do_not_count_and_known_ones_do():
    truth = labels_to_targets(scene())
    known = np.zeros(truth.shape[:-1], bool)
    known[:, :14, :16] = True  # objects 1 and 2 and some background known; object 3 unknown
    rng = np.random.default_rng(2)
    pred = rng.random(truth.shape).astype(np.float32)
    other = pred.copy()
    other[~known] = rng.random((int((~known).sum()), 3)).astype(np.float32)  # only unknown pixels change
    loss = SegmentationLoss()
    masked = with_known(truth, known)
    assert float(loss(masked, pred)) == pytest.approx(float(loss(masked, other)), rel=1e-6)
    # the same change on known pixels (everything known) changes the loss
    assert abs(float(loss(with_known(truth), pred)) - float(loss(with_known(truth), other))) > 1e-3
    # a wrong prediction on known pixels still costs more than a right one
    good = np.clip(truth * 0.9 + 0.05, 0, 1)
    assert float(loss(masked, good)) < float(loss(masked, 1.0 - good))


def test_a_patch_with_no_known_pixel_adds_nothing():
    truth = labels_to_targets(scene())
    pred = np.random.default_rng(3).random(truth.shape).astype(np.float32)
    value = float(SegmentationLoss()(with_known(truth, np.zeros(truth.shape[:-1])), pred))
    assert value == 0.0


def test_metric_counts_known_pixels_only():
    truth = labels_to_targets(scene())
    known = np.zeros(truth.shape[:-1], bool)
    known[:, :14, :16] = True
    pred = np.zeros_like(truth)
    pred[..., 4:12, 3:15, 0] = 0.9   # objects 1 and 2 found
    pred[..., 0:3, 18:23, 0] = 0.9   # a false object in the unknown part
    metric = ForegroundIoU()
    metric.update_state(with_known(truth, known), pred)
    assert float(metric.result()) == pytest.approx(1.0)
    metric.reset_state()
    metric.update_state(with_known(truth), pred)
    assert float(metric.result()) < 0.7


def test_curation_targets_of_a_pick_and_a_reject():
    labels = np.zeros((30, 30), np.int32)
    labels[5:15, 5:15], labels[20:25, 20:25] = 4, 6
    cur = reject_object(pick_object(Curation.empty(labels.shape), labels, (8, 8)), labels, (22, 22))
    targets = curation_targets(cur)
    assert targets.shape == (30, 30, 4) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 0], labels == 4)
    np.testing.assert_array_equal(targets[..., 3] > 0, cur.known())
    assert targets[22, 22, 3] == 1 and targets[22, 22, 0] == 0  # rejected: known background
    assert targets[0, 0, 3] == 0  # nobody said anything here
    np.testing.assert_array_equal(curation_targets(cur, ring_px=0)[..., 3] > 0, cur.known(ring_px=0))
    pair = curation_targets((labels == 4, labels > 0))
    np.testing.assert_array_equal(pair[..., 3] > 0, labels > 0)
    with pytest.raises(ValueError, match="shape"):
        curation_targets((labels, labels[:3] > 0))


def test_shape_known_channel_leaves_out_distance_and_boundary_but_not_foreground():
    truth = labels_to_targets(scene())
    inside = np.zeros(truth.shape[:-1], bool)
    inside[:, 5:11, 4:14] = True  # the inside of the pair of objects 1 and 2
    rng = np.random.default_rng(4)
    pred = rng.random(truth.shape).astype(np.float32)
    loss = SegmentationLoss()
    targets = with_known(truth, None, ~inside)
    assert targets.shape[-1] == 5
    # distance and boundary inside the clump: any prediction costs the same
    other = pred.copy()
    other[inside, 1:] = rng.random((int(inside.sum()), 2)).astype(np.float32)
    assert float(loss(targets, pred)) == pytest.approx(float(loss(targets, other)), rel=1e-6)
    # foreground inside the clump still counts
    other = pred.copy()
    other[inside, 0] = 0.0
    assert abs(float(loss(targets, pred)) - float(loss(targets, other))) > 1e-3
    # all True is the four-channel loss
    assert float(loss(with_known(truth, None, True), pred)) == pytest.approx(float(loss(with_known(truth), pred)),
                                                                           rel=1e-6)
    with pytest.raises(ValueError, match="shape_known has shape"):
        with_known(truth, None, inside[0])
