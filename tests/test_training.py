"""Network, loss, streamed data and train_model on a tiny hand-made bank (small and fast)."""

import threading

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from napari_synthseg.bank import BankObject, ObjectBank  # noqa: E402
from napari_synthseg.model import TrainingParams  # noqa: E402
from napari_synthseg.model.data import RealCrops, SyntheticScenes  # noqa: E402
from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss  # noqa: E402
from napari_synthseg.model.network import build_unet  # noqa: E402
from napari_synthseg.model.sidecar import SidecarError, read_sidecar, sidecar_path  # noqa: E402
from napari_synthseg.model.training import TrainProgress, train_model  # noqa: E402

TINY = dict(patch=64, batch_size=4, validation_scenes=4, base_filters=4, depth=2,
            scene_params={"n_objects": (4, 9)})


def make_objects(n=10, seed=0):
    """Bright elliptical grains with a darker rim, 9-21 px across."""
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n):
        r = int(rng.integers(4, 11))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        squash = rng.uniform(0.6, 1.0)
        radius = np.hypot(yy / r, xx / (r * squash))
        mask = radius <= 1
        image = np.where(radius > 0.75, 110, rng.uniform(170, 230)) + rng.normal(0, 6, mask.shape)
        objects.append(BankObject(id=f"grain{i}", image=image.clip(0, 255).astype(np.uint8), mask=mask))
    return objects


@pytest.fixture(scope="module")
def objects():
    return make_objects()


# ---------------------------------------------------------------------------- network, loss
def test_unet_is_fully_convolutional_with_sigmoid_outputs():
    model = build_unet(base_filters=4, depth=2)
    out = keras.ops.convert_to_numpy(model(np.random.default_rng(0).random((2, 32, 48, 1), dtype=np.float32)))
    assert out.shape == (2, 32, 48, 3)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="depth"):
        build_unet(depth=0)
    with pytest.raises(ValueError, match="base_filters"):
        build_unet(base_filters=2.5)


def test_loss_prefers_the_truth_and_metric_is_pooled_iou():
    rng = np.random.default_rng(0)
    labels = np.zeros((2, 16, 16), np.uint32)
    labels[:, 4:12, 3:8], labels[:, 4:12, 8:13] = 1, 2
    from napari_synthseg.model.targets import labels_to_targets

    truth = labels_to_targets(labels)
    good = np.clip(truth * 0.9 + 0.05, 0, 1)
    bad = 1.0 - good
    noisy = rng.random(truth.shape).astype(np.float32)
    loss = SegmentationLoss()
    values = [float(loss(truth, p)) for p in (good, noisy, bad)]
    assert values[0] < values[1] < values[2]
    assert SegmentationLoss.from_config(loss.get_config()).boundary_pos_weight == loss.boundary_pos_weight

    metric = ForegroundIoU()
    pred = np.zeros_like(truth)
    pred[0, 4:12, 3:13, 0] = 0.9  # exact on the first image
    pred[1, 4:12, 3:8, 0] = 0.9  # half of the second
    metric.update_state(truth, pred)
    assert float(metric.result()) == pytest.approx((80 + 40) / (80 + 80))
    metric.reset_state()
    assert float(metric.result()) == 1.0  # nothing predicted, nothing there


# ---------------------------------------------------------------------------- data
def test_scene_batches_are_reproducible_and_streamed(objects):
    scenes = SyntheticScenes(objects, patch=64, batch_size=3, seed=5, scene_params={"n_objects": (4, 9)})
    x, y = scenes.batch(7)
    assert x.shape == (3, 64, 64, 1) and y.shape == (3, 64, 64, 3)
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(scenes.batch(7)[0], x)
    assert not np.array_equal(scenes.batch(8)[0], x)
    assert y[..., 0].any() and y[..., 2].any()
    assert len(scenes) == 50 and scenes[0][0].shape == (3, 64, 64, 1)
    x_val, y_val = scenes.validation_set(2)
    np.testing.assert_array_equal(scenes.validation_set(2)[1], y_val)
    assert x_val.shape == (2, 64, 64, 1)
    assert scenes.bank_size == 10 and len(scenes.bank_hash) == 16


def test_real_crops_replace_scenes_at_the_real_fraction(objects):
    image = np.random.default_rng(1).integers(0, 40, (100, 120), dtype=np.uint8)
    empty = np.zeros((100, 120), np.uint16)  # real crops of a label-free image have no foreground
    only_real = SyntheticScenes(objects, patch=64, batch_size=4, real=[(image, empty)], real_fraction=1.0,
                                scene_params={"n_objects": (4, 9)})
    no_real = SyntheticScenes(objects, patch=64, batch_size=4, real=[(image, empty)], real_fraction=0.0,
                              scene_params={"n_objects": (4, 9)})
    x, y = only_real.batch(0)
    assert x.shape == (4, 64, 64, 1) and y[..., 0].max() == 0
    assert no_real.batch(0)[1][..., 0].max() == 1
    with pytest.raises(ValueError, match="real_fraction"):
        SyntheticScenes(objects, real=[(image, empty)], real_fraction=1.5)
    with pytest.raises(ValueError, match="normalization"):
        SyntheticScenes(objects, normalization="zscore")


def test_real_crops_mirror_small_images_into_new_objects():
    image = np.zeros((40, 50), np.uint8)
    labels = np.zeros((40, 50), np.uint16)
    labels[30:40, 40:50], image[30:40, 40:50] = 5, 200  # an object touching the bottom-right corner
    crop_image, crop_labels = RealCrops([(image, labels)], 64).crop(np.random.default_rng(0))
    assert crop_image.shape == crop_labels.shape == (64, 64)
    assert 0.0 <= crop_image.min() and crop_image.max() <= 1.0
    # the mirrored copies are other objects, not one object spanning the seam
    assert len(np.unique(crop_labels[crop_labels > 0])) > 1
    with pytest.raises(ValueError, match="same height and width"):
        RealCrops([(image, labels[:10])], 64)
    # used directly, real crops treat clumps as training does by default
    import inspect

    assert inspect.signature(RealCrops).parameters["clumps"].default == TrainingParams().real_clumps



def test_real_crops_teach_only_the_outline_of_a_clump(objects):
    image = np.full((64, 64), 30, np.uint8)
    labels = np.zeros((64, 64), np.uint16)
    yy, xx = np.mgrid[:64, :64]
    for cx in (20, 42):  # two touching discs labelled as one object
        labels[np.hypot(yy - 32, xx - cx) < 12] = 1
    image[labels > 0] = 200
    kw = dict(patch=64, batch_size=2, real=[(image, labels)], real_fraction=1.0, augment=False)
    x, y = SyntheticScenes(objects, **kw).batch(0)
    assert y.shape == (2, 64, 64, 5)
    inside = y[0, ..., 4] == 0
    assert inside.sum() > 0.7 * (labels > 0).sum() and (labels[inside] > 0).all()
    assert (y[0, ..., 3] == 1).all()  # the foreground stays known everywhere
    # the scenes of the same stream are known everywhere, in five channels too
    mixed = SyntheticScenes(objects, **{**kw, "real_fraction": 0.0, "scene_params": {"n_objects": (4, 9)}})
    assert mixed.batch(0)[1].shape == (2, 64, 64, 5) and (mixed.batch(0)[1][..., 3:] == 1).all()
    assert mixed.validation_set(2)[1].shape[-1] == 5
    # as labelled: one object, three channels
    assert SyntheticScenes(objects, **kw, real_clumps="labels").batch(0)[1].shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="real_clumps"):
        TrainingParams(steps=1, real_clumps="split")

# ---------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(objects, tmp_path_factory):
    """One short training run shared by several tests (each new model costs seconds of tracing)."""
    reports = []
    path = tmp_path_factory.mktemp("trained") / "net.keras"
    result = train_model(objects, None, path, steps=24, steps_per_epoch=6, learning_rate=3e-3, seed=0,
                         callbacks=reports.append, **TINY)
    return path, result, reports


def test_training_decreases_loss_and_saves_best_model_with_sidecar(trained):
    path, result, reports = trained
    assert result.steps_done == 24 and not result.cancelled
    *checkpoints, average = result.history
    losses = [h["loss"] for h in checkpoints]
    assert len(losses) == 4
    assert losses[-1] < 0.95 * losses[0], losses  # measured: 2.75 -> 2.50
    # the two checkpoints validated from select_after (60 %) on are averaged, and the average is kept
    assert average["averaged"] == 2 and average["saved"] and result.best_metric == average["val_iou"]
    assert path.is_file() and sidecar_path(path).is_file() and result.sidecar_path == str(sidecar_path(path))
    assert not list(path.parent.glob(".*tmp*")), "temporary files left behind"

    info = read_sidecar(path)
    assert info["channels"] == ["foreground", "distance", "boundary"]
    assert info["normalization"] == {"low": 1.0, "high": 99.8, "mode": "percentile"}
    assert info["network"]["depth"] == 2 and info["network"]["base_filters"] == 4
    assert info["bank"]["size"] == 10 and info["bank"]["hash"]
    assert info["training"]["budget"] == {"steps": 24} and info["training"]["patch"] == 64
    assert info["training"]["weight_average"] == 0.0  # the default: raw weights
    assert info["training"]["scene_params"] == {"brightness": 0.7, "contrast": 0.6, "n_objects": [4, 9]}
    # the settings themselves, as TrainingParams (tuples come back from JSON as lists)
    settings = TrainingParams(steps=24, steps_per_epoch=6, learning_rate=3e-3, seed=0, **TINY)
    assert TrainingParams.from_sidecar(info) == settings.replace(scene_params={"n_objects": [4, 9]})
    assert info["metrics"]["best"] == pytest.approx(result.best_metric)
    assert {"keras", "backend", "napari_synthseg", "numpy"} <= set(info["versions"])

    model = keras.saving.load_model(path)
    assert model.output_shape[-1] == 3
    assert all(isinstance(p, TrainProgress) for p in reports)
    assert reports[-1].phase == "done" and reports[-1].step == 24 and reports[-1].total_steps == 24
    assert sum(p.phase == "validation" for p in reports) == 5  # four checkpoints and their average


def test_weight_average_follows_the_weights_and_swaps_them_in_and_out():
    from napari_synthseg.model.averaging import WeightAverage

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    start = [np.ones_like(w) for w in model.get_weights()]
    model.set_weights(start)
    average = WeightAverage(model, 0.5)
    expected = [w.astype(np.float64) for w in start]
    for value in (3.0, -1.0, 7.0):
        model.set_weights([np.full_like(w, value) for w in start])
        average.update(model)
        m = min(0.5, (1 + average.updates) / (10 + average.updates))  # the warm-up ramp
        expected = [m * e + (1 - m) * value for e in expected]
    for got, want in zip(average.values, expected):
        np.testing.assert_allclose(got, want)
    with average.applied(model):
        for got, want in zip(model.get_weights(), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert all(np.all(w == 7.0) for w in model.get_weights())  # its own weights are back


def test_checkpoint_average_is_the_mean_of_the_added_weights():
    from napari_synthseg.model.averaging import CheckpointAverage

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    shapes = [w.shape for w in model.get_weights()]
    average = CheckpointAverage()
    with pytest.raises(ValueError, match="no checkpoint was added"):
        with average.applied(model):
            pass
    for value in (1.0, 2.0, 6.0):
        model.set_weights([np.full(shape, value, np.float32) for shape in shapes])
        average.add(model)
    with average.applied(model):
        assert all(np.allclose(w, 3.0) for w in model.get_weights())
    assert average.count == 3 and all(np.all(w == 6.0) for w in model.get_weights())


def test_a_run_keeps_the_average_of_its_selected_checkpoints(objects, tmp_path):
    path = tmp_path / "avg.keras"
    result = train_model(objects, None, path, steps=4, steps_per_epoch=1, real_validation=[_real_pair()],
                         select_after=0.5, **TINY)
    *checkpoints, last = result.history
    # the three checkpoints from half the budget on, averaged, scored like them and kept
    assert last["averaged"] == 3 and last["step"] == 4 and last["saved"]
    assert result.best_metric == last["real_val_iou"]
    info = read_sidecar(path)
    assert info["training"]["average_checkpoints"] is True and info["metrics"]["averaged"] == 3
    assert info["training"]["steps"] == 4
    off = train_model(objects, None, tmp_path / "off.keras", steps=4, steps_per_epoch=1,
                      real_validation=[_real_pair()], select_after=0.5, average_checkpoints=False, **TINY)
    assert not any("averaged" in h for h in off.history) and len(off.history) == 4


def test_training_validates_and_saves_the_averaged_weights(objects, tmp_path):
    def final_weights(momentum):
        path = tmp_path / f"avg{momentum}.keras"
        train_model(objects, None, path, steps=6, steps_per_epoch=6, weight_average=momentum, **TINY)
        assert read_sidecar(path)["training"]["weight_average"] == momentum
        return keras.saving.load_model(path).get_weights()

    raw, averaged = final_weights(0.0), final_weights(0.9)
    # six steps of Adam move the raw weights away from the start; the average lags behind them
    assert max(float(np.abs(a - r).max()) for a, r in zip(averaged, raw)) > 1e-3


def test_cosine_schedule_falls_to_the_floor_and_constant_keeps_the_rate():
    from napari_synthseg.model.training import LR_FLOOR, learning_rate_factor

    assert learning_rate_factor("cosine", 0.0) == pytest.approx(1.0)
    assert learning_rate_factor("cosine", 0.5) == pytest.approx(0.5 * (1 + LR_FLOOR))
    assert learning_rate_factor("cosine", 1.0) == pytest.approx(LR_FLOOR)
    assert learning_rate_factor("cosine", 3.0) == pytest.approx(LR_FLOOR)  # a late last step
    cosine = [learning_rate_factor("cosine", f) for f in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    assert {learning_rate_factor("constant", f) for f in (0.0, 0.5, 1.0)} == {1.0}


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_training_applies_the_schedule_over_the_step_budget(objects, tmp_path, monkeypatch, schedule):
    import napari_synthseg.model.training as training

    rates = []
    original_factor = training.learning_rate_factor

    def spy(name, fraction):
        rates.append((name, fraction))
        return original_factor(name, fraction)

    monkeypatch.setattr(training, "learning_rate_factor", spy)
    path = tmp_path / f"{schedule}.keras"
    train_model(objects, None, path, steps=6, steps_per_epoch=3, learning_rate=2e-3, lr_schedule=schedule, **TINY)
    assert rates == [(schedule, i / 6) for i in range(6)]  # one per step, over the budget
    assert read_sidecar(path)["training"]["lr_schedule"] == schedule


def test_xla_auto_compiles_only_budgets_that_repay_it():
    from napari_synthseg.model import XLA_MIN_STEPS
    from napari_synthseg.model.training import use_xla

    tf = "tensorflow"
    assert use_xla("auto", ("steps", XLA_MIN_STEPS - 1), backend=tf) is False
    assert use_xla("auto", ("steps", XLA_MIN_STEPS), backend=tf) is True
    assert use_xla("auto", ("epochs", 2), steps_per_epoch=XLA_MIN_STEPS // 2, backend=tf) is True
    assert use_xla("auto", ("minutes", 0.5), backend=tf) is False
    assert use_xla("auto", ("minutes", 15), backend=tf) is True
    assert use_xla("auto", ("minutes", 15), backend="jax") == "auto"  # Keras decides there
    assert use_xla("on", ("steps", 1), backend=tf) is True and use_xla("off", ("minutes", 15), backend=tf) is False
    with pytest.raises(ValueError, match="xla must be one of auto, on, off"):
        use_xla(True, ("steps", 1))


def test_xla_training_matches_plain_training_and_is_recorded(objects, tmp_path):
    runs = {}
    for xla in ("on", "off"):
        path = tmp_path / f"{xla}.keras"
        runs[xla] = train_model(objects, None, path, steps=3, steps_per_epoch=3, seed=1, xla=xla, **TINY)
        assert read_sidecar(path)["training"]["xla"] is (xla == "on")
    # the same seeded steps give the same model, compiled or not
    assert runs["on"].history[-1]["val_loss"] == pytest.approx(runs["off"].history[-1]["val_loss"], rel=1e-3)
    # a resumed compiled model follows this run's choice, not the saved compile settings
    train_model(objects, None, tmp_path / "on.keras", steps=1, steps_per_epoch=1, resume=True, xla="off", **TINY)
    assert read_sidecar(tmp_path / "on.keras")["training"]["xla"] is False


def test_cancel_keeps_a_loadable_best_model(objects, tmp_path):
    cancel = threading.Event()
    path = tmp_path / "cancelled.keras"
    cancelled_at = []

    def cancel_at_first_report(progress):
        if progress.phase == "train" and not cancel.is_set():
            cancelled_at.append(progress.step)
            cancel.set()

    real_image = np.full((80, 70), 40, np.uint8)
    real_labels = np.zeros((80, 70), np.uint16)
    real_image[10:30, 10:30], real_labels[10:30, 10:30] = 200, 1
    # XLA off: a 30-minute budget would compile the step (seconds), which is not what is tested here
    result = train_model(objects, None, path, minutes=30, steps_per_epoch=100, cancel_event=cancel,
                         callbacks=cancel_at_first_report, real_validation=[(real_image, real_labels)],
                         select_after=0.0, xla="off", **TINY)
    assert result.cancelled and result.steps_done == cancelled_at[0]  # stopped before the next batch
    assert keras.saving.load_model(path).output_shape[-1] == 3
    info = read_sidecar(path)
    assert info["training"]["cancelled"] is True and info["training"]["steps"] == result.steps_done
    # with real images, they choose the best model
    assert info["metrics"]["selection"] == "real_val_iou"
    assert result.best_metric == result.history[-1]["real_val_iou"]


def _real_pair():
    image = np.full((80, 70), 40, np.uint8)
    labels = np.zeros((80, 70), np.uint16)
    image[10:30, 10:30], labels[10:30, 10:30] = 200, 1
    return image, labels


def test_models_before_select_after_are_only_a_fallback(objects, tmp_path):
    path = tmp_path / "late.keras"
    result = train_model(objects, None, path, steps=4, steps_per_epoch=1, real_validation=[_real_pair()],
                         select_after=0.5, **TINY)
    first, *late = result.history
    # the first half keeps the best synthetic model without scoring the real images
    assert first["saved"] and not first["selecting"] and "real_val_iou" not in first
    # the first validation past half the budget replaces it, whatever the scores
    assert all(h["selecting"] for h in late) and late[0]["saved"]
    assert all("real_val_iou" in h for h in late)
    info = read_sidecar(path)
    assert info["training"]["steps"] >= 2 and info["metrics"]["selection"] == "real_val_iou"
    assert info["training"]["select_after"] == 0.5 and info["training"]["real_validation_pixels"] == 80 * 70
    assert result.best_metric == max(h["real_val_iou"] for h in late)

    # a Stop before half the budget leaves the fallback, chosen by the synthetic IoU
    cancel = threading.Event()
    stopped = train_model(objects, None, tmp_path / "stopped.keras", minutes=30, steps_per_epoch=100,
                          cancel_event=cancel, callbacks=lambda p: cancel.set(), real_validation=[_real_pair()],
                          xla="off", **TINY)  # XLA off: compiling the step is not what is tested
    assert stopped.cancelled and "real_val_iou" not in stopped.history[-1]
    assert read_sidecar(tmp_path / "stopped.keras")["metrics"]["selection"] == "val_iou"

    # a resumed model is the fallback itself, and the one the late models have to beat
    resumed = train_model(objects, None, path, steps=2, steps_per_epoch=1, resume=True,
                          real_validation=[_real_pair()], select_after=0.9, **TINY)
    baseline, early, last = resumed.history[-3:]
    assert "real_val_iou" in baseline and not early["saved"] and "real_val_iou" not in early
    assert last["selecting"] and last["saved"] == (last["real_val_iou"] > baseline["real_val_iou"])


def test_select_after_must_be_a_share(objects, tmp_path):
    for bad in (-0.1, 1.5, "late", True):
        with pytest.raises(ValueError, match="select_after must be a share of the budget between 0 and 1"):
            train_model(objects, None, tmp_path / "m.keras", steps=1, select_after=bad, **TINY)
    with pytest.raises(ValueError, match="real_validation_pixels must be a positive integer"):
        train_model(objects, None, tmp_path / "m.keras", steps=1, real_validation=[_real_pair()],
                    real_validation_pixels=0, **TINY)


def test_resume_loads_the_weights_and_continues(objects, trained, tmp_path):
    import shutil

    source, first, _ = trained
    path = tmp_path / "resumed.keras"
    shutil.copy(source, path)
    shutil.copy(sidecar_path(source), sidecar_path(path))
    reports = []
    second = train_model(objects, None, path, steps=4, steps_per_epoch=2, seed=0, resume=True,
                         callbacks=reports.append, **TINY)
    best_step = read_sidecar(source)["training"]["steps"]
    assert second.steps_done == best_step + 4
    assert len(second.history) > len([h for h in first.history if h["step"] <= best_step])
    # the resumed model, checked first on the same seeded validation set, scores as it did when saved
    baseline = reports[0]
    assert baseline.phase == "validation" and baseline.step == best_step
    assert baseline.val_iou == pytest.approx(first.best_metric, abs=1e-4)
    assert reports[-1].total_steps == best_step + 4
    assert read_sidecar(path)["training"]["resumed_from_step"] == best_step


def test_anchored_training_is_recorded_and_repeated_by_prediction(objects, tmp_path):
    from napari_synthseg.model.prediction import load_model
    from napari_synthseg.normalize import anchored_range

    rng = np.random.default_rng(0)
    real = np.full((80, 96), 200, np.uint8)  # dark grains on a bright background
    labels = np.zeros((80, 96), np.uint16)
    for i, (y, x) in enumerate([(20, 20), (50, 60), (30, 70)], start=1):
        real[y - 6:y + 6, x - 6:x + 6], labels[y - 6:y + 6, x - 6:x + 6] = 70, i
    real = np.clip(real + rng.normal(0, 3, real.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "anchored.keras"
    train_model(objects, None, path, steps=2, steps_per_epoch=2, real_training=[(real, labels)],
                normalization="anchored", **TINY)
    info = read_sidecar(path)
    assert info["normalization"]["mode"] == "anchored"
    assert info["training"]["real_training_images"] == 1
    model = load_model(path)
    assert model.normalization == "anchored"
    assert model.value_range(real) == anchored_range(real)


def test_minutes_budget_on_a_bank_folder(objects, tmp_path):
    bank = ObjectBank(tmp_path / "bank")
    for obj in objects[:5]:
        bank.add_object(obj.image, obj.mask, source="test")
    reports = []
    path = tmp_path / "timed.keras"
    # a budget shorter than one step: exactly one step runs (the budget is checked between batches,
    # and its clock starts when the first step is done)
    result = train_model(str(bank.path), None, path, minutes=1e-9, steps_per_epoch=1000,
                         callbacks=reports.append, **TINY)
    assert result.steps_done == 1 and not result.cancelled
    assert reports[-1].total_steps is None and reports[-1].phase == "done"
    assert read_sidecar(path)["bank"] == {"size": 5, "hash": bank.content_hash()}


def test_the_training_step_is_traced_once_per_run(objects, tmp_path, monkeypatch):
    """Adam's slots exist before the first step, so TensorFlow traces the step once, not twice (each trace
    costs seconds before the first step)."""
    from napari_synthseg.model import training

    traces = []

    def counting(model):
        real_step = model.train_step

        def train_step(data):
            traces.append(model)  # runs when TensorFlow traces the step, not at every step
            return real_step(data)

        model.train_step = train_step
        return model

    real_build = training.build_unet
    monkeypatch.setattr(training, "build_unet", lambda *a, **kw: counting(real_build(*a, **kw)))
    path = tmp_path / "once.keras"
    train_model(objects, None, path, steps=3, steps_per_epoch=3, xla="off", **TINY)
    assert len(traces) == 1


def test_minutes_budget_starts_at_the_first_step_and_phases_are_named(objects, tmp_path, monkeypatch):
    """Building the model and compiling the first step (here: 10 minutes each on a fake clock) are not
    counted against a minutes budget; each phase of the work is announced."""
    import time as real_time

    from napari_synthseg.model import training

    clock = {"offset": 0.0}
    monkeypatch.setattr(training, "time", type("FakeTime", (), {
        "perf_counter": staticmethod(lambda: real_time.perf_counter() + clock["offset"])}))
    real_build = training.build_unet

    def slow_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        clock["offset"] += 600.0
        real_step = model.train_on_batch

        def first_step_compiles(*a, **kw):
            logs = real_step(*a, **kw)
            if not clock.get("compiled"):
                clock["compiled"] = True
                clock["offset"] += 600.0
            return logs

        model.train_on_batch = first_step_compiles
        return model

    monkeypatch.setattr(training, "build_unet", slow_build)
    phases = []
    result = train_model(objects, None, tmp_path / "m.keras", minutes=0.02, steps_per_epoch=10_000,
                         on_phase=phases.append, **TINY)
    assert clock.get("compiled") and result.steps_done > 1
    assert phases[:2] == ["building the model", "training"]
    assert phases[-2:] == ["validating", "saving"]
    with pytest.raises(TypeError, match="on_phase"):
        train_model(objects, None, tmp_path / "n.keras", steps=1, on_phase="loud", **TINY)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one training budget"),
    ({"steps": 5, "minutes": 1}, "exactly one training budget"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"epochs": 1.5}, "epochs must be a positive integer"),
    ({"minutes": -1}, "minutes must be a number > 0"),
    ({"steps": 2, "patch": 66}, "multiple of 2\\*\\*depth"),
    ({"steps": 2, "batch_size": 0}, "batch_size"),
    ({"steps": 2, "weight_average": 1.0}, "weight_average must be in"),
    ({"steps": 2, "lr_schedule": "step"}, "lr_schedule must be one of cosine, constant"),
    ({"steps": 2, "xla": "yes"}, "xla must be one of auto, on, off"),
])
def test_bad_budgets_and_sizes_are_rejected(objects, tmp_path, kwargs, message):
    params = dict(TINY)
    params.update(kwargs)
    with pytest.raises(ValueError, match=message):
        train_model(objects, None, tmp_path / "m.keras", **params)


def test_bad_paths_banks_and_resume_are_rejected(objects, tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        train_model(objects, None, tmp_path / "m.h5", steps=1, **TINY)
    with pytest.raises(ValueError, match="holds no objects"):
        train_model([], None, tmp_path / "m.keras", steps=1, **TINY)
    with pytest.raises(FileNotFoundError, match="no model"):
        train_model(objects, None, tmp_path / "missing.keras", steps=1, resume=True, **TINY)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        train_model(objects, None, broken, steps=1, resume=True, **TINY)
    with pytest.raises(TypeError, match="callbacks"):
        train_model(objects, None, tmp_path / "m.keras", steps=1, callbacks=[3], **TINY)
    with pytest.raises(SidecarError):
        read_sidecar(tmp_path / "nothing.keras")


def test_resume_refuses_another_normalization(objects, trained, tmp_path):
    import shutil

    path = tmp_path / "percentile.keras"
    shutil.copy(trained[0], path)
    shutil.copy(sidecar_path(trained[0]), sidecar_path(path))
    with pytest.raises(ValueError, match="trained with 'percentile'"):
        train_model(objects, None, path, steps=1, resume=True, normalization="anchored", **TINY)
