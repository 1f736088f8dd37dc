"""Each default of the command line is the one the library defines (defined once, read by the CLI)."""

import argparse
import inspect

import pytest

from napari_synthseg import largeimage, model
from napari_synthseg.autoseg import AutosegParams
from napari_synthseg.cli import build_parser
from napari_synthseg.cli.run_commands import DEMO_STEPS
from napari_synthseg.curation import Curation
from napari_synthseg.instances import DEFAULT_MIN_AREA, DEFAULT_THRESHOLD, probabilities_to_instances
from napari_synthseg.largeimage import DEFAULT_BLOCK, DEFAULT_HALO, DEFAULT_IN_MEMORY_PIXELS, ModelSegmenter
from napari_synthseg.metrics import worst_images
from napari_synthseg.model import PredictionParams, TrainingParams
from napari_synthseg.pipeline import run_pipeline
from napari_synthseg.retraining import fine_tune, retrain_round
from napari_synthseg.sample_data import write_sample_folder
from napari_synthseg.scene_params import SceneParams

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
TRAINING = {name: getattr(TrainingParams(), name) for name in ("base_filters", "depth", "seed")}
PREDICTION = {name: getattr(PredictionParams(), name) for name in ("tile", "batch_size", "min_confidence", "min_area")}
NUMERIC_DEFAULTS = {
    "autoseg": {**AUTOSEG, **BATCH},
    "predict": {**PREDICTION, **BATCH, "max_shrink": PredictionParams().max_shrink},
    "synth": {"seed": TrainingParams().seed, "size": list(SceneParams().shape)},
    "train": {**TRAINING, "patch": TrainingParams().patch, "batch_size": TrainingParams().batch_size},
    "run": {**AUTOSEG, **TRAINING, "rounds": _default(run_pipeline, "rounds"),
            "max_shrink": PredictionParams().max_shrink, "in_memory_pixels": DEFAULT_IN_MEMORY_PIXELS},
    "retrain": {"curated_fraction": _default(retrain_round, "curated_fraction"),
                "ring_px": _default(retrain_round, "ring_px"), "seed": _default(retrain_round, "seed")},
    "evaluate": {"worst": _default(worst_images, "count")},
    "demo": {"n": _default(write_sample_folder, "n"), "seed": _default(write_sample_folder, "seed"),
             "rounds": _default(run_pipeline, "rounds"), "steps": DEMO_STEPS},
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
    assert args["keep_overlays"] is not defaults.drop_overlays
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
    assert (demo["steps"], demo["minutes"]) == (DEMO_STEPS, None)  # steps: the same model on a slow machine


def test_the_demo_trains_for_its_steps_or_for_the_minutes_given(monkeypatch, tmp_path, capsys):
    from napari_synthseg.cli import run_commands

    budgets = []
    monkeypatch.setattr(run_commands, "_check_backend", lambda: None)
    monkeypatch.setattr(run_commands, "_pipeline", lambda args, images, out, model_out, **kw: budgets.append(
        {k: kw[k] for k in ("steps", "minutes") if k in kw}) or 0)
    for extra in ([], ["--minutes", "2"], ["--steps", "40"]):
        args = build_parser().parse_args(["demo", "--out", str(tmp_path / f"d{len(budgets)}"), "-n", "1", *extra])
        assert args.func(args) == 0
    assert budgets == [{"steps": DEMO_STEPS}, {"minutes": 2.0}, {"steps": 40}]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--minutes", "2", "--steps", "40"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_retrain_ring_default_is_the_curations():
    """--ring-px left out passes None, which the curation reads as its own ring (the value --help shows)."""
    assert _default(retrain_round, "ring_px") is None
    assert f"[{_default(Curation.known, 'ring_px')}]" in _subparsers()["retrain"].format_help()


def test_train_options_default_to_the_training_params():
    """Each training option starts at TrainingParams' default, and --help shows it."""
    defaults = TrainingParams()
    args = _defaults("train", *REQUIRED["train"])
    help_text = " ".join(_subparsers()["train"].format_help().split())
    for name in ("patch", "batch_size", "base_filters", "depth", "lr_schedule", "xla", "seed"):
        assert args[name] == getattr(defaults, name), name
        assert f"[{getattr(defaults, name)}]" in help_text, name
    assert f"({defaults.steps_per_epoch} steps each)" in help_text
    run = _defaults("run", *REQUIRED["run"])
    for name in ("base_filters", "depth", "lr_schedule", "xla", "seed"):
        assert run[name] == getattr(defaults, name), name


def test_train_options_are_train_models_defaults():
    """train_model's signature reads the same TrainingParams, so the CLI's defaults train as train_model's."""
    params = _training_defaults()
    args = _defaults("train", *REQUIRED["train"])
    for name in ("patch", "batch_size", "base_filters", "depth", "lr_schedule", "xla", "seed"):
        assert args[name] == params[name].default, name


def test_predict_and_run_prediction_options_default_to_the_prediction_params():
    defaults = PredictionParams()
    predict = _defaults("predict", *REQUIRED["predict"])
    for name in ("tile", "batch_size", "min_area", "min_confidence", "augment", "ignore_box"):
        assert predict[name] == getattr(defaults, name), name
    help_text = " ".join(_subparsers()["predict"].format_help().split())
    for shown in (defaults.tile, defaults.batch_size, defaults.min_area, f"{defaults.min_confidence:g}"):
        assert f"[{shown}]" in help_text
    assert _defaults("run", *REQUIRED["run"])["augment"] == defaults.augment
    run = _defaults("run", *REQUIRED["run"])
    assert predict["keep_overlays"] == run["keep_overlays"] == (not defaults.drop_overlays)


def test_synth_size_is_the_scene_params_shape():
    height, width = SceneParams().shape
    assert _defaults("synth", *REQUIRED["synth"])["size"] == [height, width]
    assert f"[{height} {width}]" in " ".join(_subparsers()["synth"].format_help().split())


def test_each_seed_default_is_the_training_params():
    """The pipeline, a curation round and a fine-tuning start at TrainingParams' seed (the CLI's --seed)."""
    seed = TrainingParams().seed
    for function in (run_pipeline, retrain_round, fine_tune):
        assert _default(function, "seed") == seed, function.__name__
    for command in ("synth", "train", "run", "retrain"):
        assert _defaults(command, *REQUIRED[command])["seed"] == seed, command


def test_the_instance_defaults_are_written_once():
    """PredictionParams reads the instance step's threshold, hole filling and method; ModelSegmenter reads both."""
    instance = inspect.signature(probabilities_to_instances).parameters
    defaults = PredictionParams()
    assert instance["threshold"].default == DEFAULT_THRESHOLD == defaults.threshold
    for name in ("min_area", "fill_holes", "method", "fill_contours"):
        assert getattr(defaults, name) == instance[name].default, name
    segmenter = ModelSegmenter()
    for name in ("tile", "overlap", "batch_size", "threshold", "min_area", "fill_holes", "method", "augment",
                 "ignore_box", "drop_overlays"):
        assert getattr(segmenter, name) == getattr(defaults, name), name
    # the segmenter filters by confidence only when told (the CLI passes --min-confidence)
    assert segmenter.min_confidence == instance["min_confidence"].default


def test_library_functions_share_the_same_defaults():
    """The large-image model segmenter and the tiled path use the constants the CLI shows."""
    segmenter = ModelSegmenter()
    assert (segmenter.tile, segmenter.batch_size) == (model.DEFAULT_TILE, model.DEFAULT_BATCH)
    for function in (largeimage.process_large, largeimage.run_batch):
        params = inspect.signature(function).parameters
        assert (params["tile"].default, params["overlap"].default) == (DEFAULT_BLOCK, DEFAULT_HALO)
    assert inspect.signature(largeimage.run_batch).parameters["in_memory_pixels"].default == DEFAULT_IN_MEMORY_PIXELS


def test_depth_option_allows_the_depths_the_network_builds(capsys):
    """--depth is checked against the same MAX_DEPTH as TrainingParams, before any work."""
    from napari_synthseg.cli import main
    from napari_synthseg.model.params import MAX_DEPTH

    assert main(["train", *REQUIRED["train"], "--steps", "1", "--depth", str(MAX_DEPTH + 1)]) == 2
    assert f"--depth must be from 1 to {MAX_DEPTH}, got {MAX_DEPTH + 1}" in capsys.readouterr().err
    assert f"1 to {MAX_DEPTH} [{TrainingParams().depth}]" in " ".join(_subparsers()["train"].format_help().split())
