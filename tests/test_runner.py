"""The child-process runner: training and prediction in a spawned child, events, stop, errors.

The end-to-end job runs in a fresh interpreter so that the check "the parent never imported
TensorFlow or Keras" is not spoiled by other test modules' imports.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from napari_synthseg.model.runner import JobError, ModelJob

PARENT_SCRIPT = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.model.runner import ModelJob

    def main(workdir):
        workdir = Path(workdir)
        rng = np.random.default_rng(0)
        bank = ObjectBank(workdir / "bank")
        for i in range(8):
            r = int(rng.integers(4, 10))
            yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
            mask = np.hypot(yy, xx) <= r
            image = (rng.uniform(150, 230) + rng.normal(0, 6, mask.shape)).clip(0, 255).astype(np.uint8)
            bank.add_object(image, mask, source="runner test")
        model_path = workdir / "model.keras"
        report = {"train_events": [], "predict_events": []}

        job = ModelJob()
        job.start_training(bank=bank, backgrounds=None, model_path=str(model_path), minutes=30, patch=64,
                           batch_size=2, steps_per_epoch=1000, validation_scenes=2, base_filters=4, depth=2,
                           scene_params={"n_objects": (3, 6)})
        for event in job.events(timeout=240):
            report["train_events"].append({k: v for k, v in event.items() if k not in ("history", "traceback")})
            if event["kind"] == "error":
                report["error"] = event
            if event["kind"] == "progress" and event.get("phase") == "train" and event["step"] >= 2:
                report["stopped_cleanly"] = job.stop(timeout=120)
        report["child_alive_after"] = job.is_alive()
        report["model_exists"] = model_path.is_file() and model_path.with_suffix(".json").is_file()

        image = (rng.random((50, 70)) * 100).astype(np.uint8)
        image[10:30, 20:40] = 220
        with ModelJob() as job:
            job.start_prediction(str(model_path), [image, image[:33, :41]], tile=64, overlap=16, details=True)
            for event in job.events(timeout=240):
                if event["kind"] == "result":
                    event = dict(event, labels_shape=list(event.pop("labels").shape),
                                 maps=[list(event.pop(key).shape) for key in ("foreground", "distance")])
                report["predict_events"].append({k: v for k, v in event.items() if k != "traceback"})
                if event["kind"] == "error":
                    report["error"] = event
        report["tensorflow_in_parent"] = "tensorflow" in sys.modules
        report["keras_in_parent"] = "keras" in sys.modules or any(m.startswith("keras.") for m in sys.modules)
        print("REPORT" + json.dumps(report))

    if __name__ == "__main__":
        main(sys.argv[1])
''')


def test_training_and_prediction_run_in_a_child_and_the_parent_stays_keras_free(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=500)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert "error" not in report, report["error"]

    train_kinds = [e["kind"] for e in report["train_events"]]
    assert train_kinds[0] == "started" and train_kinds[-1] == "done"
    progress = [e for e in report["train_events"] if e["kind"] == "progress"]
    assert progress and all(e["task"] == "train" for e in progress)
    assert {"step", "total_steps", "loss", "val_iou", "elapsed_s", "best", "phase"} <= set(progress[0])
    (result,) = [e for e in report["train_events"] if e["kind"] == "result"]
    assert result["cancelled"] is True and result["steps_done"] >= 2
    assert report["stopped_cleanly"] is True and report["child_alive_after"] is False
    assert report["model_exists"]

    predict_results = [e for e in report["predict_events"] if e["kind"] == "result"]
    assert [e["labels_shape"] for e in predict_results] == [[50, 70], [33, 41]]
    # the Segment dock's details: foreground and inner distance for Curate's Add
    assert [e["maps"] for e in predict_results] == [[[50, 70]] * 2, [[33, 41]] * 2]
    assert [e["zooms"] for e in predict_results] == [[1.0], [1.0]]  # the zoom kept per plane (too small to shrink)
    assert any(e["kind"] == "progress" and e["task"] == "predict" for e in report["predict_events"])
    assert report["predict_events"][-1]["kind"] == "done"

    assert report["tensorflow_in_parent"] is False
    assert report["keras_in_parent"] is False


def test_child_errors_arrive_as_clear_events(tmp_path):
    job = ModelJob()
    job.start_training(bank=str(tmp_path / "no_such_bank"), backgrounds=None,
                       model_path=str(tmp_path / "m.keras"), steps=1)
    events = list(job.events(timeout=120))
    kinds = [e["kind"] for e in events]
    assert kinds[-1] == "done" and "error" in kinds and "result" not in kinds
    (error,) = [e for e in events if e["kind"] == "error"]
    assert "no_such_bank" in error["message"]
    job.close()
    assert not job.is_alive()


def test_a_dropped_job_leaves_no_temporary_folder(tmp_path):
    import gc

    job = ModelJob()
    job.start_training(bank=str(tmp_path / "no_such_bank"), backgrounds=None,
                       model_path=str(tmp_path / "m.keras"), steps=1)
    folder = Path(job._tmpdir)
    assert folder.is_dir()
    list(job.events(timeout=120))
    del job  # never closed
    gc.collect()
    assert not folder.exists()


def test_a_dead_child_is_detected_instead_of_hanging(tmp_path):
    from napari_synthseg.bank import ObjectBank

    bank = ObjectBank(tmp_path / "bank")
    bank.add_object(np.full((9, 9), 200, np.uint8), np.ones((9, 9), bool))
    job = ModelJob()
    job.start_training(bank=bank, backgrounds=None, model_path=str(tmp_path / "m.keras"), steps=1)
    events = job.events(timeout=120)
    assert next(events)["kind"] == "started"
    # the child says when it starts importing Keras (seconds); killed then, it can have sent nothing more
    assert next(events) == {"kind": "phase", "task": "train", "phase": "loading TensorFlow"}
    os.kill(job.pid, signal.SIGKILL)
    rest = list(events)
    assert [e["kind"] for e in rest] == ["error", "done"]
    assert "ended unexpectedly" in rest[0]["message"] and "-9" in rest[0]["message"]
    assert not job.is_alive()


def test_misuse_is_rejected_before_any_child_starts(tmp_path):
    job = ModelJob()
    with pytest.raises(TypeError, match="provided by ModelJob"):
        job.start_training(bank="b", backgrounds=None, model_path="m.keras", steps=1, callbacks=[print])
    with pytest.raises(TypeError, match="model_path"):
        job.start_training(bank="b", backgrounds=None, steps=1)
    with pytest.raises(ValueError, match="at least one image"):
        job.start_prediction("m.keras", [])
    assert job.pid is None and job.stop() is True and job.poll() == []
    with pytest.raises(JobError, match="not been started"):
        next(job.events())
    job.start_prediction(str(tmp_path / "missing.keras"), np.zeros((8, 8), np.uint8))
    with pytest.raises(JobError, match="already started"):
        job.start_training(bank="b", backgrounds=None, model_path="m.keras", steps=1)
    events = list(job.events(timeout=120))
    assert events[-1]["kind"] == "done"
    assert any(e["kind"] == "error" and "missing.keras" in e["message"] for e in events)
    job.close()


UNGUARDED_SCRIPT = textwrap.dedent('''
    # A user's script without `if __name__ == "__main__":` (as napari scripts often are).
    import json, sys
    from pathlib import Path
    import numpy as np
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.model.runner import ModelJob

    workdir = Path(sys.argv[1])
    with open(workdir / "runs.txt", "a") as runs:
        runs.write("ran\\n")
    bank = ObjectBank(workdir / "bank")
    if not len(bank):
        rng = np.random.default_rng(0)
        for i in range(6):
            yy, xx = np.mgrid[-6:7, -6:7]
            bank.add_object(np.full(yy.shape, 200, np.uint8), np.hypot(yy, xx) <= 6, source="script")
    job = ModelJob()
    job.start_training(bank=bank, backgrounds=None, model_path=str(workdir / "m.keras"), steps=2, patch=64,
                       batch_size=2, steps_per_epoch=1, validation_scenes=2, base_filters=4, depth=2,
                       scene_params={"n_objects": (2, 4)})
    events = [{k: v for k, v in e.items() if k in ("kind", "message", "steps_done")}
              for e in job.events(timeout=240)]
    job.close()
    print("EVENTS" + json.dumps(events))
''')


def test_a_script_without_main_guard_is_not_rerun_by_the_child(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(UNGUARDED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=400)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("EVENTS")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    events = json.loads(lines[-1][len("EVENTS"):])
    assert [e for e in events if e["kind"] == "error"] == []
    (result,) = [e for e in events if e["kind"] == "result"]
    assert result["steps_done"] == 2 and (tmp_path / "m.keras").is_file()
    assert (tmp_path / "runs.txt").read_text().splitlines() == ["ran"]  # the child never ran the script


def test_only_our_children_start_without_the_main_module():
    import multiprocessing.spawn

    from napari_synthseg.model import runner

    runner._leave_main_out_of_spawned_children()
    runner._leave_main_out_of_spawned_children()  # idempotent: wrapped once
    get = multiprocessing.spawn.get_preparation_data
    assert not getattr(get.__wrapped__, "_synthseg_main_free", False)
    ours = get(runner.CHILD_NAME_PREFIX + "predict")
    assert "init_main_from_name" not in ours and "init_main_from_path" not in ours
    main = sys.modules["__main__"]
    if getattr(main.__spec__, "name", None) or getattr(main, "__file__", None):
        other = get("someone-else")
        assert "init_main_from_name" in other or "init_main_from_path" in other


class _ExitWhileUnpickled:
    """Unpickling it in the child ends the child with code 3 (before its "started" event)."""

    def __reduce__(self):
        return os._exit, (3,)


class _HangWhileUnpickled:
    """Unpickling it in the child sleeps for a minute (a child that never starts)."""

    def __reduce__(self):
        import time

        return time.sleep, (60,)


def test_a_child_that_exits_before_starting_is_reported():
    job = ModelJob()
    job.start_prediction("m.keras", [_ExitWhileUnpickled()])
    events = list(job.events(timeout=120))
    assert [e["kind"] for e in events] == ["error", "done"]
    assert "exited with code 3 before it started" in events[0]["message"]
    job.close()


def test_a_child_that_never_starts_is_stopped_after_the_startup_timeout():
    job = ModelJob(startup_timeout=3)
    job.start_prediction("m.keras", [_HangWhileUnpickled()])
    events = list(job.events(timeout=120))
    assert [e["kind"] for e in events] == ["error", "done"]
    assert "did not start within 3 s" in events[0]["message"]
    assert not job.is_alive()
    job.close()


def test_large_real_images_reach_the_child_as_files_written_once(tmp_path):
    from napari_synthseg.model.child import QUEUE_ARRAY_LIMIT, _ArrayFile, _load_pairs

    side = int(np.sqrt(QUEUE_ARRAY_LIMIT / 4)) + 8
    big = np.random.default_rng(0).random((side, side), dtype=np.float32)  # just over the limit
    small = np.ones((16, 16), np.uint32)
    pairs = [(big, small)]
    job = ModelJob()
    sent = {}
    job._start = lambda task, payload: sent.update(payload)  # no child: only what it would get
    job.start_training(bank="b", backgrounds=None, model_path="m.keras", steps=1,
                       real_training=pairs, real_validation=pairs)
    files = sorted(Path(job._tmpdir).glob("*.npy"))
    assert len(files) == 1  # the pairs both keywords share are written once
    for key in ("real_training", "real_validation"):
        (image, labels), = sent[key]
        assert isinstance(image, _ArrayFile) and labels is small
    loaded = {}
    training = _load_pairs(sent["real_training"], loaded)
    validation = _load_pairs(sent["real_validation"], loaded)
    assert np.array_equal(training[0][0], big) and training[0][0] is validation[0][0]
    job.close()
    assert not files[0].exists()


def test_the_objects_left_out_by_min_confidence_are_counted_per_plane():
    import numpy as np

    from napari_synthseg.instances import probabilities_to_instances
    from napari_synthseg.model.child import _count_unconfident

    prob = np.zeros((2, 40, 60, 3), np.float32)
    prob[:, 5:15, 5:15, 0] = 0.95  # a sure object on both planes
    prob[:, 25:35, 30:40, 0] = 0.6  # an unsure one on both planes
    prob[1, 25:35, 5:15, 0] = 0.55  # and another unsure one on plane 1
    kwargs = {"min_confidence": 0.8, "min_area": 0, "method": "components"}
    labels = np.stack([probabilities_to_instances(p, **kwargs) for p in prob])
    assert [int(plane.max()) for plane in labels] == [1, 1]
    image = np.random.default_rng(0).normal(100, 5, (2, 40, 60))
    assert _count_unconfident(labels, prob, kwargs, image) == 3
    assert _count_unconfident(labels, prob, {**kwargs, "min_confidence": 0.0}, image) == 0
    # a box drawn on the image under an unsure object is left out as drawn, not counted as unconfident
    image[1, 25:35, 5:15] = 255
    assert _count_unconfident(labels, prob, kwargs, image) == 2
    assert _count_unconfident(labels, prob, {**kwargs, "drop_overlays": False}, image) == 3


def test_a_curation_round_runs_in_a_child_and_reports_bad_input(tmp_path):
    job = ModelJob()
    job.start_retraining(tmp_path / "no_model.keras", tmp_path / "bank", tmp_path, steps=1)
    events = list(job.events(timeout=120))
    (error,) = [e for e in events if e["kind"] == "error"]
    assert "no_model.keras" in error["message"] and "does not exist" in error["message"]
    assert events[-1]["kind"] == "done"
    job.close()
    with pytest.raises(TypeError, match="ModelJob"):
        ModelJob().start_retraining("m.keras", "bank", "dir", steps=1, callbacks=[print])


def test_a_curation_round_in_the_child_names_its_phases(tmp_path):
    """The child's round passes the phases of its training on, as a training job does (the Train dock shows them)."""
    import threading

    pytest.importorskip("keras")
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.curation import Curation, pick_object
    from napari_synthseg.model.child import _child_retrain
    from napari_synthseg.model.training import train_model
    from napari_synthseg.sample_data import make_sample_scene

    image, truth = make_sample_scene(seed=3, shape=(96, 128))
    bank = ObjectBank(tmp_path / "bank")
    bank.add_from_labels(image, truth, source="scene")
    model = tmp_path / "model.keras"
    train_model(bank, None, model, steps=1, patch=64, batch_size=2, validation_scenes=2, base_filters=4, depth=2,
                steps_per_epoch=1)
    label = next(i for i in np.unique(truth) if i)
    curation = pick_object(Curation.empty(truth.shape), truth, tuple(np.argwhere(truth == label)[0]))

    class Events(list):
        put = list.append

    events = Events()
    _child_retrain({"model_path": str(model), "bank": str(bank.path), "curated": [(image, curation)],
                    "kwargs": {"steps": 2, "train_params": {"validation_scenes": 2}}}, events, threading.Event())
    phases = [e["phase"] for e in events if e["kind"] == "phase"]
    assert phases[:2] == ["building the model", "validating"]  # a resumed model is scored first
    kinds = [e["kind"] for e in events]
    assert kinds.count("device") == 1 and kinds.index("device") < kinds.index("phase")  # told once, first
    assert "training" in phases and phases.count("validating") >= 2
    (result,) = [e for e in events if e["kind"] == "result"]
    assert result["task"] == "retrain" and result["model_path"].endswith("model_round2.keras")
    assert result["kept_previous"] is False  # the round after round 0 is never judged against it


def test_the_child_tells_where_it_computes(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from napari_synthseg.model import child

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    gpus = tf.config.list_physical_devices("GPU")
    device = child.compute_device()
    assert device["backend"] == "tensorflow" and device["n_gpus"] == len(gpus)
    assert device["device"] == ("GPU" if gpus else "CPU") and (device["device_name"] != "") == bool(gpus)

    class Events(list):
        put = list.append

    def broken():
        raise RuntimeError("CUDA driver too old")

    monkeypatch.setattr(child, "compute_device", broken)
    events = Events()
    child._send_device(events)  # telling the device never fails the job
    assert events == [{"kind": "device", "backend": "tensorflow", "device": "unknown",
                       "device_name": "RuntimeError: CUDA driver too old", "n_gpus": 0}]
