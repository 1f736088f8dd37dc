"""Test-suite wiring.

napari's OpenGL canvas (Mesa) and TensorFlow cannot share a process (tensorflow issue 109933:
it segfaults in either order, at the latest at interpreter exit). So the napari tests live in
``tests/napari/`` (marker ``gui``) and run in their own pytest process: ``pytest tests/napari``;
everything else runs with ``pytest tests --ignore=tests/napari``. ``scripts/test.sh`` runs both.
Collecting both in one process is refused with a clear message instead of a crash.
"""

from __future__ import annotations

import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.parent.name == "napari":
            item.add_marker(pytest.mark.gui)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    items = session.items
    selected = [item for item in items if item.get_closest_marker("gui") is not None]
    if selected and len(selected) != len(items):
        raise pytest.UsageError(
            "napari tests and model tests cannot run in one process: TensorFlow and napari's "
            "OpenGL crash together. Run `pytest tests/napari` and `pytest tests --ignore=tests/napari` "
            "separately (scripts/test.sh does)."
        )


@pytest.fixture(autouse=True)
def _no_tensorflow_beside_napari(request):
    if request.node.get_closest_marker("gui") is not None and "tensorflow" in sys.modules:
        pytest.fail("tensorflow is imported in this process; napari tests must run without it (pytest tests/napari)")
    yield
