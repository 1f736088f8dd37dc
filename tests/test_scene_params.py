"""SceneParams: the one place synthesize_scene's defaults live, checked when made."""

from __future__ import annotations

import inspect
import json
from dataclasses import fields

import numpy as np
import pytest

from napari_synthseg.scene_params import SceneParams
from napari_synthseg.synthesis import TRAINING_SCENE_PARAMS, synthesize_scene


def _square_bank():
    image = np.full((14, 14), 200, dtype=np.uint8)
    mask = np.zeros(image.shape, dtype=bool)
    mask[2:-2, 2:-2] = True
    return [type("Obj", (), {"image": image, "mask": mask, "meta": {}})()]


def test_defaults_are_synthesize_scenes_defaults():
    signature = inspect.signature(synthesize_scene).parameters
    defaults = SceneParams()
    for f in fields(SceneParams):
        assert signature[f.name].default == getattr(defaults, f.name), f.name
    # every tunable keyword of synthesize_scene is a setting
    keywords = {name for name, p in signature.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == {f.name for f in fields(SceneParams)} - {"shape"}


def test_values_are_normalised():
    params = SceneParams(n_objects=40, noise_std=0.01, brightness=(0.0, 0.3), background_kinds=["texture", "flat"],
                         coverage=[0.1, 0.5], shape=[64, 80])
    assert params.n_objects == (40, 40)
    assert params.noise_std == (0.01, 0.01)
    assert params.brightness == 0.3
    assert params.background_kinds == (("texture", 1.0), ("flat", 1.0))
    assert params.coverage == (0.1, 0.5)
    assert params.shape == (64, 80)
    assert SceneParams(background_kinds="noise").background_kinds == (("noise", 1.0),)


def test_as_dict_round_trips_through_json_and_gives_the_same_scene():
    params = SceneParams(shape=(48, 56), n_objects=(3, 5), background_kinds={"noise": 2.0, "flat": 1.0},
                         **TRAINING_SCENE_PARAMS)
    again = SceneParams.from_dict(json.loads(json.dumps(params.as_dict())))
    assert again == params
    bank = _square_bank()
    a = synthesize_scene(bank, rng=np.random.default_rng(3), **params.as_dict())
    b = synthesize_scene(bank, (48, 56), np.random.default_rng(3), n_objects=(3, 5),
                         background_kinds={"noise": 2.0, "flat": 1.0}, **TRAINING_SCENE_PARAMS)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert params.replace(n_objects=7).n_objects == (7, 7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shape": (4, 32)}, r"too small; use at least \(8, 8\)"),
        ({"shape": "big"}, "shape must be two integers"),
        ({"n_objects": (-1, 3)}, r"n_objects=\(-1, 3\) is not a valid range: need 0.0 <= low <= high"),
        ({"n_objects": (5, 2)}, r"n_objects=\(5, 2\) is not a valid range"),
        ({"n_objects": "many"}, "n_objects must hold numbers"),
        ({"scale_range": (2.0, 1.0)}, r"scale_range=\(2.0, 1.0\) is not a valid range: need 0.001 <= low"),
        ({"scale_range": (0.0, 1.0)}, "scale_range=.* need 0.001 <= low"),
        ({"scale_range": (1, 2, 3)}, r"scale_range must be a number or a \(low, high\) pair, got \(1, 2, 3\)"),
        ({"noise_std": (0.0, float("nan"))}, "noise_std=.* is not a valid range"),
        ({"contrast": 1.5}, "contrast must be below 1 .*got 1.5"),
        ({"brightness": -0.1}, r"brightness=-0.1 is not a valid range"),
        ({"blur_prob": 1.5}, r"blur_prob must be in \[0, 1\], got 1.5"),
        ({"touch_prob": 2}, r"touch_prob must be in \[0, 1\], got 2"),
        ({"cluster_prob": "often"}, r"cluster_prob must be a number in \[0, 1\], got 'often'"),
        ({"alike_prob": -0.1}, r"alike_prob must be in \[0, 1\], got -0.1"),
        ({"group_prob": -0.5}, r"group_prob must be in \[0, 1\], got -0.5"),
        ({"coverage": (0.5, 1.5)}, r"coverage=\(0.5, 1.5\) is not a valid range: need 0.0 <= low <= high <= 1.0"),
        ({"restyle_contrast": (0.0, 0.4)}, r"restyle_contrast=\(0.0, 0.4\) is not a valid range: need 0.0001"),
        ({"rotate": "yes"}, "rotate must be True or False, got 'yes'"),
        ({"soft_edges": 2}, "soft_edges must be True or False, got 2"),
        ({"background_kinds": ["marble"]}, r"unknown background kind\(s\) \['marble'\]; choose from texture"),
        ({"background_kinds": {"flat": -1.0}}, "background_kinds needs at least one kind with a positive weight"),
    ],
)
def test_bad_values_are_rejected_naming_the_setting(changes, message):
    with pytest.raises(ValueError, match=message):
        SceneParams(**changes)
    with pytest.raises(ValueError, match=message):  # synthesize_scene checks through SceneParams
        synthesize_scene(_square_bank(), **{"shape": (32, 32), "rng": 0, **changes})


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match=r"unknown scene setting\(s\) 'n_object'; use shape, n_objects"):
        SceneParams.from_dict({"n_object": 3})


def test_params_are_frozen():
    with pytest.raises(AttributeError):
        SceneParams().n_objects = (1, 2)  # type: ignore[misc]
