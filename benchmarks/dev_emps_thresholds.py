"""Threshold baselines on dev_emps: pooled pixel IoU / object F1 @ 0.5 and polarity accuracy.

Run: .venv/bin/python benchmarks/dev_emps_thresholds.py [--methods otsu,li,local]

For each method, polarity is "bright", "dark", "auto" (choose_polarity per image) and
"true" (from index.csv, the hand-chosen reference row of the data README).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_synthseg.autoseg import autosegment, choose_polarity
from napari_synthseg.image_io import read_image, to_gray
from napari_synthseg.metrics import DatasetScores

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev_emps"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--methods", default="otsu,li,local")
    args = parser.parse_args(argv)
    index = args.data / "index.csv"
    if not index.is_file():
        print(f"dev_emps not found at {args.data}; pass --data", file=sys.stderr)
        return 1
    with open(index, newline="") as fh:
        rows = list(csv.DictReader(fh))
    images, truths, polarities = [], [], []
    for row in rows:
        images.append(to_gray(read_image(args.data / "images" / row["file"])))
        truths.append(read_image(args.data / "masks" / row["file"]))
        polarities.append("bright" if row["polarity"] == "bright_on_dark" else "dark")

    t0 = time.perf_counter()
    # As inside autosegment: polarity is judged on the image smoothed with the default sigma.
    chosen = [choose_polarity(ndi.gaussian_filter(img.astype(np.float32), 1.5, mode="nearest", truncate=3.0))
              for img in images]
    dt = (time.perf_counter() - t0) / len(images)
    correct = sum(c == p for c, p in zip(chosen, polarities))
    print(f"choose_polarity: {correct}/{len(images)} correct ({100 * correct / len(images):.1f} %), "
          f"{1000 * dt:.1f} ms/image")
    wrong = [r["file"] for r, c, p in zip(rows, chosen, polarities) if c != p]
    if wrong:
        print("  wrong on:", ", ".join(wrong))

    print()
    print(f"{'method':<10} {'polarity':<8} {'pixel IoU':>9} {'obj P':>6} {'obj R':>6} {'obj F1':>6}")
    for method in args.methods.split(","):
        for pol in ("bright", "dark", "auto", "true"):
            scores = DatasetScores()
            for img, gt, true_pol in zip(images, truths, polarities):
                labels = autosegment(img, method=method, polarity=true_pol if pol == "true" else pol)
                scores.add(labels, gt)
            s = scores.summary()
            print(f"{method:<10} {pol:<8} {s['pixel_iou']:9.3f} {s['object_precision']:6.3f} "
                  f"{s['object_recall']:6.3f} {s['object_f1']:6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
