"""Auto-segment dock: Image layer -> ``<image> autoseg`` Labels layer, and objects -> bank."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QPushButton, QSpinBox

from ..autoseg import METHODS, AutosegParams
from ._common import connect_click, describe_error, notify_error, notify_info, quiet_worker, safe_slot
from ._form import PathPicker, row, stack, status_label
from ._layer_choice import LayerChooser
from ._planes import (
    check_plane_size,
    current_plane,
    find_layer,
    full_resolution,
    merge_plane_results,
    plane_gray,
    plane_labels,
    planes_of,
    show_labels,
    source_name,
    spatial_shape,
)
from ._progress import ActivityProgressBar
from ._settings import RememberedSettings
from ._worker_dock import WorkerDock

if TYPE_CHECKING:
    import napari

#: The polarity box's entries, "auto" (the core's default) first.
POLARITIES = ("auto", "bright", "dark")
PREVIEW_DELAY_MS = 250
#: The threshold box's value until the user sets one: the core has no default threshold (methods
#: 'manual' and 'combined' need one), so the box starts in the middle of an 8-bit range.
MANUAL_THRESHOLD_START = 128.0


#: Key of a Labels layer's ``metadata`` holding the ``autosegment`` keywords that made it.
AUTOSEG_METADATA = "synthseg_autoseg"


def autoseg_layer_name(image_name: str) -> str:
    """The Labels layer the dock makes for an Image layer (the Train dock finds labels by it)."""
    return f"{image_name} autoseg"


class AutosegWidget(WorkerDock):
    """Classical segmentation of an Image layer, a live preview, and "add objects to bank".

    The boxes start at ``AutosegParams()``'s defaults (the one place they are defined).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self._preview_worker = None
        self._preview_pending = False
        self._make_controls(AutosegParams())
        self._lay_out()
        self._bind_worker_controls(self.progress, (self.run_button, self.add_button), self.cancel_button)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(safe_slot(self.preview))
        connect_click(self.run_button, self.run)
        connect_click(self.cancel_button, self.cancel)
        connect_click(self.add_button, self.add_to_bank)
        for widget in (self.method, self.polarity, self.scope):
            widget.currentIndexChanged.connect(self._schedule_preview)
        for widget in (self.threshold, self.sigma, self.min_area):
            widget.valueChanged.connect(self._schedule_preview)
        for widget in (self.fill_holes, self.clear_border, self.split_touching, self.ignore_scale_bar,
                       self.skip_drawn, self.live_preview):
            widget.toggled.connect(self._schedule_preview)
        self.method.currentTextChanged.connect(self._update_threshold_enabled)
        self._update_threshold_enabled(self.method.currentText())
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("autoseg", dict(
            method=self.method, polarity=self.polarity, threshold=self.threshold, sigma=self.sigma,
            min_area=self.min_area, fill_holes=self.fill_holes, clear_border=self.clear_border,
            split_touching=self.split_touching, ignore_scale_bar=self.ignore_scale_bar,
            skip_drawn=self.skip_drawn, scope=self.scope,
            bank_path=self.bank_path), owner=self)

    def _make_controls(self, defaults: AutosegParams) -> None:
        from napari.layers import Image

        self.image_choice = LayerChooser(self.viewer, Image)
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.method.setCurrentText(defaults.method)
        self.polarity = QComboBox()
        self.polarity.addItems(POLARITIES)
        self.polarity.setCurrentText(defaults.polarity)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(-1e9, 1e9)
        self.threshold.setDecimals(3)
        self.threshold.setValue(defaults.threshold if defaults.threshold is not None else MANUAL_THRESHOLD_START)
        self.threshold.setToolTip("Intensity threshold in the image's units (method 'manual' or 'combined')")
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0, 50)
        self.sigma.setSingleStep(0.5)
        self.sigma.setValue(defaults.sigma)
        self.min_area = QSpinBox()
        self.min_area.setRange(0, 10_000_000)
        self.min_area.setValue(defaults.min_area)
        self.fill_holes = QCheckBox("fill holes")
        self.fill_holes.setChecked(defaults.fill_holes)
        self.clear_border = QCheckBox("clear border")
        self.clear_border.setChecked(defaults.clear_border)
        self.split_touching = QCheckBox("split touching")
        self.split_touching.setChecked(defaults.split_touching)
        self.ignore_scale_bar = QCheckBox("ignore scale bar")
        self.ignore_scale_bar.setChecked(defaults.ignore_box == "auto")
        self.skip_drawn = QCheckBox("leave out drawn bars and lettering")
        self.skip_drawn.setChecked(defaults.drop_overlays)
        self.skip_drawn.setToolTip("scale bars, boxes and lines of text drawn on the image are no objects "
                                   "(the Segment dock leaves them out too)")
        self.scope = QComboBox()
        self.scope.addItems(["all planes", "current plane"])
        self.live_preview = QCheckBox("live preview (current plane)")
        self.run_button = QPushButton("Auto-segment")
        self.cancel_button = QPushButton("Cancel")
        self.progress = ActivityProgressBar("Auto-segment")
        self.bank_path = PathPicker("dir", "Object bank folder")
        self.add_button = QPushButton("Add objects to bank")
        self.status = status_label()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("image", self.image_choice)
        form.addRow("method", self.method)
        form.addRow("polarity", self.polarity)
        form.addRow("threshold", self.threshold)
        form.addRow("smoothing σ", self.sigma)
        form.addRow("min area (px)", self.min_area)
        form.addRow(self.fill_holes, self.clear_border)
        form.addRow(self.split_touching, self.ignore_scale_bar)
        form.addRow(self.skip_drawn)
        form.addRow("stacks", self.scope)
        form.addRow(self.live_preview)
        stack(self, form, row(self.run_button, self.cancel_button), self.progress,
              "bank folder", self.bank_path, self.add_button, self.status)

    # ------------------------------------------------------------------ parameters
    def _update_threshold_enabled(self, method: str) -> None:
        self.threshold.setEnabled(method in ("manual", "combined"))

    def params(self) -> dict:
        """The autosegment keyword arguments the controls describe."""
        method = self.method.currentText()
        return dict(
            method=method,
            polarity=self.polarity.currentText(),
            threshold=self.threshold.value() if method in ("manual", "combined") else None,
            sigma=self.sigma.value(),
            min_area=self.min_area.value(),
            fill_holes=self.fill_holes.isChecked(),
            clear_border=self.clear_border.isChecked(),
            split_touching=self.split_touching.isChecked(),
            ignore_box="auto" if self.ignore_scale_bar.isChecked() else None,
            drop_overlays=self.skip_drawn.isChecked(),
        )

    def _image(self):
        layer = self.image_choice.layer()
        if layer is None:
            raise ValueError("no Image layer chosen: open an image (File > Open) or load the sample data")
        return layer

    # ------------------------------------------------------------------ full run
    def run(self) -> None:
        """Segment the chosen planes of the image in a worker; results go to ``<image> autoseg``."""
        if self.busy:
            return
        image = self._image()
        params = self.params()
        check_plane_size(image, "auto-segment", "`synthseg autoseg IMAGE --bank BANK --labels-out DIR`")
        scope = "current" if self.scope.currentText() == "current plane" else "all"
        planes = planes_of(image, scope, self.viewer)
        grays = [(plane, plane_gray(image, plane)) for plane in planes] if len(planes) == 1 else None
        shape = spatial_shape(image)

        def segment():
            from napari_synthseg.autoseg import autosegment

            results = []
            for i, plane in enumerate(planes):
                gray = grays[0][1] if grays else plane_gray(image, plane)
                results.append((plane, autosegment(gray, **params)))
                yield i + 1
            return results

        self._start(quiet_worker(segment), total=len(planes), on_abort=self._cancelled,
                    on_result=lambda results: self._show_result(image, shape, results, params))

    def _show_result(self, image, shape, results, params: dict) -> None:
        if image not in self.viewer.layers:
            return
        name = autoseg_layer_name(image.name)
        layer, n_objects = merge_plane_results(self.viewer, name, image, shape, results)
        layer.metadata[AUTOSEG_METADATA] = dict(params)  # the Train dock compares the method with its recipe's
        self.status.setText(f"{n_objects} objects in {len(results)} plane(s) → layer '{name}'")

    # ------------------------------------------------------------------ preview
    def _schedule_preview(self, *args) -> None:
        if self.live_preview.isChecked():
            self._preview_timer.start()

    def preview(self) -> None:
        """Segment only the current plane with the current parameters (latest request wins)."""
        image = self.image_choice.layer()
        if image is None or self.busy:
            return
        if self._preview_worker is not None:
            self._preview_pending = True
            return
        plane = current_plane(self.viewer, image)
        gray = plane_gray(image, plane)
        params = self.params()
        shape = spatial_shape(image)

        def segment_plane():
            from napari_synthseg.autoseg import autosegment

            return autosegment(gray, **params)

        worker = quiet_worker(segment_plane)
        self._preview_worker = worker
        worker.returned.connect(safe_slot(lambda labels: self._show_preview(image, shape, plane, labels, params)))
        worker.errored.connect(lambda exc: notify_error(f"auto-segment preview failed: {describe_error(exc)}"))
        worker.finished.connect(self._preview_done)
        worker.start()

    def _show_preview(self, image, shape, plane, labels, params: dict) -> None:
        if image not in self.viewer.layers:
            return
        name = autoseg_layer_name(image.name)
        existing = find_layer(self.viewer, name)
        if plane:
            if existing is not None and tuple(existing.data.shape) == shape:
                data = np.asarray(full_resolution(existing)).astype(np.uint32, copy=True)
            else:
                data = np.zeros(shape, dtype=np.uint32)
            data[plane] = labels
        else:
            data = labels
        layer = show_labels(self.viewer, name, data, image)
        layer.metadata[AUTOSEG_METADATA] = dict(params)
        n_objects = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
        self.status.setText(f"preview: {n_objects} objects on this plane")

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self._preview_timer.start()

    # ------------------------------------------------------------------ bank
    def add_to_bank(self) -> None:
        """Crop every object of ``<image> autoseg`` with its image into the chosen bank folder."""
        if self.busy:
            return
        image = self._image()
        labels_layer = find_layer(self.viewer, autoseg_layer_name(image.name))
        if labels_layer is None:
            raise ValueError(f"no layer '{autoseg_layer_name(image.name)}': run Auto-segment first")
        if tuple(labels_layer.data.shape) != spatial_shape(image):
            raise ValueError(f"layer '{labels_layer.name}' does not have the shape of '{image.name}'; "
                             "run Auto-segment again")
        bank_dir = self.bank_path.path()
        if bank_dir is None:
            raise ValueError("choose a bank folder first (an empty or existing bank folder)")
        planes = planes_of(image, "all", self.viewer)
        source = source_name(image)

        def add():
            from napari_synthseg.bank import ObjectBank

            bank = ObjectBank(bank_dir)
            added = 0
            for i, plane in enumerate(planes):
                labels = plane_labels(labels_layer, plane)
                if labels.any():
                    added += bank.add_from_labels(plane_gray(image, plane), labels, source=source,
                                                  plane=list(plane), method="autoseg")
                yield i + 1
            return added, len(bank), list(bank.problems)

        def report(result):
            added, total, problems = result
            self.status.setText(f"added {added} new objects; bank {bank_dir} holds {total}")
            notify_info(f"added {added} objects to the bank ({total} in all)")
            if problems:
                notify_error("bank problems: " + "; ".join(problems[:3]))

        self._start(quiet_worker(add), total=len(planes), on_result=report, on_abort=self._cancelled)

    def _cancelled(self) -> None:
        self.status.setText("cancelled; nothing was changed")
