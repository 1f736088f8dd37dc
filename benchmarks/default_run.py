"""The default command on each folder we hold: `synthseg run IMAGES --out OUT --minutes M`, no recipe flags.

Run (2-core CPU, nothing else running; ~20 minutes per run and dataset at 15 minutes):

    .venv/bin/python benchmarks/default_run.py --datasets dev --minutes 15 --runs 3
    .venv/bin/python benchmarks/default_run.py --datasets sample --minutes 15
    .venv/bin/python benchmarks/default_run.py --datasets dev --minutes 1 --quick   # smoke run
    .venv/bin/python benchmarks/default_run.py --datasets sample --minutes 10 --recipe mixed   # an A/B arm

Each run calls ``pipeline.run_pipeline`` with its defaults (the recipe decided from the images)
and scores the labels it wrote: pixel IoU, object F1 at IoU 0.5 and average precision over IoU
0.5-0.95, pooled per group, next to Otsu / Li / local thresholds (``autosegment``, polarity auto)
measured in the same run.

Datasets:
  dev     ../shared/data/dev_emps, all 60 images in one folder (trained on the images only);
          scored on the ``tune`` and ``check`` halves of split.csv separately.
  sample  built-in sample scenes: the run gets seeds 0-3; its model then segments the
          held-apart seeds 100-103, which are scored.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_synthseg.autoseg import autosegment
from napari_synthseg.image_io import list_images, read_image, to_gray
from napari_synthseg.metrics import DatasetScores
from napari_synthseg.pipeline import _as_instances, predict_at_scale, run_pipeline
from napari_synthseg.recipe import RECIPE_CHOICES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = ("otsu", "li", "local")


def _mask(path: Path) -> np.ndarray:
    mask = np.asarray(read_image(path))
    return _as_instances(mask.max(axis=-1) if mask.ndim == 3 else mask)


def _score(pairs) -> dict:
    scores = DatasetScores()
    for pred, truth in pairs:
        scores.add(pred, truth)
    s = scores.summary()
    return {k: s[k] for k in ("pixel_iou", "object_precision", "object_recall", "object_f1", "ap", "ap_50", "n_images")}


def _groups(name: str, work: Path, quick: bool):
    """(training folder, {group: [(image path, mask path)]}, scored by the run's own labels?)."""
    if name == "dev":
        root = DATA / "dev_emps"
        if not root.is_dir():
            return None
        halves = {r["image"]: r["half"] for r in csv.DictReader(open(root / "split.csv"))}
        paths = list_images(root / "images")
        if quick:
            paths = ([p for p in paths if halves[p.name] == "tune"][:4]
                     + [p for p in paths if halves[p.name] == "check"][:4])
            folder = work / "dev_quick"
            folder.mkdir()
            for p in paths:
                (folder / p.name).symlink_to(p)
        else:
            folder = root / "images"
        groups = {h: [(p, root / "masks" / p.name) for p in paths if halves[p.name] == h] for h in ("tune", "check")}
        return folder, groups, True
    if name == "sample":
        from napari_synthseg.sample_data import write_sample_folder

        n = 2 if quick else 4
        train_dir, _ = write_sample_folder(work / "sample_train", n=n, seed=0)
        eval_dir, eval_masks = write_sample_folder(work / "sample_eval", n=n, seed=100)
        masks = {m.stem: m for m in list_images(eval_masks)}
        groups = {"held apart": [(p, masks[p.stem]) for p in list_images(eval_dir)]}
        return train_dir, groups, False
    raise ValueError(f"unknown dataset {name!r}; choose dev or sample")


def run_once(name: str, minutes: float, out: Path, quick: bool, run: int, train: dict | None = None,
             recipe: str = "auto") -> list[dict]:
    from napari_synthseg.model.prediction import load_model

    work = Path(tempfile.mkdtemp(prefix=f"default_{name}_"))
    found = _groups(name, work, quick)
    if found is None:
        print(f"[{name}] data not found under {DATA}; skipped")
        return []
    folder, groups, own_labels = found
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_out = out / f"{name}_run{run}"
    summary = run_pipeline(folder, run_out, minutes=minutes, train_params=train, recipe=recipe,
                           notify=lambda line: print(f"[{name}] {line}", flush=True))
    seconds = time.perf_counter() - t0
    model = load_model(run_out / "model.keras")
    steps = model.info.get("steps_done") or (model.info.get("metrics") or {}).get("step")
    rows = []
    for group, pairs in groups.items():
        images = {p.stem: to_gray(read_image(p)) for p, _ in pairs}
        truths = {p.stem: _mask(m) for p, m in pairs}
        if own_labels:
            preds = {s: np.asarray(read_image(run_out / f"{s}_labels.tif")) for s in images}
        else:
            preds = {s: predict_at_scale(model, im, 1.0)[0] for s, im in images.items()}
        rows.append({"dataset": name, "group": group, "what": "model", "run": run, "minutes": minutes,
                     "recipe": summary.recipe["name"], "steps": steps, "seconds": round(seconds),
                     "load": [round(load_start, 1), round(os.getloadavg()[0], 1)],
                     **_score((preds[s], truths[s]) for s in images)})
        if run == 1:
            for method in THRESHOLDS:
                labels = {s: autosegment(im, method=method) for s, im in images.items()}
                rows.append({"dataset": name, "group": group, "what": f"threshold {method}",
                             **_score((labels[s], truths[s]) for s in images)})
    print(f"[{name}] run {run}: recipe {summary.recipe['name']}, {steps} steps, {seconds:.0f} s", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="dev,sample")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few images, for a smoke run")
    parser.add_argument("--out", type=Path, default=Path("out/default_run"))
    parser.add_argument("--train", type=json.loads, default=None, metavar="JSON",
                        help='training settings over the recipe\'s, for an A/B arm, e.g. \'{"real_clumps": "labels"}\'')
    parser.add_argument("--recipe", choices=RECIPE_CHOICES, default="auto",
                        help="the recipe (an A/B arm; auto: decided from the images, as the default command does)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()}", flush=True)
    rows = []
    for name in args.datasets.split(","):
        for run in range(1, args.runs + 1):
            rows += run_once(name.strip(), args.minutes, args.out, args.quick, run, args.train, args.recipe)
            (args.out / "default_run.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{'dataset':<7} {'group':<10} {'what':<16} {'run':>3} {'recipe':<9} {'steps':>5} "
          f"{'pixIoU':>6} {'objP':>5} {'objR':>5} {'objF1':>5} {'AP':>5}")
    for r in rows:
        print(f"{r['dataset']:<7} {r['group']:<10} {r['what']:<16} {r.get('run', ''):>3} {r.get('recipe', ''):<9} "
              f"{r.get('steps') or '':>5} {r['pixel_iou']:6.3f} {r['object_precision']:5.3f} "
              f"{r['object_recall']:5.3f} {r['object_f1']:5.3f} {r['ap']:5.3f}")
    for (name, group) in dict.fromkeys((r["dataset"], r["group"]) for r in rows):
        models = [r for r in rows if r["dataset"] == name and r["group"] == group and r["what"] == "model"]
        if len(models) > 1:
            for key in ("pixel_iou", "object_f1", "ap"):
                v = [r[key] for r in models]
                print(f"{name} {group} {key}: mean {np.mean(v):.3f}, range {min(v):.3f}-{max(v):.3f} "
                      f"over {len(v)} runs")
    print(f"load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
