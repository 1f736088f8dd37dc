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
    QWidget,
)

from ._checks import check_writable_file
from ._common import (
    ActivityProgressBar,
    LayerChooser,
    PathPicker,
    RememberedSettings,
    connect_click,
    describe_error,
    find_layer,
    is_probability_layer,
    notify_error,
    notify_info,
    plane_gray,
    plane_labels,
    planes_of,
    quiet_worker,
    row,
    source_name,
    spatial_shape,
    spatial_transform,
    stack,
    status_label,
    tabify_stage,
)
from ._measurements_table import MeasurementsTable
from ._plots import Histogram

if TYPE_CHECKING:
    from pathlib import Path

    import napari

MODES = ("off", "pick", "reject", "add", "fill")
#: What each mode's button says, and the key that chooses it on the labels layer. napari's own
#: Labels keys (P paint, F fill, E erase, L picker, Z pan, M, X, B) stay untouched.
MODE_TEXT = {"off": "Off", "pick": "Pick (right)", "reject": "Reject (wrong)", "add": "Add (missed)",
             "fill": "Fill from background"}
SHORTCUTS = {"off": "O", "pick": "K", "reject": "R", "add": "A", "fill": "H"}
UNDO_KEY = "Control-Z"
#: A press and release further apart than this (canvas pixels) is a pan, not a click.
CLICK_TOLERANCE_PX = 4
#: Values of the curation layer (one per kind of statement) and their colours.
CURATION_KINDS = {"background": 1, "pick": 2, "add": 3, "fill": 4}
CURATION_COLOURS = {1: "magenta", 2: "yellow", 3: "cyan", 4: "lime"}
#: Key of an Image layer's metadata holding its curation (plane -> Curation): the Train dock's round reads it.
CURATION_METADATA = "synthseg_curation"
#: Numeric measurement columns that are ids or places, never offered to the histogram.
HISTOGRAM_SKIPPED = ("index", "label", "plane")
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
    return kinds


def nearest_object_ids(labels: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Label ids for the ``new`` pixels of a 2D plane: each takes its nearest object's id.

    A filled contour thus takes the id of the ring around it. Works on the bounding box
    of the new pixels (plus one pixel, where the enclosing objects are).
    """
    rows, cols = np.nonzero(new)
    box = (
        slice(max(rows.min() - 1, 0), rows.max() + 2),
        slice(max(cols.min() - 1, 0), cols.max() + 2),
    )
    sub = labels[box]
    if not sub.any():
        return np.full(rows.size, int(labels.max()) + 1, dtype=labels.dtype)
    from scipy import ndimage

    _, (near_r, near_c) = ndimage.distance_transform_edt(sub == 0, return_indices=True)
    nearest = sub[near_r, near_c]
    return nearest[new[box]]


@dataclass
class _Step:
    """One undoable click: the plane's curation before it, and the labels pixels it overwrote."""

    plane: tuple
    before: object  # Curation or None (the plane had none)
    labels_patch: tuple | None = None  # (layer, index, old values) of a fill


@dataclass
class _CurationState:
    """The curation of one image (one per plane of a stack) and its undo stack."""

    planes: dict = field(default_factory=dict)
    undo: list = field(default_factory=list)
    saved_to: Path | None = None


class CurateWidget(QWidget):
    """Say with the mouse which predicted objects are right (pick), wrong (reject) or missed (add), fill
    contours from the background, undo with Ctrl+Z; save the curation beside the image; export."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(parent)
        tabify_stage(self)  # the five stages share one column of tabs (fits a 1080p screen)
        from napari.layers import Image, Labels

        self.viewer = napari_viewer
        self._worker = None
        self._attached = None  # the Labels layer our mouse callback sits on
        self._keyed = None  # the Labels layer our keys are bound to
        self._watched = None  # the Labels layer whose data events we follow
        self._callback = self._make_layer_callback()
        self._viewer_callback = self._make_viewer_callback()
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # owner layer -> state
        self._owner = None
        self.state = _CurationState()

        self.labels_choice = LayerChooser(napari_viewer, Labels, prefer=default_labels_layer)
        self.image_choice = LayerChooser(napari_viewer, Image, skip=is_probability_layer)
        self.mode_buttons = QButtonGroup(self)
        mode_grid = QGridLayout()
        for i, mode in enumerate(MODES):
            button = QRadioButton(f"{MODE_TEXT[mode]}  [{SHORTCUTS[mode]}]")
            button.setChecked(mode == "off")
            self.mode_buttons.addButton(button, i)
            mode_grid.addWidget(button, i // 3, i % 3)
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
        self.measurements_table = MeasurementsTable(napari_viewer)
        self.measurements_table.setToolTip("the labels layer's measurements: click a header to sort, a row to "
                                           "select and show that object; picking a label selects its row")
        self.histogram_column = QComboBox()
        self.histogram_column.setToolTip("the measurement the histogram shows (unit in the name)")
        self.histogram = Histogram("no measurements yet")
        self.progress = ActivityProgressBar("Curate")
        self.status = status_label()

        form = QFormLayout()
        form.addRow("labels", self.labels_choice)
        form.addRow("image", self.image_choice)
        form.addRow("curation file", self.curation_path)
        stack(self, form, "mouse mode (click on the labels layer; keys in [ ])", mode_grid,
              self.counts_label, row(self.undo_button, self.clear_button),
              row(self.save_curation_button, self.load_curation_button),
              "bank folder", self.bank_path, self.export_picked_button,
              "labels file", self.labels_path, self.export_labels_button,
              "measurements file", self.csv_path, row(self.measure_scope, self.export_csv_button),
              self.replace_files, self.measurements_table, row(QLabel("histogram of"), self.histogram_column),
              self.histogram, self.progress, self.status)

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
        napari_viewer.mouse_drag_callbacks.append(self._viewer_callback)
        self.destroyed.connect(_detach_all(napari_viewer, self._viewer_callback, self._callback))
        self._attach()
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("curate", dict(
            bank_path=self.bank_path, measure_scope=self.measure_scope), owner=self)

    # ------------------------------------------------------------------ mode and attachment
    @property
    def mode(self) -> str:
        return MODES[max(self.mode_buttons.checkedId(), 0)]

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode_buttons.button(MODES.index(mode)).setChecked(True)
        self._attach()

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _attach(self) -> None:
        """Put our mouse callback on the chosen Labels layer (and only there) while a mode is on;
        bind the mode keys there; switch to the curation of the chosen image."""
        labels = self.labels_choice.layer()
        target = labels if self.mode != "off" else None
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
            layer.bind_key(key, _mode_key(ref, mode), overwrite=True)
        layer.bind_key(UNDO_KEY, _undo_key(ref), overwrite=True)

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

    def _make_layer_callback(self):
        ref = weakref.ref(self)

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

    def _make_viewer_callback(self):
        ref = weakref.ref(self)

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

    # ------------------------------------------------------------------ clicks
    def click(self, layer, world_position, dims_displayed=()) -> None:
        """Act on a click at ``world_position`` (world coordinates) on Labels ``layer``."""
        from napari.layers import Labels

        if not isinstance(layer, Labels):
            notify_info(f"layer '{layer.name}' is not a Labels layer; curation needs labels")
            return
        if len(dims_displayed) > 2:
            notify_info("curation works on 2D planes: switch the viewer to 2D (the square button)")
            return
        shape = layer.data.shape
        index = np.round(np.asarray(layer.world_to_data(world_position), dtype=float)).astype(int)
        if np.any(index < 0) or np.any(index >= np.asarray(shape)):
            notify_info(f"the click at data position {tuple(int(i) for i in index)} is outside layer "
                        f"'{layer.name}' (shape {tuple(shape)}); nothing changed")
            return
        plane, point = tuple(int(i) for i in index[:-2]), (int(index[-2]), int(index[-1]))
        if self.mode == "fill":
            self.fill_at(layer, plane, point)
        elif self.mode in ("pick", "reject", "add"):
            self.curate_at(layer, plane, point, self.mode)

    def curate_at(self, layer, plane: tuple[int, ...], point: tuple[int, int], mode: str) -> bool:
        """Pick, reject or add at ``point`` of one plane; returns whether the curation changed."""
        from napari_synthseg.curation import Curation, add_object, pick_object, reject_object

        labels = plane_labels(layer, plane)
        before = self.state.planes.get(plane)
        current = before if before is not None else Curation.empty(labels.shape)
        try:
            if mode == "pick":
                after = pick_object(current, labels, point)
            elif mode == "reject":
                after = reject_object(current, labels, point)
            else:
                probability, gray = self._add_sources(layer, plane)
                after = add_object(current, point, probability=probability, image=gray, labels=labels)
        except ValueError as exc:  # the click found nothing to act on: say so, change nothing
            notify_info(str(exc))
            self.status.setText(str(exc))
            return False
        self._push(_Step(plane, before), after)
        return True

    def toggle_pick(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> bool | None:
        """Pick the object under ``point`` (un-pick a curated one); returns whether one is curated there now,
        None when the click changed nothing."""
        if not self.curate_at(layer, plane, point, "pick"):
            return None
        return bool(self.state.planes.get(plane) is not None and self.state.planes[plane].objects[point])

    def _add_sources(self, labels_layer, plane):
        """The model's foreground probability (left by the Segment dock) and the image, for Add."""
        from .segment_widget import probability_layer_name

        image = self.image_choice.layer()
        if image is None or spatial_shape(image) != tuple(labels_layer.data.shape):
            image = None
        probability = None
        if image is not None:
            layer = find_layer(self.viewer, probability_layer_name(image.name))
            if layer is not None and tuple(layer.data.shape) == tuple(labels_layer.data.shape):
                probability = plane_labels(layer, plane).astype(np.float32)
        gray = plane_gray(image, plane) if image is not None else None
        if probability is None and gray is None:
            raise ValueError("Add grows the missed object from the model's probability (run Segment on the "
                             "image first) or from the image: choose the image layer of these labels")
        return probability, gray

    def fill_at(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> int:
        """Fill every closed contour of one plane, seen from background ``point``; undoable.

        Returns the number of pixels that became object.
        """
        from napari_synthseg.curation import fill_enclosed

        labels = plane_labels(layer, plane)
        clicked = int(labels[point])
        if clicked != 0:
            notify_info(f"you clicked object {clicked}; in Fill mode click a background pixel")
            return 0
        filled = np.asarray(fill_enclosed(labels > 0, point), dtype=bool)
        new = filled & (labels == 0)
        if not new.any():
            notify_info("nothing to fill: no background region is enclosed by contours")
            return 0
        values = nearest_object_ids(labels, new)
        rows, cols = np.nonzero(new)
        index = tuple(np.full(rows.size, p, dtype=np.intp) for p in plane) + (rows, cols)
        with layer.block_history():  # one Ctrl+Z undoes the whole fill
            layer.data_setitem(index, values)
        self.state.undo.append(_Step(plane, self.state.planes.get(plane), (layer, index, np.zeros_like(values))))
        self.status.setText(f"filled {rows.size} pixels; pick the filled objects that are right")
        return int(rows.size)

    def _push(self, step: _Step, after) -> None:
        self.state.undo.append(step)
        self._set_plane(step.plane, after)

    def _set_plane(self, plane, curation) -> None:
        if curation is None or curation.is_empty():
            self.state.planes.pop(plane, None)
        else:
            self.state.planes[plane] = curation
        self._show_curation()

    def undo(self) -> bool:
        """Take the last click back (Ctrl+Z on the labels layer); returns whether there was one."""
        if not self.state.undo:
            notify_info("nothing to undo in the curation")
            return False
        step = self.state.undo.pop()
        if step.labels_patch is not None:
            layer, index, old = step.labels_patch
            if layer in self.viewer.layers:
                with layer.block_history():
                    layer.data_setitem(index, old)
        self._set_plane(step.plane, step.before)
        self.status.setText("undone")
        return True

    # ------------------------------------------------------------------ the curation
    @property
    def curations(self) -> dict:
        """The curation of each plane that has one (``()`` for a 2D image)."""
        return dict(self.state.planes)

    def counts(self) -> dict:
        """Picks, rejects, adds (and fills) in effect over all planes."""
        total = {"pick": 0, "reject": 0, "add": 0, "fill": 0}
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
        self.counts_label.setText(f"{counts['pick']} picked · {counts['reject']} rejected · {counts['add']} added")
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
            self.state.undo.append(_Step(plane, curation))
        self.state.planes.clear()
        self._show_curation()

    def curation_file(self) -> Path:
        """Where the curation is kept: the 'curation file' box, else beside the image file, else beside
        the labels file; ``ValueError`` when none is known."""
        from napari_synthseg.curation import curation_path

        chosen = self.curation_path.path()
        if chosen is not None:
            return chosen if chosen.suffix.lower() in (".tif", ".tiff") else chosen.with_suffix(".tif")
        image = self.image_choice.layer()
        source = getattr(getattr(image, "source", None), "path", None) if image is not None else None
        if source:
            return curation_path(source)
        labels_file = self.labels_path.path()
        if labels_file is not None:
            return curation_path(labels_file)
        raise ValueError("choose a curation file (the 'curation file' box): the image was not read from a file, "
                         "so there is no folder to keep the curation beside")

    def save_curation(self, path: Path | None = None) -> Path:
        """Write the curation (2D images) with ``curation.save_curation``; returns the file."""
        from napari_synthseg.curation import Curation, save_curation

        layer = self._labels()
        shape = tuple(layer.data.shape)
        if len(shape) != 2:
            raise ValueError(f"saving a curation works on 2D images; '{layer.name}' is a stack {shape}: "
                             "export the curated objects to a bank instead")
        path = Path(path) if path is not None else self.curation_file()
        curation = self.state.planes.get((), Curation.empty(shape))
        image = self.image_choice.layer()
        meta = {"labels": layer.name, "image": source_name(image) if image is not None else None}
        save_curation(curation, path, meta=meta)
        self.state.saved_to = path
        counts = curation.counts
        self.status.setText(f"curation saved to {path} ({counts['pick']} picked, {counts['reject']} rejected, "
                            f"{counts['add']} added)")
        return path

    def load_curation(self, path: Path | None = None) -> None:
        """Read a saved curation for the chosen labels (2D); it replaces the one in the dock (undoable)."""
        from napari_synthseg.curation import load_curation

        layer = self._labels()
        path = Path(path) if path is not None else self.curation_file()
        curation = load_curation(path)
        if curation.shape != tuple(layer.data.shape):
            raise ValueError(f"the curation {path.name} is of a {curation.shape[0]}×{curation.shape[1]} image, "
                             f"labels '{layer.name}' are {tuple(layer.data.shape)}: choose the matching image")
        self.state.undo.append(_Step((), self.state.planes.get(())))
        self.state.saved_to = path
        self._set_plane((), curation)
        self.status.setText(f"curation loaded from {path}")

    def _load_saved(self) -> None:
        """Load the curation kept beside the image file, when there is one (a later session)."""
        layer = self.labels_choice.layer()
        if layer is None or len(layer.data.shape) != 2:
            return
        try:
            path = self.curation_file()
        except ValueError:
            return
        if not path.is_file():
            return
        try:
            self.load_curation(path)
        except ValueError as exc:
            self.status.setText(f"a curation at {path} was not loaded: {exc}")
            return
        self.state.undo.clear()  # loading it is where this session starts

    # ------------------------------------------------------------------ exports
    def _labels(self):
        layer = self.labels_choice.layer()
        if layer is None:
            raise ValueError("no Labels layer chosen: run Auto-segment or Segment first, or open a labels file")
        return layer

    def _image_for(self, labels_layer):
        image = self.image_choice.layer()
        if image is None:
            raise ValueError("choose the Image layer the labels belong to (the objects are cropped from it)")
        if spatial_shape(image) != tuple(labels_layer.data.shape):
            raise ValueError(f"image '{image.name}' {spatial_shape(image)} and labels '{labels_layer.name}' "
                             f"{tuple(labels_layer.data.shape)} differ in shape; choose the matching pair")
        return image

    def export_picked(self) -> None:
        """Crop the curated objects (picked, added; image + mask + provenance) into the bank folder, in a
        worker. The masks are the curation's pixels, so labels recomputed since the clicks change nothing."""
        if self.busy:
            return
        layer = self._labels()
        objects = {plane: curation.objects for plane, curation in self.state.planes.items() if curation.objects.any()}
        if not objects:
            raise ValueError("nothing picked: choose 'Pick' (or 'Add') and click objects on the labels layer")
        image = self._image_for(layer)
        bank_dir = self.bank_path.path()
        if bank_dir is None:
            raise ValueError("choose a bank folder for the picked objects (a fresh folder is best)")
        source = source_name(image)
        n_curated = sum(int(np.count_nonzero(np.unique(plane_objects))) - int(0 in plane_objects)
                        for plane_objects in objects.values())

        def export():
            from napari_synthseg.bank import ObjectBank

            bank = ObjectBank(bank_dir)
            added = 0
            for i, (plane, plane_objects) in enumerate(objects.items()):
                # a person picked these: banked as they are, not judged by shape
                added += bank.add_from_labels(plane_gray(image, plane), plane_objects,
                                              source=source, plane=list(plane), method="curated",
                                              judge_shapes=False)
                yield i + 1
            return added, len(bank)

        def report(result):
            added, total = result
            skipped = n_curated - added
            extra = f" ({skipped} already in the bank or too small)" if skipped else ""
            self.status.setText(f"exported {added} of {n_curated} curated objects{extra}; bank holds {total}")
            notify_info(f"exported {added} curated objects to {bank_dir}")

        self._start(quiet_worker(export), len(objects), report)

    def export_labels(self) -> None:
        """Write the labels layer to a TIFF file (atomic: no half-written file)."""
        if self.busy:
            return
        layer = self._labels()
        path = self.labels_path.path()
        if path is None:
            raise ValueError("choose a file name for the labels TIFF")
        if path.suffix.lower() not in (".tif", ".tiff"):
            path = path.with_suffix(".tif")
        check_writable_file(path, "labels file", replace=self._may_replace(self.labels_path, path))
        data = np.array(layer.data, copy=True)
        pixel_size = physical_pixel_size(layer)

        def write():
            from napari_synthseg.image_io import write_tiff

            write_tiff(path, data, pixel_size=pixel_size, labels=True)
            yield 1
            return path

        def report(written: Path) -> None:
            text = f"labels written to {written}"
            if self.state.planes and layer.data.ndim == 2:  # the curation goes with its labels
                from napari_synthseg.curation import curation_path

                kept = self.save_curation(self.curation_path.path() or curation_path(written))
                text += f"; curation to {kept}"
            self.status.setText(text)

        self._start(quiet_worker(write), 1, report)

    def _may_replace(self, picker, path: Path) -> bool:
        return self.replace_files.isChecked() or picker.confirmed(path)

    def export_measurements(self) -> None:
        """Measure every object (all planes or the current one) to CSV and plot the sizes."""
        if self.busy:
            return
        layer = self._labels()
        image = self.image_choice.layer()
        if image is not None and spatial_shape(image) != tuple(layer.data.shape):
            image = None  # measure shapes only rather than pair the wrong image
        path = self.csv_path.path()
        if path is None:
            raise ValueError("choose a file name for the measurements CSV")
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        check_writable_file(path, "measurements file", replace=self._may_replace(self.csv_path, path))
        scope = "current" if self.measure_scope.currentText() == "current plane" else "all"
        planes = planes_of(layer, scope, self.viewer)
        spacing, unit = layer_pixel_size(layer)

        def measure():
            from napari_synthseg.measure import measure_objects, plane_value, write_measurements_csv

            rows = []
            for i, plane in enumerate(planes):
                gray = plane_gray(image, plane) if image is not None else None
                rows.extend(measure_objects(plane_labels(layer, plane), gray,
                                            plane=plane_value(plane), spacing=spacing, unit=unit))
                yield i + 1
            write_measurements_csv(rows, path)
            return rows

        def report(rows):
            from napari_synthseg.measure import column_unit, rows_to_columns

            self.measurements = rows
            diameter = f"equivalent_diameter_{column_unit(unit, spacing)}"
            if layer in self.viewer.layers and rows:
                # napari shows a Labels layer's features for the label under the mouse (column "index");
                # the table and the histogram follow the features
                layer.features = {"index": [row["label"] for row in rows], **rows_to_columns(rows)}
            else:
                self.histogram.title = diameter
                self.histogram.set_values([row[diameter] for row in rows])
            self.status.setText(f"{len(rows)} objects measured → {path}")

        self._start(quiet_worker(measure), len(planes), report)

    # ------------------------------------------------------------------ histogram
    def _refresh_histogram_columns(self) -> None:
        """Offer the numeric measurement columns of the table's layer (ids and places left out)."""
        from pandas.api.types import is_bool_dtype, is_numeric_dtype  # napari's features are a DataFrame

        layer = self.measurements_table.layer
        features = layer.features if layer is not None else None
        names = [] if features is None else [
            str(name) for name in features.columns
            if name not in HISTOGRAM_SKIPPED and not str(name).startswith("bbox_")
            and is_numeric_dtype(features[name]) and not is_bool_dtype(features[name])]
        current = self.histogram_column.currentText()
        self.histogram_column.blockSignals(True)
        self.histogram_column.clear()
        self.histogram_column.addItems(names)
        if current in names:
            self.histogram_column.setCurrentText(current)
        else:
            diameters = [name for name in names if name.startswith("equivalent_diameter")]
            self.histogram_column.setCurrentText((diameters or names or [""])[0])
        self.histogram_column.blockSignals(False)
        self._show_histogram()

    def _show_histogram(self) -> None:
        """Plot the chosen column of the layer's features."""
        layer = self.measurements_table.layer
        name = self.histogram_column.currentText()
        if layer is None or not name or name not in layer.features.columns:
            self.histogram.title = "no measurements yet"
            self.histogram.set_values([])
            return
        self.histogram.title = name
        self.histogram.set_values(layer.features[name].to_numpy(dtype=float, na_value=np.nan))

    # ------------------------------------------------------------------ worker plumbing
    def _start(self, worker, total: int, on_result) -> None:
        from ._common import safe_slot

        self._worker = worker
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(0)
        for button in (self.export_picked_button, self.export_labels_button, self.export_csv_button):
            button.setEnabled(False)
        worker.yielded.connect(self.progress.setValue)
        worker.returned.connect(safe_slot(on_result))
        worker.errored.connect(lambda exc: notify_error(describe_error(exc)))
        worker.finished.connect(self._finished)
        self.progress.follow(worker)  # napari's activity panel shows it too
        worker.start()

    def _finished(self) -> None:
        self._worker = None
        for button in (self.export_picked_button, self.export_labels_button, self.export_csv_button):
            button.setEnabled(True)


def layer_pixel_size(layer) -> tuple[tuple[float, float] | None, str | None]:
    """The pixel size ``(dy, dx)`` and its unit of a layer for measurements; ``(None, None)``: pixels.

    A layer scaled without a physical unit (napari's ``pixel``) measures in its scale's "units".
    """
    scale = tuple(float(s) for s in layer.scale[-2:])
    units = getattr(layer, "units", None)  # napari >= 0.6
    name = str(units[-1]) if units else "pixel"
    if name in ("pixel", "px", "dimensionless", ""):
        return (None, None) if scale == (1.0, 1.0) else (scale, "units")
    return scale, _UNIT_SYMBOLS.get(name, "".join(ch for ch in name if ch.isalpha()) or "units")


def physical_pixel_size(layer):
    """The layer's pixel size as a `~napari_synthseg.pixel_size.PixelSize`, or None without a length unit."""
    from napari_synthseg.pixel_size import PixelSize, PixelSizeError

    scale, unit = layer_pixel_size(layer)
    if scale is None or unit == "units":
        return None
    try:
        return PixelSize(scale[1], unit, scale[0])
    except PixelSizeError:
        return None  # a unit that is no length (e.g. seconds): written without a size


#: pint's names of the lengths of EM images -> the symbols written into column names
_UNIT_SYMBOLS = {"nanometer": "nm", "micrometer": "um", "millimeter": "mm", "meter": "m", "angstrom": "A",
                 "picometer": "pm"}


def _kind_colours(layer) -> None:
    """Show the curation layer's kinds in their colours (``CURATION_COLOURS``)."""
    try:
        from napari.utils.colormaps import DirectLabelColormap

        layer.colormap = DirectLabelColormap(color_dict={None: "yellow", 0: "transparent", **CURATION_COLOURS})
    except Exception:  # older napari: keep its default colours; the kinds still show apart
        pass


def _mode_key(widget_ref, mode: str):
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


def _undo_key(widget_ref):
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
    return getattr(function, "__qualname__", "").startswith(("_mode_key.", "_undo_key."))


def _detach_all(viewer, viewer_callback, layer_callback):
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
