"""Each dock starts at the core's defaults: a default defined in the core cannot drift from the dock's."""

from __future__ import annotations

import inspect

from napari_synthseg import model
from napari_synthseg._napari.autoseg_widget import AutosegWidget
from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.synth_widget import SynthWidget
from napari_synthseg._napari.train_widget import TrainWidget
from napari_synthseg.autoseg import AutosegParams
from napari_synthseg.instances import DEFAULT_MIN_AREA, probabilities_to_instances
from napari_synthseg.synthesis import synthesize_scene


def test_the_autoseg_dock_starts_at_the_core_defaults(make_napari_viewer):
    widget = AutosegWidget(make_napari_viewer())
    shown = widget.params()
    core = AutosegParams().as_dict()
    assert shown == {key: core[key] for key in shown}
    # every setting the dock offers is one of the core's, and the box leaves none of its keys out
    assert set(shown) == {"method", "polarity", "threshold", "sigma", "min_area", "fill_holes", "clear_border",
                          "split_touching", "ignore_box"}
    assert shown["polarity"] == "auto"  # the core decides bright or dark per image unless told


def test_the_segment_dock_starts_at_the_model_and_instance_defaults(make_napari_viewer):
    widget = SegmentWidget(make_napari_viewer())
    instance_defaults = inspect.signature(probabilities_to_instances).parameters
    assert widget.prediction_kwargs() == dict(
        threshold=instance_defaults["threshold"].default, min_area=DEFAULT_MIN_AREA,
        min_confidence=model.DEFAULT_MIN_CONFIDENCE, fill_holes=instance_defaults["fill_holes"].default,
        tile=model.DEFAULT_TILE, augment=False, ignore_box="auto")


def test_the_synth_dock_starts_at_the_scene_defaults(make_napari_viewer):
    widget = SynthWidget(make_napari_viewer())
    low, high = inspect.signature(synthesize_scene).parameters["n_objects"].default
    assert (widget.min_objects.value(), widget.max_objects.value()) == (low, high)


def test_the_train_dock_starts_at_the_network_defaults(make_napari_viewer):
    widget = TrainWidget(make_napari_viewer())
    assert (widget.base_filters.value(), widget.depth.value()) == (model.DEFAULT_BASE_FILTERS, model.DEFAULT_DEPTH)
