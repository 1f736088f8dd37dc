"""Synthesize dock: show what the network will learn from; optionally write N scenes to a folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox

from ..model import TrainingParams
from ..scene_params import SceneParams
from ..synthesis import synthesize_scene
from ._checks import check_bank_has_objects, check_output_folder
from ._common import connect_click, notify_info, quiet_worker
from ._form import PathPicker, row, stack, status_label
from ._layer_choice import LayerChecklist
from ._planes import find_layer, gray_backgrounds
from ._progress import ActivityProgressBar
from ._settings import RememberedSettings
from ._worker_dock import WorkerDock

if TYPE_CHECKING:
    import napari

SCENE_IMAGE_LAYER = "synthetic scenes"
SCENE_LABELS_LAYER = "synthetic labels"


def _spin(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box


class SynthWidget(WorkerDock):
    """Paste bank objects onto backgrounds learned from real image layers."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(napari_viewer, parent)
        from napari.layers import Image

        self.written: list = []
        defaults = SceneParams()  # the boxes start at the scenes' defaults, defined there once
        self.bank_path = PathPicker("dir", "Object bank folder")
        self.backgrounds = LayerChecklist(napari_viewer, Image)
        self.backgrounds.setToolTip("Real images whose background is imitated (current plane of each)")
        self.height = _spin(16, 8192, defaults.shape[0])
        self.width = _spin(16, 8192, defaults.shape[1])
        self.n_show = _spin(1, 32, 3)
        self.min_objects = _spin(1, 10_000, defaults.n_objects[0])
        self.max_objects = _spin(1, 10_000, defaults.n_objects[1])
        self.seed = _spin(0, 2**31 - 1, TrainingParams.seed)  # the seed synthseg synth and train start at
        self.show_button = QPushButton("Show scenes")
        self.out_dir = PathPicker("dir", "Folder for synthetic scenes")
        self.n_write = _spin(1, 1_000_000, 200)
        self.write_button = QPushButton("Write scenes")
        self.cancel_button = QPushButton("Cancel")
        self.progress = ActivityProgressBar("Synthesize")
        self.status = status_label()
        self._lay_out()
        self._bind_worker_controls(self.progress, (self.show_button, self.write_button), self.cancel_button)

        connect_click(self.show_button, self.show_scenes)
        connect_click(self.write_button, self.write_scenes)
        connect_click(self.cancel_button, self.cancel)
        # kept between sessions (not the layers, nor the "replace" boxes: each session decides those)
        self.settings = RememberedSettings("synthesize", dict(
            bank_path=self.bank_path, height=self.height, width=self.width, n_show=self.n_show,
            min_objects=self.min_objects, max_objects=self.max_objects, seed=self.seed, out_dir=self.out_dir,
            n_write=self.n_write), owner=self)

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("bank folder", self.bank_path)
        form.addRow("backgrounds", self.backgrounds)
        size = QHBoxLayout()
        size.addWidget(self.height)
        size.addWidget(QLabel("×"))
        size.addWidget(self.width)
        form.addRow("scene size (H × W)", size)
        objects = QHBoxLayout()
        objects.addWidget(self.min_objects)
        objects.addWidget(QLabel("to"))
        objects.addWidget(self.max_objects)
        form.addRow("objects per scene", objects)
        form.addRow("seed", self.seed)
        form.addRow("scenes to show", self.n_show)
        form.addRow(self.show_button)
        form.addRow("output folder", self.out_dir)
        form.addRow("scenes to write", self.n_write)
        stack(self, form, row(self.write_button, self.cancel_button), self.progress, self.status)

    def _inputs(self):
        """Bank path, background arrays, scene shape and object-count range, checked."""
        bank = self.bank_path.path()
        if bank is None:
            raise ValueError("choose the object bank folder (fill it with Auto-segment or Curate)")
        check_bank_has_objects(bank)
        low, high = self.min_objects.value(), self.max_objects.value()
        if low > high:
            raise ValueError(f"objects per scene: {low} to {high} is empty; make the first number the smaller")
        backgrounds = gray_backgrounds(self.backgrounds.checked_layers(), self.viewer)
        return bank, backgrounds, (self.height.value(), self.width.value()), (low, high)

    @staticmethod
    def _scene_maker(bank_dir, backgrounds, seed: int):
        """Open the bank and learn the backgrounds once (in the worker); returns (objects, source, rng)."""
        from napari_synthseg.bank import ObjectBank
        from napari_synthseg.synthesis import BackgroundSource

        objects = ObjectBank(bank_dir, create=False).objects()
        if not objects:
            raise ValueError(f"bank {bank_dir} holds no objects; fill it with Auto-segment or Curate first")
        rng = np.random.default_rng(seed)
        source = BackgroundSource.from_images(backgrounds, rng=rng) if backgrounds else None
        return objects, source, rng

    def show_scenes(self) -> None:
        """Make a few scenes in a worker and show them as an image stack and a labels stack."""
        if self.busy:
            return
        bank, backgrounds, shape, n_objects = self._inputs()
        n, seed = self.n_show.value(), self.seed.value()

        def make():
            objects, source, rng = self._scene_maker(bank, backgrounds, seed)
            images, labels = [], []
            for i in range(n):
                image, label = synthesize_scene(objects, shape, rng, backgrounds=source, n_objects=n_objects)
                images.append(image)
                labels.append(label)
                yield i + 1
            return np.stack(images), np.stack(labels)

        self._start(quiet_worker(make), total=n, on_result=self._show, on_abort=self._cancelled)

    def _show(self, result) -> None:
        images, labels = result
        active = self.viewer.layers.selection.active
        for name, data, add in ((SCENE_IMAGE_LAYER, images, self.viewer.add_image),
                                (SCENE_LABELS_LAYER, labels, self.viewer.add_labels)):
            existing = find_layer(self.viewer, name)
            if existing is not None:
                self.viewer.layers.remove(existing)
            kwargs = {"contrast_limits": (0, 1)} if add == self.viewer.add_image else {"opacity": 0.4}
            add(data, name=name, **kwargs)
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
        self.status.setText(f"{len(images)} synthetic scenes shown ('{SCENE_IMAGE_LAYER}', '{SCENE_LABELS_LAYER}')")

    def write_scenes(self) -> None:
        """Write N image/label pairs (``images/<stem>.png``, ``labels/<stem>.tif``) in a worker.

        Cancelling stops between scenes: every pair on disk is complete, and no existing
        file is overwritten.
        """
        if self.busy:
            return
        bank, backgrounds, shape, n_objects = self._inputs()
        out = self.out_dir.path()
        if out is None:
            raise ValueError("choose an output folder for the synthetic scenes")
        check_output_folder(out, "output folder")
        n, seed = self.n_write.value(), self.seed.value()
        self.written = []

        def write():
            from napari_synthseg.image_io import write_png, write_tiff
            objects, source, rng = self._scene_maker(bank, backgrounds, seed)
            (out / "images").mkdir(parents=True, exist_ok=True)
            (out / "labels").mkdir(parents=True, exist_ok=True)
            written = []
            for i in range(n):
                image, labels = synthesize_scene(objects, shape, rng, backgrounds=source, n_objects=n_objects)
                stem = _free_stem(out, f"scene_{seed}_{i:05d}")
                label_path = write_tiff(out / "labels" / f"{stem}.tif", labels)
                try:
                    write_png(out / "images" / f"{stem}.png", (np.clip(image, 0, 1) * 255).astype(np.uint8))
                except BaseException:
                    label_path.unlink(missing_ok=True)  # never a mask without its image
                    raise
                written.append(stem)
                self.written = list(written)
                yield i + 1
            return written

        def report(written):
            self.status.setText(f"{len(written)} scenes written to {out}")
            notify_info(f"{len(written)} synthetic scenes written to {out}")

        self._start(quiet_worker(write), total=n, on_result=report, on_abort=self._cancelled)

    def _cancelled(self) -> None:
        self.status.setText(f"cancelled; {len(self.written)} complete scenes on disk" if self.written else "cancelled")


def _free_stem(out, stem: str) -> str:
    """``stem`` or ``stem-1``, ``stem-2``... so that neither the image nor the labels file exists."""
    candidate, i = stem, 0
    while (out / "images" / f"{candidate}.png").exists() or (out / "labels" / f"{candidate}.tif").exists():
        i += 1
        candidate = f"{stem}-{i}"
    return candidate
