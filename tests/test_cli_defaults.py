"""Each default of the command line is the one the library defines (defined once, read by the CLI)."""

import argparse
import inspect

import pytest

from napari_synthseg import largeimage, model
from napari_synthseg.autoseg import AutosegParams
from napari_synthseg.cli import build_parser
from napari_synthseg.cli.bank_commands import SCENE_SIZE
from napari_synthseg.cli.run_commands import DEMO_MINUTES
from napari_synthseg.curation import Curation
from napari_synthseg.instances import DEFAULT_MIN_AREA
from napari_synthseg.largeimage import DEFAULT_BLOCK, DEFAULT_HALO, DEFAULT_IN_MEMORY_PIXELS, ModelSegmenter
from napari_synthseg.pipeline import run_pipeline
from napari_synthseg.retraining import retrain_round
from napari_synthseg.sample_data import write_sample_folder

#: The arguments each command needs to parse (its required ones).
REQUIRED = {
    "autoseg": ["image.png", "--bank", "bank"],
    "synth": ["--bank", "bank", "--out", "out", "-n", "1"],
    "train": ["--bank", "bank", "--backgrounds", "images", "--model-out", "m.keras"],
    "predict": ["model.keras", "images", "--out", "out"],
    "evaluate": ["pred", "gt"],
    "measure": ["labels", "--out", "objects.csv"],
    "run": ["images", "--out", "out"],
    "retrain": ["model.keras", "--curated", "curated"],
    "demo": [],
}


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def _training_defaults():
    pytest.importorskip("keras")
    from napari_synthseg.model.training import train_model

    return inspect.signature(train_model).parameters


#: (command, option) -> the library's default it must equal; every numeric option with a default is here.
BATCH = {"chunk": DEFAULT_BLOCK, "halo": DEFAULT_HALO, "in_memory_pixels": DEFAULT_IN_MEMORY_PIXELS}
AUTOSEG = {name: getattr(AutosegParams(), name) for name in ("sigma", "min_area", "max_area", "threshold")}
TRAINING = {"base_filters": model.DEFAULT_BASE_FILTERS, "depth": model.DEFAULT_DEPTH,
            "seed": _default(run_pipeline, "seed")}
NUMERIC_DEFAULTS = {
    "autoseg": {**AUTOSEG, **BATCH},
    "predict": {"tile": model.DEFAULT_TILE, "batch_size": model.DEFAULT_BATCH,
                "min_confidence": model.DEFAULT_MIN_CONFIDENCE, "min_area": DEFAULT_MIN_AREA, **BATCH},
    "synth": {"seed": _default(run_pipeline, "seed"), "size": list(SCENE_SIZE)},
    "train": {**TRAINING, "patch": None, "batch_size": None},  # None: train_model's own (checked below)
    "run": {**AUTOSEG, **TRAINING, "rounds": _default(run_pipeline, "rounds")},
    "retrain": {"curated_fraction": _default(retrain_round, "curated_fraction"),
                "ring_px": _default(retrain_round, "ring_px"), "seed": _default(retrain_round, "seed")},
    "demo": {"n": _default(write_sample_folder, "n"), "seed": _default(write_sample_folder, "seed"),
             "rounds": _default(run_pipeline, "rounds"), "minutes": DEMO_MINUTES},
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _defaults(*argv: str) -> dict:
    return vars(build_parser().parse_args(list(argv)))


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_numeric_option_default_is_the_librarys(command):
    """A numeric option (int or float) with a default must be listed above with the library's value."""
    parser = _subparsers()[command]
    numeric = {a.dest: a.default for a in parser._actions
               if a.type in (int, float) and a.default is not argparse.SUPPRESS}
    expected = NUMERIC_DEFAULTS.get(command, {})
    with_default = {dest for dest, value in numeric.items() if value is not None}
    assert with_default <= set(expected), f"{command}: add the library's default for {with_default - set(expected)}"
    args = _defaults(command, *REQUIRED[command])
    assert {name: args[name] for name in expected} == expected


def test_predict_options_default_to_the_prediction_constants():
    args = _defaults("predict", "model.keras", "images", "--out", "out")
    assert args["tile"] == model.DEFAULT_TILE
    assert args["batch_size"] == model.DEFAULT_BATCH
    assert args["min_confidence"] == model.DEFAULT_MIN_CONFIDENCE
    assert args["min_area"] == DEFAULT_MIN_AREA
    assert args["in_memory_pixels"] == DEFAULT_IN_MEMORY_PIXELS
    assert (args["chunk"], args["halo"]) == (DEFAULT_BLOCK, DEFAULT_HALO)
    assert args["ignore_box"] == ModelSegmenter().ignore_box


def test_autoseg_and_batch_options_default_to_the_parameter_objects():
    args = _defaults("autoseg", "image.png", "--bank", "bank")
    defaults = AutosegParams()
    for name in ("method", "threshold", "polarity", "sigma", "min_area", "max_area", "fill_holes", "clear_border",
                 "split_touching", "ignore_box"):
        assert args[name] == getattr(defaults, name), name
    assert args["in_memory_pixels"] == DEFAULT_IN_MEMORY_PIXELS
    assert (args["chunk"], args["halo"]) == (DEFAULT_BLOCK, DEFAULT_HALO)


def test_run_and_demo_default_to_the_pipeline():
    run = _defaults("run", "images", "--out", "out")
    assert (run["rounds"], run["recipe"], run["seed"]) == tuple(
        _default(run_pipeline, name) for name in ("rounds", "recipe", "seed"))
    assert run["method"] is None  # the recipe's
    assert run["lr_schedule"] == model.DEFAULT_LR_SCHEDULE
    demo = _defaults("demo")
    assert (demo["n"], demo["seed"]) == (_default(write_sample_folder, "n"), _default(write_sample_folder, "seed"))


def test_retrain_ring_default_is_the_curations():
    """--ring-px left out passes None, which the curation reads as its own ring (the value --help shows)."""
    assert _default(retrain_round, "ring_px") is None
    assert f"[{_default(Curation.known, 'ring_px')}]" in _subparsers()["retrain"].format_help()


def test_train_leaves_patch_batch_and_xla_to_train_model():
    """Left out, --patch, --batch-size and --xla are not passed: train_model's own defaults apply."""
    params = _training_defaults()
    args = _defaults("train", *REQUIRED["train"])
    assert (args["patch"], args["batch_size"], args["xla"]) == (None, None, None)
    assert f"[the training's default: {params['xla'].default}]" in " ".join(
        _subparsers()["train"].format_help().split())
    for name in ("base_filters", "depth", "lr_schedule", "seed"):
        assert args[name] == params[name].default, name


def test_library_functions_share_the_same_defaults():
    """The large-image model segmenter and the tiled path use the constants the CLI shows."""
    segmenter = ModelSegmenter()
    assert (segmenter.tile, segmenter.batch_size) == (model.DEFAULT_TILE, model.DEFAULT_BATCH)
    for function in (largeimage.process_large, largeimage.run_batch):
        params = inspect.signature(function).parameters
        assert (params["tile"].default, params["overlap"].default) == (DEFAULT_BLOCK, DEFAULT_HALO)
    assert inspect.signature(largeimage.run_batch).parameters["in_memory_pixels"].default == DEFAULT_IN_MEMORY_PIXELS
