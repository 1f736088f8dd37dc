"""scripts/walkthrough_round.py's emulated person: each kind of click where a person would make it."""

import numpy as np

from _scripts import loaded_script


def _person_clicks(*args, **kwargs):
    with loaded_script("scripts/walkthrough_round.py") as script:
        return script.person_clicks(*args, **kwargs)


def test_the_person_adds_splits_merges_picks_and_rejects_in_turns():
    yy, xx = np.mgrid[:64, :96]
    truth = np.zeros((64, 96), np.int32)
    truth[np.hypot(yy - 20, xx - 20) <= 10] = 1
    truth[np.hypot(yy - 20, xx - 38) <= 10] = 2   # touches 1: segmented together
    truth[40:60, 50:80] = 3                       # segmented in two pieces
    truth[5:12, 70:90] = 4                        # missed
    truth[40:50, 5:20] = 5                        # found right
    pred = np.zeros_like(truth)
    pred[(truth == 1) | (truth == 2)] = 4
    pred[40:60, 50:64] = 5
    pred[40:60, 66:80] = 6
    pred[truth == 5] = 8
    pred[55:60, 5:10] = 7                         # a speck on the background
    plan = _person_clicks(pred, truth, pick_iou=0.7, limit=10)
    assert [mode for mode, _, _ in plan] == ["add", "split", "merge", "pick", "reject"]
    add, split, merge, pick, reject = (point for _, point, _ in plan)
    assert truth[add] == 4 and pred[split] == 4 and pred[pick] == 8 and pred[reject] == 7
    assert sorted(int(pred[p]) for p in merge) == [5, 6] and plan[2][2] == 3
    assert len(_person_clicks(pred, truth, pick_iou=0.7, limit=2)) == 2
    plain = _person_clicks(pred, truth, pick_iou=0.7, limit=10, kinds=("add", "pick", "reject"))
    # without split and merge the broken grain is added, and so is the grain the joined prediction holds but does
    # not match at IoU 0.5 (grain 1; grain 2 holds most of the prediction and matches it)
    assert [(mode, int(truth[point]) if mode == "add" else 0) for mode, point, _ in plain] == [
        ("add", 3), ("pick", 0), ("reject", 0), ("add", 1), ("add", 4)]
