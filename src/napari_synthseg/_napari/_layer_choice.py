"""Choosers of the viewer's layers that stay current as layers are added, removed, moved or renamed."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QComboBox, QListWidget, QListWidgetItem

if TYPE_CHECKING:
    import napari


def _connect_layer_list(viewer: napari.viewer.Viewer, callback: Callable) -> None:
    events = viewer.layers.events
    for name in ("inserted", "removed", "moved", "reordered"):
        emitter = getattr(events, name, None)
        if emitter is not None:
            emitter.connect(callback)


class _LayerTracking:
    """Mix-in: call ``self._refresh`` when layers are added, removed, moved or renamed."""

    def _track_layers(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._named_layers: set[int] = set()
        _connect_layer_list(viewer, self._on_layers_changed)

    def _on_layers_changed(self, event=None) -> None:
        try:
            for layer in self._viewer.layers:
                if id(layer) not in self._named_layers:
                    layer.events.name.connect(self._on_layers_changed)
                    self._named_layers.add(id(layer))
            self._refresh()
        except RuntimeError:  # the Qt side was deleted (widget closed)
            return


class LayerChooser(QComboBox, _LayerTracking):
    """A combo box of the viewer's layers of one type, kept current as layers change.

    The chosen layer is tracked by identity, so renaming it keeps it chosen; with no choice the
    newest layer is chosen, except those ``skip`` (layer -> bool) leaves out. ``prefer``
    (layers -> the layer to choose, or None for none) decides the choice until the user
    makes one: it is asked again whenever layers change, so the choice follows new layers.
    """

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent=None,
                 prefer: Callable[[list], object] | None = None, skip: Callable[[object], bool] | None = None):
        super().__init__(parent)
        self._layer_type = layer_type
        self._layers: list = []
        self._prefer = prefer
        self._skip = skip  # layers never chosen by default (the user may still choose them)
        self._user_choice = None  # a weak reference to the layer the user chose, if any
        self.activated.connect(self._remember_user_choice)
        self._track_layers(viewer)
        self._on_layers_changed()

    def _remember_user_choice(self, *_) -> None:
        layer = self.layer()
        self._user_choice = weakref.ref(layer) if layer is not None else None

    def _refresh(self) -> None:
        current = self.layer()
        layers = [lay for lay in self._viewer.layers if isinstance(lay, self._layer_type)]
        chosen = self._user_choice() if self._user_choice is not None else None
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        for layer in layers:
            self.addItem(layer.name)
        if self._prefer is not None and chosen not in layers:
            preferred = self._prefer(layers)
            self.setCurrentIndex(layers.index(preferred) if preferred in layers else -1)
        elif current is not None and current in layers:
            self.setCurrentIndex(layers.index(current))
        elif layers:
            usable = [i for i, layer in enumerate(layers) if self._skip is None or not self._skip(layer)]
            self.setCurrentIndex(usable[-1] if usable else -1)
        self.blockSignals(False)
        if self.layer() is not current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        """The chosen layer, or None when there is none."""
        index = self.currentIndex()
        if 0 <= index < len(self._layers):
            return self._layers[index]
        return None

    def set_layer(self, layer) -> None:
        self._refresh()
        if layer in self._layers:
            self._user_choice = weakref.ref(layer)
            self.setCurrentIndex(self._layers.index(layer))


class LayerChecklist(QListWidget, _LayerTracking):
    """A list of the viewer's layers of one type with check boxes (multiple choice).

    ``checked_changed`` is emitted when the user ticks or unticks a layer or ``set_checked`` is called.
    """

    checked_changed = Signal()

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent=None):
        super().__init__(parent)
        self._layer_type = layer_type
        self._layers: list = []
        self._checked: set[int] = set()
        self.setMaximumHeight(90)
        self.itemChanged.connect(self._remember_checks)
        self._track_layers(viewer)
        self._on_layers_changed()

    def _remember_checks(self, item: QListWidgetItem) -> None:
        row = self.row(item)
        if 0 <= row < len(self._layers):
            key = id(self._layers[row])
            if item.checkState() == Qt.Checked:
                self._checked.add(key)
            else:
                self._checked.discard(key)
            self.checked_changed.emit()

    def _refresh(self) -> None:
        layers = [lay for lay in self._viewer.layers if isinstance(lay, self._layer_type)]
        alive = {id(lay) for lay in layers}
        self._checked &= alive
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if id(layer) in self._checked else Qt.Unchecked)
            self.addItem(item)
        self.blockSignals(False)

    def checked_layers(self) -> list:
        return [lay for lay in self._layers if id(lay) in self._checked]

    def set_checked(self, layers: Iterable) -> None:
        self._checked = {id(lay) for lay in layers}
        self._refresh()
        self.checked_changed.emit()
