"""Each dock starts at the parameter objects' defaults: a default defined in the core cannot drift from the dock's."""

from __future__ import annotations

import inspect

from napari_synthseg._napari.autoseg_widget import AutosegWidget
from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.synth_widget import SynthWidget
from napari_synthseg._napari.train_widget import TrainWidget
from napari_synthseg.autoseg import AutosegParams
from napari_synthseg.instances import probabilities_to_instances
from napari_synthseg.model import PredictionParams, TrainingParams
from napari_synthseg.model.params import MAX_DEPTH
from napari_synthseg.scene_params import SceneParams


def test_the_autoseg_dock_starts_at_the_core_defaults(make_napari_viewer):
    widget = AutosegWidget(make_napari_viewer())
    shown = widget.params()
    core = AutosegParams().as_dict()
    assert shown == {key: core[key] for key in shown}
    # every setting the dock offers is one of the core's, and the box leaves none of its keys out
    assert set(shown) == {"method", "polarity", "threshold", "sigma", "min_area", "fill_holes", "clear_border",
                          "split_touching", "ignore_box", "drop_overlays"}
    assert shown["polarity"] == "auto"  # the core decides bright or dark per image unless told


def test_the_segment_dock_starts_at_the_prediction_params(make_napari_viewer):
    widget = SegmentWidget(make_napari_viewer())
    defaults = PredictionParams()
    assert widget.prediction_kwargs() == {name: getattr(defaults, name) for name in (
        "threshold", "min_area", "min_confidence", "fill_holes", "tile", "augment", "ignore_box", "drop_overlays",
        "max_shrink")}
    widget.max_shrink.setValue(1)  # "never shrink"
    assert widget.prediction_kwargs()["max_shrink"] == 1.0
    # the instance step's own threshold is the one PredictionParams reads
    assert defaults.threshold == inspect.signature(probabilities_to_instances).parameters["threshold"].default


def test_the_synth_dock_starts_at_the_scene_params(make_napari_viewer):
    widget = SynthWidget(make_napari_viewer())
    defaults = SceneParams()
    assert (widget.height.value(), widget.width.value()) == defaults.shape
    assert (widget.min_objects.value(), widget.max_objects.value()) == defaults.n_objects
    assert widget.seed.value() == TrainingParams().seed


def test_the_train_dock_starts_at_the_training_params(make_napari_viewer):
    widget = TrainWidget(make_napari_viewer())
    defaults = TrainingParams()
    shown = {"base_filters": widget.base_filters, "depth": widget.depth, "patch": widget.patch,
             "batch_size": widget.batch_size, "validation_scenes": widget.validation_scenes, "seed": widget.seed}
    assert {name: box.value() for name, box in shown.items()} == {name: getattr(defaults, name) for name in shown}
    assert widget.depth.maximum() == MAX_DEPTH
    assert widget.real_clumps.currentText() == defaults.real_clumps
    assert f"({defaults.steps_per_epoch} steps each" in widget.budget_kind.toolTip()
