"""A curation round: `retrain_round` and `synthseg retrain` write a new model, never over the old (issue 17)."""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from napari_synthseg.bank import ObjectBank  # noqa: E402
from napari_synthseg.cli import main  # noqa: E402
from napari_synthseg.curation import Curation, curation_path, pick_object, reject_object, save_curation  # noqa: E402
from napari_synthseg.image_io import write_png  # noqa: E402
from napari_synthseg.model.sidecar import read_sidecar  # noqa: E402
from napari_synthseg.pipeline import next_round_path, retrain_round  # noqa: E402
from napari_synthseg.retraining import find_curated, round_of  # noqa: E402
from napari_synthseg.sample_data import make_sample_scene  # noqa: E402

TINY = dict(patch=64, batch_size=2, validation_scenes=2, base_filters=4, depth=2, steps_per_epoch=2,
            scene_params={"n_objects": (3, 6)})


@pytest.fixture(scope="module")
def first_model(tmp_path_factory):
    """A 2-step model, its bank, and a folder of two images, one of them curated."""
    from napari_synthseg.model.training import train_model

    root = tmp_path_factory.mktemp("round")
    curated = root / "curated"
    curated.mkdir()
    image, truth = make_sample_scene(seed=3, shape=(128, 160))
    bank = ObjectBank(root / "bank")
    bank.add_from_labels(image, truth, source="scene3")
    write_png(curated / "scene.png", image)
    write_png(curated / "other.png", make_sample_scene(seed=4, shape=(128, 160))[0])  # not curated
    ids = [i for i in np.unique(truth) if i]
    cur = Curation.empty(truth.shape)
    for label in ids[:2]:
        row, col = np.argwhere(truth == label)[0]
        cur = pick_object(cur, truth, (row, col))
    background = np.argwhere(truth == 0)[0]
    fake = np.zeros_like(truth)
    fake[tuple(background)] = 1
    cur = reject_object(cur, fake, tuple(background))
    save_curation(cur, curation_path(curated / "scene.png"))
    model = root / "model.keras"
    train_model(bank, None, model, steps=2, seed=0, **TINY)
    return model, root / "bank", curated, cur


def test_round_names():
    assert round_of("a/m.keras") == ("m", 1) and round_of("m_round3.keras") == ("m", 3)


def test_a_round_writes_a_new_model_and_leaves_the_previous_one(first_model, tmp_path):
    import shutil

    source, bank, curated, cur = first_model
    model = tmp_path / "model.keras"
    shutil.copy(source, model)
    shutil.copy(source.with_suffix(".json"), model.with_suffix(".json"))
    before = model.read_bytes(), model.with_suffix(".json").read_bytes()
    bank_before = sorted(p.name for p in (bank / "objects").iterdir())
    assert next_round_path(model) == tmp_path / "model_round2.keras"
    assert [p.name for p, _ in find_curated(curated)] == ["scene.png"]

    out = retrain_round(model, bank, curated, steps=2)
    assert out == tmp_path / "model_round2.keras" and out.is_file()
    assert (model.read_bytes(), model.with_suffix(".json").read_bytes()) == before
    assert sorted(p.name for p in (bank / "objects").iterdir()) == bank_before  # the bank is enriched elsewhere
    record = read_sidecar(out)["curation_round"]
    assert record["round"] == 2 and record["previous_model"] == str(model)
    assert record["curated_images"][str(curated / "scene.png")] == cur.counts
    assert record["clicks"] == 3
    assert len(ObjectBank(record["curated_bank"], create=False)) == 2  # the two picked objects
    assert read_sidecar(out)["training"]["curated_images"] == 1
    assert record["agreement_guard"] is None  # a model of scenes alone has no real crops to judge a round by

    again = retrain_round(out, bank, [(curated / "scene.png", cur)], steps=2)
    assert again == tmp_path / "model_round3.keras"
    assert read_sidecar(again)["curation_round"]["round"] == 3
    with pytest.raises(ValueError, match="never writes over"):
        retrain_round(model, bank, curated, steps=2, out_path=again)


def test_bad_round_inputs_are_one_line(first_model, tmp_path):
    model, bank, curated, _ = first_model
    with pytest.raises(ValueError, match="no click"):
        retrain_round(model, bank, [(np.zeros((64, 64)), Curation.empty((64, 64)))], steps=2)
    with pytest.raises(ValueError, match="shape"):
        retrain_round(model, bank, [(np.zeros((64, 64)), Curation.empty((32, 32)))], steps=2)
    with pytest.raises(ValueError, match="exactly one training budget"):
        retrain_round(model, bank, curated)
    assert not (model.parent / "model_round2.keras").exists()


def test_retrain_command(first_model, tmp_path, capsys):
    import shutil

    source, bank, curated, _ = first_model
    model = tmp_path / "model.keras"
    shutil.copy(source, model)
    shutil.copy(source.with_suffix(".json"), model.with_suffix(".json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    write_png(empty / "plain.png", np.zeros((32, 32), np.uint8))  # an image nobody curated
    bad = [
        (["retrain", str(model), "--curated", str(curated), "--bank", str(bank)], "exactly one training budget"),
        (["retrain", str(tmp_path / "no.keras"), "--curated", str(curated), "--steps", "1"], "does not exist"),
        (["retrain", str(model), "--curated", str(empty), "--steps", "1", "--bank", str(bank)], "has a curation"),
        (["retrain", str(model), "--curated", str(curated), "--steps", "1"], "--bank"),
        (["retrain", str(model), "--curated", str(curated), "--steps", "1", "--bank", str(bank),
          "--curated-fraction", "0"], "--curated-fraction"),
        (["retrain", str(model), "--curated", str(curated), "--steps", "1", "--bank", str(bank),
          "--model-out", str(model)], "never writes over"),
    ]
    for argv, message in bad:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "model_round2.keras").exists()

    assert main(["retrain", str(model), "--curated", str(curated), "--bank", str(bank), "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "round 2" in printed and (tmp_path / "model_round2.keras").is_file()
    info = json.loads((tmp_path / "model_round2.json").read_text())
    assert info["curation_round"]["round"] == 2


def test_a_mixed_recipe_round_keeps_its_real_crops_less_the_curated_images():
    from napari_synthseg.retraining import recipe_real_pairs

    images = [make_sample_scene(seed=s, shape=(96, 96))[0] for s in (0, 1, 2)]
    mixed = {"training": {"real_fraction": 0.5}, "recipe": {"autoseg": {"method": "otsu"}}}
    pairs, share = recipe_real_pairs(mixed, images, skip=[images[1]])
    assert share == 0.5 and len(pairs) == 2
    assert all(labels.any() and labels.shape == image.shape for image, labels in pairs)
    assert not any(np.array_equal(image, images[1]) for image, _ in pairs)
    # a model of scenes alone keeps training on scenes alone
    assert recipe_real_pairs({"training": {"real_fraction": 0.0}}, images) == ([], 0.0)


def _model_calling(source, target, foreground: float):
    """A copy of ``source`` whose output layer calls every pixel object (``foreground`` > 0) or none."""
    import shutil

    from napari_synthseg.model.prediction import load_model

    model = load_model(source).keras_model
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    bias = np.zeros_like(bias)
    bias[0] = foreground
    last.set_weights([np.zeros_like(kernel), bias])
    model.save(target)
    shutil.copy(source.with_suffix(".json"), target.with_suffix(".json"))
    return target


def test_a_round_that_agrees_less_with_the_real_labels_keeps_the_previous_weights(first_model, tmp_path):
    from napari_synthseg.model.prediction import predict
    from napari_synthseg.retraining import keep_previous_if_worse

    source = first_model[0]
    image = np.random.default_rng(0).normal(100, 20, (96, 96)).clip(0, 255).astype(np.uint8)
    real = [(image, np.ones(image.shape, np.uint8))]  # the auto-segmentation says: all object
    everything = _model_calling(source, tmp_path / "everything.keras", 10.0)
    nothing = _model_calling(source, tmp_path / "nothing_round3.keras", -10.0)
    assert predict(nothing, image).max() == 0 and predict(everything, image).min() == 1

    guard = keep_previous_if_worse(everything, nothing, real)
    assert guard == {"previous": 1.0, "new": 0.0, "kept_previous": True}
    assert predict(nothing, image).min() == 1  # the round's file now holds the previous weights
    assert read_sidecar(nothing) == read_sidecar(source)  # its sidecar is its own

    better = _model_calling(source, tmp_path / "better_round3.keras", 10.0)
    worse = _model_calling(source, tmp_path / "worse.keras", -10.0)
    assert keep_previous_if_worse(worse, better, real)["kept_previous"] is False
    assert predict(better, image).min() == 1
