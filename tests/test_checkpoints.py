"""CheckpointSelector: which checkpoint a resumed run keeps, on real images or on a person's clicks."""

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("keras")

from napari_synthseg.model.checkpoints import CheckpointSelector  # noqa: E402


class FakeNetwork:
    """Stands in for the Keras model: a fixed synthetic score; ``save`` writes the step it is at."""

    def __init__(self):
        self.step = 0

    def evaluate(self, x, y, **kwargs):
        return {"loss": 1.0, "fg_iou": 0.5}

    def save(self, path):
        with open(path, "w") as f:
            f.write(str(self.step))


class FakeAverage:
    def applied(self, model):
        return contextlib.nullcontext()


class ScriptedValidation:
    """A real-image validation returning scripted scores, one per call."""

    def __init__(self, scores, curated):
        self.scores, self.curated = list(scores), curated

    def score(self, model):
        return self.scores.pop(0)


def resumed_run(tmp_path, scores, curated):
    """A resumed run scored at its start (baseline) and at three later checkpoints; the step kept."""
    network = FakeNetwork()
    path = tmp_path / "model.keras"
    scenes = SimpleNamespace(normalization="percentile", bank_size=1, bank_hash="x")
    selector = CheckpointSelector(
        network, FakeAverage(), path, (None, None), 1, real=ScriptedValidation(scores, curated), select_after=0.5,
        resume=True, announce=lambda phase: None, description=({"depth": 1}, {}, scenes))
    network.step = 100
    selector.validate(100, [], 0.0, baseline=True)  # the resumed model, saved as it is: the one to beat
    for step, used in ((200, 0.6), (300, 0.8), (400, 1.0)):
        network.step = step
        selector.validate(step, [1.0], used)
    return int(path.read_text()), selector


def test_a_tie_on_the_clicks_goes_to_the_later_checkpoint(tmp_path):
    # a curated round: a checkpoint that agrees with the clicks as well as the previous model wins
    kept, selector = resumed_run(tmp_path, [0.8, 0.7, 0.8, 0.8], curated=True)
    assert kept == 400 and selector.best == 0.8
    assert [h["saved"] for h in selector.history] == [True, False, True, True]
    assert json.loads((tmp_path / "model.json").read_text())["metrics"]["step"] == 400


def test_on_real_images_the_previous_model_must_be_beaten(tmp_path):
    kept, selector = resumed_run(tmp_path, [0.8, 0.7, 0.8, 0.8], curated=False)
    assert kept == 100 and [h["saved"] for h in selector.history] == [True, False, False, False]
    kept, _ = resumed_run(tmp_path / "b", [0.8, 0.7, 0.9, 0.85], curated=False)
    assert kept == 300


def test_a_worse_checkpoint_never_replaces_the_previous_model_on_the_clicks(tmp_path):
    kept, selector = resumed_run(tmp_path, [0.8, 0.7, 0.75, 0.79], curated=True)
    assert kept == 100 and selector.best == 0.8


class WeightedNetwork(FakeNetwork):
    """A network with one weight; ``save`` writes the weight it has when saved."""

    def __init__(self):
        super().__init__()
        self.w = 0.0

    def get_weights(self):
        return [np.array([self.w], np.float32)]

    def set_weights(self, weights):
        self.w = float(weights[0][0])

    def save(self, path):
        with open(path, "w") as f:
            f.write(str(self.w))


def averaged_run(tmp_path, scores, *, average_checkpoints=True, resume=False):
    """One checkpoint before selection, three while selecting (weights 1, 2, 6), then the average.

    ``resume``: the first score is the resumed model's (weight 5), the one to beat."""
    network = WeightedNetwork()
    path = tmp_path / "model.keras"
    scenes = SimpleNamespace(normalization="percentile", bank_size=1, bank_hash="x")
    selector = CheckpointSelector(
        network, FakeAverage(), path, (None, None), 1, real=ScriptedValidation(scores, False), select_after=0.5,
        average_checkpoints=average_checkpoints, resume=resume, announce=lambda phase: None,
        description=({"depth": 1}, {}, scenes))
    if resume:
        network.w = 5.0
        selector.validate(50, [], 0.0, baseline=True)
    for step, used, w in ((100, 0.2, 9.0), (200, 0.6, 1.0), (300, 0.8, 2.0), (400, 1.0, 6.0)):
        network.w = w
        selector.validate(step, [1.0], used)
    return network, selector, path


def test_the_average_of_the_selected_checkpoints_replaces_the_best_of_them(tmp_path):
    network, selector, path = averaged_run(tmp_path, [0.7, 0.8, 0.75, 0.78])
    assert float(path.read_text()) == 2.0  # the best checkpoint so far
    record = selector.validate_average(400)
    # the checkpoint before selection (weight 9) is not in the average; the average is kept even
    # though the best checkpoint scored higher on the same noisy score
    assert record["averaged"] == 3 and record["saved"] and float(path.read_text()) == 3.0
    assert network.w == 6.0  # the network gets its own weights back
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["metrics"]["averaged"] == 3 and info["metrics"]["best"] == 0.78 == selector.best


def test_a_resumed_run_keeps_the_average_only_when_it_beats_the_resumed_model(tmp_path):
    # resumed model 0.8; the selected checkpoints 0.7, 0.85 (weight 2), 0.75; the average 0.79
    _, selector, path = averaged_run(tmp_path / "a", [0.8, 0.7, 0.85, 0.75, 0.79], resume=True)
    record = selector.validate_average(400)
    assert not record["saved"] and float(path.read_text()) == 2.0  # the checkpoint that beat it stays
    _, selector, path = averaged_run(tmp_path / "b", [0.8, 0.7, 0.85, 0.75, 0.81], resume=True)
    assert selector.validate_average(400)["saved"] and float(path.read_text()) == 3.0
    # a NaN score (a network predicting nothing) is never kept
    _, selector, path = averaged_run(tmp_path / "c", [0.7, 0.8, 0.75, float("nan")])
    assert not selector.validate_average(400)["saved"] and float(path.read_text()) == 2.0


def test_no_average_without_the_setting_or_with_one_checkpoint(tmp_path):
    _, selector, path = averaged_run(tmp_path / "off", [0.7, 0.8, 0.75], average_checkpoints=False)
    assert selector.validate_average(400) is None and selector.seconds_to_finish == selector.seconds
    _, selector, _ = averaged_run(tmp_path / "on", [0.7, 0.8, 0.75])
    assert selector.seconds_to_finish == 2 * selector.seconds  # the budget keeps room for both validations
    network = WeightedNetwork()
    scenes = SimpleNamespace(normalization="percentile", bank_size=1, bank_hash="x")
    lone = CheckpointSelector(
        network, FakeAverage(), tmp_path / "lone.keras", (None, None), 1, real=ScriptedValidation([0.5], False),
        select_after=0.0, average_checkpoints=True, resume=False, announce=lambda phase: None,
        description=({"depth": 1}, {}, scenes))
    lone.validate(1, [1.0], 1.0)
    assert lone.validate_average(1) is None
