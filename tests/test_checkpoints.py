"""CheckpointSelector: which checkpoint a resumed run keeps, on real images or on a person's clicks."""

import contextlib
import json
from types import SimpleNamespace

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
