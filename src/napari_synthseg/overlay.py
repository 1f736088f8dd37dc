"""Outline overlays of labels on images, for a person to look at (pure core)."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

from .image_io import to_gray
from .normalize import percentile_normalize


def make_overlay(image: np.ndarray, labels: np.ndarray, *, color=(255, 40, 40),
                 thickness: int = 1) -> np.ndarray:
    """Draw object outlines on a 2D image.

    Parameters
    ----------
    image
        2D gray or RGB image (any dtype); contrast-stretched for display.
    labels
        Instance labels of the same spatial shape.
    color
        RGB colour of the outlines.
    thickness
        Outline width in pixels (outer boundary grows by ``thickness - 1``).

    Returns
    -------
    np.ndarray
        uint8 RGB image ``(Y, X, 3)``.
    """
    gray = np.asarray(to_gray(image), dtype=np.float32)
    labels = np.asarray(labels)
    if gray.ndim != 2 or labels.shape != gray.shape:
        raise ValueError(
            f"make_overlay needs a 2D image and labels of the same shape, got {gray.shape} and {labels.shape}"
        )
    shown = np.clip(percentile_normalize(gray, 0.5, 99.5), 0, 1)
    rgb = np.repeat((shown * 255).astype(np.uint8)[..., None], 3, axis=-1)
    edges = find_boundaries(labels, mode="inner")
    if thickness > 1:
        from scipy.ndimage import binary_dilation

        edges = binary_dilation(edges, iterations=thickness - 1) & (labels > 0)
    rgb[edges] = np.asarray(color, dtype=np.uint8)
    return rgb
