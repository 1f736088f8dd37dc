"""Real screenshots of each dock widget in the viewer, on the built-in sample data.

Run under a (virtual) display::

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--model MODEL.keras]
        [--train-steps N]

Each widget is docked from the plugin's manifest, does one real action on the sample
(auto-segment, show synthetic scenes, a short training run if asked, segment if a model is
given, pick, reject and add objects and measure), and the whole window is saved as ``<out>/<widget>.png``;
the Curate dock also after each kind of click (``curate_pick``, ``curate_reject``, ``curate_add``,
``curate_split``, ``curate_merge``; the last two where the segmentation joined or broke a grain).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

PLUGIN = "napari-synthseg"
WIDGETS = {
    "autoseg": "1 Auto-segment",
    "synth": "2 Synthesize",
    "train": "3 Train",
    "segment": "4 Segment",
    "curate": "5 Curate",
}


def wait_for(widget, app, timeout: float = 600.0) -> None:
    """Process Qt events until the widget's worker is done."""
    deadline = time.monotonic() + timeout
    while widget.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if widget.busy:
        raise TimeoutError(f"{type(widget).__name__} still busy after {timeout:.0f} s")
    for _ in range(20):
        app.processEvents()


def dock(viewer, key: str):
    dock_widget, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGETS[key])
    return dock_widget, widget


def snap(viewer, app, out: Path, key: str) -> Path:
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    path = out / f"{key}.png"
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path}")
    return path


def _centre(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(mask)
    k = len(rows) // 2
    return int(rows[k]), int(cols[k])


def show_split_and_merge(viewer, app, out: Path, curate, labels, truth: np.ndarray) -> None:
    """Split a segmented object that holds two or more true grains, merge a grain broken in pieces, as a person
    looking at the image would; a screenshot after each (skipped when the segmentation has no such object)."""
    data = np.asarray(labels.data)
    curated = curate.curations[()].objects if () in curate.curations else np.zeros(data.shape, np.int32)
    for label in [i for i in np.unique(data) if i]:
        mask = (data == label) & (curated == 0)
        held = [t for t in np.unique(truth[mask]) if t and (mask & (truth == t)).sum() >= 0.5 * (truth == t).sum()]
        if len(held) >= 2 and curate.curate_at(labels, (), _centre(mask), "split"):
            curate.set_mode("split")
            snap(viewer, app, out, "curate_split")
            break
    else:
        print("no joined grain to split in this segmentation; curate_split.png not made")
    for grain in [t for t in np.unique(truth) if t]:
        inside = truth == grain
        pieces = [i for i in np.unique(data[inside]) if i and (inside & (data == i)).sum() >= 0.8 * (data == i).sum()]
        if len(pieces) >= 2:
            curate.set_mode("merge")
            curate.merge_at(labels, (), _centre(data == pieces[0]))
            if curate.merge_at(labels, (), _centre(data == pieces[1])):
                snap(viewer, app, out, "curate_merge")
                return
    print("no grain broken in pieces in this segmentation; curate_merge.png not made")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    parser.add_argument("--model", type=Path, help="a trained .keras model for the Segment screenshot")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="train this many steps in the Train screenshot (0: show the dock idle)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from qtpy.QtWidgets import QApplication

    import napari
    from napari_synthseg._napari._settings import keep_dock_settings_in

    work = Path(tempfile.mkdtemp(prefix="synthseg-shots-"))
    keep_dock_settings_in(work / "settings")  # the docks as a new user sees them, not as this user left them
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    app = QApplication.instance()
    viewer.open_sample(PLUGIN, "grains")
    image = viewer.layers["grains"]
    viewer.layers["grains ground truth"].visible = False

    dock_widget, autoseg = dock(viewer, "autoseg")
    autoseg.image_choice.set_layer(image)
    autoseg.run()
    wait_for(autoseg, app)
    autoseg.bank_path.set_path(work / "bank")
    autoseg.add_to_bank()
    wait_for(autoseg, app)
    snap(viewer, app, args.out, "autoseg")
    viewer.window.remove_dock_widget(dock_widget)

    dock_widget, synth = dock(viewer, "synth")
    synth.bank_path.set_path(work / "bank")
    synth.backgrounds.set_checked([image])
    synth.n_show.setValue(3)
    synth.show_scenes()
    wait_for(synth, app)
    snap(viewer, app, args.out, "synth")
    for name in ("synthetic scenes", "synthetic labels"):
        viewer.layers.remove(name)
    viewer.window.remove_dock_widget(dock_widget)

    dock_widget, train = dock(viewer, "train")
    train.bank_path.set_path(work / "bank")
    train.backgrounds.set_checked([image])
    model = args.model
    train.model_path.set_path(model or work / "model.keras")
    if args.train_steps:
        train.set_budget("steps", args.train_steps)
        train.replace.setChecked(True)
        train.start()
        wait_for(train, app, timeout=3600)
        model = model or work / "model.keras"
    snap(viewer, app, args.out, "train")
    viewer.window.remove_dock_widget(dock_widget)

    dock_widget, segment = dock(viewer, "segment")
    segment.image_choice.set_layer(image)
    if model is not None and Path(model).is_file():
        segment.model_path.set_path(model)
        segment.run()
        wait_for(segment, app)
    snap(viewer, app, args.out, "segment")
    viewer.window.remove_dock_widget(dock_widget)

    dock_widget, curate = dock(viewer, "curate")
    name = "grains segmentation" if "grains segmentation" in viewer.layers else "grains autoseg"
    labels = viewer.layers[name]
    curate.labels_choice.set_layer(labels)
    curate.image_choice.set_layer(image)
    curate.set_mode("pick")
    ids = [i for i in np.unique(np.asarray(labels.data)) if i][:: 4][:15]
    for label in ids:
        rows, cols = np.nonzero(np.asarray(labels.data) == label)
        k = len(rows) // 2
        curate.toggle_pick(labels, (), (int(rows[k]), int(cols[k])))
    snap(viewer, app, args.out, "curate_pick")
    # one click of each other kind: reject the smallest objects (specks), add a grain nobody outlined
    data = np.asarray(labels.data)
    sizes = np.bincount(data.ravel())
    for label in [i for i in np.argsort(sizes) if i and sizes[i] and i not in ids][:2]:
        rows, cols = np.nonzero(data == label)
        curate.curate_at(labels, (), (int(rows[len(rows) // 2]), int(cols[len(cols) // 2])), "reject")
    curate.set_mode("reject")
    snap(viewer, app, args.out, "curate_reject")
    truth = np.asarray(viewer.layers["grains ground truth"].data)
    for missed in [i for i in np.unique(truth) if i and not data[truth == i].any()]:
        rows, cols = np.nonzero(truth == missed)
        if not curate.curate_at(labels, (), (int(rows.mean()), int(cols.mean())), "add"):
            continue
        added = curate.curations[()].objects
        grown = added == added[int(rows.mean()), int(cols.mean())]
        if grown.sum() <= 3 * rows.size:  # as a person would: keep an add that outlines the grain
            break
        curate.undo()  # ... and take back one that leaked (Ctrl+Z)
    curate.set_mode("add")
    snap(viewer, app, args.out, "curate_add")
    show_split_and_merge(viewer, app, args.out, curate, labels, truth)
    curate.csv_path.set_path(work / "measurements.csv")
    curate.export_measurements()
    wait_for(curate, app)
    snap(viewer, app, args.out, "curate")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
