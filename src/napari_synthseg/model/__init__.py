"""The learned model: network, training data, training, prediction and the child-process runner.

Importing this package does not import Keras or TensorFlow; its modules do. It holds the model's
settings (``TrainingParams``, ``PredictionParams``) and defaults, from ``model.params``, so the
command line, the docks and the headless modules read them without loading Keras.
"""

from napari_synthseg.model.params import (
    DEFAULT_BASE_FILTERS,
    DEFAULT_BATCH,
    DEFAULT_DEPTH,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    LR_FLOOR,
    LR_SCHEDULES,
    REAL_CLUMPS,
    XLA_CHOICES,
    XLA_MIN_STEPS,
    PredictionParams,
    TrainingParams,
)

__all__ = ["DEFAULT_BASE_FILTERS", "DEFAULT_BATCH", "DEFAULT_DEPTH", "DEFAULT_LR_SCHEDULE", "DEFAULT_MIN_CONFIDENCE",
           "DEFAULT_OVERLAP", "DEFAULT_TILE", "LR_FLOOR", "LR_SCHEDULES", "PredictionParams", "REAL_CLUMPS",
           "TrainingParams", "XLA_CHOICES", "XLA_MIN_STEPS"]
