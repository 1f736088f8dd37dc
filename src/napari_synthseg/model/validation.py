"""Score a training network on real images the way the user will see it: whole images, tiled
``predict`` with its post-processing, pooled pixel IoU against the images' masks.

The masks may be the images' own auto-segmentation: a checkpoint's agreement with it ranks
checkpoints the way their ground-truth scores do, where the synthetic validation does not
(docs/benchmarks.md, "Why these defaults").
"""

from __future__ import annotations

import math

import keras
import numpy as np
from scipy import ndimage as ndi

from napari_synthseg.curation import OUTLINE_RING_PX
from napari_synthseg.metrics import iou_matrix, pixel_scores
from napari_synthseg.model.data import check_pairs
from napari_synthseg.model.params import REAL_VALIDATION_PIXELS, TrainingParams
from napari_synthseg.model.prediction import SegmentationModel, predict
from napari_synthseg.model.sidecar import prediction_info

#: IoU above which a predicted instance matches a curated object (as the metrics' object matching).
MATCH_IOU = 0.5
#: Images larger than this on a side are scored on a centred window of this size.
REAL_VALIDATION_SIDE = 1024
_SUBSET_STREAM = 5


class RealValidation:
    """A fixed, seeded set of real images with masks, scored through ``predict``.

    Parameters
    ----------
    pairs : sequence of (image, labels) or (image, labels, known)
        2D gray (or RGB) images and masks of the same height and width (> 0 = object). With
        ``known`` (a bool mask, e.g. ``Curation.known()``) only those pixels are scored: what a
        person said about an image, and nothing about the rest.
    network : dict
        The network description of the sidecar (``pad_multiple`` is needed for tiling).
    normalization : {"percentile", "anchored"}
        The network's input scaling.
    max_pixels : int
        Pixel budget: images are taken in a seeded order while they fit (at least one).
    seed : int
        Seeds that order.
    ring_px : int
        With ``known``: known background within this many pixels (city-block) of a labelled object
        is the ring that ``Curation.known`` adds; it is left out of the background term.
    """

    def __init__(self, pairs, *, network: dict, normalization: str, max_pixels: int = REAL_VALIDATION_PIXELS,
                 seed: int = TrainingParams.seed, ring_px: int = OUTLINE_RING_PX):
        if not isinstance(max_pixels, (int, np.integer)) or isinstance(max_pixels, bool) or max_pixels < 1:
            raise ValueError(f"real_validation_pixels must be a positive integer, got {max_pixels!r}")
        pairs = list(pairs)
        knowns = [None if len(pair) == 2 else np.asarray(pair[2], dtype=bool) for pair in pairs]
        if len({known is None for known in knowns}) > 1:
            raise ValueError("real_validation mixes images with and without known masks; give a known mask "
                             "for every image (a curation) or for none")
        checked = []
        for (image, labels), known in zip(check_pairs([pair[:2] for pair in pairs], "real_validation"), knowns):
            if known is not None and known.shape != labels.shape:
                raise ValueError(f"real_validation: a known mask of shape {known.shape} for labels of shape "
                                 f"{labels.shape}; give one mask per image, of its shape")
            labels = _centre_window(labels)
            checked.append((_centre_window(image), labels > 0 if known is None else labels,
                            None if known is None else _centre_window(known)))
        if not checked:
            raise ValueError("real_validation is empty; give (image, labels) pairs or None")
        order = np.random.default_rng([seed, _SUBSET_STREAM]).permutation(len(checked))
        self.pairs, used = [], 0
        for i in order:
            size = checked[i][0].size
            if self.pairs and used + size > max_pixels:
                continue
            self.pairs.append(checked[i])
            used += size
        self.pixels = used
        self._background = [None if known is None else explicit_background(labels, known, ring_px)
                            for _, labels, known in self.pairs]
        self.info = prediction_info(network, normalization)
        self._source = self._model = None

    @property
    def curated(self) -> bool:
        """The masks are curations (known masks): what a person said, not whole-image labels."""
        return self._background[0] is not None

    def score(self, keras_model) -> float:
        """How well ``predict``'s labels (default parameters) agree with the images' masks.

        Without known masks: the pooled pixel IoU.

        With known masks (curations) the score is the mean of two agreements with what a person
        said: the share of labelled objects that a predicted instance
        matches at IoU > ``MATCH_IOU`` (``object_agreement``: a merge with a neighbour or a split
        loses the object), and the share of the known background (beyond the ring) predicted
        background. Each object counts alike, whatever its size; the background term keeps a
        model that calls everything object from winning. Matching, not the IoU itself, because a
        picked object's outline is the previous model's own: its IoU there is 1 by construction,
        and any other model would lose to it by the pixels its outline moves.
        """
        if self._source is not keras_model:
            # a functional copy sharing the layers (so it sees every weight update): it predicts
            # without the training model's XLA setting, which would compile for every tile shape
            self._model = SegmentationModel(keras_model=keras.Model(keras_model.inputs, keras_model.outputs),
                                            info=self.info)
            self._source = keras_model
        segmentations = [predict(self._model, image, precision="float32") for image, _, _ in self.pairs]
        return self._click_agreement(segmentations) if self.curated else self._pixel_iou(segmentations)

    def _pixel_iou(self, segmentations: list[np.ndarray]) -> float:
        inter = union = 0
        for labels, (_, mask, _) in zip(segmentations, self.pairs):
            scores = pixel_scores(labels, mask)
            inter, union = inter + scores.intersection, union + scores.union
        return inter / union if union else math.nan

    def _click_agreement(self, segmentations: list[np.ndarray]) -> float:
        objects = np.concatenate([object_agreement(labels, curated)
                                  for labels, (_, curated, _) in zip(segmentations, self.pairs)])
        right = sum(int(np.count_nonzero(bg & (labels == 0))) for labels, bg in zip(segmentations, self._background))
        known = sum(int(np.count_nonzero(bg)) for bg in self._background)
        parts = [float(np.mean(objects > MATCH_IOU)) if objects.size else math.nan,
                 right / known if known else math.nan]
        return float(np.nanmean(parts))


def explicit_background(labels: np.ndarray, known: np.ndarray, ring_px: int) -> np.ndarray:
    """Known background farther than ``ring_px`` (city-block) from every labelled object."""
    background = np.asarray(known, dtype=bool) & (np.asarray(labels) == 0)
    if ring_px > 0 and np.any(labels):
        distance = ndi.distance_transform_cdt(np.asarray(labels) == 0, metric="taxicab")
        background &= distance > ring_px
    return background


def object_agreement(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """IoU of each labelled object with the predicted instance that matches it best (0 if none).

    One value per label id present in ``labels``, in increasing id order. A merge with a
    neighbour, a split and a wrong outline each cost in proportion to the pixels they get wrong.
    """
    iou, _, label_ids = iou_matrix(predicted, labels)
    return iou.max(axis=0) if iou.shape[0] else np.zeros(label_ids.size)


def _centre_window(array: np.ndarray) -> np.ndarray:
    starts = [max(0, (size - REAL_VALIDATION_SIDE) // 2) for size in array.shape]
    return array[starts[0]:starts[0] + REAL_VALIDATION_SIDE, starts[1]:starts[1] + REAL_VALIDATION_SIDE]


__all__ = ["REAL_VALIDATION_PIXELS", "REAL_VALIDATION_SIDE", "RealValidation"]
