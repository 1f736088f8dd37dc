"""The child process of a ``ModelJob``: it runs one task and puts plain-dict events on a queue.

The events are described in ``model.runner``. Importing this module loads no Keras (the parent
imports it to name the child's entry point); each task imports what it needs when it runs.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path

#: Arrays larger than this go through a temporary .npy file instead of the queue's pipe.
QUEUE_ARRAY_LIMIT = 8 * 1024 * 1024
#: ``train_model`` keywords holding (image, labels) pairs; their large arrays reach the child as .npy files.
PAIR_KEYWORDS = ("real_training", "real_validation")


class _Cancelled(Exception):
    """The parent asked the child to stop between two images."""


def _child_main(task, payload, events, cancel_event, env, tmpdir) -> None:
    os.environ.update(env)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        events.put({"kind": "started", "pid": os.getpid(), "task": task,
                    "backend": os.environ.get("KERAS_BACKEND", "tensorflow")})
        if task == "train":
            _child_train(payload, events, cancel_event)
        elif task == "retrain":
            _child_retrain(payload, events, cancel_event)
        else:
            _child_predict(payload, events, cancel_event, tmpdir)
    except _Cancelled:
        pass
    except BaseException as exc:  # every failure becomes an event; the parent must not hang
        events.put({"kind": "error", "message": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()})
    finally:
        events.put({"kind": "done"})
        events.close()
        events.join_thread()


def compute_device() -> dict:
    """Where this process's Keras computes: ``{"backend", "device", "device_name", "n_gpus"}``.

    Called in the child once Keras is loaded (TensorFlow is imported already then). ``device`` is
    ``"GPU"`` when TensorFlow sees one (``device_name`` names the first), else ``"CPU"``; another
    Keras backend is reported by name with ``device`` ``"unknown"``.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        return {"backend": backend, "device": "unknown", "device_name": "", "n_gpus": 0}
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"backend": backend, "device": "CPU", "device_name": "", "n_gpus": 0}
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
    except (RuntimeError, ValueError):  # details are not known for every device kind
        name = gpus[0].name
    return {"backend": backend, "device": "GPU", "device_name": str(name), "n_gpus": len(gpus)}


def _send_device(events) -> None:
    """Put the ``device`` event (see the module docstring); a failure to tell never fails the job."""
    try:
        events.put({"kind": "device", **compute_device()})
    except Exception as exc:  # e.g. a broken CUDA set-up: the job itself says more when it runs
        events.put({"kind": "device", "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
                    "device": "unknown", "device_name": f"{type(exc).__name__}: {exc}", "n_gpus": 0})


class _ArrayFile:
    """A large array sent to the child as a .npy file in the job's folder."""

    def __init__(self, path: str):
        self.path = path


def _load_pairs(pairs, loaded: dict) -> list:
    """(image, labels) pairs with every ``_ArrayFile`` read (each file once)."""
    import numpy as np

    def load(item):
        if not isinstance(item, _ArrayFile):
            return item
        if item.path not in loaded:
            loaded[item.path] = np.load(item.path)
        return loaded[item.path]

    return [tuple(load(item) for item in pair) for pair in pairs]


def _child_train(kwargs, events, cancel_event) -> None:
    kwargs = dict(kwargs)
    loaded: dict = {}
    for key in PAIR_KEYWORDS:
        if kwargs.get(key):
            kwargs[key] = _load_pairs(kwargs[key], loaded)
    sidecar_entries = kwargs.pop("sidecar_entries", None) or {}
    if isinstance(kwargs["bank"], (str, os.PathLike)):
        from napari_synthseg.bank import ObjectBank

        kwargs["bank"] = ObjectBank(kwargs["bank"], create=False)  # a bad bank fails before Keras loads
    def phase(name: str) -> None:
        events.put({"kind": "phase", "task": "train", "phase": name})

    phase("loading TensorFlow")  # the import below takes most of a minute on a busy machine
    from napari_synthseg.model.training import progress_dict, train_model

    _send_device(events)

    def send(progress) -> None:
        events.put({"kind": "progress", "task": "train", **progress_dict(progress)})

    result = train_model(callbacks=[send], cancel_event=cancel_event, on_phase=phase, **kwargs)
    if sidecar_entries:  # e.g. the recipe, recorded before the parent hears of the model
        from napari_synthseg.model.sidecar import read_sidecar, write_sidecar

        info = read_sidecar(result.model_path)
        info.update(sidecar_entries)
        write_sidecar(result.model_path, info)
    events.put({"kind": "result", "task": "train", "model_path": result.model_path,
                "sidecar_path": result.sidecar_path, "best_metric": result.best_metric,
                "history": result.history, "steps_done": result.steps_done, "cancelled": result.cancelled})


def _child_retrain(payload, events, cancel_event) -> None:
    from dataclasses import asdict

    from napari_synthseg.model.sidecar import read_sidecar, sidecar_path
    from napari_synthseg.retraining import retrain_round  # a bad model or curation fails before Keras loads

    def send(progress) -> None:
        events.put({"kind": "progress", "task": "train", **asdict(progress)})

    device_sent = []

    def phase(name: str) -> None:
        if not device_sent:  # the first phase comes once Keras is loaded
            device_sent.append(True)
            _send_device(events)
        events.put({"kind": "phase", "task": "train", "phase": name})

    kwargs = dict(payload["kwargs"])
    kwargs["train_params"] = {**(kwargs.get("train_params") or {}), "on_phase": phase}
    path = retrain_round(payload["model_path"], payload["bank"], payload["curated"], callbacks=[send],
                         cancel_event=cancel_event, **kwargs)
    record = read_sidecar(path).get("curation_round", {})
    events.put({"kind": "result", "task": "retrain", "model_path": str(path), "sidecar_path": str(sidecar_path(path)),
                "round": record.get("round"), "clicks": record.get("clicks"),
                "cancelled": bool(record.get("cancelled")),
                "kept_previous": bool((record.get("agreement_guard") or {}).get("kept_previous"))})


def _child_predict(payload, events, cancel_event, tmpdir) -> None:
    import numpy as np

    from napari_synthseg.image_io import is_rgb, read_image, to_gray, write_tiff
    from napari_synthseg.model.prediction import load_model, predict

    model = load_model(payload["model_path"])
    _send_device(events)
    items = payload["items"]
    out_dir = payload["out_dir"]
    kwargs = payload["predict_kwargs"]
    details = payload.get("details", False)
    for index, item in enumerate(items):
        if cancel_event.is_set():
            raise _Cancelled
        source = item if isinstance(item, str) else None
        image = read_image(item) if source else np.asarray(item)
        if source and is_rgb(image):
            image = to_gray(image)

        def progress(done, total, index=index) -> None:
            events.put({"kind": "progress", "task": "predict", "image": index, "n_images": len(items),
                        "tile": int(done), "n_tiles": int(total)})
            if cancel_event.is_set():
                raise _Cancelled

        wants_probabilities = bool(kwargs.get("return_probabilities"))
        views = []
        output = predict(model, image, progress=progress, on_view=views.append,
                         **{**kwargs, "return_probabilities": wants_probabilities or details})
        labels, prob = output if wants_probabilities or details else (output, None)
        event = {"kind": "result", "task": "predict", "index": index, "source": source,
                 "zooms": [view.zoom for view in views]}
        if details:
            event["n_unconfident"] = _count_unconfident(labels, prob, kwargs, image)
            event["foreground"] = np.ascontiguousarray(prob[..., 0])
            if prob.shape[-1] > 1:  # the inner distance: Curate's Add carves missed objects out of predictions
                event["distance"] = np.ascontiguousarray(prob[..., 1])
            prob = prob if wants_probabilities else None
        if out_dir is not None:
            stem = Path(source).stem if source else f"image{index:03d}"
            from napari_synthseg.pixel_size import input_pixel_size

            size = input_pixel_size(source) if source else None
            event["labels_path"] = str(write_tiff(Path(out_dir) / f"{stem}_labels.tif", labels, pixel_size=size,
                                                    labels=True))
            labels = None
        for key, array in (("labels", labels), ("probabilities", prob), ("foreground", event.pop("foreground", None)),
                           ("distance", event.pop("distance", None))):
            if array is None:
                continue
            if array.nbytes > QUEUE_ARRAY_LIMIT:
                fd, path = tempfile.mkstemp(suffix=".npy", dir=tmpdir)
                os.close(fd)
                np.save(path, array)
                event[f"_{key}_file"] = path
            else:
                event[key] = array
        events.put(event)


def _count_unconfident(labels, prob, predict_kwargs: dict, image) -> int:
    """How many objects ``predict``'s ``min_confidence`` filter left out of ``labels`` (all planes).

    The probabilities are turned into objects again without the filter (drawn overlays left out
    as ``predict`` does, so they are not counted as unconfident); the objects before the filter
    are these.
    """
    import numpy as np

    from napari_synthseg.image_io import gray_planes, iter_planes
    from napari_synthseg.instances import probabilities_to_instances
    from napari_synthseg.model.params import PredictionParams

    defaults = PredictionParams()
    if not predict_kwargs.get("min_confidence", defaults.min_confidence):
        return 0
    passed = {key: predict_kwargs[key] for key in ("threshold", "min_area", "fill_holes", "method", "fill_contours")
              if key in predict_kwargs}
    gray = gray_planes(image, predict_kwargs.get("rgb"))
    drop_overlays = predict_kwargs.get("drop_overlays", defaults.drop_overlays)
    left_out = 0
    for plane in iter_planes(labels.shape):
        unfiltered = probabilities_to_instances(prob[plane], min_confidence=0.0, **passed,
                                                drawn_on=gray[plane] if drop_overlays else None)
        kept = np.unique(labels[plane])
        left_out += int(np.count_nonzero(np.unique(unfiltered))) - int(np.count_nonzero(kept))
    return max(left_out, 0)
