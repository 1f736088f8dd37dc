"""benchmarks/curation_rounds.py end to end on a tiny generated set with a step budget (issue 17)."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from _scripts import loaded_script  # noqa: E402
from napari_synthseg.curation import Curation  # noqa: E402
from napari_synthseg.sample_data import write_sample_folder  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    with loaded_script("benchmarks/curation_rounds.py") as module:
        yield module


def test_clicks_follow_the_ground_truth_and_the_product_makes_the_objects(bench):
    truth = np.zeros((60, 80), np.int32)
    truth[5:20, 5:20], truth[5:20, 40:55], truth[35:55, 30:50] = 1, 2, 3
    pred = np.zeros_like(truth)
    pred[5:20, 5:20] = 7        # matches true object 1: a pick
    pred[40:44, 2:6] = 8        # lies on background: a reject
    prob = np.zeros(truth.shape + (3,), np.float32)
    prob[..., 0][pred > 0] = 0.9
    prob[..., 0][35:55, 30:50] = 0.45  # object 3 missed by the model, faint in its probability
    image = np.where(truth > 0, 0.8, 0.2).astype(np.float32)
    cur, made = bench.emulate_clicks(Curation.empty(truth.shape), image, pred, prob, truth, n_clicks=10)
    assert made == 4  # add 3, reject 8, pick 7, add 2 (both missed objects: 2 is found from the image)
    assert cur.counts["pick"] == 1 and cur.counts["reject"] == 1 and cur.counts["add"] == 2
    assert cur.background[42, 4] and cur.objects[10, 10] and cur.objects[45, 40] and cur.objects[10, 45]
    again, made_again = bench.emulate_clicks(cur, image, pred, prob, truth, n_clicks=10)
    assert made_again == 0  # what is curated is not clicked again
    one, made_one = bench.emulate_clicks(Curation.empty(truth.shape), image, pred, prob, truth, n_clicks=1)
    assert made_one == 1 and one.counts["add"] == 1 and (one.objects[35:55, 30:50] > 0).all()


def test_the_person_splits_clumps_and_merges_broken_objects(bench):
    yy, xx = np.mgrid[:64, :96]
    truth = np.zeros((64, 96), np.int32)
    truth[np.hypot(yy - 20, xx - 20) <= 10] = 1
    truth[np.hypot(yy - 20, xx - 38) <= 10] = 2   # touches 1: the model merged them
    truth[40:60, 50:80] = 3                       # the model broke it in two
    pred = np.zeros_like(truth)
    pred[(truth == 1) | (truth == 2)] = 4
    pred[40:60, 50:64] = 5
    pred[40:60, 66:80] = 6
    prob = np.zeros(truth.shape + (3,), np.float32)
    prob[..., 0][pred > 0] = 0.9
    image = np.where(truth > 0, 0.8, 0.2).astype(np.float32)
    candidates = bench.click_candidates(pred, truth, prob[..., 0], Curation.empty(truth.shape), kinds=bench.KINDS)
    assert [t for _, t in candidates["split"]] == [4]
    assert [t for _, t in candidates["merge"]] == [(3, (5, 6))] and not candidates["add"]
    cur, made = bench.emulate_clicks(Curation.empty(truth.shape), image, pred, prob, truth, n_clicks=5,
                                     kinds=bench.KINDS)
    assert made == 2 and cur.counts["split"] == 2 and cur.counts["merge"] == 1
    assert cur.objects[20, 20] != cur.objects[20, 38] and cur.objects[20, 20] and cur.objects[20, 38]
    assert (cur.objects[40:60, 50:80] == cur.objects[50, 52]).all()
    # a person who only picks, rejects and adds leaves both alone
    none, made_none = bench.emulate_clicks(Curation.empty(truth.shape), image, pred, prob, truth, n_clicks=5,
                                           kinds=("reject", "pick"))
    assert made_none == 0 and none.is_empty()
    adds = bench.click_candidates(pred, truth, prob[..., 0], Curation.empty(truth.shape), kinds=("add",))["add"]
    # without split and merge the person adds them (2 is matched at IoU 0.5 by the clump: not missed)
    assert sorted(t for _, t in adds) == [1, 3]
    assert bench.build_parser().parse_args(["--images", "a", "--masks", "b", "--kinds", "add,pick"]).kinds == (
        "add", "pick")
    assert bench.build_parser().parse_args(["--images", "a", "--masks", "b"]).kinds == ("add", "reject", "pick")
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--images", "a", "--masks", "b", "--kinds", "poke"])


def test_benchmark_end_to_end_with_a_step_budget(bench, tmp_path, capsys):
    images, masks = write_sample_folder(tmp_path / "set", n=3, shape=(96, 128), seed=7)
    out_json = tmp_path / "rounds.json"
    assert bench.main(["--images", str(images), "--masks", str(masks), "--curate-images", "1", "--clicks", "3",
                       "--rounds", "1", "--steps", "2", "--first-steps", "2", "--base-filters", "4", "--depth", "2",
                       "--patch", "64", "--batch-size", "2", "--steps-per-epoch", "2", "--out", str(tmp_path / "work"),
                       "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "round 1 curated" in printed and "round 1 control" in printed
    result = json.loads(out_json.read_text())
    assert [r["round"] for r in result["rounds"]] == [0, 1]
    for entry in result["rounds"]:
        for arm in ("curated", "control"):
            assert set(entry[arm]) >= {"pixel_iou", "object_f1", "ap", "clicks"}
            assert 0.0 <= entry[arm]["pixel_iou"] <= 1.0
    assert result["rounds"][0]["curated"] == result["rounds"][0]["control"]  # one first model
    assert 0 < result["rounds"][1]["curated"]["clicks"] <= 3 and result["rounds"][1]["control"]["clicks"] == 0
    assert result["scored_images"] == 2 and len(result["curated_images"]) == 1
    work = tmp_path / "work"
    assert (work / "curated" / "model_round2.keras").is_file() and (work / "control" / "model_round2.keras").is_file()
    assert list((work / "curations_round1").glob("*_curation.tif"))


def test_count_adds_says_how_many_missed_objects_the_product_outlines(bench):
    yy, xx = np.mgrid[:40, :90]
    discs = [np.hypot(yy - 20, xx - c) <= 9 for c in (20, 38, 56)]  # three touching grains drawn as one
    truth = np.zeros((40, 90), np.int32)
    for i, disc in enumerate(discs, 1):
        truth[disc] = i
    truth[np.hypot(yy - 20, xx - 80) <= 4] = 4  # a small grain the model missed, on background
    pred = np.where(truth.astype(bool) & (truth < 4), 7, 0).astype(np.int32)
    distance = np.max([np.clip(1 - np.hypot(yy - 20, xx - c) / 9, 0, 1) for c in (20, 38, 56)], axis=0)
    prob = np.stack([np.where(pred > 0, 0.95, 0.02), distance, np.zeros_like(distance)], -1).astype(np.float32)
    image = np.where(truth > 0, 200, 30).astype(np.uint8)

    counts = bench.count_adds({"a": (pred, prob)}, {"a": image}, {"a": truth})
    assert counts["inside a prediction"] == {"clicks": 3, "right": 3, "right without distance": 0}
    assert counts["background"]["clicks"] == 1 and counts["background"]["right"] == 1  # from the image


def test_whole_masks_curate_every_pixel_of_the_curated_images(bench, tmp_path):
    truth = np.zeros((40, 50), np.int32)
    truth[5:15, 5:15], truth[20:35, 25:45] = 3, 9
    whole = bench.whole_mask_curation(truth)
    assert whole.known(ring_px=0).all()  # every pixel known: objects and background
    assert np.array_equal(whole.objects > 0, truth > 0) and whole.counts["pick"] == 2 and whole.clicks == 2

    images, masks = write_sample_folder(tmp_path / "set", n=3, shape=(96, 128), seed=7)
    out_json = tmp_path / "rounds.json"
    assert bench.main(["--images", str(images), "--masks", str(masks), "--curate-images", "1", "--whole-masks",
                       "--rounds", "2", "--steps", "1", "--first-steps", "1", "--base-filters", "4", "--depth", "2",
                       "--patch", "64", "--batch-size", "2", "--steps-per-epoch", "1", "--out", str(tmp_path / "work"),
                       "--learning-rate", "0.0005", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    for arm in ("curated", "control"):  # both arms train at the rate asked for
        sidecar = json.loads((tmp_path / "work" / arm / "model_round2.json").read_text())
        assert sidecar["training"]["learning_rate"] == pytest.approx(0.0005)
    curated = result["curated_images"][0]
    true_objects = len(np.unique(bench._load(images, masks)[2][curated])) - 1
    # the whole mask is given once, in round 1: its objects are the clicks, round 2 adds none
    assert [r["curated"]["clicks"] for r in result["rounds"]] == [0, true_objects, true_objects]
    saved = list((tmp_path / "work" / "curations_round1").glob("*_curation.tif"))
    assert len(saved) == 1


def test_a_learning_rate_of_zero_is_refused_before_any_work(bench, tmp_path):
    with pytest.raises(SystemExit, match="--learning-rate must be above 0"):
        bench.main(["--images", str(tmp_path), "--masks", str(tmp_path), "--learning-rate", "0"])
