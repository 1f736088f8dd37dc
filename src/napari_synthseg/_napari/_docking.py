"""The plugin's docks as tabs of one column (napari stacks plugin docks one under another)."""

from __future__ import annotations

import weakref

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

#: The plugin's dock widgets in the order they were made (weak references): a new one joins the tabs
#: of the oldest one docked beside it (see ``tabify_stage``).
_STAGE_WIDGETS: list = []


def _dock_of(widget: QWidget):
    """The QDockWidget holding ``widget`` (its nearest one), or None."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def tabify_stage(widget: QWidget) -> None:
    """Dock ``widget`` as a tab beside the plugin's other docks once napari has docked it.

    napari stacks plugin docks one under another (the menu adds them without ``tabify``): the
    five stages then make a column far taller than a 1080p screen. Called from each stage's
    constructor; the tabs are made on the next turn of the event loop, when napari has put
    the widget into its dock. A dock the user floated or moved to another side is left alone.
    """
    _STAGE_WIDGETS[:] = [ref for ref in _STAGE_WIDGETS if ref() is not None]
    ref = weakref.ref(widget)
    _STAGE_WIDGETS.append(ref)
    QTimer.singleShot(0, lambda: _join_stage_tabs(ref()))


def _join_stage_tabs(widget) -> None:
    try:
        dock = _dock_of(widget) if widget is not None else None
        window = dock.parentWidget() if dock is not None else None
        if not isinstance(window, QMainWindow) or dock.isFloating():
            return
        area = window.dockWidgetArea(dock)
        for ref in list(_STAGE_WIDGETS):  # the oldest stage docked on this side anchors the tabs
            other = ref()
            other_dock = _dock_of(other) if other is not None else None
            if (other_dock is None or other_dock.parentWidget() is not window or other_dock.isFloating()
                    or window.dockWidgetArea(other_dock) != area):
                continue
            if other_dock is not dock:
                window.tabifyDockWidget(other_dock, dock)
                dock.show()
                dock.raise_()  # the stage just opened is the tab shown
            return
    except RuntimeError:  # the widget or its dock was deleted meanwhile
        return
