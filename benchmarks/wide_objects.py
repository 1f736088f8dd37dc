"""Grains wider than the network sees, beside grains it sees whole: ``predict`` with and without its smaller views.

Run: .venv/bin/python benchmarks/wide_objects.py --model OUT/model.keras [--out DIR]

Each scene (seeds 200-203, which no sample model trains on) stacks a sample scene of the native
grain size (768 x 2048) above a crop of another, enlarged three times: grains of median 83 and up to
265 pixels across (equivalent diameter) below ones of median 25, as a folder of mixed magnifications
or one with grains of very different sizes gives. A model trained on sample scenes keeps the full-size
view for such an image (11 of 12 scene and model pairs measured; one the half view), and the large
grains are wider than its 96-pixel view.
Printed per half: pixel IoU and object F1@0.5 of ``predict`` with both steps of the smaller views
replaced by a no-op (the baseline, measured in the same run), with the fill only
(``coarse_fill.fill_from_coarse_views``), and as it is (the fill and the objects taken whole from a smaller
view, ``coarse_fill.add_from_coarse_views``), and the difference from the baseline. The model is a
sample model, e.g. from ``benchmarks/default_run.py --datasets sample``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from napari_synthseg.metrics import object_scores
from napari_synthseg.sample_data import make_sample_scene
from napari_synthseg.zoom import zoom_image, zoom_labels

SEEDS = (200, 201, 202, 203)
SIDE = (768, 2048)
ENLARGED = 3
#: The crop of the second scene that is enlarged: rows and columns of a (768, 2048) scene.
CROP = (slice(200, 456), slice(600, 1283))


def two_size_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A native sample scene above a three-times enlarged crop of another; uint8 image, uint32 labels."""
    top, top_labels = make_sample_scene(seed=seed, shape=SIDE)
    other, other_labels = make_sample_scene(seed=seed + 50, shape=SIDE)
    big = zoom_image(other[CROP].astype(np.float32), float(ENLARGED))[:SIDE[0], :SIDE[1]]
    big_labels = zoom_labels(other_labels[CROP], (SIDE[0], SIDE[1] + 1))[:SIDE[0], :SIDE[1]].astype(np.uint32)
    big_labels[big_labels > 0] += top_labels.max()
    image = np.vstack([top, np.clip(big, 0, 255).astype(np.uint8)])
    return image, np.vstack([top_labels, big_labels])


def half_scores(predictions: list[np.ndarray], truths: list[np.ndarray], rows: slice) -> tuple[float, float]:
    """Pixel IoU and object F1@0.5 over the scenes' rows ``rows``, pooled."""
    tp = fp = fn = inter = union = 0
    for predicted, truth in zip(predictions, truths):
        predicted, truth = predicted[rows], truth[rows]
        scores = object_scores(predicted, truth)
        tp, fp, fn = tp + scores.tp, fp + scores.fp, fn + scores.fn
        inter += int(((predicted > 0) & (truth > 0)).sum())
        union += int(((predicted > 0) | (truth > 0)).sum())
    return inter / max(union, 1), 2 * tp / max(2 * tp + fp + fn, 1)


def _unchanged(labels, *_, **__):
    return labels, 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a sample model (.keras with its sidecar)")
    parser.add_argument("--out", default=None, help="folder for the scenes and both labels (default: a temporary one)")
    args = parser.parse_args(argv)
    import napari_synthseg.coarse_fill as coarse_fill
    import napari_synthseg.model.prediction as prediction

    out = Path(args.out or tempfile.mkdtemp(prefix="wide_objects_"))
    out.mkdir(parents=True, exist_ok=True)
    model = prediction.load_model(args.model)
    scenes = [two_size_scene(seed) for seed in SEEDS]
    truths = [labels for _, labels in scenes]
    steps = {"fill": coarse_fill.fill_from_coarse_views, "add": coarse_fill.add_from_coarse_views}
    kept = {"without": (), "fill only": ("fill",), "with": ("fill", "add")}
    results = {}
    for name, on in kept.items():
        # the baselines: the same predict with a step of the smaller views replaced by a no-op
        for step, function in steps.items():
            setattr(coarse_fill, function.__name__, function if step in on else _unchanged)
        results[name] = [prediction.predict(model, image) for image, _ in scenes]
    for function in steps.values():
        setattr(coarse_fill, function.__name__, function)
    for seed, (image, truth), *labels in zip(SEEDS, scenes, *results.values()):
        np.savez_compressed(out / f"two_size_{seed}.npz", image=image, truth=truth,
                            **{name.replace(" ", "_"): found for name, found in zip(results, labels)})
    print(f"model {args.model}; scenes and labels in {out}")
    for name, rows in (("native grains (upper half)", slice(0, SIDE[0])),
                       (f"grains enlarged {ENLARGED}x (lower half)", slice(SIDE[0], None))):
        scores = {kind: half_scores(found, truths, rows) for kind, found in results.items()}
        print(f"{name}: pixel IoU / object F1 " + " -> ".join(
            f"{kind} {iou:.3f} / {f1:.3f}" for kind, (iou, f1) in scores.items())
            + f" ({scores['with'][0] - scores['without'][0]:+.3f} / {scores['with'][1] - scores['without'][1]:+.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
