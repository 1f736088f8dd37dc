"""Each default of the command line is the one the library defines (defined once, read by the CLI)."""

import inspect

from napari_synthseg import largeimage, model
from napari_synthseg.autoseg import AutosegParams
from napari_synthseg.cli import build_parser
from napari_synthseg.instances import DEFAULT_MIN_AREA
from napari_synthseg.largeimage import DEFAULT_BLOCK, DEFAULT_HALO, DEFAULT_IN_MEMORY_PIXELS, ModelSegmenter


def _defaults(*argv: str) -> dict:
    return vars(build_parser().parse_args(list(argv)))


def test_predict_options_default_to_the_prediction_constants():
    args = _defaults("predict", "model.keras", "images", "--out", "out")
    assert args["tile"] == model.DEFAULT_TILE
    assert args["batch_size"] == model.DEFAULT_BATCH
    assert args["min_confidence"] == model.DEFAULT_MIN_CONFIDENCE
    assert args["min_area"] == DEFAULT_MIN_AREA
    assert args["in_memory_pixels"] == DEFAULT_IN_MEMORY_PIXELS
    assert (args["chunk"], args["halo"]) == (DEFAULT_BLOCK, DEFAULT_HALO)


def test_autoseg_and_batch_options_default_to_the_parameter_objects():
    args = _defaults("autoseg", "image.png", "--bank", "bank")
    defaults = AutosegParams()
    assert (args["sigma"], args["min_area"], args["polarity"]) == (defaults.sigma, defaults.min_area, defaults.polarity)
    assert args["in_memory_pixels"] == DEFAULT_IN_MEMORY_PIXELS
    assert (args["chunk"], args["halo"]) == (DEFAULT_BLOCK, DEFAULT_HALO)


def test_library_functions_share_the_same_defaults():
    """The large-image model segmenter and the tiled path use the constants the CLI shows."""
    segmenter = ModelSegmenter()
    assert (segmenter.tile, segmenter.batch_size) == (model.DEFAULT_TILE, model.DEFAULT_BATCH)
    for function in (largeimage.process_large, largeimage.run_batch):
        params = inspect.signature(function).parameters
        assert (params["tile"].default, params["overlap"].default) == (DEFAULT_BLOCK, DEFAULT_HALO)
    assert inspect.signature(largeimage.run_batch).parameters["in_memory_pixels"].default == DEFAULT_IN_MEMORY_PIXELS
