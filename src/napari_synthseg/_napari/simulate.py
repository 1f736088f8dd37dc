"""Drive a layer's real mouse callbacks from code: for tests and scripted walkthroughs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FakeMouseEvent:
    """The fields napari's mouse callbacks read from a vispy mouse event."""

    type: str
    position: tuple
    is_dragging: bool = False
    dims_displayed: tuple = (0, 1)
    dims_point: tuple = ()
    view_direction: tuple | None = None
    pos: tuple = (50, 50)
    modifiers: tuple = ()
    button: int = 1
    handled: bool = False


def click(layer, data_point, pos=(50, 50)) -> None:
    """Press and release at a data point of ``layer`` (converted to world coordinates)."""
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    world = tuple(layer.data_to_world(np.asarray(data_point, dtype=float)))
    mouse_press_callbacks(layer, ReadOnlyWrapper(FakeMouseEvent("mouse_press", world, pos=pos)))
    mouse_release_callbacks(layer, ReadOnlyWrapper(FakeMouseEvent("mouse_release", world, pos=pos)))
