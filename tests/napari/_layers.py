"""Snapshots of a viewer's layers, to assert that a failed action changed none of them."""

import numpy as np


def layer_snapshot(viewer) -> list[tuple]:
    """Name, type and a copy of the data of every layer (to assert that nothing changed)."""
    return [(layer.name, type(layer).__name__, np.array(layer.data, copy=True)) for layer in viewer.layers]


def same_layers(before: list[tuple], after: list[tuple]) -> bool:
    return len(before) == len(after) and all(
        b[0] == a[0] and b[1] == a[1] and b[2].shape == a[2].shape and np.array_equal(b[2], a[2])
        for b, a in zip(before, after))
