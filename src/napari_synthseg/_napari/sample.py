"""napari sample-data contribution: an EM-like scene with its ground truth (no napari import)."""

from __future__ import annotations

from ..sample_data import make_sample_scene


def sample_grains():
    """Return napari LayerData tuples: the gray image and its ground-truth labels."""
    image, labels = make_sample_scene(seed=0)
    return [
        (image, {"name": "grains"}, "image"),
        (labels, {"name": "grains ground truth"}, "labels"),
    ]
