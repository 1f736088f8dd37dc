"""benchmarks/postprocess_sweep.py: settings scored per half from fixed probabilities (no model needed)."""

import numpy as np
import pytest

from _scripts import loaded_script


@pytest.fixture(scope="module")
def sweep():
    with loaded_script("benchmarks/postprocess_sweep.py") as module:
        yield module


def _prob(objects):
    """Three-channel probabilities: each (slice, value) a square of that foreground and a centred core."""
    prob = np.zeros((48, 48, 3), np.float32)
    for (rows, cols), value in objects:
        prob[rows, cols, 0] = value
        prob[rows, cols, 1] = 0.8
    return prob


def test_a_stricter_confidence_drops_the_faint_object_in_its_half_only(sweep):
    truth = np.zeros((48, 48), np.int32)
    truth[5:15, 5:15] = 1
    sure = (np.s_[5:15], np.s_[5:15])
    faint = (np.s_[30:40], np.s_[30:40])  # a speck the network half believes: no true object there
    probs = {"a": _prob([(sure, 0.99), (faint, 0.85)]), "b": _prob([(sure, 0.99)])}
    truths = {"a": truth, "b": truth}
    halves = {"a": "tune", "b": "check"}

    loose = sweep.score(probs, truths, halves, threshold=0.5, min_confidence=0.8)
    strict = sweep.score(probs, truths, halves, threshold=0.5, min_confidence=0.9)
    assert set(loose) == {"tune", "check"}
    assert (loose["tune"][0]["tp"], loose["tune"][0]["fp"]) == (1, 1)
    assert (strict["tune"][0]["tp"], strict["tune"][0]["fp"]) == (1, 0)
    assert strict["tune"][0]["pixel_iou"] == pytest.approx(1.0)
    assert loose["check"][0] == strict["check"][0]  # nothing faint there
    assert set(loose["tune"][1]) == {"a"}  # per-image scores, for the worst-image list


def test_bad_number_lists_are_refused(sweep):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 1"):
        sweep._floats("0.8,1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="commas"):
        sweep._floats("high")
    assert sweep._floats("0.8, 0.9") == [0.8, 0.9]


def test_prominence_lists_take_off_for_the_share_rule_alone(sweep):
    import argparse

    assert sweep._prominences("off, 0.4") == [None, 0.4]
    with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 1"):
        sweep._prominences("off,3")


def test_drawn_objects_are_left_out_when_the_gray_images_are_given(sweep):
    """A flat drawn bar the network calls an object: a false positive kept, gone with the images."""
    import argparse

    rng = np.random.default_rng(0)
    truth = np.zeros((48, 48), np.int32)
    truth[5:15, 5:15] = 1
    gray = rng.normal(60, 5, (48, 48))
    gray[5:15, 5:15] = rng.normal(200, 5, (10, 10))
    gray[40:43, 4:44] = 255  # a drawn bar: one gray level, 13 times as long as wide
    prob = _prob([((np.s_[5:15], np.s_[5:15]), 0.99), ((np.s_[40:43], np.s_[4:44]), 0.99)])
    kept = sweep.score({"a": prob}, {"a": truth}, {"a": "tune"}, threshold=0.5, min_confidence=0.8)
    dropped = sweep.score({"a": prob}, {"a": truth}, {"a": "tune"}, threshold=0.5, min_confidence=0.8,
                          grays={"a": gray})
    assert (kept["tune"][0]["tp"], kept["tune"][0]["fp"]) == (1, 1)
    assert (dropped["tune"][0]["tp"], dropped["tune"][0]["fp"]) == (1, 0)
    assert sweep._overlay_choices("drop, keep") == [True, False]
    with pytest.raises(argparse.ArgumentTypeError, match="drop and/or keep"):
        sweep._overlay_choices("maybe")


def test_the_wall_setting_scores_a_small_outlined_particle_on_a_large_one(sweep):
    """A small particle inside a large one, outlined by the boundary channel: found only with the wall on."""
    truth = np.zeros((48, 48), np.int32)
    truth[4:44, 4:44] = 1
    truth[8:14, 8:16] = 2
    prob = np.zeros((48, 48, 3), np.float32)
    prob[4:44, 4:44, 0] = 0.99
    prob[4:44, 4:44, 1] = 0.8  # a flat distance: no peak of the small one's own
    prob[7:15, 7:17, 2] = 0.9  # its outline, drawn all round
    prob[8:14, 8:16, 2] = 0.0
    probs, truths, halves = {"a": prob}, {"a": truth}, {"a": "tune"}
    off = sweep.score(probs, truths, halves, threshold=0.5, min_confidence=0.8, min_seed_wall=None)
    on = sweep.score(probs, truths, halves, threshold=0.5, min_confidence=0.8, min_seed_wall=0.7)
    assert off["tune"][0]["tp"] == 1 and off["tune"][0]["fn"] == 1
    assert on["tune"][0]["tp"] == 2 and on["tune"][0]["fn"] == 0
