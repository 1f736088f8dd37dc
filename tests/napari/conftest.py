"""Fixtures of the napari dock tests."""

from __future__ import annotations

import pytest
from _images import grains


@pytest.fixture(autouse=True)
def dock_settings_folder(tmp_path_factory):
    """Every test's docks remember their settings in a fresh folder of their own.

    The docks start from their defaults, whatever another test or the user's own napari saved.
    """
    from napari_synthseg._napari._settings import keep_dock_settings_in

    folder = tmp_path_factory.mktemp("dock_settings")
    keep_dock_settings_in(folder)
    return folder


@pytest.fixture
def shown_errors(monkeypatch):
    """Every message napari would show as an error notification, in order.

    napari's ``show_error`` itself is replaced, so a second notification of the same failure
    (or a traceback re-raised into the event loop, which pytest-qt turns into a failure)
    cannot hide behind a patched dock helper.
    """
    messages: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", lambda message: messages.append(str(message)))
    return messages


@pytest.fixture
def bank_dir(tmp_path):
    """A bank folder with the six objects of ``grains(n=6)``."""
    from napari_synthseg.bank import ObjectBank

    image, labels = grains(n=6)
    ObjectBank(tmp_path / "bank").add_from_labels(image, labels, source="test")
    return tmp_path / "bank"


@pytest.fixture
def started_jobs(monkeypatch):
    """The keyword arguments of every model job the docks start (no child process is made)."""
    from napari_synthseg._napari import segment_widget, train_widget
    from napari_synthseg._napari._common import quiet_worker

    sent = []

    class RecordingJob:
        def start_training(self, **kwargs):
            sent.append(("train", kwargs))

        def start_prediction(self, model_path, images, **kwargs):
            sent.append(("predict", kwargs))

    def fake_job_worker(start, stop_requested, stop_timeout=30.0):
        start(RecordingJob())

        def no_events():
            yield {"kind": "done"}

        return quiet_worker(no_events)

    monkeypatch.setattr(train_widget, "job_worker", fake_job_worker)
    monkeypatch.setattr(segment_widget, "job_worker", fake_job_worker)
    return sent


@pytest.fixture
def notes(monkeypatch):
    """The Curate dock's notifications (info and error) from its clicks and keys, in order."""
    messages = []
    from napari_synthseg._napari import _curate_clicks, _curate_mouse

    monkeypatch.setattr(_curate_clicks, "notify_info", messages.append)
    monkeypatch.setattr(_curate_mouse, "notify_info", messages.append)
    monkeypatch.setattr(_curate_mouse, "notify_error", messages.append)
    return messages
