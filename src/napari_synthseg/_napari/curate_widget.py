"""Curate dock: clicks on a Labels layer that say what is right and wrong (a curation of the
image, kept beside it), fill from background, and export of curated objects, labels and measurements."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QRadioButton,
)

from ._common import connect_click
from ._curate_clicks import CurationClicks, CurationStep
from ._curate_exports import CurateExports
from ._curate_files import CurationFiles
from ._curate_mouse import (
    MODE_TEXT,
    MODES,
    SHORTCUTS,
    UNDO_KEY,
    counts_text,
    detach_all,
    layer_click_callback,
    mode_key,
    undo_key,
    wrong_layer_callback,
)
from ._form import PathPicker, row, stack, status_label
from ._layer_choice import LayerChooser
from ._measurements_table import MeasurementsTable
from ._planes import find_layer, is_probability_layer, spatial_shape, spatial_transform
from ._plots import Histogram
from ._progress import ActivityProgressBar
from ._settings import RememberedSettings
from ._worker_dock import WorkerDock

if TYPE_CHECKING:
    import napari

#: Values of the curation layer (one per kind of statement) and their colours.
CURATION_KINDS = {"background": 1, "pick": 2, "add": 3, "fill": 4, "split": 5, "merge": 6}
CURATION_COLOURS = {1: "magenta", 2: "yellow", 3: "cyan", 4: "lime", 5: "orange", 6: "dodgerblue"}
#: Key of an Image layer's metadata holding its curation (plane -> Curation): the Train dock's round reads it.
CURATION_METADATA = "synthseg_curation"
#: Names that mark a Labels layer as a reference, never the default one to curate.
GROUND_TRUTH_WORDS = ("ground truth", "ground_truth", "groundtruth", "gt", "truth")


def curation_layer_name(labels_name: str) -> str:
    return f"{labels_name} curation"


def looks_like_ground_truth(name: str) -> bool:
    """Whether a layer's name says it is a reference (ground truth), not a result to curate."""
    words = name.lower().replace("-", " ").replace("_", " ").split()
    text = " ".join(words)
    return any(word in words or (" " in word and word in text) for word in GROUND_TRUTH_WORDS)


def default_labels_layer(layers: list):
    """The Labels layer to curate when the user chose none: the Segment dock's newest output, else the
    newest Labels layer that is neither ground truth nor one of the dock's own; None when only those exist."""
    own = tuple(" " + suffix for suffix in ("curation", "picked"))
    candidates = [layer for layer in layers if not layer.name.endswith(own) and not looks_like_ground_truth(layer.name)]
    segmented = [layer for layer in candidates if layer.name.endswith(" segmentation")]
    chosen = segmented or candidates
    return chosen[-1] if chosen else None


def curation_kinds(curation) -> np.ndarray:
    """A uint8 image of what a curation says at each pixel (``CURATION_KINDS``; 0: unknown)."""
    kind_of_id = np.full(int(curation.objects.max()) + 1, CURATION_KINDS["pick"], np.uint8)
    kind_of_id[0] = 0
    for object_id, origin in curation.origins.items():
        if 0 < object_id < kind_of_id.size:
            kind_of_id[object_id] = CURATION_KINDS.get(origin, CURATION_KINDS["pick"])
    kinds = kind_of_id[curation.objects]  # one lookup, whatever the number of objects
    kinds[curation.background] = CURATION_KINDS["background"]
    kinds[_touching_side(curation.objects)] = 0  # so the parts of a split are seen apart
    return kinds


def _touching_side(objects: np.ndarray) -> np.ndarray:
    """One side (the upper or left pixel) of every place where two curated objects touch."""
    edge = np.zeros(objects.shape, bool)
    for a, b in (((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
                 ((slice(None), slice(None, -1)), (slice(None), slice(1, None)))):
        edge[a] |= (objects[a] != objects[b]) & (objects[a] > 0) & (objects[b] > 0)
    return edge


@dataclass
class _CurationState:
    """The curation of one image (one per plane of a stack) and its undo stack."""

    planes: dict = field(default_factory=dict)
    undo: list = field(default_factory=list)
    saved_to: Path | None = None


class CurateWidget(CurationClicks, CurationFiles, CurateExports, WorkerDock):
    """Say with the mouse which predicted objects are right (pick), wrong (reject) or missed (add), fill
    contours from the background, undo with Ctrl+Z; save the curation beside the image; export.

    The clicks (``CurationClicks``), the curation file (``CurationFiles``) and the exports (``CurateExports``)
    are mix-ins of their own modules; this class holds the form, the layers it acts on and the curation shown.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self._attached = None  # the Labels layer our mouse callback sits on
        self._keyed = None  # the Labels layer our keys are bound to
        self._watched = None  # the Labels layer whose data events we follow
        self._callback = layer_click_callback(weakref.ref(self))
        self._viewer_callback = wrong_layer_callback(weakref.ref(self))
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # owner layer -> state
        self._owner = None
        self.state = _CurationState()
        self._make_controls()
        self._lay_out()
        self._bind_worker_controls(self.progress, (self.export_picked_button, self.export_labels_button,
                                                   self.export_csv_button))
        self._connect()
        napari_viewer.mouse_drag_callbacks.append(self._viewer_callback)
        self.destroyed.connect(detach_all(napari_viewer, self._viewer_callback, self._callback))
        self._attach()
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("curate", dict(
            bank_path=self.bank_path, measure_scope=self.measure_scope), owner=self)

    def _make_controls(self) -> None:
        from napari.layers import Image, Labels

        self.labels_choice = LayerChooser(self.viewer, Labels, prefer=default_labels_layer)
        self.image_choice = LayerChooser(self.viewer, Image, skip=is_probability_layer)
        self.mode_buttons = QButtonGroup(self)
        for i, mode in enumerate(MODES):
            button = QRadioButton(f"{MODE_TEXT[mode]}  [{SHORTCUTS[mode]}]", self)  # self owns it until laid out
            button.setChecked(mode == "off")
            self.mode_buttons.addButton(button, i)
        self.counts_label = QLabel("")
        self.undo_button = QPushButton("Undo  [Ctrl+Z]")
        self.clear_button = QPushButton("Clear curation")
        self.curation_path = PathPicker("save", "Curation TIFF", "TIFF (*.tif *.tiff)")
        self.curation_path.setToolTip("where the curation is kept: empty = '<image>_curation.tif' beside the "
                                      "image file (or the labels file); it is loaded again for the same image")
        self.save_curation_button = QPushButton("Save curation")
        self.load_curation_button = QPushButton("Load curation")
        self.bank_path = PathPicker("dir", "Bank folder for picked objects")
        self.export_picked_button = QPushButton("Export curated objects → bank")
        self.labels_path = PathPicker("save", "Labels TIFF", "TIFF (*.tif *.tiff)")
        self.export_labels_button = QPushButton("Export labels (TIFF)")
        self.csv_path = PathPicker("save", "Measurements CSV", "CSV (*.csv)")
        self.measure_scope = QComboBox()
        self.measure_scope.addItems(["all planes", "current plane"])
        self.export_csv_button = QPushButton("Export measurements (CSV)")
        self.replace_files = QCheckBox("replace existing files")
        self.replace_files.setToolTip("an export over an existing labels or measurements file is refused "
                                      "unless this is ticked or the file was chosen with the '…' dialog")
        self.measurements_table = MeasurementsTable(self.viewer)
        self.measurements_table.setToolTip("the labels layer's measurements: click a header to sort, a row to "
                                           "select and show that object; picking a label selects its row")
        self.histogram_column = QComboBox()
        self.histogram_column.setToolTip("the measurement the histogram shows (unit in the name)")
        self.histogram = Histogram("no measurements yet")
        self.progress = ActivityProgressBar("Curate")
        self.status = status_label()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("labels", self.labels_choice)
        form.addRow("image", self.image_choice)
        form.addRow("curation file", self.curation_path)
        mode_grid = QGridLayout()
        for i, button in enumerate(self.mode_buttons.buttons()):
            mode_grid.addWidget(button, i // 3, i % 3)
        stack(self, form, "mouse mode (click on the labels layer; keys in [ ])", mode_grid,
              self.counts_label, row(self.undo_button, self.clear_button),
              row(self.save_curation_button, self.load_curation_button),
              "bank folder", self.bank_path, self.export_picked_button,
              "labels file", self.labels_path, self.export_labels_button,
              "measurements file", self.csv_path, row(self.measure_scope, self.export_csv_button),
              self.replace_files, self.measurements_table, row(QLabel("histogram of"), self.histogram_column),
              self.histogram, self.progress, self.status)

    def _connect(self) -> None:
        self.mode_buttons.buttonClicked.connect(lambda *_: self._attach())
        self.labels_choice.currentIndexChanged.connect(lambda *_: self._attach())
        self.image_choice.currentIndexChanged.connect(lambda *_: self._attach())
        connect_click(self.undo_button, self.undo)
        connect_click(self.clear_button, self.clear_curation)
        connect_click(self.save_curation_button, self.save_curation)
        connect_click(self.load_curation_button, self.load_curation)
        connect_click(self.export_picked_button, self.export_picked)
        connect_click(self.export_labels_button, self.export_labels)
        connect_click(self.export_csv_button, self.export_measurements)
        self.measurements_table.refreshed.connect(self._refresh_histogram_columns)
        self.histogram_column.currentIndexChanged.connect(lambda *_: self._show_histogram())

    # ------------------------------------------------------------------ mode and attachment
    @property
    def mode(self) -> str:
        return MODES[max(self.mode_buttons.checkedId(), 0)]

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode_buttons.button(MODES.index(mode)).setChecked(True)
        self._attach()

    def _attach(self) -> None:
        """Put our mouse callback on the chosen Labels layer (and only there) while a mode is on;
        bind the mode keys there; switch to the curation of the chosen image."""
        labels = self.labels_choice.layer()
        target = labels if self.mode != "off" else None
        self.merge_first = None  # a new mode or layer starts a merge afresh
        if self._attached is not None and self._attached is not target:
            if self._callback in self._attached.mouse_drag_callbacks:
                self._attached.mouse_drag_callbacks.remove(self._callback)
            self._attached = None
        if target is not None and self._callback not in target.mouse_drag_callbacks:
            target.mouse_drag_callbacks.append(self._callback)
            self._attached = target
            self.viewer.layers.selection.active = target
        self._bind_keys(labels)
        self._watch(labels)
        self.measurements_table.set_layer(labels)
        self._switch_state()

    def _bind_keys(self, layer) -> None:
        if layer is self._keyed:
            return
        if self._keyed is not None:
            for key in (*SHORTCUTS.values(), UNDO_KEY):
                self._keyed.bind_key(key, None)
        self._keyed = layer
        if layer is None:
            return
        ref = weakref.ref(self)
        for mode, key in SHORTCUTS.items():
            layer.bind_key(key, mode_key(ref, mode), overwrite=True)
        layer.bind_key(UNDO_KEY, undo_key(ref), overwrite=True)

    def _watch(self, layer) -> None:
        """Follow the labels layer's data: a recomputed layer keeps the curation (it is pixels, not ids)."""
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.data.disconnect(self._on_labels_replaced)
        self._watched = layer
        if layer is not None:
            layer.events.data.connect(self._on_labels_replaced)

    def _on_labels_replaced(self, event=None) -> None:
        try:
            layer = self.labels_choice.layer()
        except RuntimeError:  # the dock was closed
            return
        if layer is None:
            return
        shape = tuple(layer.data.shape)
        mismatched = [plane for plane, curation in self.state.planes.items()
                      if len(plane) != len(shape) - 2 or curation.shape != shape[-2:]]
        if mismatched:  # another image: this curation does not belong to it
            self._owner = None
            self._switch_state()
            self.status.setText(f"labels '{layer.name}' changed shape; curating them from scratch")
            return
        if self.state.planes:
            self.status.setText(f"labels '{layer.name}' were replaced; the curation stays on the pixels you "
                                "curated (not on object ids), so picks follow the image, not the new numbering")
        self._show_curation()

    def _owner_layer(self):
        """The layer a curation belongs to: the image when it matches the labels, else the labels."""
        labels, image = self.labels_choice.layer(), self.image_choice.layer()
        if image is not None and labels is not None and spatial_shape(image) == tuple(labels.data.shape):
            return image
        return labels

    def _switch_state(self) -> None:
        owner = self._owner_layer()
        if owner is self._owner and owner is not None:
            self._show_curation()
            return
        self._owner = owner
        if owner is None:
            self.state = _CurationState()
        elif owner in self._states:
            self.state = self._states[owner]
        else:
            self.state = _CurationState()
            self._states[owner] = self.state
            self._load_saved()
        self._show_curation()
    # ------------------------------------------------------------------ the curation
    @property
    def curations(self) -> dict:
        """The curation of each plane that has one (``()`` for a 2D image)."""
        return dict(self.state.planes)

    def counts(self) -> dict:
        """Picks, rejects, adds, split parts, merges and fills in effect over all planes."""
        total = {"pick": 0, "reject": 0, "add": 0, "split": 0, "merge": 0, "fill": 0}
        for curation in self.state.planes.values():
            for kind in total:
                total[kind] += int(curation.counts.get(kind, 0))
        return total

    def picked_total(self) -> int:
        return self.counts()["pick"]

    def _publish(self) -> None:
        """Keep the curation in the image layer's metadata, where the Train dock's round finds it."""
        from napari.layers import Image

        owner = self._owner
        if not isinstance(owner, Image):
            return
        if self.state.planes:
            owner.metadata[CURATION_METADATA] = dict(self.state.planes)
        else:
            owner.metadata.pop(CURATION_METADATA, None)

    def _show_curation(self) -> None:
        self._publish()
        counts = self.counts()
        self.counts_label.setText(counts_text(counts))
        layer = self.labels_choice.layer()
        if layer is None:
            return
        existing = find_layer(self.viewer, curation_layer_name(layer.name))
        if not self.state.planes and existing is None:
            return
        shape = tuple(layer.data.shape)
        data = np.zeros(shape, np.uint8)
        for plane, curation in self.state.planes.items():
            if curation.shape == shape[-2:]:
                data[plane] = curation_kinds(curation)
        self._curation_layer(layer, existing, data)

    def _curation_layer(self, layer, existing, data: np.ndarray):
        from napari.layers import Labels

        if isinstance(existing, Labels) and tuple(existing.data.shape) == data.shape:
            existing.data = data
            return existing
        if existing is not None:
            self.viewer.layers.remove(existing)
        active = self.viewer.layers.selection.active
        shown = self.viewer.add_labels(data, name=curation_layer_name(layer.name), opacity=0.6,
                                       **spatial_transform(layer))
        _kind_colours(shown)
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active  # clicks keep going to the labels layer
        return shown

    def clear_curation(self) -> None:
        """Forget every click on this image (undoable: Ctrl+Z brings them back one plane at a time)."""
        for plane, curation in list(self.state.planes.items()):
            self.state.undo.append(CurationStep(plane, curation))
        self.state.planes.clear()
        self._show_curation()

    # ------------------------------------------------------------------ exports
    def _labels(self):
        layer = self.labels_choice.layer()
        if layer is None:
            raise ValueError("no Labels layer chosen: run Auto-segment or Segment first, or open a labels file")
        return layer
def _kind_colours(layer) -> None:
    """Show the curation layer's kinds in their colours (``CURATION_COLOURS``)."""
    try:
        from napari.utils.colormaps import DirectLabelColormap

        layer.colormap = DirectLabelColormap(color_dict={None: "yellow", 0: "transparent", **CURATION_COLOURS})
    except Exception:  # older napari: keep its default colours; the kinds still show apart
        pass
