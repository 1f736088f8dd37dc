"""A dock's progress bar, mirrored in napari's activity panel."""

from __future__ import annotations

from qtpy.QtWidgets import QProgressBar


class ActivityProgressBar(QProgressBar):
    """A dock's progress bar that napari's activity panel shows too while a worker runs.

    ``follow(worker)`` opens a ``napari.utils.progress`` named ``description`` with the bar's range
    and value; every later ``setRange`` and ``setValue`` goes to both, and the napari progress is
    closed when the worker finishes (also after an error or a cancel). A range of ``(0, 0)`` (busy)
    is an indeterminate progress there too.
    """

    def __init__(self, description: str, parent=None):
        super().__init__(parent)
        self.description = description
        self.activity = None  # the open napari progress, if any

    def follow(self, worker) -> None:
        """Show this bar in napari's activity panel until ``worker`` finishes."""
        from napari.utils import progress

        self.close_activity()
        activity = progress(total=self.maximum() - self.minimum(), desc=self.description)
        self.activity = activity
        self._mirror_value()

        def finished(*_):  # a plain function: Qt keeps calling it even after the dock was closed
            activity.close()
            if self.activity is activity:
                self.activity = None

        worker.finished.connect(finished)

    def close_activity(self, *_) -> None:
        """Close the napari progress (idempotent)."""
        activity, self.activity = self.activity, None
        if activity is not None:
            activity.close()

    def setRange(self, minimum: int, maximum: int) -> None:
        super().setRange(minimum, maximum)
        if self.activity is not None:
            self.activity.total = maximum - minimum
            self._mirror_value()

    def setValue(self, value: int) -> None:
        super().setValue(value)
        self._mirror_value()

    def _mirror_value(self) -> None:
        if self.activity is None:
            return
        done = max(self.value() - self.minimum(), 0)
        if done != self.activity.n:
            self.activity.update(done - self.activity.n)
