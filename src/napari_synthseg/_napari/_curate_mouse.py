"""The Curate dock's mouse and keys: clicks on the labels layer, mode keys, Ctrl+Z, and their removal."""

from __future__ import annotations

import numpy as np

from ._common import describe_error, notify_error, notify_info

MODES = ("off", "pick", "reject", "add", "split", "merge", "fill")
#: What each mode's button says, and the key that chooses it on the labels layer. napari's own
#: Labels keys (P paint, F fill, E erase, L picker, Z pan, M, X, B) stay untouched.
MODE_TEXT = {"off": "Off", "pick": "Pick (right)", "reject": "Reject (wrong)", "add": "Add (missed)",
             "split": "Split (joined)", "merge": "Merge (broken)", "fill": "Fill from background"}
SHORTCUTS = {"off": "O", "pick": "K", "reject": "R", "add": "A", "split": "S", "merge": "J", "fill": "H"}
UNDO_KEY = "Control-Z"
#: A press and release further apart than this (canvas pixels) is a pan, not a click.
CLICK_TOLERANCE_PX = 4


def counts_text(counts: dict, sep: str = " · ") -> str:
    """The clicks in effect in words: picks, rejects and adds always, split parts and merges once used."""
    parts = [f"{counts.get('pick', 0)} picked", f"{counts.get('reject', 0)} rejected", f"{counts.get('add', 0)} added"]
    if counts.get("split", 0) or counts.get("merge", 0):
        parts += [f"{counts.get('split', 0)} split parts", f"{counts.get('merge', 0)} merged"]
    return sep.join(parts)


def layer_click_callback(ref):
    """The Labels layer's mouse callback: a click (not a drag) goes to the Curate dock ``ref()``."""

    def curate_click(layer, event):
        widget = ref()
        if widget is None:
            return
        press_position = tuple(event.position)
        press_pos = np.asarray(getattr(event, "pos", (0, 0)), dtype=float)
        yield
        while event.type == "mouse_move":
            yield
        release_pos = np.asarray(getattr(event, "pos", (0, 0)), dtype=float)
        if np.hypot(*(release_pos - press_pos)) > CLICK_TOLERANCE_PX:
            return  # a pan/zoom drag, not a click
        try:
            widget.click(layer, press_position, tuple(getattr(event, "dims_displayed", ()) or ()))
        except Exception as exc:  # never a traceback in the viewer
            notify_error(f"curation failed: {describe_error(exc)}")

    return curate_click

def wrong_layer_callback(ref):
    """The viewer's mouse callback: say so when a Curate mode is on but another layer is selected."""

    def curate_wrong_layer(viewer, event):
        widget = ref()
        if widget is None or widget.mode == "off":
            return
        active = viewer.layers.selection.active
        target = widget.labels_choice.layer()
        if active is not target:
            where = f"'{target.name}'" if target is not None else "a Labels layer (choose one in the Curate dock)"
            kind = type(active).__name__ if active is not None else "no layer"
            named = " " + repr(active.name) if active is not None else ""
            notify_info(f"Curate acts on {where}, but the selected layer is {kind}{named}; "
                        f"select {where} in the layer list")

    return curate_wrong_layer


def mode_key(widget_ref, mode: str):
    """A key binding of the labels layer that switches the Curate dock to ``mode``."""

    def choose_mode(layer):
        widget = widget_ref()
        try:
            if widget is not None:
                widget.set_mode(mode)
        except Exception as exc:  # a key binding must never raise into the viewer
            notify_error(f"curation: {describe_error(exc)}")

    choose_mode.__doc__ = f"Curate: {MODE_TEXT[mode]}"
    return choose_mode


def undo_key(widget_ref):
    """Ctrl+Z on the labels layer: undo the last curation click while a Curate mode is on, else
    napari's own undo of the layer's painting."""

    def undo(layer):
        widget = widget_ref()
        try:
            if widget is not None and widget.mode != "off" and widget.state.undo:
                widget.undo()
            else:
                layer.undo()
        except Exception as exc:  # a key binding must never raise into the viewer
            notify_error(f"undo failed: {describe_error(exc)}")

    return undo


def _our_key_binding(function) -> bool:
    return getattr(function, "__qualname__", "").startswith(("mode_key.", "undo_key."))


def detach_all(viewer, viewer_callback, layer_callback):
    """A slot removing our callbacks and keys from the viewer and every layer (the dock was closed)."""

    def detach(*_):
        try:
            if viewer_callback in viewer.mouse_drag_callbacks:
                viewer.mouse_drag_callbacks.remove(viewer_callback)
            for layer in viewer.layers:
                if layer_callback in layer.mouse_drag_callbacks:
                    layer.mouse_drag_callbacks.remove(layer_callback)
                for key, function in list(getattr(layer, "keymap", {}).items()):
                    if _our_key_binding(function):  # napari's own Ctrl+Z and keys come back
                        layer.bind_key(key, None)
        except (RuntimeError, AttributeError):
            pass

    return detach
