"""Averages of a Keras model's weights (backend-agnostic, numpy): an exponential moving
average over steps, and an equal-weight average over checkpoints.

Short CPU trainings end wherever the last noisy batches left the weights (and the batch-norm
statistics, which follow the last few batches); an average over many steps is steadier
(``train_model(weight_average=..., average_checkpoints=...)``; docs/benchmarks.md, "Why these defaults").
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


@contextmanager
def _weights_applied(model, values):
    """Give ``model`` the weights ``values`` (float64 arrays) inside the block, its own after it."""
    own = model.get_weights()
    model.set_weights([v.astype(w.dtype) for v, w in zip(values, own)])
    try:
        yield model
    finally:
        model.set_weights(own)


class WeightAverage:
    """Running average ``avg = m * avg + (1 - m) * weights`` over training steps.

    The momentum ramps up as ``(1 + n) / (10 + n)`` until it reaches ``momentum``, so the
    first steps are not tied to the random initial weights.

    Parameters
    ----------
    model
        A built Keras model; its current weights start the average.
    momentum
        Per-step momentum in [0, 1): 0.99 averages over about the last 100 steps; 0 turns
        averaging off (``update`` and ``applied`` then leave the model as it is).
    """

    def __init__(self, model, momentum: float):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"weight_average must be in [0, 1), got {momentum!r} (0 turns averaging off)")
        self.momentum = float(momentum)
        self.updates = 0
        self.values = [np.array(w, dtype=np.float64) for w in model.get_weights()] if momentum else None

    def update(self, model) -> None:
        """Fold the model's current weights into the average (call after each step)."""
        if self.values is None:
            return
        self.updates += 1
        m = min(self.momentum, (1.0 + self.updates) / (10.0 + self.updates))
        for average, weight in zip(self.values, model.get_weights()):
            average *= m
            average += (1.0 - m) * weight

    @contextmanager
    def applied(self, model):
        """Give ``model`` the averaged weights inside the block, its own weights after it."""
        if self.values is None:
            yield model
            return
        with _weights_applied(model, self.values):
            yield model


class CheckpointAverage:
    """Equal-weight average of the weights a model had at the checkpoints ``add`` was called on.

    Batch-norm statistics are averaged with the other weights: checkpoints of one run, late in
    its learning-rate schedule, lie close enough for their average to work as a network.
    """

    def __init__(self):
        self.count = 0
        self.total: list[np.ndarray] | None = None

    def add(self, model) -> None:
        """Fold the model's current weights into the average."""
        weights = model.get_weights()
        if self.total is None:
            self.total = [np.array(w, dtype=np.float64) for w in weights]
        else:
            for total, weight in zip(self.total, weights):
                total += weight
        self.count += 1

    @contextmanager
    def applied(self, model):
        """Give ``model`` the averaged weights inside the block (at least one checkpoint added)."""
        if not self.count:
            raise ValueError("no checkpoint was added to the average")
        with _weights_applied(model, [total / self.count for total in self.total]):
            yield model
