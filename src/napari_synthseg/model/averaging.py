"""An exponential moving average of a Keras model's weights (backend-agnostic, numpy).

Short CPU trainings end wherever the last noisy batches left the weights; validating and
saving the running average instead gives a steadier model (``train_model(weight_average=...)``;
measured in docs/benchmarks-archive.md, "Network size, test-time augmentation and weight averaging").
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


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
        own = model.get_weights()
        model.set_weights([a.astype(w.dtype) for a, w in zip(self.values, own)])
        try:
            yield model
        finally:
            model.set_weights(own)
