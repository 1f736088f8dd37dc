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
    _check_iou_threshold(iou_threshold)
    iou, pred_ids, gt_ids = iou_matrix(pred, gt)
    return _match(iou, pred_ids.size, gt_ids.size, iou_threshold)


def _check_iou_threshold(iou_threshold: float) -> None:
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1); got {iou_threshold!r}")


def _match(iou: np.ndarray, n_pred: int, n_gt: int, iou_threshold: float) -> ObjectScores:
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
    return _object_scores(tp, n_pred - tp, n_gt - tp)


#: IoU thresholds of the average precision (0.5, 0.55, ..., 0.95), as in the instance-segmentation literature.
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def matched_counts(iou: np.ndarray, n_pred: int, n_gt: int,
                   thresholds=AP_THRESHOLDS) -> np.ndarray:
    """``(tp, fp, fn)`` per threshold (rows) from an IoU matrix; thresholds must be >= 0.5.

    At IoU > 0.5 an object overlaps at most one other that much, so matches are unique
    and counting them needs no assignment.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.size and thresholds.min() < 0.5:
        raise ValueError("average-precision thresholds must be at least 0.5 (unique matches)")
    values = iou[iou > 0.5] if iou.size else np.zeros(0)
    tp = np.array([np.count_nonzero(values > t) for t in thresholds], dtype=np.int64)
    return np.stack([tp, n_pred - tp, n_gt - tp], axis=1)


def average_precision(pred: np.ndarray, gt: np.ndarray, thresholds=AP_THRESHOLDS) -> dict:
    """Average precision of instance labels: the mean over IoU thresholds of TP / (TP + FP + FN).

    This is the object-matching "AP" of the cell- and particle-segmentation literature
    (StarDist, Cellpose): a predicted and a true object match when their IoU exceeds the
    threshold. Returns ``{"ap": mean, "ap_50": at 0.5, "ap_75": at 0.75, "per_threshold": {t: ap}}``
    (``ap_75`` only when 0.75 is among the thresholds). Two empty label images score 1.
    """
    iou, pred_ids, gt_ids = iou_matrix(pred, gt)
    return _ap_summary(matched_counts(iou, pred_ids.size, gt_ids.size, thresholds), thresholds)


def _ap_summary(counts: np.ndarray, thresholds) -> dict:
    per = {float(t): _ratio(tp, tp + fp + fn) for t, (tp, fp, fn) in zip(thresholds, counts)}
    result = {"ap": float(np.mean(list(per.values()))) if per else float("nan"),
              "ap_50": per.get(0.5, float("nan"))}
    if 0.75 in per:
        result["ap_75"] = per[0.75]
    result["per_threshold"] = per
    return result


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
        _check_iou_threshold(iou_threshold)
        self.iou_threshold = float(iou_threshold)
        self.n_images = 0
        self.intersection = self.union = self.pred_area = self.gt_area = 0
        self.tp = self.fp = self.fn = 0
        self._ap_counts = np.zeros((len(AP_THRESHOLDS), 3), dtype=np.int64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> tuple[PixelScores, ObjectScores]:
        """Score one image and add it to the totals; returns that image's scores."""
        px = pixel_scores(pred, gt)
        iou, pred_ids, gt_ids = iou_matrix(pred, gt)
        ob = _match(iou, pred_ids.size, gt_ids.size, self.iou_threshold)
        self._ap_counts += matched_counts(iou, pred_ids.size, gt_ids.size)
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
        """Pooled pixel_iou, pixel_dice, object_precision, object_recall, object_f1, average
        precision (``ap`` over IoU 0.5-0.95, ``ap_50``, ``ap_75``; pooled TP/FP/FN per threshold)
        and the counts."""
        ob = _object_scores(self.tp, self.fp, self.fn)
        ap = _ap_summary(self._ap_counts, AP_THRESHOLDS)
        return {
            "pixel_iou": _ratio(self.intersection, self.union),
            "pixel_dice": _ratio(2 * self.intersection, self.pred_area + self.gt_area),
            "object_precision": ob.precision,
            "object_recall": ob.recall,
            "object_f1": ob.f1,
            "ap": ap["ap"], "ap_50": ap["ap_50"], "ap_75": ap["ap_75"],
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "n_images": self.n_images,
            "intersection": self.intersection, "union": self.union,
            "pred_area": self.pred_area, "gt_area": self.gt_area,
        }


#: How many images ``worst_images`` (and ``synthseg evaluate``) lists by default.
DEFAULT_WORST = 5


@dataclass(frozen=True)
class ImageErrorShare:
    """How much of a folder's pooled error one image holds (``worst_images``).

    ``missed`` and ``extra`` are the image's missed and extra foreground pixels as shares of the
    pooled union; ``pixel_share`` and ``object_share`` its shares of the pooled wrong pixels and of
    the pooled wrong objects (FP + FN); ``pixel_iou_without`` and ``object_f1_without`` the pooled
    scores of the other images.
    """

    name: str
    pixel_share: float
    object_share: float
    missed: float
    extra: float
    fp: int
    fn: int
    pixel_iou_without: float
    object_f1_without: float


def worst_images(per_image: dict, count: int = DEFAULT_WORST) -> list[ImageErrorShare]:
    """The ``count`` images that hold the largest share of the pooled pixel or object error.

    Pooled scores weigh images by their pixels and objects, so one image of background called
    object can hold a quarter of a folder's error; these are the images to look at first.

    Parameters
    ----------
    per_image
        ``{name: DatasetScores.summary()}`` of single images (``pipeline.score_labels``'s
        ``per_image``).
    count
        How many to return (0: none).
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a whole number >= 0, got {count!r}")
    keys = ("intersection", "union", "pred_area", "gt_area", "tp", "fp", "fn")
    for name, scores in per_image.items():
        missing = [key for key in keys if key not in scores]
        if missing:
            raise ValueError(f"scores of {name!r} lack {', '.join(missing)}; give DatasetScores.summary() of one image")
    total = {key: sum(int(s[key]) for s in per_image.values()) for key in keys}
    wrong_px = total["union"] - total["intersection"]
    wrong_obj = total["fp"] + total["fn"]
    shares = []
    for name, s in per_image.items():
        rest = {key: total[key] - int(s[key]) for key in keys}
        shares.append(ImageErrorShare(
            name=str(name),
            pixel_share=_ratio(int(s["union"]) - int(s["intersection"]), wrong_px, empty=0.0),
            object_share=_ratio(int(s["fp"]) + int(s["fn"]), wrong_obj, empty=0.0),
            missed=_ratio(int(s["gt_area"]) - int(s["intersection"]), total["union"], empty=0.0),
            extra=_ratio(int(s["pred_area"]) - int(s["intersection"]), total["union"], empty=0.0),
            fp=int(s["fp"]), fn=int(s["fn"]),
            pixel_iou_without=_ratio(rest["intersection"], rest["union"]),
            object_f1_without=_object_scores(rest["tp"], rest["fp"], rest["fn"]).f1))
    shares.sort(key=lambda e: (-max(e.pixel_share, e.object_share), e.name))
    return [e for e in shares[:count] if e.pixel_share > 0 or e.object_share > 0]
