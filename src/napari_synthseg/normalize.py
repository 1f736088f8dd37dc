"""Robust intensity normalisation shared by training and prediction (pure core)."""

from __future__ import annotations

import numpy as np

#: Default percentiles mapped to 0 and 1.
DEFAULT_PERCENTILES = (1.0, 99.8)


def percentile_range(image: np.ndarray, low: float = DEFAULT_PERCENTILES[0],
                     high: float = DEFAULT_PERCENTILES[1], max_samples: int = 1_000_000) -> tuple[float, float]:
    """Intensities at the ``low`` and ``high`` percentiles, from a strided sample for big images."""
    flat = np.asarray(image).ravel()
    if flat.size == 0:
        return 0.0, 1.0
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    lo, hi = np.percentile(flat.astype(np.float32), [low, high])
    return float(lo), float(hi)


def percentile_normalize(image: np.ndarray, low: float = DEFAULT_PERCENTILES[0],
                         high: float = DEFAULT_PERCENTILES[1],
                         value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map intensities so the ``low``/``high`` percentiles become 0 and 1 (float32, not clipped).

    Works the same for uint8, uint16 and float images, so a model trained on one sees the
    others on the same scale. ``value_range`` skips the percentile computation (for tiles
    of one big image, which must share the whole image's range).
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = value_range if value_range is not None else percentile_range(image, low, high)
    scale = np.float32(1.0 / max(hi - lo, 1e-6))
    return (image - np.float32(lo)) * scale
