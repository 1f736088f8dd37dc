"""The base of the docks that run workers: one worker at a time, a progress bar, Stop, errors as one line.

A dock runs its work in a napari thread worker (``quiet_worker``) or drives a model job in a child
process (``_jobs.job_worker``); either way the plumbing is the same and lives here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QWidget

from ._common import describe_error, notify_error, safe_slot
from ._docking import tabify_stage

if TYPE_CHECKING:
    import napari

    from ._progress import ActivityProgressBar


class WorkerDock(QWidget):
    """A dock that runs one worker at a time.

    The dock calls ``_bind_worker_controls`` once its widgets exist, then ``_start`` for each run:
    the controls are disabled while the worker runs, the stop button enabled, the progress bar
    (and napari's activity panel) follows the worker, and a failure becomes one notification.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(parent)
        tabify_stage(self)  # the five stages share one column of tabs (fits a 1080p screen)
        self.viewer = napari_viewer
        self._worker = None
        self._stop_button = None
        self._controls: list = []
        #: Set by Stop for a model job (the child saves what it has, then the worker ends); None: Stop
        #: quits a thread worker between two of its steps.
        self._stop_requested: threading.Event | None = None

    def _bind_worker_controls(self, progress: ActivityProgressBar, controls, stop_button=None,
                              stop_event: threading.Event | None = None) -> None:
        """The dock's progress bar, the ``controls`` disabled while a worker runs and its stop button.

        With ``stop_event`` Stop sets it (a model job stops itself; closing the dock sets it too);
        without, Stop quits the thread worker.
        """
        self.progress = progress
        self._controls = list(controls)
        self._stop_button = stop_button
        self._stop_requested = stop_event
        if stop_button is not None:
            stop_button.setEnabled(False)
        if stop_event is not None:
            self.destroyed.connect(stop_event.set)  # closing the dock ends the child too

    @property
    def busy(self) -> bool:
        """Whether a worker of this dock runs."""
        return self._worker is not None

    def _set_running(self, running: bool) -> None:
        for widget in self._controls:
            widget.setEnabled(not running)
        if self._stop_button is not None:
            self._stop_button.setEnabled(running)

    def _start(self, worker, *, total: int | None = None, on_yield: Callable | None = None,
               on_result: Callable | None = None, failure: str = "", on_abort: Callable | None = None) -> None:
        """Run ``worker``: progress from 0 of ``total`` (None: the dock sets the bar), ``on_yield`` for each
        yielded value (default: the bar's value), ``on_result`` with the returned value; an error is
        notified as ``failure`` + its one-line description; ``on_abort`` after Stop quit a thread worker."""
        self._worker = worker
        if self._stop_requested is not None:
            self._stop_requested.clear()
        if total is not None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(0)
        self._set_running(True)
        worker.yielded.connect(safe_slot(on_yield) if on_yield is not None else self.progress.setValue)
        if on_result is not None:
            worker.returned.connect(safe_slot(on_result))
        worker.errored.connect(lambda exc: notify_error(f"{failure}{describe_error(exc)}"))
        if on_abort is not None:
            worker.aborted.connect(safe_slot(on_abort))
        worker.finished.connect(self._finished)
        self.progress.follow(worker)  # napari's activity panel shows it too
        worker.start()

    def _finished(self) -> None:
        self._worker = None
        self._set_running(False)
        self._after_worker()

    def _after_worker(self) -> None:
        """What the dock does once its worker ended (after an error or a stop too)."""

    def cancel(self) -> None:
        """Stop the running worker: a model job saves what it has; a thread worker stops between steps."""
        if self._worker is None:
            return
        if self._stop_requested is not None:
            self._stop_requested.set()
        else:
            self._worker.quit()
        if self._stop_button is not None:
            self._stop_button.setEnabled(False)
