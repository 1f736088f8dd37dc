"""Dock settings are remembered between sessions (QSettings), in a folder of each test's own."""

from __future__ import annotations

from pathlib import Path

from napari_synthseg._napari._settings import dock_settings
from napari_synthseg._napari.autoseg_widget import AutosegWidget
from napari_synthseg._napari.segment_widget import SegmentWidget
from napari_synthseg._napari.train_widget import TrainWidget


def restore_action(widget):
    [action] = [a for a in widget.actions() if a.text() == "Restore default settings"]
    return action


def test_settings_come_back_in_the_next_session(make_napari_viewer, tmp_path, dock_settings_folder):
    assert Path(dock_settings().fileName()).is_relative_to(dock_settings_folder)  # never the user's file
    train = TrainWidget(make_napari_viewer())
    defaults = (train.budget_kind.currentText(), train.budget.value(), train.base_filters.value())
    train.set_budget("minutes", 7)
    train.base_filters.setValue(24)
    train.bank_path.set_path(tmp_path / "bank")
    train.replace.setChecked(True)  # never remembered: each session decides whether to replace a model
    train.close()

    again = TrainWidget(make_napari_viewer())  # a new session: a new viewer and dock
    assert (again.budget_kind.currentText(), again.budget.value()) == ("minutes", 7)
    assert again.base_filters.value() == 24 and again.bank_path.path() == tmp_path / "bank"
    assert not again.replace.isChecked()

    restore_action(again).trigger()
    assert (again.budget_kind.currentText(), again.budget.value(), again.base_filters.value()) == defaults
    assert again.bank_path.path() is None
    fresh = TrainWidget(make_napari_viewer())
    assert (fresh.budget_kind.currentText(), fresh.budget.value(), fresh.base_filters.value()) == defaults


def test_check_boxes_combos_and_paths_of_other_docks(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    autoseg = AutosegWidget(viewer)
    autoseg.method.setCurrentIndex(autoseg.method.count() - 1)
    autoseg.fill_holes.setChecked(False)
    autoseg.sigma.setValue(2.5)
    segment = SegmentWidget(viewer)
    segment.model_path.set_path(tmp_path / "model.keras")
    segment.min_confidence.setValue(0.35)

    viewer2 = make_napari_viewer()
    autoseg2, segment2 = AutosegWidget(viewer2), SegmentWidget(viewer2)
    assert autoseg2.method.currentIndex() == autoseg2.method.count() - 1
    assert not autoseg2.fill_holes.isChecked() and autoseg2.sigma.value() == 2.5
    assert segment2.model_path.path() == tmp_path / "model.keras" and segment2.min_confidence.value() == 0.35


def test_a_bad_saved_value_leaves_the_default(make_napari_viewer):
    settings = dock_settings()
    settings.setValue("segment/tile", "not a number")
    settings.setValue("segment/scope", "a scope no version offers")
    settings.sync()
    default = SegmentWidget(make_napari_viewer())
    assert default.scope.currentText() == "all planes"
    assert default.tile.value() == default.settings.defaults["tile"][1]
