"""Small synthetic images shared by the napari tests."""

import numpy as np


def grains(shape=(96, 128), seed=0, n=8):
    """A noisy dark image with ``n`` bright disks and their labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = rng.normal(50, 6, shape)
    labels = np.zeros(shape, np.uint32)
    for i in range(n):
        cy, cx, r = rng.integers(12, shape[0] - 12), rng.integers(12, shape[1] - 12), rng.integers(5, 10)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[disk] = rng.uniform(120, 220)
        labels[disk] = i + 1
    return np.clip(image, 0, 255).astype(np.uint8), labels
