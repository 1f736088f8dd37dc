"""Tests of pixel and object scores on hand-made label images."""

import numpy as np
import pytest

from napari_synthseg.metrics import DatasetScores, iou_matrix, object_scores, pixel_scores


def squares(shape=(40, 40), boxes=((5, 15, 5, 15), (20, 30, 20, 35)), shift=(0, 0)):
    labels = np.zeros(shape, np.uint32)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        labels[y0 + shift[0]:y1 + shift[0], x0 + shift[1]:x1 + shift[1]] = k
    return labels


def test_perfect_match_with_other_ids():
    gt = squares()
    pred = np.where(gt > 0, gt + 10, 0).astype(np.int64)
    px = pixel_scores(pred, gt)
    assert px.iou == 1 and px.dice == 1 and px.intersection == px.union == 250
    ob = object_scores(pred, gt)
    assert (ob.tp, ob.fp, ob.fn) == (2, 0, 0) and ob.f1 == 1


def test_shifted_objects():
    gt = squares()
    small = squares(shift=(1, 0))  # 10x10 square: IoU 90/110 > 0.5
    ob = object_scores(small, gt)
    assert ob.tp == 2
    far = squares(shift=(6, 0))  # 10x10 square: IoU 40/160 < 0.5
    ob = object_scores(far, gt)
    assert ob.tp == 0 and ob.fp == 2 and ob.fn == 2 and ob.f1 == 0
    px = pixel_scores(far, gt)
    assert 0 < px.iou < 1 and px.dice == pytest.approx(2 * px.iou / (1 + px.iou))


def test_split_object():
    gt = squares(boxes=((0, 10, 0, 20),))
    pred = np.zeros_like(gt)
    pred[0:10, 0:10] = 1
    pred[0:10, 10:20] = 2  # each half has IoU 0.5 exactly: not a match
    assert pixel_scores(pred, gt).iou == 1
    ob = object_scores(pred, gt)
    assert (ob.tp, ob.fp, ob.fn) == (0, 2, 1)
    pred[0:10, 0:12] = 1  # one part now covers 60 %
    ob = object_scores(pred, gt)
    assert (ob.tp, ob.fp, ob.fn) == (1, 1, 0)


def test_merged_objects():
    gt = squares(boxes=((0, 10, 0, 10), (0, 10, 10, 30)))
    pred = (gt > 0).astype(np.uint8)
    ob = object_scores(pred, gt)
    # The merged object covers the larger one with IoU 200/300 > 0.5.
    assert (ob.tp, ob.fp, ob.fn) == (1, 0, 1)
    assert ob.precision == 1 and ob.recall == 0.5


def test_empty_cases():
    empty = np.zeros((10, 10), np.uint8)
    gt = squares(shape=(10, 10), boxes=((2, 5, 2, 5),))
    assert pixel_scores(empty, empty).iou == 1
    assert object_scores(empty, empty).f1 == 1
    ob = object_scores(empty, gt)
    assert (ob.tp, ob.fp, ob.fn, ob.recall, ob.f1) == (0, 0, 1, 0, 0)
    ob = object_scores(gt, empty)
    assert (ob.tp, ob.fp, ob.fn, ob.precision) == (0, 1, 0, 0)
    assert pixel_scores(gt, empty).iou == 0


def test_iou_matrix_values():
    gt = squares(boxes=((0, 10, 0, 10),))
    pred = np.zeros_like(gt)
    pred[0:10, 5:15] = 7
    iou, pids, gids = iou_matrix(pred, gt)
    assert list(pids) == [7] and list(gids) == [1]
    assert iou[0, 0] == pytest.approx(50 / 150)


def test_low_threshold_is_one_to_one():
    gt = squares(boxes=((0, 10, 0, 20),))
    pred = np.zeros_like(gt)
    pred[0:10, 0:10] = 1
    pred[0:10, 10:20] = 2
    ob = object_scores(pred, gt, iou_threshold=0.3)
    assert (ob.tp, ob.fp, ob.fn) == (1, 1, 0)


def test_dataset_pooling():
    scores = DatasetScores()
    gt = squares()
    scores.add(gt, gt)
    scores.add(np.zeros_like(gt), gt)
    s = scores.summary()
    assert s["pixel_iou"] == pytest.approx(250 / 500)
    assert s["object_precision"] == 1 and s["object_recall"] == 0.5
    assert s["object_f1"] == pytest.approx(2 / 3)
    assert set(s) >= {"pixel_iou", "pixel_dice", "object_precision", "object_recall", "object_f1"}


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        pixel_scores(np.zeros((3, 3), int), np.zeros((4, 4), int))
    with pytest.raises(TypeError, match="integer"):
        object_scores(np.zeros((3, 3)), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="negative"):
        pixel_scores(-np.ones((3, 3), int), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="iou_threshold"):
        object_scores(np.zeros((3, 3), int), np.zeros((3, 3), int), iou_threshold=1.5)
