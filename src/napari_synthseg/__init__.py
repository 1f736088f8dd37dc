"""napari-synthseg: segment EM images without hand-drawn masks.

The public API is imported lazily so that ``import napari_synthseg`` stays
cheap and never imports TensorFlow (it must not share a process with napari's
OpenGL canvas on Mesa).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "autosegment": "napari_synthseg.autoseg",
    "choose_polarity": "napari_synthseg.autoseg",
    "find_scale_bar": "napari_synthseg.autoseg",
    "find_data_bar": "napari_synthseg.autoseg",
    "ObjectBank": "napari_synthseg.bank",
    "BankObject": "napari_synthseg.bank",
    "NotABankError": "napari_synthseg.bank",
    "synthesize_scene": "napari_synthseg.synthesis",
    "BackgroundSource": "napari_synthseg.synthesis",
    "fill_enclosed": "napari_synthseg.curation",
    "measure_objects": "napari_synthseg.measure",
    "measure_labels": "napari_synthseg.measure",
    "measure_label_file": "napari_synthseg.measure",
    "write_measurements_csv": "napari_synthseg.measure",
    "label_at": "napari_synthseg.curation",
    "toggle_picked": "napari_synthseg.curation",
    "extract_picked": "napari_synthseg.curation",
    "make_sample_scene": "napari_synthseg.sample_data",
    "write_sample_folder": "napari_synthseg.sample_data",
    "pixel_scores": "napari_synthseg.metrics",
    "object_scores": "napari_synthseg.metrics",
    "DatasetScores": "napari_synthseg.metrics",
    "read_image": "napari_synthseg.image_io",
    "to_gray": "napari_synthseg.image_io",
    "process_large": "napari_synthseg.largeimage",
    "run_batch": "napari_synthseg.largeimage",
    "AutosegSegmenter": "napari_synthseg.largeimage",
    "ModelSegmenter": "napari_synthseg.largeimage",
    "open_lazy": "napari_synthseg.largeimage",
    "train_model": "napari_synthseg.model.training",
    "load_model": "napari_synthseg.model.prediction",
    "predict": "napari_synthseg.model.prediction",
    "ModelJob": "napari_synthseg.model.runner",
    "ModelLoadError": "napari_synthseg.model.prediction",
    "SegmentationModel": "napari_synthseg.model.prediction",
    "predict_probabilities": "napari_synthseg.model.prediction",
    "probabilities_to_instances": "napari_synthseg.instances",
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
