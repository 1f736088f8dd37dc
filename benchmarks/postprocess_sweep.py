"""Post-processing settings of a trained model, scored per half of dev_emps, with the images that hold the error.

Run: .venv/bin/python benchmarks/postprocess_sweep.py MODEL [--confidence 0.8,0.85,0.9] [--threshold 0.5]
     [--prominence off,0.4] [--wall off,0.7] [--overlays drop,keep] [--augment] [--worst 3] [--sample-scenes 4]

The model's probabilities of every image are computed once (with ``--augment`` also averaged over the
8 flips and transposes); each combination of foreground threshold and ``min_confidence`` then turns them into
labels as ``predict`` does, and is scored on the ``tune`` and ``check`` halves of ``split.csv`` (pooled pixel
IoU / object F1 at IoU 0.5 / AP). ``--prominence`` and ``--wall`` also vary ``min_seed_prominence`` and
``min_seed_wall`` (``off``: that rescue of small interiors off; both ``off``: the share rule alone);
``--overlays drop,keep`` scores with and without leaving out the objects drawn on the image
(``predict``'s ``drop_overlays``, default drop). ``--sample-scenes N`` scores the built-in sample scenes of
seeds 100..100+N-1 (held apart from a run on seeds 0-3) instead of dev_emps, as one group. Under each, the
images holding the largest share of the pooled error (``metrics.worst_images``): a setting that lifts a half by
flipping one large region of one image in or out shows there, not as a better method. Choose on the tune half;
report both.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_synthseg.drawn import drop_drawn_overlays
from napari_synthseg.image_io import is_rgb, read_image, to_gray
from napari_synthseg.instances import DEFAULT_MIN_SEED_PROMINENCE, DEFAULT_MIN_SEED_WALL, probabilities_to_instances
from napari_synthseg.metrics import DatasetScores, worst_images
from napari_synthseg.pipeline import _as_instances, as_label_image, find_ground_truth

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev_emps"


def _floats(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers between 0 and 1, got {text!r}")
    return values


def _prominences(text: str) -> list:
    values = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "off":
            values.append(None)
            continue
        values.extend(_floats(part))
    if not values:
        raise argparse.ArgumentTypeError(f"expected numbers between 0 and 1 or 'off', got {text!r}")
    return values


def _overlay_choices(text: str) -> list[bool]:
    """``"drop,keep"`` -> ``[True, False]`` (whether the drawn objects are left out)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p not in ("drop", "keep") for p in parts):
        raise argparse.ArgumentTypeError(f"expected drop and/or keep separated by commas, got {text!r}")
    return [p == "drop" for p in parts]


def _halves(data: Path) -> dict[str, str]:
    with open(data / "split.csv", newline="") as fh:
        return {Path(row["image"]).stem: row["half"] for row in csv.DictReader(fh)}


def gray_images(data: Path, stems) -> dict[str, np.ndarray]:
    """``{stem: 2D gray image}``, as ``predict`` sees each image (RGB collapsed to luminance)."""
    out = {}
    for stem in stems:
        image = read_image(next((data / "images").glob(stem + ".*")))
        out[stem] = to_gray(image, rgb=is_rgb(image))
    return out


def probabilities(model_path: Path, grays: dict, augment: bool) -> dict[str, np.ndarray]:
    """``{stem: (H, W, C) probabilities}`` of every gray image, as ``predict`` makes them (ignore box cut)."""
    from napari_synthseg.model.prediction import load_model, predict

    model = load_model(model_path)
    out = {}
    for stem, gray in grays.items():
        _, prob = predict(model, gray, return_probabilities=True, augment=augment)
        out[stem] = prob
    return out


def score(probs: dict, truths: dict, halves: dict, *, threshold: float, min_confidence: float,
          min_seed_prominence: float | None = DEFAULT_MIN_SEED_PROMINENCE,
          min_seed_wall: float | None = DEFAULT_MIN_SEED_WALL, grays: dict | None = None) -> dict:
    """``{half: (pooled summary, per-image summaries)}`` of one setting; with ``grays`` (``{stem: gray
    image}``) the objects drawn on each image are left out, as ``predict`` does by default."""
    result = {}
    for half in sorted(set(halves.values())):
        pooled, per_image = DatasetScores(), {}
        for stem, prob in probs.items():
            if halves[stem] != half:
                continue
            labels = probabilities_to_instances(prob, threshold=threshold, min_confidence=min_confidence,
                                                min_seed_prominence=min_seed_prominence, min_seed_wall=min_seed_wall)
            if grays is not None:
                labels, _ = drop_drawn_overlays(labels, grays[stem])
            one = DatasetScores()
            one.add(labels, truths[stem])
            pooled.add(labels, truths[stem])
            per_image[stem] = one.summary()
        result[half] = (pooled.summary(), per_image)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a .keras model with its sidecar")
    parser.add_argument("--data", type=Path, default=DATA, help="dev_emps folder (images/, masks/, split.csv)")
    parser.add_argument("--confidence", type=_floats, default=[0.8, 0.85, 0.9], help="min_confidence values")
    parser.add_argument("--threshold", type=_floats, default=[0.5], help="foreground thresholds")
    parser.add_argument("--prominence", type=_prominences, default=[DEFAULT_MIN_SEED_PROMINENCE],
                        help="min_seed_prominence values ('off': no rescue by the distance's peak)")
    parser.add_argument("--wall", type=_prominences, default=[DEFAULT_MIN_SEED_WALL],
                        help="min_seed_wall values ('off': no rescue by the boundary drawn all round)")
    parser.add_argument("--overlays", type=_overlay_choices, default=[True],
                        help="drop and/or keep the objects drawn on the image (scale bars, lettering) [drop]")
    parser.add_argument("--sample-scenes", type=int, default=0, metavar="N",
                        help="score N held-apart sample scenes (seeds 100...) instead of dev_emps")
    parser.add_argument("--augment", action="store_true", help="also score the flip-averaged probabilities")
    parser.add_argument("--worst", type=int, default=3, help="images listed per half and setting")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"no model at {args.model}", file=sys.stderr)
        return 1
    if args.sample_scenes > 0:
        from napari_synthseg.sample_data import write_sample_folder

        args.data = Path(tempfile.mkdtemp(prefix="sweep_"))
        images, _ = write_sample_folder(args.data, n=args.sample_scenes, seed=100)
        halves = {p.stem: "sample" for p in sorted(images.iterdir())}
    elif not (args.data / "split.csv").is_file():
        print(f"no split.csv in {args.data}; pass --data", file=sys.stderr)
        return 1
    else:
        halves = _halves(args.data)
    masks = find_ground_truth(args.data / "masks", sorted(halves))
    halves = {stem: half for stem, half in halves.items() if stem in masks}
    truths = {stem: _as_instances(as_label_image(read_image(masks[stem]), str(masks[stem]))) for stem in halves}
    grays = gray_images(args.data, sorted(halves))
    for augment in ([False, True] if args.augment else [False]):
        t0 = time.perf_counter()
        probs = probabilities(args.model, grays, augment)
        print(f"{'flip-averaged' if augment else 'plain'} probabilities of {len(probs)} images in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for threshold in args.threshold:
            for confidence, prominence, wall, drop in ((c, p, w, d) for c in args.confidence
                                                       for p in args.prominence for w in args.wall
                                                       for d in args.overlays):
                scores = score(probs, truths, halves, threshold=threshold, min_confidence=confidence,
                               min_seed_prominence=prominence, min_seed_wall=wall, grays=grays if drop else None)
                print(f"augment={augment} threshold={threshold} min_confidence={confidence} "
                      f"min_seed_prominence={'off' if prominence is None else prominence} "
                      f"min_seed_wall={'off' if wall is None else wall} "
                      f"overlays={'drop' if drop else 'keep'}")
                for half, (s, per_image) in scores.items():
                    print(f"  {half:<6} {s['pixel_iou']:.3f} / {s['object_f1']:.3f} / {s['ap']:.3f}  "
                          f"(TP {s['tp']}, FP {s['fp']}, FN {s['fn']})")
                    for e in worst_images(per_image, args.worst):
                        print(f"         {e.name}: {e.pixel_share:.0%} of wrong pixels, {e.object_share:.0%} of "
                              f"wrong objects; without it {e.pixel_iou_without:.3f} / {e.object_f1_without:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
