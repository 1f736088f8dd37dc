"""Tests of pixel and object scores on hand-made label images."""

import numpy as np
import pytest

from napari_synthseg.metrics import DatasetScores, iou_matrix, object_scores, pixel_scores, worst_images


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


def test_average_precision_hand_made():
    from napari_synthseg.metrics import AP_THRESHOLDS, average_precision

    gt = np.zeros((40, 40), np.uint32)
    gt[0:10, 0:10] = 1   # matched exactly
    gt[20:30, 0:10] = 2  # matched by a 10x8 object: IoU 0.8
    gt[0:10, 20:30] = 3  # missed
    pred = np.zeros_like(gt)
    pred[0:10, 0:10] = 5
    pred[20:30, 0:8] = 6
    pred[30:40, 30:40] = 7  # false positive
    ap = average_precision(pred, gt)
    # IoU 1.0 matches at every threshold; IoU 0.8 at 0.5..0.75 (six thresholds: IoU > t)
    expected = [(2 if t < 0.8 else 1) for t in AP_THRESHOLDS]
    per = [tp / (tp + (3 - tp) + (3 - tp)) for tp in expected]
    assert ap["per_threshold"][0.5] == pytest.approx(2 / 4)
    assert ap["per_threshold"][0.95] == pytest.approx(1 / 5)
    assert ap["ap"] == pytest.approx(np.mean(per))
    assert ap["ap_50"] == pytest.approx(0.5) and ap["ap_75"] == pytest.approx(0.5)


def test_average_precision_perfect_empty_and_disjoint():
    from napari_synthseg.metrics import average_precision

    gt = squares()
    assert average_precision(gt, gt)["ap"] == 1.0
    empty = np.zeros_like(gt)
    assert average_precision(empty, empty)["ap"] == 1.0
    assert average_precision(empty, gt)["ap"] == 0.0
    assert average_precision(squares(shift=(6, 0)), gt)["ap"] == 0.0


def test_average_precision_refuses_low_thresholds():
    from napari_synthseg.metrics import average_precision

    with pytest.raises(ValueError, match="at least 0.5"):
        average_precision(squares(), squares(), thresholds=(0.3,))


def test_dataset_scores_pool_average_precision():
    from napari_synthseg.metrics import average_precision

    gt = squares()
    half = squares(boxes=((5, 15, 5, 15),))  # one of two objects found exactly
    scores = DatasetScores()
    scores.add(gt, gt)
    scores.add(half, gt)
    summary = scores.summary()
    # pooled: tp 3, fp 0, fn 1 at every threshold -> 3 / 4, not the mean of per-image APs
    assert summary["ap"] == pytest.approx(0.75) and summary["ap_50"] == pytest.approx(0.75)
    assert average_precision(half, gt)["ap"] == pytest.approx(0.5)


def _one(pred, gt):
    scores = DatasetScores()
    scores.add(pred, gt)
    return scores.summary()


def test_worst_images_finds_the_image_that_called_background_object():
    gt = np.zeros((40, 40), np.uint8)
    gt[5:15, 5:15] = 1
    gt[25:35, 25:35] = 2
    good = gt.copy()
    good[5, 5:15] = 0  # one row missed: a small error
    flooded = np.ones_like(gt)  # the whole background called one object
    per_image = {"good_a": _one(good, gt), "good_b": _one(gt, gt), "flooded": _one(flooded, gt)}

    worst = worst_images(per_image)
    assert [e.name for e in worst] == ["flooded", "good_a"]  # a perfect image holds no error
    flood = worst[0]
    wrong_px = 40 * 40 - 200 + 10  # flooded: 1400 extra; good_a: 10 missed
    assert flood.pixel_share == pytest.approx(1400 / wrong_px)
    assert flood.extra == pytest.approx(1400 / (1600 + 200 + 200)) and flood.missed == 0
    assert (flood.fp, flood.fn) == (1, 2)
    # the pooled scores of the other two images
    assert flood.pixel_iou_without == pytest.approx((190 + 200) / (200 + 200))
    assert flood.object_f1_without == pytest.approx(1.0)
    assert flood.object_share == pytest.approx(1.0)  # good_a's objects still match at IoU >= 0.5

    assert worst_images(per_image, 1) == worst[:1]
    assert worst_images(per_image, 0) == []


def test_worst_images_refuses_bad_input():
    with pytest.raises(ValueError, match="count"):
        worst_images({}, -1)
    with pytest.raises(ValueError, match="lack"):
        worst_images({"a": {"pixel_iou": 1.0}})
