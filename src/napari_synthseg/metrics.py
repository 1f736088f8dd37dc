"""Pixel and object scores of predicted labels against ground truth (pure core)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class PixelScores:
    """Foreground overlap of a prediction with ground truth (label > 0 is foreground)."""

    iou: float
    dice: float
    intersection: int
    union: int
    pred_area: int
    gt_area: int


@dataclass(frozen=True)
class ObjectScores:
    """One-to-one object matching at an IoU threshold."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def _ratio(num: float, den: float, empty: float = 1.0) -> float:
    """num / den, with ``empty`` when both are zero (nothing to find, nothing found)."""
    if den == 0:
        return empty if num == 0 else 0.0
    return float(num) / float(den)


def _check_pair(pred, gt):
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    for name, arr in (("prediction", pred), ("ground truth", gt)):
        if arr.dtype.kind not in "biu":
            raise TypeError(f"{name} must be a bool or integer label array; got dtype {arr.dtype}")
        if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
            raise ValueError(f"{name} has negative labels; labels must be >= 0")
    return pred, gt


def pixel_scores(pred: np.ndarray, gt: np.ndarray) -> PixelScores:
    """Pixel IoU and Dice of the foregrounds (> 0) of ``pred`` and ``gt``.

    Two empty masks score 1 (perfect agreement that there is nothing).
    """
    pred, gt = _check_pair(pred, gt)
    p, g = pred > 0, gt > 0
    inter = int(np.count_nonzero(p & g))
    pa, ga = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    union = pa + ga - inter
    return PixelScores(iou=_ratio(inter, union), dice=_ratio(2 * inter, pa + ga),
                       intersection=inter, union=union, pred_area=pa, gt_area=ga)


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (predicted, true) object pair that overlaps.

    Built from a sparse contingency table of label pairs, so the cost is one pass
    over the pixels whatever the number of objects.

    Returns
    -------
    (iou, pred_ids, gt_ids)
        ``iou[i, j]`` for ``pred_ids[i]`` and ``gt_ids[j]`` (dense float64 array).
    """
    pred, gt = _check_pair(pred, gt)
    p = pred.ravel().astype(np.int64)
    g = gt.ravel().astype(np.int64)
    pred_ids = np.unique(p[p > 0])
    gt_ids = np.unique(g[g > 0])
    if pred_ids.size == 0 or gt_ids.size == 0:
        return np.zeros((pred_ids.size, gt_ids.size)), pred_ids, gt_ids
    # Compact ids to 0..n so the table is small even for sparse label values.
    pi = np.searchsorted(pred_ids, p) + 1
    pi[p == 0] = 0
    gi = np.searchsorted(gt_ids, g) + 1
    gi[g == 0] = 0
    table = sparse.coo_matrix((np.ones(p.size, dtype=np.int64), (pi, gi)),
                              shape=(pred_ids.size + 1, gt_ids.size + 1)).toarray()
    inter = table[1:, 1:].astype(np.float64)
    pred_area = table[1:, :].sum(axis=1)[:, None]
    gt_area = table[:, 1:].sum(axis=0)[None, :]
    union = pred_area + gt_area - inter
    return inter / np.maximum(union, 1), pred_ids, gt_ids


def object_scores(pred: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5) -> ObjectScores:
    """Count matched objects: a predicted and a true object match when their IoU > threshold.

    With ``iou_threshold >= 0.5`` a match is unique; below it, pairs are taken greedily
    by decreasing IoU so each object is matched at most once.
    """
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1); got {iou_threshold!r}")
    iou, pred_ids, gt_ids = iou_matrix(pred, gt)
    if iou.size == 0:
        tp = 0
    elif iou_threshold >= 0.5:
        tp = int(np.count_nonzero(iou > iou_threshold))
    else:
        rows, cols = np.nonzero(iou > iou_threshold)
        order = np.argsort(-iou[rows, cols], kind="stable")
        used_r, used_c, tp = set(), set(), 0
        for r, c in zip(rows[order], cols[order]):  # loop over candidate pairs, not pixels
            if r not in used_r and c not in used_c:
                used_r.add(r)
                used_c.add(c)
                tp += 1
    fp = int(pred_ids.size) - tp
    fn = int(gt_ids.size) - tp
    return _object_scores(tp, fp, fn)


def _object_scores(tp: int, fp: int, fn: int) -> ObjectScores:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return ObjectScores(tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1)


class DatasetScores:
    """Pooled scores over many images: sums of intersections/unions and of tp/fp/fn.

    Examples
    --------
    >>> scores = DatasetScores()
    >>> scores.add(pred, gt)  # doctest: +SKIP
    >>> scores.summary()["pixel_iou"]  # doctest: +SKIP
    """

    def __init__(self, iou_threshold: float = 0.5):
        self.iou_threshold = float(iou_threshold)
        self.n_images = 0
        self.intersection = self.union = self.pred_area = self.gt_area = 0
        self.tp = self.fp = self.fn = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> tuple[PixelScores, ObjectScores]:
        """Score one image and add it to the totals; returns that image's scores."""
        px = pixel_scores(pred, gt)
        ob = object_scores(pred, gt, self.iou_threshold)
        self.n_images += 1
        self.intersection += px.intersection
        self.union += px.union
        self.pred_area += px.pred_area
        self.gt_area += px.gt_area
        self.tp += ob.tp
        self.fp += ob.fp
        self.fn += ob.fn
        return px, ob

    def summary(self) -> dict:
        """Pooled pixel_iou, pixel_dice, object_precision, object_recall, object_f1 (+ counts)."""
        ob = _object_scores(self.tp, self.fp, self.fn)
        return {
            "pixel_iou": _ratio(self.intersection, self.union),
            "pixel_dice": _ratio(2 * self.intersection, self.pred_area + self.gt_area),
            "object_precision": ob.precision,
            "object_recall": ob.recall,
            "object_f1": ob.f1,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "n_images": self.n_images,
        }
