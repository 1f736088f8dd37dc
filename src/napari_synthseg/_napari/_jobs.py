"""Drive a model job (child process) from a napari thread worker, relaying its events.

TensorFlow never enters the napari process: the child imports it, this side only reads
plain-dict events (see :mod:`napari_synthseg.model.runner`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Pause between polls of the child's event queue when it had nothing (seconds).
POLL_INTERVAL_S = 0.05


#: Keras backends by the name their users know.
_BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def describe_device(event: dict, work: str = "training") -> str:
    """A dock's line for a model process's ``device`` event, e.g. ``training on a GPU: NVIDIA H200
    (TensorFlow)`` or ``training on the CPU (TensorFlow; no GPU found)``; ``work`` says what runs there."""
    backend = str(event.get("backend") or "tensorflow")
    backend = _BACKEND_NAMES.get(backend, backend)
    device, name = event.get("device"), str(event.get("device_name") or "")
    if device == "GPU":
        more = int(event.get("n_gpus") or 1) - 1
        extra = f" (+{more} more GPU{'s' if more > 1 else ''})" if more > 0 else ""
        return f"{work} on a GPU: {name or 'unnamed'}{extra} ({backend})"
    if device == "CPU":
        return f"{work} on the CPU ({backend}; no GPU found)"
    return f"{work} on an unknown device ({backend}{': ' + name if name else ''})"


def job_worker(start: Callable, stop_requested: threading.Event, stop_timeout: float = 30.0):
    """A napari generator worker that starts a ModelJob and yields each of its events.

    Parameters
    ----------
    start
        ``start(job)`` launches the job (``job.start_training(...)`` or
        ``job.start_prediction(...)``); it runs in the worker thread, so pickling large
        arrays to the child does not stall the viewer.
    stop_requested
        Set it to stop the job: the worker calls ``job.stop(stop_timeout)`` (training keeps
        its best model) and keeps relaying the final events.
    stop_timeout
        Seconds the child gets to exit before it is killed.

    Only the worker thread touches the job, so no locking is needed.
    """
    from ._common import quiet_worker

    def relay():
        from napari_synthseg.model.runner import ModelJob

        job = ModelJob()
        try:
            start(job)
            stopping = False
            while True:
                if stop_requested.is_set() and not stopping:
                    stopping = True
                    yield {"kind": "stopping"}
                    job.stop(stop_timeout)
                events = job.poll()
                for event in events:
                    yield event
                    if event.get("kind") == "done":
                        return
                if not events:
                    time.sleep(POLL_INTERVAL_S)
        finally:
            job.close()  # no child outlives its worker

    return quiet_worker(relay)
