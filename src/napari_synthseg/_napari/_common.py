"""Notifications and Qt slots of the docks: one-line messages, never a traceback in the viewer.

Nothing in ``_napari`` imports TensorFlow or Keras (it segfaults beside napari's OpenGL canvas).
"""

from __future__ import annotations

from collections.abc import Callable


def notify_error(message: str) -> None:
    """Show an error as a napari notification (never a traceback in the viewer)."""
    from napari.utils.notifications import show_error

    show_error(message)


def notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


def notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)


def quiet_worker(function: Callable, *args, **kwargs):
    """A napari thread worker whose exceptions reach only the slots connected to ``errored``.

    napari's ``create_worker`` otherwise re-raises a worker's exception in the event loop,
    which shows a traceback notification next to the dock's own one-line message.
    """
    from napari.qt.threading import create_worker

    return create_worker(function, *args, _ignore_errors=True, **kwargs)


def describe_error(exc: BaseException) -> str:
    """One line naming the error type and its message."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {text}"


def _safe(callback: Callable) -> Callable:
    """Wrap a Qt slot so an exception becomes a notification, not a traceback."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:  # a slot must never raise into Qt's event loop
            notify_error(describe_error(exc))
            return None

    wrapper.__name__ = getattr(callback, "__name__", "slot")
    return wrapper


safe_slot = _safe


def connect_click(button, callback: Callable[[], object]) -> None:
    """Run ``callback()`` on a button click (Qt's ``checked`` argument dropped), errors notified."""
    slot = _safe(callback)
    button.clicked.connect(lambda *_: slot())
