"""Is the model's backend installed? Answered without importing it (pure core).

A plain ``pip install napari-synthseg`` (what napari's plugin menu does) brings Keras but no
backend; training and prediction must say so before any work starts, with the line that fixes it.
"""

from __future__ import annotations

import importlib.util
import os

#: Keras backend -> the module that must be importable for it.
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

#: What to install for each backend (the extras of this package for TensorFlow).
INSTALL_HINTS = {
    "tensorflow": 'pip install "napari-synthseg[cpu]" (or "napari-synthseg[gpu]" for an NVIDIA GPU)',
    "jax": 'pip install jax (or set KERAS_BACKEND=tensorflow and pip install "napari-synthseg[cpu]")',
    "torch": 'pip install torch (or set KERAS_BACKEND=tensorflow and pip install "napari-synthseg[cpu]")',
}


def keras_backend(backend: str | None = None) -> str:
    """The Keras backend that model work will use: ``backend``, else ``KERAS_BACKEND``, else TensorFlow."""
    return (backend or os.environ.get("KERAS_BACKEND") or "tensorflow").strip().lower()


def missing_backend_message(backend: str | None = None) -> str | None:
    """None when Keras and its backend are installed; otherwise one line naming what is missing and the fix."""
    name = keras_backend(backend)
    if name not in BACKEND_MODULES:
        return (f"unknown Keras backend {name!r} (KERAS_BACKEND); use one of "
                f"{', '.join(BACKEND_MODULES)}, e.g. unset KERAS_BACKEND for TensorFlow")
    for module in ("keras", BACKEND_MODULES[name]):
        if importlib.util.find_spec(module) is None:
            return (f"model training and prediction need {module!r}, which is not installed; "
                    f"install it with: {INSTALL_HINTS[name]}")
    return None
