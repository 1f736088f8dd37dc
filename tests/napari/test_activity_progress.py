"""Long work in the docks also shows in napari's activity panel (``napari.utils.progress``), closed at the end."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari.utils import progress

from napari_synthseg._napari._common import quiet_worker
from napari_synthseg._napari._progress import ActivityProgressBar
from napari_synthseg._napari.curate_widget import CurateWidget


@pytest.fixture
def opened_progress():
    """Every napari progress object opened during the test, in order."""
    opened = []

    def record(event):
        opened.extend(event.added)

    progress._all_instances.events.changed.connect(record)
    yield opened
    progress._all_instances.events.changed.disconnect(record)


def test_a_dock_job_shows_and_closes_a_napari_progress(make_napari_viewer, qtbot, tmp_path, opened_progress):
    viewer = make_napari_viewer()
    stack = np.zeros((3, 30, 30), np.uint16)
    stack[:, 5:15, 5:15] = 1
    viewer.add_labels(stack, name="seg")
    widget = CurateWidget(viewer)
    widget.csv_path.set_path(tmp_path / "m.csv")
    widget.export_measurements()
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)
    [activity] = opened_progress
    assert activity.desc.startswith("Curate") and activity.total == 3  # one step per plane
    assert activity.n == 3  # the panel's bar moved with the dock's
    assert activity not in progress._all_instances and widget.progress.activity is None  # closed


def test_the_napari_progress_closes_after_an_error(qtbot, opened_progress):
    bar = ActivityProgressBar("Auto-segment")
    qtbot.addWidget(bar)
    bar.setRange(0, 4)

    def fails():
        yield 1
        raise ValueError("bad input")

    worker = quiet_worker(fails)
    bar.follow(worker)
    worker.yielded.connect(bar.setValue)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
    [activity] = opened_progress
    assert activity.total == 4 and activity.n == 1
    assert activity not in progress._all_instances and bar.activity is None


def test_the_napari_progress_closes_on_cancel_and_follows_a_busy_range(qtbot, opened_progress):
    bar = ActivityProgressBar("Train")
    qtbot.addWidget(bar)
    bar.setRange(0, 0)  # busy: indeterminate in the panel too
    release = threading.Event()

    def waits():
        while not release.wait(0.01):
            yield 0

    worker = quiet_worker(waits)
    bar.follow(worker)
    [activity] = opened_progress
    assert activity.total == 0
    bar.setRange(0, 10)
    bar.setValue(7)
    assert activity.total == 10 and activity.n == 7
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
        worker.quit()
    release.set()
    assert activity not in progress._all_instances and bar.activity is None
