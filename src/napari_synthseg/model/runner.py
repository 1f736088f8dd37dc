"""Run training or prediction in a spawned child process and stream its events back.

TensorFlow and napari's Mesa OpenGL canvas crash when they share a process, so the widgets
never import Keras: they start a ``ModelJob`` and read plain-dict events from it. This module
itself imports neither Keras nor TensorFlow; only the child does (``model.child`` runs there).

Events (dicts with a ``"kind"``):

- ``{"kind": "started", "pid": ..., "backend": ...}`` once the child runs;
- ``{"kind": "device", "backend", "device" ("CPU" or "GPU"), "device_name", "n_gpus"}`` once Keras is
  loaded (training, a curation round, prediction): where the child computes;
- ``{"kind": "phase", "task": "train", "phase": ...}`` when the work of a training or a curation
  round changes: "loading TensorFlow", then ``train_model``'s phases ("building the model",
  "training", "validating", "saving");
- ``{"kind": "progress", "task": "train", "step", "total_steps", "loss", "val_loss", "val_iou",
  "elapsed_s", "best", "phase"}`` during training;
- ``{"kind": "progress", "task": "predict", "image", "n_images", "tile", "n_tiles"}`` during
  prediction;
- ``{"kind": "result", "task": "train", "model_path", "sidecar_path", "best_metric", "history",
  "steps_done", "cancelled"}``;
- ``{"kind": "result", "task": "retrain", "model_path", "sidecar_path", "round", "clicks",
  "cancelled", "kept_previous"}`` after a curation round (``start_retraining``; its progress events say
  ``"task": "train"``; ``kept_previous``: the round's file holds the previous round's weights,
  ``retraining.keep_previous_if_worse``);
- ``{"kind": "result", "task": "predict", "index", "source", "labels" (ndarray) or "labels_path",
  ["probabilities"], ["foreground", "distance", "n_unconfident"]}`` once per image;
- ``{"kind": "error", "message": ..., "traceback": ...}`` when the child fails, dies, or does
  not start within ``startup_timeout`` seconds;
- ``{"kind": "done"}`` last, always.

The child never runs the parent's ``__main__`` module. Plain "spawn" would re-run it in the
child (to find pickled functions defined there), so a user's script without an
``if __name__ == "__main__":`` guard would open a second viewer in the child and the job would
never start. Everything the child needs lives in this package and is sent as plain data.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import queue as queue_module
import shutil
import tempfile
import time
import weakref

from napari_synthseg.model.child import PAIR_KEYWORDS, QUEUE_ARRAY_LIMIT, _ArrayFile, _child_main

#: Seconds a child may take from its start to its "started" event (it imports only the package first).
STARTUP_TIMEOUT_S = 120.0
#: Name prefix of the child processes; their start leaves out the parent's ``__main__`` module.
CHILD_NAME_PREFIX = "napari-synthseg-"


class JobError(RuntimeError):
    """A ModelJob is used in the wrong state (e.g. started twice)."""


class ModelJob:
    """One training or prediction job in a child process (``multiprocessing`` "spawn").

    Parameters
    ----------
    backend : str, optional
        ``KERAS_BACKEND`` for the child ("tensorflow", "jax", "torch"); default: inherited.
    env : dict, optional
        Extra environment variables for the child (set before it imports Keras).
    startup_timeout : float, optional
        Seconds the child may take to send its first event; then it is killed and an error
        event says so (a child that exits before it starts is reported at once).

    Examples
    --------
    >>> job = ModelJob()
    >>> job.start_training(bank="bank/", backgrounds=None, model_path="m.keras", steps=100)
    >>> for event in job.events():
    ...     print(event["kind"])
    """

    def __init__(self, backend: str | None = None, env: dict | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT_S):
        self._context = multiprocessing.get_context("spawn")
        self._startup_timeout = float(startup_timeout)
        self._started = False
        self._start_time = 0.0
        self._env = dict(env or {})
        if backend is not None:
            self._env["KERAS_BACKEND"] = backend
        self._process = None
        self._queue = None
        self._cancel = None
        self._buffer: collections.deque = collections.deque()
        self._finished = False
        self._tmpdir: str | None = None

    # ------------------------------------------------------------------ start
    def start_training(self, **train_kwargs) -> None:
        """Start ``train_model(**train_kwargs)`` in a child.

        ``bank`` may be an ObjectBank (sent as its folder path), a path or a list of BankObject;
        ``backgrounds`` None, a BackgroundSource, or a list of images or image paths.
        ``callbacks`` and ``cancel_event`` are supplied by the job (use ``events()``/``stop()``).
        Arrays of ``real_training`` / ``real_validation`` pairs larger than ``QUEUE_ARRAY_LIMIT``
        travel through temporary .npy files. ``sidecar_entries`` (a dict, not a ``train_model``
        keyword) is added to the model's sidecar once training ends, e.g. ``{"recipe": ...}``.
        """
        for key in ("callbacks", "cancel_event", "on_phase"):
            if key in train_kwargs:
                raise TypeError(f"{key} is provided by ModelJob; read events() and call stop() instead")
        for key in ("bank", "backgrounds", "model_path"):
            if key not in train_kwargs:
                raise TypeError(f"start_training needs {key}=...")
        bank = train_kwargs["bank"]
        if hasattr(bank, "content_hash") and hasattr(bank, "path"):
            train_kwargs["bank"] = str(bank.path)  # reopened from disk in the child
        if self._process is not None:
            raise JobError("this ModelJob was already started; make a new ModelJob for another task")
        spilled: dict[int, object] = {}  # one file per array, also when both keywords hold the same pairs
        for key in PAIR_KEYWORDS:
            if train_kwargs.get(key):
                train_kwargs[key] = [tuple(self._spill(array, spilled) for array in pair)
                                     for pair in train_kwargs[key]]
        self._start("train", train_kwargs)

    def start_retraining(self, model_path, bank, curated, **retrain_kwargs) -> None:
        """Start a curation round, ``retraining.retrain_round(model_path, bank, curated, **retrain_kwargs)``,
        in a child.

        ``bank`` is a folder or an ObjectBank (sent as its folder); ``curated`` a folder of images
        with their ``<stem>_curation.tif`` or a list of ``(image or path, Curation or path)`` pairs.
        Give the budget as ``minutes=`` or ``steps=``; progress arrives as training events.
        """
        for key in ("callbacks", "cancel_event", "notify"):
            if key in retrain_kwargs:
                raise TypeError(f"{key} is provided by ModelJob; read events() and call stop() instead")
        if hasattr(bank, "content_hash") and hasattr(bank, "path"):
            bank = str(bank.path)
        if isinstance(curated, (str, os.PathLike)):
            curated = os.fspath(curated)
        else:
            curated = [(os.fspath(image) if isinstance(image, (str, os.PathLike)) else image,
                        os.fspath(cur) if isinstance(cur, (str, os.PathLike)) else cur) for image, cur in curated]
        self._start("retrain", {"model_path": os.fspath(model_path), "bank": os.fspath(bank), "curated": curated,
                                "kwargs": retrain_kwargs})

    def _spill(self, array, spilled: dict):
        """``array`` itself when it is small, else an ``_ArrayFile`` the child loads (pickling a large
        array through the start pipe holds a second copy in memory and blocks until the child reads it)."""
        import numpy as np

        array = np.asarray(array)
        if array.nbytes <= QUEUE_ARRAY_LIMIT:
            return array
        if id(array) not in spilled:
            fd, path = tempfile.mkstemp(suffix=".npy", dir=self._job_folder())
            os.close(fd)
            np.save(path, array)
            spilled[id(array)] = (_ArrayFile(path), array)  # the array is kept so its id stays unique
        return spilled[id(array)][0]

    def start_prediction(self, model_path, images_or_paths, *, out_dir=None, details=False,
                         **predict_kwargs) -> None:
        """Start ``predict(load_model(model_path), image, **predict_kwargs)`` for each image in a child.

        Parameters
        ----------
        model_path : path
            A ``.keras`` model with its sidecar.
        images_or_paths : array, path, or a list of arrays and paths
            Paths are read in the child (RGB becomes gray).
        out_dir : path, optional
            Write ``<stem>_labels.tif`` there and send ``labels_path`` instead of arrays.
        details : bool
            Each result also carries ``foreground`` (the float32 foreground probability, the
            image's spatial shape) and ``n_unconfident`` (how many objects ``min_confidence``
            left out), for a viewer that shows them.
        **predict_kwargs
            Passed to ``predict`` (tile, overlap, batch_size, threshold, min_area, ...).
        """
        if "progress" in predict_kwargs:
            raise TypeError("progress is provided by ModelJob; read events() instead")
        if isinstance(images_or_paths, (str, os.PathLike)) or hasattr(images_or_paths, "__array__"):
            images_or_paths = [images_or_paths]
        items = [os.fspath(item) if isinstance(item, (str, os.PathLike)) else item for item in images_or_paths]
        if not items:
            raise ValueError("start_prediction needs at least one image or path")
        self._start("predict", {"model_path": os.fspath(model_path), "items": items,
                                "out_dir": None if out_dir is None else os.fspath(out_dir),
                                "details": bool(details), "predict_kwargs": predict_kwargs})

    def _job_folder(self) -> str:
        """The job's temporary folder, made on first use."""
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="synthseg-job-")
            # removed by close(), or when the job is garbage-collected or Python exits without it
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        return self._tmpdir

    def _start(self, task: str, payload: dict) -> None:
        if self._process is not None:
            raise JobError("this ModelJob was already started; make a new ModelJob for another task")
        self._job_folder()
        self._queue = self._context.Queue()
        self._cancel = self._context.Event()
        self._process = self._context.Process(
            target=_child_main, args=(task, payload, self._queue, self._cancel, self._env, self._tmpdir),
            name=f"{CHILD_NAME_PREFIX}{task}", daemon=True)
        _leave_main_out_of_spawned_children()
        self._start_time = time.monotonic()
        self._process.start()

    # ------------------------------------------------------------------ events
    def is_alive(self) -> bool:
        """Whether the child process is still running."""
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self._process is None else self._process.pid

    def poll(self) -> list[dict]:
        """All events available now, without waiting (for GUI timers)."""
        events = []
        while True:
            event = self._next(timeout=0)
            if event is None:
                return events
            events.append(event)

    def events(self, timeout: float | None = None):
        """Yield events until ``{"kind": "done"}`` (included).

        Parameters
        ----------
        timeout : float, optional
            Give up after this many seconds without any event: yields an error event and
            ``done`` (the child keeps running; call ``stop()``).
        """
        if self._process is None:
            raise JobError("this ModelJob has not been started; call start_training or start_prediction first")
        waited = 0.0
        while not self._finished or self._buffer:
            event = self._next(timeout=0.2)
            if event is None:
                waited += 0.2
                if timeout is not None and waited >= timeout:
                    yield {"kind": "error", "message": f"no event from the child for {timeout:.0f} s"}
                    yield {"kind": "done"}
                    return
                continue
            waited = 0.0
            yield event
            if event["kind"] == "done":
                return

    def _next(self, timeout: float) -> dict | None:
        if self._buffer:
            return self._buffer.popleft()
        if self._process is None or self._finished:
            return None
        event = self._get(timeout)
        if event is not None:
            return event
        if not self._process.is_alive():
            # the child is gone: whatever it sent is in the pipe by now
            event = self._get(0.5)
            if event is not None:
                return event
            self._finished = True
            code = self._process.exitcode
            self._buffer.append({"kind": "done"})
            if not self._started:
                return {"kind": "error", "message": f"the model process exited with code {code} before it "
                        "started; it could not import napari-synthseg or read its task (run python -c "
                        "\"import napari_synthseg.model.runner\" in this environment to see why)"}
            return {"kind": "error", "message": f"the model process ended unexpectedly (exit code {code}); "
                    "it may have run out of memory or crashed in a native library"}
        if not self._started and time.monotonic() - self._start_time > self._startup_timeout:
            self._kill()
            self._drain()
            self._finished = True
            self._buffer.append({"kind": "error", "message": f"the model process did not start within "
                                 f"{self._startup_timeout:.0f} s and was stopped; the machine may be "
                                 "overloaded, try again"})
            self._buffer.append({"kind": "done"})
            return self._buffer.popleft()
        return None

    def _get(self, timeout: float) -> dict | None:
        try:
            event = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except (queue_module.Empty, EOFError, OSError):
            return None
        if event.get("kind") == "started":
            self._started = True
        if event.get("kind") == "done":
            self._finished = True
        for key in ("labels", "probabilities", "foreground", "distance"):
            path = event.get(f"_{key}_file")
            if path:  # big arrays travel through a file, not the pipe
                import numpy as np

                event[key] = np.load(path)
                os.unlink(path)
                del event[f"_{key}_file"]
        return event

    # ------------------------------------------------------------------ stop
    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the child to stop (training keeps the best model), wait, then kill it if needed.

        Events sent meanwhile stay available from ``events()``/``poll()``.

        Returns
        -------
        bool
            True when the child exited by itself within ``timeout``.
        """
        if self._process is None:
            return True
        self._cancel.set()
        deadline = time.monotonic() + timeout
        while self._process.is_alive() and time.monotonic() < deadline:
            self._drain()  # a child blocked on a full pipe could never exit
            self._process.join(0.1)
        clean = not self._process.is_alive()
        if not clean:
            self._kill()
            self._buffer.append({"kind": "error", "message": f"the model process did not stop within "
                                 f"{timeout:.0f} s and was killed"})
        self._drain()
        if not self._finished:
            self._finished = True
            self._buffer.append({"kind": "done"})
        return clean

    def _kill(self) -> None:
        self._process.terminate()
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def _drain(self) -> None:
        while True:
            event = self._get(0.05 if self._process.is_alive() else 0.2)
            if event is None:
                return
            self._buffer.append(event)

    def close(self) -> None:
        """Stop the child if it runs and remove the job's temporary folder."""
        if self.is_alive():
            self.stop()
        if self._tmpdir:
            self._cleanup()
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _leave_main_out_of_spawned_children() -> None:
    """Make "spawn" start this module's children without the parent's ``__main__`` module.

    ``multiprocessing.spawn.get_preparation_data`` tells every spawned child to re-import
    the parent's main script (``init_main_from_path``) or module (``init_main_from_name``).
    For a user's script without a main guard that re-runs the script in the child. Only
    processes named with ``CHILD_NAME_PREFIX`` lose those two entries; other processes
    started by the same program keep the standard behaviour. Installed once, idempotent.
    """
    from multiprocessing import spawn

    if getattr(spawn.get_preparation_data, "_synthseg_main_free", False):
        return
    standard = spawn.get_preparation_data

    def get_preparation_data(name):
        data = standard(name)
        if isinstance(name, str) and name.startswith(CHILD_NAME_PREFIX):
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
        return data

    get_preparation_data._synthseg_main_free = True
    get_preparation_data.__wrapped__ = standard
    spawn.get_preparation_data = get_preparation_data


__all__ = ["CHILD_NAME_PREFIX", "JobError", "ModelJob", "PAIR_KEYWORDS", "QUEUE_ARRAY_LIMIT", "STARTUP_TIMEOUT_S"]
