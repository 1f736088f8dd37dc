"""napari-synthseg: segment EM images without hand-drawn masks.

The names a script needs, from reading an image to measuring its objects::

    from napari_synthseg import read_image, autosegment, ObjectBank, run_pipeline

They are imported lazily, on first use, so ``import napari_synthseg`` stays cheap and never
imports TensorFlow (it must not share a process with napari's OpenGL canvas on Mesa), Keras,
napari or Qt. Everything else lives in the modules (``napari_synthseg.autoseg``, ``.bank``,
``.largeimage``, ``.model.prediction``, ...); ``__init__.pyi`` gives editors the signatures.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (keep __init__.pyi in step: tests/test_package.py checks)
_EXPORTS = {
    # images in and out
    "read_image": "napari_synthseg.image_io",
    "write_tiff": "napari_synthseg.image_io",
    "make_sample_scene": "napari_synthseg.sample_data",
    # the loop: auto-segment, bank, synthetic scenes, train, segment
    "autosegment": "napari_synthseg.autoseg",
    "ObjectBank": "napari_synthseg.bank",
    "BackgroundSource": "napari_synthseg.backgrounds",
    "synthesize_scene": "napari_synthseg.scenes",
    "train_model": "napari_synthseg.model.training",
    "load_model": "napari_synthseg.model.prediction",
    "predict": "napari_synthseg.model.prediction",
    "run_pipeline": "napari_synthseg.pipeline",
    # curation, measurement, scores
    "fill_enclosed": "napari_synthseg.curation",
    "measure_labels": "napari_synthseg.measure",
    "measure_objects": "napari_synthseg.measure",
    "write_measurements_csv": "napari_synthseg.measure",
    "pixel_scores": "napari_synthseg.metrics",
    "object_scores": "napari_synthseg.metrics",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_synthseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
