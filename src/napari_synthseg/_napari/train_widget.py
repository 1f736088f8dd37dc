"""Train dock: a U-Net trained on synthetic scenes in a child process, driven by a thread worker.

The recipe (docs/recipes.md) is chosen in the dock or decided from the ticked images, as
``synthseg run`` decides it: the mixed recipe trains on anchored inputs, with a bank and
backgrounds cut from the ticked images and crops of those images labelled by their Labels layers.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
)

from ..model import REAL_CLUMPS, TrainingParams
from ..model.params import MAX_DEPTH
from ..recipe import RECIPE_CHOICES, RecipeDecision, choose_recipe
from ..recipe import recipe as named_recipe
from ._checks import (
    check_bank_has_objects,
    check_labels_have_objects,
    check_model_backend,
    check_real_pairs,
    check_writable_file,
    model_sidecar,
)
from ._common import connect_click, describe_error, notify_warning
from ._form import PathPicker, row, stack, status_label
from ._jobs import job_worker
from ._labels_table import ImageLabelsTable
from ._layer_choice import LayerChecklist
from ._planes import current_plane, gray_backgrounds, plane_gray, plane_labels, source_name, spatial_shape
from ._plots import LinePlot
from ._progress import ActivityProgressBar
from ._settings import RememberedSettings
from ._train_progress import DEVICE_UNKNOWN, TrainingProgress
from ._worker_dock import WorkerDock
from .autoseg_widget import AUTOSEG_METADATA

if TYPE_CHECKING:
    import napari


#: The training budgets the dock offers (``train_model`` takes exactly one) and their first values.
BUDGET_DEFAULTS = {"steps": 500, "minutes": 10.0, "epochs": 10}
#: (lowest, highest, step, decimals) of the budget box for each kind.
BUDGET_RANGES = {"steps": (1, 10_000_000, 50, 0), "minutes": (0.1, 10_000, 1, 1), "epochs": (1, 100_000, 1, 0)}
#: Smallest background plane the synthetic scenes can learn from (``BackgroundSource``).
MIN_BACKGROUND_SIDE = 4
#: The recipe box's entries (``recipe.RECIPE_CHOICES``) as the user reads them.
RECIPE_LABELS = {"auto": "auto (decided from the images)", "synthetic": "synthetic", "mixed": "mixed"}
#: How the recipe line names the control that overrides the decision.
RECIPE_OVERRIDE = "the recipe box"
#: Pause after the last change of the recipe or the images before the recipe line is redone.
RECIPE_LINE_DELAY_MS = 300



def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class TrainWidget(TrainingProgress, WorkerDock):
    """Train a segmentation model with a recipe (synthetic: an object bank and background images; mixed:
    anchored images, their labels and crops of them, as ``synthseg run`` does); Stop keeps the best."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.result: dict | None = None
        self.last_progress: dict | None = None
        self.n_progress_events = 0
        self.phase: str | None = None  # the running job's phase (one of PHASES), None when idle
        self._pid = None
        self._budget: dict = {}
        self._budget_start_s = 0.0  # elapsed_s of the run's first progress event
        self.decision: RecipeDecision | None = None
        self._recipe_folder: str | None = None  # the mixed recipe's bank, removed after training
        self._make_inputs()
        self._make_outputs()
        advanced = self._lay_out()
        inputs = [self.recipe, self.backgrounds, self.labels_table, self.bank_path, self.budget_kind,
                  self.budget, self.model_path, self.replace, advanced]
        self._bind_worker_controls(self.progress, [self.start_button, self.retrain_button, *inputs],
                                   self.stop_button, stop_event=threading.Event())
        connect_click(self.start_button, self.start)
        connect_click(self.retrain_button, self.retrain)
        connect_click(self.stop_button, self.stop)
        self._recipe_timer = QTimer(self)
        self._recipe_timer.setSingleShot(True)
        self._recipe_timer.setInterval(RECIPE_LINE_DELAY_MS)
        self._recipe_timer.timeout.connect(self._refresh_recipe_line)
        self.recipe.currentIndexChanged.connect(lambda *_: self._recipe_timer.start())
        self.backgrounds.checked_changed.connect(self._recipe_timer.start)
        self._refresh_recipe_line()
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("train", dict(
            recipe=self.recipe, bank_path=self.bank_path, budget_kind=self.budget_kind, budget=self.budget,
            model_path=self.model_path, base_filters=self.base_filters, depth=self.depth, patch=self.patch,
            batch_size=self.batch_size, validation_scenes=self.validation_scenes, seed=self.seed,
            real_clumps=self.real_clumps), owner=self)

    def _make_inputs(self) -> None:
        from napari.layers import Image

        defaults = TrainingParams()  # the boxes start at the training's defaults, defined there once
        self.recipe = QComboBox()
        for name in RECIPE_CHOICES:
            self.recipe.addItem(RECIPE_LABELS[name], name)
        self.recipe.setToolTip("synthetic: synthetic scenes from the bank folder, backgrounds from the images. "
                               "mixed: anchored inputs, objects and backgrounds cut from the images, half of each "
                               "batch real crops labelled by their labels (folders mixing bright- and dark-field "
                               "images). auto: decided from the images, as synthseg run does")
        self.recipe_line = QLabel("")
        self.recipe_line.setWordWrap(True)
        self.bank_path = PathPicker("dir", "Object bank folder")
        self.backgrounds = LayerChecklist(self.viewer, Image)
        self.backgrounds.setToolTip("Real images (current plane): the synthetic scenes imitate their background; "
                                    "the recipe is decided from them; the mixed recipe also trains on them")
        self.labels_table = ImageLabelsTable(self.viewer, self.backgrounds)
        self.labels_table.setToolTip("The labels of each ticked image (the mixed recipe's real crops): "
                                     "'<image> autoseg' from the Auto-segment dock unless you choose others")
        self.budget_kind = QComboBox()
        self.budget_kind.addItems(list(BUDGET_DEFAULTS))
        self.budget_kind.setToolTip(f"What ends training: a number of steps, of epochs ({defaults.steps_per_epoch} "
                                    "steps each, validated after each), or minutes of wall time. Stop ends it "
                                    "early and keeps the best model")
        self.budget = QDoubleSpinBox()
        self._budget_values = dict(BUDGET_DEFAULTS)
        self._show_budget(self.budget_kind.currentText())
        self.budget_kind.currentTextChanged.connect(self._show_budget)
        self.budget.valueChanged.connect(self._remember_budget)
        self.model_path = PathPicker("save", "Model file", "Keras model (*.keras)")
        self.base_filters = _spin(2, 128, defaults.base_filters)
        self.depth = _spin(1, MAX_DEPTH, defaults.depth)
        self.patch = _spin(32, 2048, defaults.patch, 32)
        self.batch_size = _spin(1, 64, defaults.batch_size)
        self.validation_scenes = _spin(1, 1000, defaults.validation_scenes)
        self.seed = _spin(0, 2**31 - 1, defaults.seed)
        self.real_clumps = QComboBox()
        self.real_clumps.addItems(list(REAL_CLUMPS))
        self.real_clumps.setCurrentText(defaults.real_clumps)
        self.real_clumps.setToolTip("What a real crop teaches inside an object whose shape says several particles: "
                                    "outline (only its outline; the scenes teach where touching particles meet) or "
                                    "labels (one particle, as labelled). Mixed recipe only")
        self.resume = QCheckBox("continue from the model file")
        self.replace = QCheckBox("replace an existing model file")
        self.replace.setToolTip("Without it an existing model file is never overwritten: choose a new name")

    def _make_outputs(self) -> None:
        self.start_button = QPushButton("Train")
        self.retrain_button = QPushButton("Retrain on curations")
        self.retrain_button.setToolTip("A curation round: continue the model file's model on the bank enriched "
                                       "with the curated objects and on the curated images (only their known "
                                       "pixels count); writes <model>_round2.keras, never over a model")
        self.stop_button = QPushButton("Stop (keep best)")
        self.progress = ActivityProgressBar("Train")
        self.loss_label = QLabel("loss –")
        self.iou_label = QLabel("val IoU –")
        self.device_label = QLabel(DEVICE_UNKNOWN)
        self.device_label.setToolTip("where the model process computes (it tells once TensorFlow has loaded)")
        self.plot = LinePlot("loss")
        self.status = status_label()

    def _lay_out(self) -> QGroupBox:
        """Put the widgets in place; returns the group of advanced settings."""
        form = QFormLayout()
        form.addRow("recipe", self.recipe)
        form.addRow("images", self.backgrounds)
        form.addRow("labels", self.labels_table)
        form.addRow(self.recipe_line)
        form.addRow("bank folder", self.bank_path)
        form.addRow("budget", row(self.budget_kind, self.budget))
        form.addRow("model file", self.model_path)
        form.addRow(self.replace)
        advanced = QGroupBox("advanced")
        advanced_form = QFormLayout(advanced)
        advanced_form.addRow("base filters", self.base_filters)
        advanced_form.addRow("depth", self.depth)
        advanced_form.addRow("patch (px)", self.patch)
        advanced_form.addRow("batch size", self.batch_size)
        advanced_form.addRow("validation scenes", self.validation_scenes)
        advanced_form.addRow("seed", self.seed)
        advanced_form.addRow("clumps in real crops", self.real_clumps)
        advanced_form.addRow(self.resume)
        stack(self, form, advanced, row(self.start_button, self.retrain_button, self.stop_button), self.progress,
              row(self.loss_label, self.iou_label), self.device_label, self.plot, self.status)
        return advanced

    # ------------------------------------------------------------------ budget
    def _show_budget(self, kind: str) -> None:
        low, high, step, decimals = BUDGET_RANGES[kind]
        self.budget.blockSignals(True)  # the range change must not overwrite the remembered values
        self.budget.setDecimals(decimals)
        self.budget.setRange(low, high)
        self.budget.setSingleStep(step)
        self.budget.setValue(self._budget_values[kind])
        self.budget.blockSignals(False)

    def _remember_budget(self, value: float) -> None:
        self._budget_values[self.budget_kind.currentText()] = value

    def set_budget(self, kind: str, value: float) -> None:
        """Choose the budget: ``kind`` one of ``BUDGET_DEFAULTS`` ("steps", "minutes", "epochs")."""
        if kind not in BUDGET_DEFAULTS:
            raise ValueError(f"budget kind must be one of {', '.join(BUDGET_DEFAULTS)}, not {kind!r}")
        self.budget_kind.setCurrentText(kind)
        self.budget.setValue(value)

    def budget_kwargs(self) -> dict:
        """The one ``train_model`` budget argument the controls describe, e.g. ``{"steps": 500}``."""
        kind, value = self.budget_kind.currentText(), self.budget.value()
        if not value > 0:
            raise ValueError(f"the training budget must be more than 0 {kind}")
        return {kind: float(value) if kind == "minutes" else int(round(value))}

    # ------------------------------------------------------------------ recipe
    def recipe_name(self) -> str:
        """The recipe chosen in the box: ``"auto"``, ``"synthetic"`` or ``"mixed"``."""
        return self.recipe.currentData()

    def set_recipe(self, name: str) -> None:
        """Choose the recipe: one of ``recipe.RECIPE_CHOICES``."""
        index = self.recipe.findData(name)
        if index < 0:
            raise ValueError(f"recipe must be one of {', '.join(RECIPE_CHOICES)}, not {name!r}")
        self.recipe.setCurrentIndex(index)

    def show_recipe(self, images=None) -> RecipeDecision | None:
        """Decide the recipe (``choose_recipe`` on the ticked images' current planes with "auto") and show its line.

        Returns None when "auto" has no image to decide from (the dock then trains as the
        synthetic recipe from the bank folder, without a recorded decision).
        """
        if images is None:
            images = gray_backgrounds(self.backgrounds.checked_layers(), self.viewer)
        name = self.recipe_name()
        if name != "auto":
            decision = named_recipe(name)
        elif images:
            decision = choose_recipe(images)
        else:
            decision = None
        self.decision = decision
        self.recipe_line.setText(decision.line(override=RECIPE_OVERRIDE) if decision is not None else
                                 "recipe: synthetic (tick images to decide the recipe from them)")
        return decision

    def _refresh_recipe_line(self) -> None:
        if self.busy:
            return
        try:
            self.show_recipe()
        except Exception as exc:  # a timer slot must not raise into Qt; start() decides (and checks) again
            self.recipe_line.setText(f"recipe: not decided ({describe_error(exc)})")

    def real_pairs(self, layers, images) -> tuple[list, list]:
        """The labels of each ticked image (current plane) after the checks; also the Labels layers."""
        labels_layers = [self.labels_table.labels_for(layer) for layer in layers]
        check_real_pairs(self.decision.name if self.decision else "mixed", [
            (layer.name, spatial_shape(layer), None if lab is None else lab.name,
             None if lab is None else tuple(lab.data.shape)) for layer, lab in zip(layers, labels_layers)])
        pairs = []
        for layer, gray, lab in zip(layers, images, labels_layers):
            labels = plane_labels(lab, current_plane(self.viewer, layer))
            check_labels_have_objects(layer.name, lab.name, labels)
            pairs.append((gray, labels))
        return pairs, labels_layers

    def _warn_other_method(self, decision: RecipeDecision, labels_layers) -> None:
        """Warn when the Auto-segment dock made labels with another method than the recipe's."""
        method = decision.autoseg.get("method")
        other = [f"'{lab.name}' ({lab.metadata[AUTOSEG_METADATA].get('method')})" for lab in labels_layers
                 if AUTOSEG_METADATA in lab.metadata and lab.metadata[AUTOSEG_METADATA].get("method") != method]
        if other:
            notify_warning(f"labels {', '.join(other)} were not made with the {decision.name} recipe's method "
                           f"'{method}' (synthseg run uses it); training goes on with them — auto-segment again "
                           f"with method '{method}' to train as synthseg run does")

    # ------------------------------------------------------------------ checks
    def train_kwargs(self, bank_from_images: bool = False) -> dict:
        """The ``train_model`` keyword arguments (without backgrounds) the controls describe.

        Raises ``ValueError`` for every setting ``train_model`` would refuse only after the
        child process has loaded Keras (no bank objects, a budget, the patch size, resuming,
        an existing or unwritable model file). With ``bank_from_images`` (the mixed recipe) the
        bank folder is not used: ``bank`` is None, the dock cuts the bank from the images.
        """
        bank = None if bank_from_images else self.bank_path.path()
        if bank is None and not bank_from_images:
            raise ValueError("choose the object bank folder to train from (fill it with Auto-segment or Curate)")
        if bank is not None:
            check_bank_has_objects(bank)
        model = self.model_path.path()
        if model is None:
            raise ValueError("choose where to save the model (a .keras file)")
        if model.suffix != ".keras":
            model = model.with_suffix(".keras")
            self.model_path.set_path(model)
        check_writable_file(model, "model file")
        depth = self.depth.value()
        if self.resume.isChecked():
            normalization = (self.decision.train if self.decision else {}).get("normalization", "percentile")
            depth = self._resumable_depth(model, depth, normalization)
        elif model.exists() and not self.replace.isChecked():
            raise ValueError(f"model file {model} exists; choose a new name, tick 'replace an existing model "
                             "file', or tick 'continue from the model file' (advanced) to train it further")
        patch = self.patch.value()
        if patch % 2**depth:
            fitting = max(2**depth, patch // 2**depth * 2**depth)
            raise ValueError(f"patch {patch} px is not a multiple of 2**depth = {2**depth} (depth {depth}); "
                             f"use a patch of {fitting} px or a smaller depth")
        return dict(
            bank=None if bank is None else str(bank),
            model_path=str(model),
            **self.budget_kwargs(),
            patch=patch,
            batch_size=self.batch_size.value(),
            validation_scenes=self.validation_scenes.value(),
            base_filters=self.base_filters.value(),
            depth=self.depth.value(),
            seed=self.seed.value(),
            resume=self.resume.isChecked(),
            real_clumps=self.real_clumps.currentText(),
        )

    @staticmethod
    def _resumable_depth(model, depth: int, normalization: str = "percentile") -> int:
        """The depth of the model training continues (from its sidecar), after checking it can continue
        with the recipe's ``normalization``."""
        if not model.exists():
            raise ValueError(f"'continue from the model file' is ticked but there is no model at {model}; "
                             "untick it to train a new model")
        info = model_sidecar(model)
        mode = (info.get("normalization") or {}).get("mode", "percentile")
        if mode != normalization:
            recipe = "mixed" if mode == "anchored" else "synthetic"
            raise ValueError(f"model {model} was trained with normalization {mode!r}, this recipe's is "
                             f"{normalization!r}; choose the {recipe} recipe to continue it, or train a new model")
        return int((info.get("network") or {}).get("depth", depth))

    def start(self, **extra) -> None:
        """Start training in a child process; ``extra`` overrides/extends the train kwargs.

        Every check runs first; a refused setting raises ``ValueError`` and starts nothing.
        """
        if self.busy:
            return
        check_model_backend()
        layers = self.backgrounds.checked_layers()
        backgrounds = gray_backgrounds(layers, self.viewer)
        for layer, gray in zip(layers, backgrounds):
            if min(gray.shape) < MIN_BACKGROUND_SIDE:
                raise ValueError(f"background layer '{layer.name}' is {gray.shape[0]}×{gray.shape[1]} px; "
                                 f"backgrounds need at least {MIN_BACKGROUND_SIDE}×{MIN_BACKGROUND_SIDE}: untick it")
        decision = self.show_recipe(backgrounds)
        from napari_synthseg.pipeline import real_image_params, training_recipe

        recipe_params, real_fraction = training_recipe(None, base=decision.train if decision else None)
        # as synthseg run: anchored inputs need a bank and backgrounds cut from anchored images
        from_images = recipe_params.get("normalization") == "anchored" or real_fraction > 0
        kwargs = self.train_kwargs(bank_from_images=from_images)
        if decision is not None:
            kwargs.update(recipe_params, sidecar_entries={"recipe": decision.to_dict()})
        prepare = None
        if from_images:
            pairs, labels_layers = self.real_pairs(layers, backgrounds)
            self._warn_other_method(decision, labels_layers)
            kwargs.update(real_image_params(pairs, real_fraction))
            prepare = self._recipe_inputs_maker([source_name(layer) for layer in layers], pairs,
                                                recipe_params["normalization"])
        else:
            kwargs["backgrounds"] = backgrounds or None
        if extra.keys() & BUDGET_DEFAULTS.keys():  # one budget only, also when a caller sets it
            kwargs = {key: value for key, value in kwargs.items() if key not in BUDGET_DEFAULTS}
        kwargs.update(extra)
        self._start_job(lambda job: job.start_training(**{**kwargs, **(prepare() if prepare else {})}),
                        {key: kwargs[key] for key in BUDGET_DEFAULTS if kwargs.get(key) is not None},
                        "training failed: ")

    def _start_job(self, start, budget: dict, failure: str) -> None:
        """Run the model job ``start(job)`` starts, with ``budget`` (for the progress bar), in a worker."""
        self._budget = dict(budget)
        self.result, self.last_progress, self.n_progress_events = None, None, 0
        self._clear_figures()
        self.progress.setRange(0, 0)  # busy until the first step arrives
        self._pid = None
        self._show_phase("starting Python")
        self._start(job_worker(start, self._stop_requested), on_yield=self._on_event, failure=failure)

    def curated_images(self) -> list[tuple]:
        """``(image layer, plane, gray plane, Curation)`` of every curated image in the viewer (the Curate
        dock keeps each image's curation in its metadata)."""
        from napari.layers import Image

        from .curate_widget import CURATION_METADATA

        found = []
        for layer in self.viewer.layers:
            curations = layer.metadata.get(CURATION_METADATA) if isinstance(layer, Image) else None
            for plane, curation in sorted((curations or {}).items()):
                if not curation.is_empty():
                    found.append((layer, plane, plane_gray(layer, plane), curation))
        return found

    def retrain(self) -> None:
        """A curation round in a child process: ``retraining.retrain_round`` from the model file's model on
        the bank folder and the curated images; writes the next ``…_roundN.keras`` and shows it.

        Every check runs first; a refused setting raises ``ValueError`` and starts nothing.
        """
        if self.busy:
            return
        check_model_backend()
        curated = self.curated_images()
        if not curated:
            raise ValueError("no curated image: pick, reject or add objects in the Curate dock first (with the "
                             "image chosen there: the curation belongs to the image)")
        budget = self.budget_kwargs()
        if "epochs" in budget:
            raise ValueError("a curation round takes a budget of steps or minutes; choose one of them")
        model = self.model_path.path()
        if model is None:
            raise ValueError("choose the model to retrain in the model file box (the round starts from it)")
        model_sidecar(model)
        bank = self.bank_path.path()
        if bank is None:
            raise ValueError("choose the bank folder the model was trained on (the round adds the curated "
                             "objects to it in a bank of its own, never changing it)")
        check_bank_has_objects(bank)
        from napari_synthseg.retraining import next_round_path

        out = next_round_path(model)
        pairs = [(gray, curation) for _, _, gray, curation in curated]
        names = sorted({layer.name for layer, *_ in curated})
        self._start_job(lambda job: job.start_retraining(str(model), str(bank), pairs, out_path=str(out), **budget),
                        budget, "retraining failed: ")
        self.status.setText(f"{self.status.text()} round → {out.name} on {len(pairs)} curated image(s): "
                            f"{', '.join(names)}")

    def _recipe_inputs_maker(self, names: list[str], pairs: list, normalization: str):
        """A function (run in the worker thread) that cuts the bank and backgrounds from the images with
        ``pipeline.recipe_inputs`` into a temporary folder, and returns them as ``train_model`` keywords."""
        from napari_synthseg.pipeline import recipe_inputs

        images, labels = [image for image, _ in pairs], [lab for _, lab in pairs]

        def prepare() -> dict:
            self._recipe_folder = tempfile.mkdtemp(prefix="synthseg-recipe-")
            inputs = recipe_inputs(Path(self._recipe_folder) / "bank", names, images, labels, normalization)
            if len(inputs.bank) == 0:
                raise ValueError("the labels of the ticked images hold no object the bank can take "
                                 "(too small or cut by the border); auto-segment the images again")
            return {"bank": inputs.bank, "backgrounds": inputs.backgrounds}

        return prepare

    def stop(self) -> None:
        """Ask the child to stop; it saves the best model so far, then the worker ends."""
        if self.busy:
            self.cancel()
            self.status.setText("stopping; the best model so far is kept…")

    def _after_worker(self) -> None:
        self.phase = None
        if self._recipe_folder is not None:  # the child has read the bank it was cut into
            shutil.rmtree(self._recipe_folder, ignore_errors=True)
            self._recipe_folder = None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
