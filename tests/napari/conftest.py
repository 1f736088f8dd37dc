"""Fixtures of the napari dock tests."""

from __future__ import annotations

import pytest


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

