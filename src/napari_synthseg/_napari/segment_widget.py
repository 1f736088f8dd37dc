"""Segment dock: Image layer + model file -> ``<image> segmentation`` at full resolution."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QPushButton, QSpinBox

from napari_synthseg.model import PredictionParams

from ._checks import check_model_backend, model_sidecar
from ._common import connect_click, describe_error, notify_error
from ._form import PathPicker, row, stack, status_label
from ._jobs import describe_device, job_worker
from ._layer_choice import LayerChooser
from ._planes import (
    PROBABILITY_SUFFIX,
    check_plane_size,
    find_layer,
    full_resolution,
    is_probability_layer,
    merge_plane_results,
    plane_gray,
    planes_of,
    spatial_shape,
    spatial_transform,
)
from ._progress import ActivityProgressBar
from ._settings import RememberedSettings
from ._worker_dock import WorkerDock

if TYPE_CHECKING:
    import napari


#: Range of the progress bar (thousandths of the images' tiles).
PROGRESS_STEPS = 1000


def segmentation_layer_name(image_name: str) -> str:
    return f"{image_name} segmentation"


#: Key of the probability layer's metadata that holds the model's inner distance, plane by plane.
DISTANCE_METADATA = "synthseg_inner_distance"


def probability_layer_name(image_name: str) -> str:
    """The (hidden) Image layer of the model's foreground probability; Curate's Add mode grows objects in it."""
    return f"{image_name}{PROBABILITY_SUFFIX}"


class SegmentWidget(WorkerDock):
    """Run a trained model on an Image layer (current plane or every plane) in a child process.

    The boxes start at ``predict``'s defaults (``napari_synthseg.model.PredictionParams``), the one
    place they are defined.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self._results: list = []
        self._foregrounds: list = []
        self._distances: list = []
        self._unconfident: list = []
        self._zooms: list = []
        self._job_context: dict = {}
        self._make_controls()
        self._lay_out()
        self._bind_worker_controls(self.progress, (self.run_button,), self.cancel_button,
                                   stop_event=threading.Event())
        connect_click(self.run_button, self.run)
        connect_click(self.cancel_button, self.cancel)
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("segment", dict(
            model_path=self.model_path, scope=self.scope, threshold=self.threshold, min_area=self.min_area,
            min_confidence=self.min_confidence, fill_holes=self.fill_holes, augment=self.augment,
            skip_scale_bar=self.skip_scale_bar, skip_drawn=self.skip_drawn, tile=self.tile,
            max_shrink=self.max_shrink), owner=self)

    def _make_controls(self) -> None:
        from napari.layers import Image

        defaults = PredictionParams()  # the boxes start at predict's defaults, defined there once
        self.image_choice = LayerChooser(self.viewer, Image, skip=is_probability_layer)
        self.model_path = PathPicker("open", "Model file", "Keras model (*.keras)")
        self.scope = QComboBox()
        self.scope.addItems(["all planes", "current plane"])
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(defaults.threshold)
        self.min_area = QSpinBox()
        self.min_area.setRange(0, 10_000_000)
        self.min_area.setValue(defaults.min_area)
        self.min_confidence = QDoubleSpinBox()
        self.min_confidence.setRange(0.0, 1.0)
        self.min_confidence.setSingleStep(0.05)
        self.min_confidence.setValue(defaults.min_confidence)
        self.min_confidence.setToolTip("Drop objects whose mean foreground probability is lower (0 keeps all)")
        self.fill_holes = QCheckBox("fill holes")
        self.fill_holes.setChecked(defaults.fill_holes)
        self.augment = QCheckBox("average flips (8x slower)")
        self.augment.setChecked(defaults.augment)
        self.augment.setToolTip("Test-time augmentation: average the network over the 8 flips and "
                                "transposes of the image; fewer specks, smoother outlines")
        self.skip_scale_bar = QCheckBox("leave out the scale bar")
        self.skip_scale_bar.setChecked(defaults.ignore_box == "auto")
        self.skip_scale_bar.setToolTip("No objects inside a scale-bar / info box found in a corner "
                                       "(as the Auto-segment dock does)")
        self.skip_drawn = QCheckBox("leave out drawn bars, lettering and the support")
        self.skip_drawn.setChecked(defaults.drop_overlays)
        self.skip_drawn.setToolTip("No objects that are drawn on the image: noise-free and shaped like a bar, "
                                   "a box or a letter (scale bars, labels, arrows); nor the support: a region over "
                                   "three tenths of the image with no gray step across its outline (a film, a matrix); "
                                   "the particles lying on it are looked for again")
        self.max_shrink = QSpinBox()
        self.max_shrink.setRange(1, 16)
        self.max_shrink.setSpecialValueText("never shrink")  # shown at 1
        self.max_shrink.setSuffix("×")
        self.max_shrink.setValue(int(defaults.max_shrink))
        self.max_shrink.setToolTip("Each image is also segmented shrunk by halves, down to this many times smaller, "
                                   "and the view the network is most confident about is kept (it sees about a "
                                   "hundred pixels around each pixel, too few inside a large particle); the labels "
                                   "come back at full size, and particles wider than the network sees are filled, "
                                   "or taken whole, from the smaller views")
        self.tile = QSpinBox()
        self.tile.setRange(64, 4096)
        self.tile.setSingleStep(64)
        self.tile.setValue(defaults.tile)
        self.run_button = QPushButton("Segment")
        self.cancel_button = QPushButton("Cancel")
        self.progress = ActivityProgressBar("Segment")
        self.status = status_label()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("image", self.image_choice)
        form.addRow("model file", self.model_path)
        form.addRow("stacks", self.scope)
        form.addRow("probability threshold", self.threshold)
        form.addRow("min area (px)", self.min_area)
        form.addRow("min confidence", self.min_confidence)
        form.addRow("tile (px)", self.tile)
        form.addRow("shrink at most", self.max_shrink)
        form.addRow(self.fill_holes)
        form.addRow(self.augment)
        form.addRow(self.skip_scale_bar)
        form.addRow(self.skip_drawn)
        stack(self, form, row(self.run_button, self.cancel_button), self.progress, self.status)

    def prediction_kwargs(self) -> dict:
        """The ``predict`` keyword arguments the controls describe."""
        return dict(threshold=self.threshold.value(), min_area=self.min_area.value(),
                    min_confidence=self.min_confidence.value(), fill_holes=self.fill_holes.isChecked(),
                    tile=self.tile.value(), augment=self.augment.isChecked(),
                    ignore_box="auto" if self.skip_scale_bar.isChecked() else None,
                    drop_overlays=self.skip_drawn.isChecked(),
                    max_shrink=float(self.max_shrink.value()))

    def run(self) -> None:
        """Segment the chosen planes in a child process; the result becomes a Labels layer.

        The backend, the image and the model file are checked first; a problem raises
        ``ValueError`` and starts nothing.
        """
        if self.busy:
            return
        check_model_backend()
        image = self.image_choice.layer()
        if image is None:
            raise ValueError("no Image layer chosen: open an image or load the sample data")
        model = self.model_path.path()
        if model is None:
            raise ValueError("choose a model file (.keras); train one in the Train dock")
        model_sidecar(model)
        check_plane_size(image, "segment", "`synthseg predict IMAGE --model MODEL --out DIR`")
        scope = "current" if self.scope.currentText() == "current plane" else "all"
        planes = planes_of(image, scope, self.viewer)
        grays = [plane_gray(image, plane) for plane in planes]
        kwargs = self.prediction_kwargs()
        self._results = [None] * len(planes)
        self._foregrounds = [None] * len(planes)
        self._distances = [None] * len(planes)
        self._unconfident = [0] * len(planes)
        self._zooms = [[] for _ in planes]
        self._job_context = {"image": image, "planes": planes, "shape": spatial_shape(image), "error": None,
                             "min_confidence": kwargs["min_confidence"]}
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        worker = job_worker(lambda job: job.start_prediction(str(model), grays, details=True, **kwargs),
                            self._stop_requested, stop_timeout=10)
        self.status.setText(f"segmenting {len(planes)} plane(s)…")
        self._start(worker, on_yield=self._on_event, failure="segmentation failed: ")

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "device":
            n_planes = len(self._job_context.get("planes", []))
            self.status.setText(describe_device(event, f"segmenting {n_planes} plane(s)") + "…")
        elif kind == "progress":
            n_images = max(int(event.get("n_images") or 1), 1)
            n_tiles = max(int(event.get("n_tiles") or 1), 1)
            done = (int(event.get("image") or 0) + int(event.get("tile") or 0) / n_tiles) / n_images
            self.progress.setValue(int(done * PROGRESS_STEPS))
        elif kind == "result":
            index = int(event["index"])
            self._results[index] = event.get("labels")
            self._foregrounds[index] = event.get("foreground")
            self._distances[index] = event.get("distance")
            self._unconfident[index] = int(event.get("n_unconfident") or 0)
            self._zooms[index] = [float(zoom) for zoom in event.get("zooms") or ()]
        elif kind == "error":
            self._job_context["error"] = event.get("message")
            notify_error(f"segmentation failed: {event.get('message')}")

    def _after_worker(self) -> None:
        context = self._job_context
        image = context.get("image")
        planes = context.get("planes", [])
        done = [(plane, labels) for plane, labels in zip(planes, self._results) if labels is not None]
        if self._stop_requested.is_set() or context.get("error") or len(done) < len(self._results):
            self.status.setText("cancelled; no layer was changed" if self._stop_requested.is_set()
                                else "segmentation did not finish; no layer was changed")
            return
        if image is None or image not in self.viewer.layers:
            self.status.setText("the image layer was removed while segmenting; result dropped")
            return
        self.progress.setValue(PROGRESS_STEPS)
        name = segmentation_layer_name(image.name)
        try:
            _, n_objects = merge_plane_results(self.viewer, name, image, context["shape"], done)
            self._show_foreground(image, context)
        except Exception as exc:
            notify_error(f"could not show the segmentation: {describe_error(exc)}")
            return
        self.status.setText(f"{n_objects} objects in {len(done)} plane(s) → layer '{name}'"
                            + view_hint([zoom for zooms in self._zooms for zoom in zooms])
                            + unconfident_hint(sum(self._unconfident), context.get("min_confidence")))

    def _show_foreground(self, image, context: dict) -> None:
        """Put the model's foreground probability into a hidden Image layer, its inner distance into the
        layer's metadata (Curate's Add mode grows and carves objects with them)."""
        import numpy as np

        planes = [(plane, fg, dist) for plane, fg, dist in zip(context["planes"], self._foregrounds, self._distances)
                  if fg is not None]
        if not planes:
            return
        name = probability_layer_name(image.name)
        existing = find_layer(self.viewer, name)
        shape = tuple(context["shape"])
        kept = existing is not None and tuple(existing.data.shape) == shape
        data = np.asarray(full_resolution(existing), dtype=np.float32).copy() if kept else np.zeros(shape, np.float32)
        old_distance = existing.metadata.get(DISTANCE_METADATA) if kept else None
        # the planes not redone stay
        distance = np.array(old_distance, np.float32) if old_distance is not None else np.zeros(shape, np.float32)
        for plane, foreground, inner in planes:
            data[plane] = foreground
            distance[plane] = inner if inner is not None else 0.0
        active = self.viewer.layers.selection.active
        if kept:
            existing.data = data
            existing.metadata[DISTANCE_METADATA] = distance
        else:
            if existing is not None:
                self.viewer.layers.remove(existing)
            self.viewer.add_image(data, name=name, visible=False, colormap="magma", contrast_limits=(0.0, 1.0),
                                  metadata={DISTANCE_METADATA: distance}, **spatial_transform(image))
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active


def view_hint(zooms: list[float]) -> str:
    """The status line's note on the planes segmented shrunk ('' when every plane kept its full size)."""
    shrunk = [zoom for zoom in zooms if zoom != 1.0]
    if not shrunk:
        return ""
    sizes = " or ".join(f"{zoom:g}" for zoom in sorted(set(shrunk), reverse=True))
    return (f"; {len(shrunk)} of {len(zooms)} plane(s) segmented shrunk to {sizes} of their size, where the "
            "network was surer ('shrink at most' 1 never shrinks)")


def unconfident_hint(n_left_out: int, min_confidence) -> str:
    """The status line's note on the objects the minimum confidence left out ('' when none)."""
    if n_left_out <= 0:
        return ""
    objects = "object" if n_left_out == 1 else "objects"
    return (f"; min confidence {float(min_confidence or 0):.2f} left out {n_left_out} more {objects} "
            "(a young model is unsure of most): lower 'min confidence' (0 keeps all) and segment again "
            "to keep them")
