"""Run the speed and memory benchmarks and print each figure beside its target (issue 16).

Run by hand, on quiet cores (other work slows every figure)::

    .venv/bin/python benchmarks/run_all.py            # everything (several minutes; predict needs Keras)
    .venv/bin/python benchmarks/run_all.py --quick    # auto-segmentation, scenes, fill: about half a minute
    .venv/bin/python benchmarks/run_all.py --only synthesis fill
    .venv/bin/python benchmarks/run_all.py --smoke    # every benchmark on toy sizes: checks the harness only

Targets (from the specification and issue 16):

* ``autoseg``: ``autosegment`` with its defaults on a 2592x2048 ``seed_em`` image, <= 0.5 s;
* ``synthesis``: ``synthesize_scene`` 512x512 with its defaults, one process, >= 50 scenes/s, from a real
  bank: every object the auto-segmentation of one ``seed_em`` image finds (about 110 grains) and a
  ``BackgroundSource`` of that image;
* ``fill``: ``fill_enclosed`` on a 2592x2048 mask of ~400 contour rings, <= 50 ms;
* ``predict``: the default network (random weights) on a 2592x2048 image (5.3 Mpixel) with the default
  tile, overlap and batch: network probabilities plus instances from the ideal maps of a sample scene
  (a random network's map says nothing about post-processing cost), <= 10 s;
* ``large``: ``process_large`` of a 16384x16384 uint8 zarr with a small network, peak resident memory of
  the process that runs it, <= 2 GB.

Each line prints the figure, the target, PASS or MISS and the date; the header gives the machine's cores,
load average and the commit, so a figure can be dated and judged. ``seed_em`` is looked for in
``../shared/data/seed_em`` beside the repository (``--data``); without it the two benchmarks that need it
say so and are skipped.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "seed_em"
#: The seed_em image whose auto-segmentation gives the ~110-grain bank of issue 16.
BANK_IMAGE = "train/21-1_1-Image_0001-1-1.jpg"
FULL_SHAPE = (2048, 2592)
SCENE_SHAPE = (512, 512)


@dataclass(frozen=True)
class Target:
    """A benchmark's goal: ``figure <= limit`` (``at_most``) or ``figure >= limit``."""

    name: str
    what: str
    limit: float
    unit: str
    at_most: bool

    def verdict(self, figure: float) -> str:
        """PASS or MISS for a measured figure."""
        ok = figure <= self.limit if self.at_most else figure >= self.limit
        return "PASS" if ok else "MISS"

    def describe(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:g} {self.unit}"


TARGETS = {
    "autoseg": Target("autoseg", "autosegment, 2592x2048 seed_em image, defaults", 0.5, "s", True),
    "synthesis": Target("synthesis", "synthesize_scene 512x512, real bank, defaults, 1 process", 50.0, "scenes/s",
                        False),
    "fill": Target("fill", "fill_enclosed, 2592x2048 mask", 50.0, "ms", True),
    "predict": Target("predict", "predict, default network, 2592x2048 (5.3 Mpixel)", 10.0, "s", True),
    "large": Target("large", "process_large 16384^2 uint8 zarr, peak memory", 2.0, "GB", True),
}
QUICK = ("autoseg", "synthesis", "fill")


class Skipped(Exception):
    """A benchmark that cannot run here (missing data or package); the message says why and what to do."""


# ----------------------------------------------------------------------------- inputs


def seed_em_images(data: Path, count: int) -> list[tuple[Path, np.ndarray]]:
    """The first ``count`` 2592x2048 seed_em images (``train/`` then ``test/``)."""
    from napari_synthseg.image_io import list_images, read_image

    if not data.is_dir():
        raise Skipped(f"seed_em not found at {data} (see the data README); pass --data")
    found = []
    for sub in ("train", "test"):
        folder = data / sub
        for path in list_images(folder) if folder.is_dir() else []:
            image = read_image(path)
            if image.shape[:2] == FULL_SHAPE:
                found.append((path, image))
                if len(found) == count:
                    return found
    if not found:
        raise Skipped(f"no 2592x2048 image in {data}/train or {data}/test")
    return found


def real_bank(data: Path, workdir: Path):
    """``(bank, backgrounds, n_objects)`` from the auto-segmentation of ``BANK_IMAGE``."""
    from napari_synthseg.autoseg import autosegment
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.image_io import read_image, to_gray
    from napari_synthseg.synthesis import BackgroundSource

    path = data / BANK_IMAGE
    if not path.is_file():
        path = seed_em_images(data, 1)[0][0]
    image = read_image(path)
    labels = autosegment(image)
    gray = to_gray(image)
    bank = ObjectBank(workdir / "bank")
    bank.add_from_labels(gray, labels, source=str(path))
    backgrounds = BackgroundSource.from_images(gray, labels, names=[str(path)])
    return bank, backgrounds, len(bank)


# ----------------------------------------------------------------------------- benchmarks


def bench_autoseg(args) -> tuple[float, str]:
    from napari_synthseg.autoseg import autosegment

    images = seed_em_images(args.data, 1 if args.quick or args.smoke else 3)
    if args.smoke:
        images = [(path, image[:512, :640]) for path, image in images]
    autosegment(images[0][1])  # warm-up: imports, caches
    times, counts = [], []
    for _, image in images:
        best = np.inf
        for _ in range(2 if args.quick or args.smoke else 3):
            start = time.perf_counter()
            labels = autosegment(image)
            best = min(best, time.perf_counter() - start)
        times.append(best)
        counts.append(int(labels.max()))
    detail = f"{len(images)} image(s), best of repeats each: {', '.join(f'{t:.3f}' for t in times)} s; " \
             f"objects {', '.join(map(str, counts))}"
    return float(np.mean(times)), detail


def bench_synthesis(args) -> tuple[float, str]:
    from napari_synthseg.synthesis import prepare_objects, synthesize_scene

    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            from napari_synthseg.sample_data import make_sample_scene
            from napari_synthseg.synthesis import BackgroundSource

            image, labels = make_sample_scene(seed=0, shape=(256, 320))
            from napari_synthseg.bank import ObjectBank

            bank = ObjectBank(Path(tmp) / "bank")
            bank.add_from_labels(image, labels, source="sample")
            backgrounds, size = BackgroundSource.from_images(image, labels), len(bank)
        else:
            bank, backgrounds, size = real_bank(args.data, Path(tmp))
        bank = prepare_objects(bank)  # once per bank, as training does
        synthesize_scene(bank, SCENE_SHAPE, np.random.default_rng(0), backgrounds)  # warm-up: noise fields
        scenes = 5 if args.smoke else 40 if args.quick else 200
        visible = 0
        start = time.perf_counter()
        for k in range(scenes):
            _, labels = synthesize_scene(bank, SCENE_SHAPE, np.random.default_rng([1, k]), backgrounds)
            visible += int(labels.max())
        rate = scenes / (time.perf_counter() - start)
    return rate, f"{scenes} scenes, bank of {size} objects, {visible / scenes:.1f} objects visible per scene"


def bench_fill(args) -> tuple[float, str]:
    sys.path.insert(0, str(HERE))
    from bench_fill_enclosed import make_mask

    from napari_synthseg.curation import fill_enclosed

    mask = make_mask(shape=(512, 640), n=25) if args.smoke else make_mask()
    fill_enclosed(mask, (0, 0))
    best = np.inf
    for _ in range(3 if args.quick or args.smoke else 7):
        start = time.perf_counter()
        filled = fill_enclosed(mask, (0, 0))
        best = min(best, time.perf_counter() - start)
    return best * 1e3, f"best of repeats; {filled.mean():.1%} of the pixels filled"


def bench_predict(args) -> tuple[float, str]:
    try:
        import keras
    except ImportError as exc:
        raise Skipped(f"Keras is not installed ({exc}); install the package's model dependencies") from None
    from napari_synthseg.coarse_fill import add_from_coarse_views, fill_from_coarse_views
    from napari_synthseg.drawn import drop_drawn_overlays
    from napari_synthseg.instances import probabilities_to_instances
    from napari_synthseg.model import DEFAULT_BASE_FILTERS, DEFAULT_DEPTH
    from napari_synthseg.model.network import build_unet
    from napari_synthseg.model.params import PredictionParams
    from napari_synthseg.model.prediction import load_model, predict_probabilities
    from napari_synthseg.model.sidecar import write_sidecar
    from napari_synthseg.model.targets import labels_to_targets
    from napari_synthseg.model.views import shrunk_probabilities
    from napari_synthseg.sample_data import make_sample_scene
    from napari_synthseg.zoom import zoom_back, zoom_image

    shape = (256, 320) if args.smoke else FULL_SHAPE
    image = make_sample_scene(seed=0, shape=shape)[0]
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.keras"
        build_unet(DEFAULT_BASE_FILTERS, DEFAULT_DEPTH).save(path)
        write_sidecar(path, {"network": {"base_filters": DEFAULT_BASE_FILTERS, "depth": DEFAULT_DEPTH}})
        model = load_model(path)
    predict_probabilities(model, image[:256, :256])  # warm-up: graph tracing
    start = time.perf_counter()
    # as predict does: the full-size view, the shrunk ones, the choice and the way back
    shrunk_probabilities(model, image.astype("float32"), PredictionParams().max_shrink, None,
                         lambda view, value_range: predict_probabilities(model, view, value_range=value_range))
    network = time.perf_counter() - start
    scene, scene_labels = make_sample_scene(seed=1, shape=shape)
    ideal = labels_to_targets(scene_labels)
    start = time.perf_counter()
    found = probabilities_to_instances(ideal)
    post = time.perf_counter() - start
    start = time.perf_counter()
    drop_drawn_overlays(found, scene)  # a step of the instances, by default
    drawn = time.perf_counter() - start
    # predict's last steps: wide objects filled, or taken whole, from the smaller views (the ideal maps seen shrunk)
    coarser = [zoom_back(zoom_image(ideal[..., :1], factor), shape)[..., 0] > 0.5 for factor in (0.5, 0.25)]
    start = time.perf_counter()
    filled = fill_from_coarse_views(found, coarser, scene, model.view_radius)[0]
    add_from_coarse_views(filled, coarser, scene, model.view_radius)
    fill = time.perf_counter() - start
    return network + post + drawn + fill, (
        f"network {network:.2f} s (default tile, overlap, batch, precision; the full-size view and the shrunk "
        f"ones, max_shrink {PredictionParams().max_shrink:g}) + instances {post:.2f} s ({int(found.max())} objects "
        f"from ideal maps) + drawn overlays {drawn:.2f} s + fill and objects taken from the smaller views "
        f"{fill:.2f} s; {image.shape}")


def bench_large(args) -> tuple[float, str]:
    sys.path.insert(0, str(HERE))
    import bench_large_predict as large

    size, tile = (2048, 1024) if args.smoke else (16384, 2048)
    work = Path(tempfile.mkdtemp(prefix="run_all_large_"))
    try:
        model = work / "tiny.keras"
        large.make_model(model)
        image = work / f"image_{size}.zarr"
        large.make_zarr(image, size)
        run = large.run_child(["--mode", "local", "--image", str(image), "--out", str(work / "labels.zarr"),
                               "--model", str(model), "--tile", str(tile), "--overlap", "128", "--max-tiles", "0"])
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    rate = run["pixels"] / run["seconds"] / 1e6
    return run["peak_rss_mb"] / 1024, (f"{size}^2, tile {tile}: {run['seconds']:.0f} s, {rate:.2f} Mpixel/s, "
                                       f"{run['objects']} objects (untrained base-8 network)")


BENCHMARKS = {"autoseg": bench_autoseg, "synthesis": bench_synthesis, "fill": bench_fill,
              "predict": bench_predict, "large": bench_large}


# ----------------------------------------------------------------------------- report


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_line(target: Target, figure: float | None, detail: str, today: str, smoke: bool) -> str:
    """One result line: what, figure, target, verdict, date, detail."""
    if figure is None:
        return f"{target.name:10s} {'-':>12s}  target {target.describe():16s} SKIP  {today}  {detail}"
    verdict = "SMOKE" if smoke else target.verdict(figure)
    what = "toy sizes, not comparable with the target" if smoke else target.what
    return (f"{target.name:10s} {figure:9.3g} {target.unit:9s} target {target.describe():16s} {verdict:5s} "
            f"{today}  {what}; {detail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, with fewer repeats")
    parser.add_argument("--smoke", action="store_true",
                        help="every benchmark on toy sizes: checks that the harness runs; figures are not judged")
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), help="run only these benchmarks")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the seed_em folder")
    args = parser.parse_args(argv)
    names = args.only or (QUICK if args.quick else list(TARGETS))
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{today} UTC, commit {commit()}, {os.cpu_count()} cores, load average {load:.2f} at the start"
          + (" (busy cores: figures are too slow)" if load > 0.5 * (os.cpu_count() or 1) else ""), flush=True)
    misses = 0
    for name in names:
        target = TARGETS[name]
        try:
            figure, detail = BENCHMARKS[name](args)
        except Skipped as exc:
            figure, detail = None, f"skipped: {exc}"
        print(report_line(target, figure, detail, today, args.smoke), flush=True)
        misses += figure is not None and not args.smoke and target.verdict(figure) == "MISS"
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
