"""The model's settings: TrainingParams and PredictionParams check themselves, hold the one copy of each
default, and a model's sidecar gives back the settings it was trained with; TrainingBudget counts a budget."""

import inspect
import math

import pytest

from napari_synthseg import model
from napari_synthseg.instances import DEFAULT_MIN_AREA
from napari_synthseg.model import PredictionParams, TrainingParams
from napari_synthseg.model import params as params_module
from napari_synthseg.model.budget import TrainingBudget


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"epochs": 1.5}, "epochs must be a positive integer, got 1.5"),
        ({"minutes": -1}, "minutes must be a number > 0, got -1"),
        ({"minutes": math.inf}, "minutes must be a number > 0, got inf"),
        ({"steps": 5, "minutes": 1}, r"give exactly one training budget: .* \(got steps, minutes\)"),
        ({"patch": 0}, "patch must be a positive integer, got 0"),
        ({"batch_size": True}, "batch_size must be a positive integer, got True"),
        ({"steps_per_epoch": "50"}, "steps_per_epoch must be a positive integer, got '50'"),
        ({"validation_scenes": -2}, "validation_scenes must be a positive integer, got -2"),
        ({"base_filters": 2.5}, "base_filters must be an integer >= 1, got 2.5"),
        ({"depth": 0}, "depth must be an integer >= 1, got 0"),
        ({"depth": 7}, r"depth=7 is too deep for this CPU network; use 1\.\.6"),
        ({"learning_rate": 0}, "learning_rate must be a number > 0, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"scene_params": [("brightness", 0.5)]}, "scene_params must be a dict of synthesize_scene keywords"),
        ({"real_fraction": 1.5}, r"real_fraction must be in \[0, 1\], got 1.5"),
        ({"curated_fraction": -0.1}, r"curated_fraction must be in \[0, 1\], got -0.1"),
        ({"normalization": "zscore"}, "normalization must be one of percentile, anchored, got 'zscore'"),
        ({"weight_average": 1.0}, r"weight_average must be in \[0, 1\), got 1.0"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of cosine, constant, got 'step'"),
        ({"xla": True}, "xla must be one of auto, on, off, got True"),
        ({"select_after": 1.5}, "select_after must be a share of the budget between 0 and 1, got 1.5"),
        ({"average_checkpoints": "yes"}, "average_checkpoints must be True or False, got 'yes'"),
        ({"real_validation_pixels": 0}, "real_validation_pixels must be a positive integer, got 0"),
        ({"curated_ring_px": -3}, "curated_ring_px must be an integer >= 0, got -3"),
        ({"real_clumps": "split"}, "real_clumps must be one of outline, labels, got 'split'"),
    ],
)
def test_training_params_reject_bad_values_naming_the_setting_and_the_range(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingParams(**changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tile": 0}, "tile must be a positive integer, got 0"),
        ({"tile": 100.5}, "tile must be a positive integer, got 100.5"),
        ({"overlap": -1}, "overlap must be a non-negative integer, got -1"),
        ({"tile": 64, "overlap": 64}, r"overlap must be smaller than the tile \(64\), got 64"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"threshold": 1.2}, r"threshold must be in \[0, 1\], got 1.2"),
        ({"min_area": -5}, "min_area must be an integer >= 0, got -5"),
        ({"method": "magic"}, "method must be one of auto, boundary, distance, watershed, components, got 'magic'"),
        ({"precision": "float16"}, "precision must be one of auto, float32, bfloat16, got 'float16'"),
        ({"min_confidence": -0.5}, r"min_confidence must be in \[0, 1\], got -0.5"),
        ({"augment": "yes"}, "augment must be True or False, got 'yes'"),
        ({"fill_holes": 2}, "fill_holes must be True or False, got 2"),
        ({"ignore_box": (1, 2)}, "ignore_box must be 'auto', None or"),
        ({"drop_overlays": "no"}, "drop_overlays must be True or False, got 'no'"),
    ],
)
def test_prediction_params_reject_bad_values_naming_the_setting_and_the_range(changes, message):
    with pytest.raises(ValueError, match=message):
        PredictionParams(**changes)


def test_params_are_frozen_plain_and_round_trip_through_dicts():
    params = TrainingParams(minutes=3, patch=128, scene_params={"brightness": 0.5})
    with pytest.raises(AttributeError):
        params.patch = 64
    assert params.budget == ("minutes", 3.0) and isinstance(params.minutes, float)
    assert params.scenes == {"brightness": 0.5, "contrast": 0.6}  # on top of DEFAULT_SCENE_PARAMS
    assert TrainingParams.from_dict(params.as_dict()) == params
    assert params.replace(steps=10, minutes=None).budget == ("steps", 10)
    with pytest.raises(ValueError, match="give exactly one training budget"):
        TrainingParams().budget  # noqa: B018  (the property checks)
    with pytest.raises(ValueError, match="unknown training setting.*'tiles'.*use steps, epochs"):
        TrainingParams.from_dict({"tiles": 3})
    with pytest.raises(ValueError, match="unknown prediction setting.*'steps'"):
        PredictionParams.from_dict({"steps": 3})
    prediction = PredictionParams(tile=512.0, fill_holes=0, ignore_box=[0, 10, 0, 20])
    assert prediction.fill_holes is False and prediction.ignore_box == (0, 10, 0, 20)
    assert PredictionParams.from_dict(prediction.as_dict()) == prediction


def test_the_defaults_are_the_model_constants():
    training, prediction = TrainingParams(), PredictionParams()
    assert (training.base_filters, training.depth) == (model.DEFAULT_BASE_FILTERS, model.DEFAULT_DEPTH)
    assert training.lr_schedule == model.DEFAULT_LR_SCHEDULE and training.xla in model.XLA_CHOICES
    assert training.weight_average == params_module.DEFAULT_WEIGHT_AVERAGE
    assert training.select_after == params_module.DEFAULT_SELECT_AFTER
    assert training.average_checkpoints is params_module.DEFAULT_AVERAGE_CHECKPOINTS is True
    assert training.real_validation_pixels == params_module.REAL_VALIDATION_PIXELS
    assert training.scenes == params_module.DEFAULT_SCENE_PARAMS
    assert (prediction.tile, prediction.batch_size) == (model.DEFAULT_TILE, model.DEFAULT_BATCH)
    assert prediction.min_confidence == model.DEFAULT_MIN_CONFIDENCE and prediction.min_area == DEFAULT_MIN_AREA
    assert prediction.overlap is None  # predict's default: DEFAULT_OVERLAP, at most a quarter of the tile


def _keyword_defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_train_model_and_predict_take_their_defaults_from_the_params():
    pytest.importorskip("keras")
    from napari_synthseg.model.prediction import predict, predict_probabilities
    from napari_synthseg.model.training import train_model
    from napari_synthseg.retraining import fine_tune, retrain_round

    train_defaults = _keyword_defaults(train_model)
    assert {name: train_defaults[name] for name in TrainingParams().as_dict()} == TrainingParams().as_dict()
    predict_defaults = _keyword_defaults(predict)
    assert {name: predict_defaults[name] for name in PredictionParams().as_dict()} == PredictionParams().as_dict()
    probability_defaults = _keyword_defaults(predict_probabilities)
    for name in ("tile", "overlap", "batch_size", "precision", "augment"):
        assert probability_defaults[name] == predict_defaults[name], name
    # a curation round's own defaults are the same in both of its functions
    for name in ("curated_fraction", "learning_rate"):
        assert _keyword_defaults(fine_tune)[name] == _keyword_defaults(retrain_round)[name]


def test_a_sidecar_gives_back_the_settings_new_and_old():
    params = TrainingParams(steps=24, patch=64, depth=2, base_filters=4, scene_params={"n_objects": [4, 9]})
    assert TrainingParams.from_sidecar({"training": {"params": params.as_dict(), "steps": 18}}) == params
    old = {  # a sidecar written before training.params
        "normalization": {"low": 1.0, "high": 99.8, "mode": "anchored"},
        "network": {"architecture": "unet", "base_filters": 4, "depth": 2, "pad_multiple": 4},
        "training": {
            "patch": 64,
            "batch_size": 4,
            "steps_per_epoch": 6,
            "validation_scenes": 4,
            "learning_rate": 0.003,
            "seed": 0,
            "budget": {"minutes": 2.0},
            "steps": 18,
            "last_step": 24,
            "scene_params": {"brightness": 0.7, "contrast": 0.6},
            "real_fraction": 0.0,
            "real_validation_pixels": 0,
            "xla": True,
            "lr_schedule": "constant",
            "cancelled": False,
        },
    }
    recalled = TrainingParams.from_sidecar(old)
    assert recalled.budget == ("minutes", 2.0) and recalled.steps is None  # "steps" was the kept model's step
    assert (recalled.patch, recalled.depth, recalled.base_filters, recalled.learning_rate) == (64, 2, 4, 0.003)
    assert (recalled.normalization, recalled.xla, recalled.lr_schedule) == ("anchored", "on", "constant")
    assert recalled.real_validation_pixels == params_module.REAL_VALIDATION_PIXELS
    assert TrainingParams.from_sidecar({}) == TrainingParams()


def test_a_step_budget_counts_steps_from_the_start_step():
    budget = TrainingBudget("epochs", 2, start_step=10, steps_per_epoch=5)
    assert budget.total_steps == 20
    assert budget.used(15, now=0.0) == 0.5
    assert not budget.reached(19, now=1e9) and budget.reached(20, now=0.0)


def test_a_minutes_budget_starts_when_the_first_step_ends():
    budget = TrainingBudget("minutes", 1.0)
    assert budget.total_steps is None and budget.used(0, now=500.0) == 0.0
    assert not budget.reached(0, now=1e9)  # nothing trained yet: never out of time
    budget.step_done(took=300.0, now=1000.0)  # the first step (mostly compiling) starts the clock
    assert budget.started_at == 1000.0 and budget.deadline == 1060.0 and budget.step_seconds is None
    budget.step_done(took=2.0, now=1002.0)
    budget.step_done(took=4.0, now=1006.0)
    assert budget.step_seconds == pytest.approx(0.8 * 2.0 + 0.2 * 4.0)
    assert budget.used(2, now=1030.0) == pytest.approx(0.5)
    # another step (and the validation after it) must end before the deadline
    assert not budget.reached(2, now=1050.0, validation_seconds=5.0)
    assert budget.reached(2, now=1050.0, validation_seconds=8.0)
