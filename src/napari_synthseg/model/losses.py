"""Loss and metric for the 3-channel segmentation output (``keras.ops`` only, any backend).

Both are registered with Keras, so a saved ``.keras`` model loads once this module is imported.
Targets may carry a fourth channel, ``known`` (``targets.curation_targets``): every term then
counts only the known pixels and is normalised by their number, so a curated image's unknown
pixels (nobody said anything about them) teach nothing; a patch with no known pixel adds 0.
A fifth channel, ``shape_known``, also leaves the distance and boundary terms out where it is 0
(inside an auto-segmented clump, whose particles' meeting lines nobody knows).
"""

from __future__ import annotations

import keras
from keras import ops

from napari_synthseg.model.targets import SHAPE_KNOWN_CHANNEL

_EPS = 1e-6


def _known(y_true):
    """The known-pixel weights (B, H, W): the fourth target channel, or 1 everywhere."""
    if y_true.shape[-1] is not None and y_true.shape[-1] > 3:
        return y_true[..., 3]
    return ops.ones_like(y_true[..., 0])


def _shape_known(y_true, known):
    """Weights (B, H, W) of the distance and boundary terms: ``known`` times the fifth channel."""
    if y_true.shape[-1] is not None and y_true.shape[-1] > SHAPE_KNOWN_CHANNEL:
        return known * y_true[..., SHAPE_KNOWN_CHANNEL]
    return known


def _bce(target, prob):
    prob = ops.clip(prob, _EPS, 1.0 - _EPS)
    return -(target * ops.log(prob) + (1.0 - target) * ops.log(1.0 - prob))


@keras.saving.register_keras_serializable(package="napari_synthseg")
class SegmentationLoss(keras.losses.Loss):
    """Per-sample sum of three channel losses (foreground, distance, boundary).

    - foreground: binary cross-entropy + soft Dice (Dice keeps small or sparse objects from
      being drowned by the background);
    - distance: cross-entropy against the normalised inner distance, counted double inside
      objects, where the object centres that split clumps live;
    - boundary: cross-entropy with positive pixels weighted ``boundary_pos_weight`` times, since
      the 2-px band covers only a few percent of a scene.

    Parameters
    ----------
    dice_weight, distance_weight, boundary_weight : float
        Weights of the soft Dice, distance and boundary terms (foreground BCE has weight 1).
    boundary_pos_weight : float
        Weight of boundary pixels relative to non-boundary pixels.
    """

    def __init__(self, dice_weight: float = 1.0, distance_weight: float = 1.0,
                 boundary_weight: float = 1.0, boundary_pos_weight: float = 5.0,
                 name: str = "segmentation_loss", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.dice_weight = float(dice_weight)
        self.distance_weight = float(distance_weight)
        self.boundary_weight = float(boundary_weight)
        self.boundary_pos_weight = float(boundary_pos_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        spatial = (1, 2)
        known = _known(y_true)
        fg_true, fg_pred = y_true[..., 0], y_pred[..., 0]
        # a patch without known pixels divides 0 by 1 instead of by 0
        fg_bce = ops.sum(known * _bce(fg_true, fg_pred), axis=spatial) / ops.maximum(
            ops.sum(known, axis=spatial), 1.0)
        intersection = ops.sum(known * fg_true * fg_pred, axis=spatial)
        sizes = ops.sum(known * fg_true, axis=spatial) + ops.sum(known * fg_pred, axis=spatial)
        dice = 1.0 - (2.0 * intersection + 1.0) / (sizes + 1.0)

        shape_known = _shape_known(y_true, known)
        distance_weights = (1.0 + fg_true) * shape_known
        distance = ops.sum(distance_weights * _bce(y_true[..., 1], y_pred[..., 1]), axis=spatial) / ops.maximum(
            ops.sum(distance_weights, axis=spatial), 1.0)

        bnd_true = y_true[..., 2]
        bnd_weights = (1.0 + (self.boundary_pos_weight - 1.0) * bnd_true) * shape_known
        boundary = ops.sum(bnd_weights * _bce(bnd_true, y_pred[..., 2]), axis=spatial) / ops.maximum(
            ops.sum(bnd_weights, axis=spatial), 1.0)

        return (fg_bce + self.dice_weight * dice + self.distance_weight * distance
                + self.boundary_weight * boundary)

    def get_config(self):
        config = super().get_config()
        config.update(dice_weight=self.dice_weight, distance_weight=self.distance_weight,
                      boundary_weight=self.boundary_weight, boundary_pos_weight=self.boundary_pos_weight)
        return config


@keras.saving.register_keras_serializable(package="napari_synthseg")
class ForegroundIoU(keras.metrics.Metric):
    """Pooled intersection over union of the foreground channel thresholded at ``threshold``.

    Intersections and unions are summed over all batches before dividing, so one empty patch
    does not swing the score. Both empty gives 1. With a ``known`` channel (4-channel targets)
    only known pixels are counted.
    """

    def __init__(self, threshold: float = 0.5, name: str = "fg_iou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = float(threshold)
        self.intersection = self.add_variable(shape=(), initializer="zeros", name="intersection")
        self.union = self.add_variable(shape=(), initializer="zeros", name="union")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.cast(y_true[..., 0] > 0.5, "float32")
        pred = ops.cast(y_pred[..., 0] > self.threshold, "float32")
        known = _known(ops.cast(y_true, "float32"))
        self.intersection.assign_add(ops.sum(known * truth * pred))
        self.union.assign_add(ops.sum(known * ops.maximum(truth, pred)))

    def result(self):
        return ops.where(self.union > 0, self.intersection / ops.maximum(self.union, 1.0), 1.0)

    def reset_state(self):
        self.intersection.assign(0.0)
        self.union.assign(0.0)

    def get_config(self):
        return {"threshold": self.threshold, "name": self.name, "dtype": self.dtype}
