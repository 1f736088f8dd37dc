"""A table pairing each ticked Image layer with the Labels layer that outlines its objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QTableWidget, QTableWidgetItem

from ._layer_choice import LayerChecklist, _LayerTracking
from ._planes import find_layer
from .autoseg_widget import autoseg_layer_name

if TYPE_CHECKING:
    import napari

#: The combo box entry for "no labels for this image".
NO_LABELS = "(none)"


class ImageLabelsTable(QTableWidget, _LayerTracking):
    """One row per Image layer ticked in ``images``, with a combo box of the viewer's Labels layers.

    A row shows the Labels layer the user chose for that image; until one is chosen, the layer
    the Auto-segment dock made for it (``<image> autoseg``), or ``(none)``.
    """

    def __init__(self, viewer: napari.viewer.Viewer, images: LayerChecklist, parent=None):
        super().__init__(0, 2, parent)
        self._images = images
        # id(image layer) -> (image layer, chosen Labels layer or None); the layer is kept to
        # notice a recycled id
        self._chosen: dict[int, tuple] = {}
        self.setHorizontalHeaderLabels(["image", "labels"])
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setMaximumHeight(110)
        images.checked_changed.connect(self._refresh)
        self._track_layers(viewer)
        self._on_layers_changed()

    def _labels_layers(self) -> list:
        from napari.layers import Labels

        return [layer for layer in self._viewer.layers if isinstance(layer, Labels)]

    def labels_for(self, image):
        """The Labels layer paired with Image layer ``image`` (None: no labels)."""
        from napari.layers import Labels

        entry = self._chosen.get(id(image))
        if entry is not None and entry[0] is image and (entry[1] is None or entry[1] in self._viewer.layers):
            return entry[1]
        return find_layer(self._viewer, autoseg_layer_name(image.name), Labels)

    def set_labels(self, image, labels) -> None:
        """Pair ``image`` with the Labels layer ``labels`` (None: no labels)."""
        self._chosen[id(image)] = (image, labels)
        self._refresh()

    def _choose(self, image, layers: list, index: int) -> None:
        self._chosen[id(image)] = (image, None if index <= 0 else layers[index - 1])

    def _refresh(self) -> None:
        labels_layers = self._labels_layers()
        images = self._images.checked_layers()
        self.setRowCount(len(images))
        for row, image in enumerate(images):
            item = QTableWidgetItem(image.name)
            item.setFlags(Qt.ItemIsEnabled)
            self.setItem(row, 0, item)
            combo = QComboBox()
            combo.addItem(NO_LABELS)
            combo.addItems([layer.name for layer in labels_layers])
            current = self.labels_for(image)
            combo.setCurrentIndex(0 if current is None else 1 + labels_layers.index(current))
            combo.currentIndexChanged.connect(
                lambda index, image=image, layers=labels_layers: self._choose(image, layers, index))
            self.setCellWidget(row, 1, combo)
