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

from napari_synthseg.metrics import pixel_scores
from napari_synthseg.model.data import check_pairs
from napari_synthseg.model.params import REAL_VALIDATION_PIXELS, TrainingParams
from napari_synthseg.model.prediction import SegmentationModel, predict
from napari_synthseg.model.sidecar import prediction_info

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
    """

    def __init__(self, pairs, *, network: dict, normalization: str, max_pixels: int = REAL_VALIDATION_PIXELS,
                 seed: int = TrainingParams.seed):
        if not isinstance(max_pixels, (int, np.integer)) or isinstance(max_pixels, bool) or max_pixels < 1:
            raise ValueError(f"real_validation_pixels must be a positive integer, got {max_pixels!r}")
        pairs = list(pairs)
        knowns = [None if len(pair) == 2 else np.asarray(pair[2], dtype=bool) for pair in pairs]
        checked = []
        for (image, labels), known in zip(check_pairs([pair[:2] for pair in pairs], "real_validation"), knowns):
            if known is not None and known.shape != labels.shape:
                raise ValueError(f"real_validation: a known mask of shape {known.shape} for labels of shape "
                                 f"{labels.shape}; give one mask per image, of its shape")
            checked.append((_centre_window(image), _centre_window(labels) > 0,
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
        self.info = prediction_info(network, normalization)
        self._source = self._model = None

    def score(self, keras_model) -> float:
        """Pooled pixel IoU of ``predict``'s labels (default parameters) against the masks.

        With known masks the score is the mean of the object and the background IoU over the known
        pixels: what people click is mostly objects, so the object IoU alone would favour a model
        that calls everything object; the background IoU counts each rejected pixel it gets wrong.
        """
        if self._source is not keras_model:
            # a functional copy sharing the layers (so it sees every weight update): it predicts
            # without the training model's XLA setting, which would compile for every tile shape
            self._model = SegmentationModel(keras_model=keras.Model(keras_model.inputs, keras_model.outputs),
                                            info=self.info)
            self._source = keras_model
        inter = union = bg_inter = bg_union = 0
        balanced = any(known is not None for _, _, known in self.pairs)
        for image, mask, known in self.pairs:
            labels = predict(self._model, image, precision="float32")
            if known is not None:
                labels, mask = labels[known], mask[known]
            scores = pixel_scores(labels, mask)
            inter, union = inter + scores.intersection, union + scores.union
            if balanced:
                background = pixel_scores(labels == 0, mask == 0)
                bg_inter, bg_union = bg_inter + background.intersection, bg_union + background.union
        objects = inter / union if union else math.nan
        if not balanced:
            return objects
        return float(np.nanmean([objects, bg_inter / bg_union if bg_union else math.nan]))


def _centre_window(array: np.ndarray) -> np.ndarray:
    starts = [max(0, (size - REAL_VALIDATION_SIDE) // 2) for size in array.shape]
    return array[starts[0]:starts[0] + REAL_VALIDATION_SIDE, starts[1]:starts[1] + REAL_VALIDATION_SIDE]


__all__ = ["REAL_VALIDATION_PIXELS", "REAL_VALIDATION_SIDE", "RealValidation"]
