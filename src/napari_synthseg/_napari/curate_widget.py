"""Curate dock: mouse callbacks on a Labels layer for background fill and object picking,
and export of picked objects, labels and measurements."""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QWidget,
)

from ._common import (
    tabify_stage,
    row,
    stack,
    status_label,
    LayerChooser,
    PathPicker,
    connect_click,
    describe_error,
    quiet_worker,
    find_layer,
    notify_error,
    notify_info,
    plane_gray,
    plane_labels,
    planes_of,
    source_name,
    spatial_shape,
    spatial_transform,
)
from ._checks import check_writable_file
from ._plots import Histogram

if TYPE_CHECKING:
    import napari

MODES = ("off", "fill", "pick")
#: A press and release further apart than this (canvas pixels) is a pan, not a click.
CLICK_TOLERANCE_PX = 4
PICKED_COLOR = "yellow"


def picked_layer_name(labels_name: str) -> str:
    return f"{labels_name} picked"


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


class CurateWidget(QWidget):
    """Fill enclosed contours and pick objects with the mouse on a Labels layer; export them."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer", parent=None):
        super().__init__(parent)
        tabify_stage(self)  # the five stages share one column of tabs (fits a 1080p screen)
        from napari.layers import Image, Labels

        self.viewer = napari_viewer
        self._worker = None
        self._attached = None  # the Labels layer our mouse callback sits on
        self._callback = self._make_layer_callback()
        self._viewer_callback = self._make_viewer_callback()
        self.picks: dict[tuple[int, ...], set[int]] = defaultdict(set)  # plane -> label ids
        self._picks_owner = None

        self.labels_choice = LayerChooser(napari_viewer, Labels)
        self.image_choice = LayerChooser(napari_viewer, Image)
        self.mode_buttons = QButtonGroup(self)
        mode_row = QHBoxLayout()
        for i, (mode, text) in enumerate(zip(MODES, ("Off", "Fill from background", "Pick objects"))):
            button = QRadioButton(text)
            button.setChecked(mode == "off")
            self.mode_buttons.addButton(button, i)
            mode_row.addWidget(button)
        self.picked_count = QLabel("0 picked")
        self.clear_button = QPushButton("Clear picks")
        self.bank_path = PathPicker("dir", "Bank folder for picked objects")
        self.export_picked_button = QPushButton("Export picked → bank")
        self.labels_path = PathPicker("save", "Labels TIFF", "TIFF (*.tif *.tiff)")
        self.export_labels_button = QPushButton("Export labels (TIFF)")
        self.csv_path = PathPicker("save", "Measurements CSV", "CSV (*.csv)")
        self.measure_scope = QComboBox()
        self.measure_scope.addItems(["all planes", "current plane"])
        self.export_csv_button = QPushButton("Export measurements (CSV)")
        self.replace_files = QCheckBox("replace existing files")
        self.replace_files.setToolTip("an export over an existing labels or measurements file is refused "
                                      "unless this is ticked or the file was chosen with the '…' dialog")
        self.histogram = Histogram("equivalent diameter (layer units)")
        self.progress = QProgressBar()
        self.status = status_label()

        form = QFormLayout()
        form.addRow("labels", self.labels_choice)
        form.addRow("image", self.image_choice)
        stack(self, form, "mouse mode (click on the labels layer)", mode_row,
              row(self.picked_count, self.clear_button),
              "bank folder", self.bank_path, self.export_picked_button,
              "labels file", self.labels_path, self.export_labels_button,
              "measurements file", self.csv_path, self.measure_scope, self.export_csv_button,
              self.replace_files, self.histogram, self.progress, self.status)

        self.mode_buttons.buttonClicked.connect(lambda *_: self._attach())
        self.labels_choice.currentIndexChanged.connect(lambda *_: self._attach())
        connect_click(self.clear_button, self.clear_picks)
        connect_click(self.export_picked_button, self.export_picked)
        connect_click(self.export_labels_button, self.export_labels)
        connect_click(self.export_csv_button, self.export_measurements)
        napari_viewer.mouse_drag_callbacks.append(self._viewer_callback)
        self.destroyed.connect(_detach_all(napari_viewer, self._viewer_callback, self._callback))
        self._attach()

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
        """Put our mouse callback on the chosen Labels layer (and only there) while a mode is on."""
        target = self.labels_choice.layer() if self.mode != "off" else None
        if self._attached is not None and self._attached is not target:
            if self._callback in self._attached.mouse_drag_callbacks:
                self._attached.mouse_drag_callbacks.remove(self._callback)
            self._attached = None
        if target is not None and self._callback not in target.mouse_drag_callbacks:
            target.mouse_drag_callbacks.append(self._callback)
            self._attached = target
            self.viewer.layers.selection.active = target
        if self.labels_choice.layer() is not self._picks_owner:
            self._reset_picks()

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
                notify_info(f"Curate acts on {where}, but the selected layer is {kind}"
                            f"{' ' + repr(active.name) if active is not None else ''}; select {where} in the layer list")

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
        elif self.mode == "pick":
            self.toggle_pick(layer, plane, point)

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
        self.status.setText(f"filled {rows.size} pixels")
        return int(rows.size)

    def toggle_pick(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> bool | None:
        """Toggle the object under ``point`` as picked; returns whether it is picked now."""
        labels = plane_labels(layer, plane)
        label = int(labels[point])
        if label == 0:
            notify_info("no object here (background); in Pick mode click inside an object")
            return None
        if self._picks_owner is not layer:
            self._reset_picks()
            self._picks_owner = layer
        chosen = self.picks[plane]
        picked = label not in chosen
        if picked:
            chosen.add(label)
        else:
            chosen.discard(label)
            if not chosen:
                del self.picks[plane]
        self._paint_pick(layer, plane, labels == label, picked)
        self._update_count()
        return picked

    def _paint_pick(self, layer, plane, mask: np.ndarray, picked: bool) -> None:
        picked_layer = self._picked_layer(layer)
        data = np.asarray(picked_layer.data)
        region = data[plane]
        region[mask] = 1 if picked else 0
        picked_layer.refresh()

    def _picked_layer(self, layer):
        from napari.layers import Labels

        name = picked_layer_name(layer.name)
        existing = find_layer(self.viewer, name, Labels)
        if existing is not None and existing.data.shape == layer.data.shape:
            return existing
        if existing is not None:
            self.viewer.layers.remove(existing)
        data = np.zeros(layer.data.shape, dtype=np.uint8)
        for plane, ids in self.picks.items():  # re-draw when the user deleted the layer
            data[plane][np.isin(plane_labels(layer, plane), list(ids))] = 1
        picked = self.viewer.add_labels(data, name=name, opacity=0.8, **spatial_transform(layer))
        _single_colour(picked, PICKED_COLOR)
        self.viewer.layers.selection.active = layer  # clicks keep going to the labels layer
        return picked

    def picked_total(self) -> int:
        return sum(len(ids) for ids in self.picks.values())

    def _update_count(self) -> None:
        self.picked_count.setText(f"{self.picked_total()} picked")

    def _reset_picks(self) -> None:
        self.picks = defaultdict(set)
        self._picks_owner = self.labels_choice.layer()
        self._update_count()

    def clear_picks(self) -> None:
        layer = self._picks_owner
        if layer is not None:
            existing = find_layer(self.viewer, picked_layer_name(layer.name))
            if existing is not None:
                existing.data = np.zeros_like(np.asarray(existing.data))
        self.picks = defaultdict(set)
        self._update_count()

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
        """Crop the picked objects (image + mask + provenance) into the bank folder, in a worker."""
        if self.busy:
            return
        layer = self._labels()
        if self._picks_owner is not layer or not self.picks:
            raise ValueError("nothing picked: choose 'Pick objects' and click objects on the labels layer")
        image = self._image_for(layer)
        bank_dir = self.bank_path.path()
        if bank_dir is None:
            raise ValueError("choose a bank folder for the picked objects (a fresh folder is best)")
        picks = {plane: sorted(ids) for plane, ids in self.picks.items()}
        source = source_name(image)
        n_picked = self.picked_total()

        def export():
            from napari_synthseg.bank import ObjectBank

            bank = ObjectBank(bank_dir)
            added = 0
            for i, (plane, ids) in enumerate(picks.items()):
                # a person picked these: banked as they are, not judged by shape
                added += bank.add_from_labels(plane_gray(image, plane), plane_labels(layer, plane), ids=ids,
                                              source=source, plane=list(plane), method="curated",
                                              judge_shapes=False)
                yield i + 1
            return added, len(bank)

        def report(result):
            added, total = result
            skipped = n_picked - added
            extra = f" ({skipped} already in the bank or too small)" if skipped else ""
            self.status.setText(f"exported {added} of {n_picked} picked objects{extra}; bank holds {total}")
            notify_info(f"exported {added} picked objects to {bank_dir}")

        self._start(quiet_worker(export), len(picks), report)

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

        def write():
            from napari_synthseg.image_io import write_tiff

            write_tiff(path, data)
            yield 1
            return path

        self._start(quiet_worker(write), 1, lambda p: self.status.setText(f"labels written to {p}"))

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
            self.histogram.set_values([row[diameter] for row in rows])
            if layer in self.viewer.layers and rows:
                # napari shows a Labels layer's features for the label under the mouse (column "index")
                layer.features = {"index": [row["label"] for row in rows], **rows_to_columns(rows)}
            self.status.setText(f"{len(rows)} objects measured → {path}")

        self._start(quiet_worker(measure), len(planes), report)

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


#: pint's names of the lengths of EM images -> the symbols written into column names
_UNIT_SYMBOLS = {"nanometer": "nm", "micrometer": "um", "millimeter": "mm", "meter": "m", "angstrom": "A",
                 "picometer": "pm"}


def _single_colour(layer, colour: str) -> None:
    """Show every non-zero label of ``layer`` in one colour (the picked highlight)."""
    try:
        from napari.utils.colormaps import DirectLabelColormap

        layer.colormap = DirectLabelColormap(color_dict={None: colour, 0: "transparent", 1: colour})
    except Exception:  # older napari: keep its default colours; picks still show
        pass


def _detach_all(viewer, viewer_callback, layer_callback):
    """A slot removing our callbacks from the viewer and every layer (the dock was closed)."""

    def detach(*_):
        try:
            if viewer_callback in viewer.mouse_drag_callbacks:
                viewer.mouse_drag_callbacks.remove(viewer_callback)
            for layer in viewer.layers:
                if layer_callback in layer.mouse_drag_callbacks:
                    layer.mouse_drag_callbacks.remove(layer_callback)
        except (RuntimeError, AttributeError):
            pass

    return detach
