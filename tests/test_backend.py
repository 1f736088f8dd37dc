"""The model backend check answers without importing the backend."""

import sys

from napari_synthseg import backend


def test_installed_backend_is_not_reported(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.keras_backend() == "tensorflow"
    assert backend.missing_backend_message() is None


def test_missing_backend_names_the_install_line(monkeypatch):
    real_find_spec = backend.importlib.util.find_spec
    monkeypatch.setattr(backend.importlib.util, "find_spec",
                        lambda name: None if name == "tensorflow" else real_find_spec(name))
    message = backend.missing_backend_message("tensorflow")
    assert "'tensorflow'" in message and 'pip install "napari-synthseg[cpu]"' in message
    assert "\n" not in message


def test_unknown_backend_is_named(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    assert "unknown Keras backend 'theano'" in backend.missing_backend_message()


def test_check_does_not_import_the_backend():
    before = "tensorflow" in sys.modules
    backend.missing_backend_message("tensorflow")
    assert ("tensorflow" in sys.modules) == before
