"""Benchmark `synthseg measure` on a folder of generated label images (issue 15 target).

Run: .venv/bin/python benchmarks/bench_measure.py [--n 100] [--size 2236 2236] [--objects 2500]
     .venv/bin/python benchmarks/bench_measure.py --quick      (3 small images: a smoke run)

Figure: wall seconds of ``synthseg measure FOLDER --out CSV --pixel-size 2 --unit nm`` (reading
the TIFFs, measuring every object, writing the CSV), scaled to 100 images of 5 Mpixel, beside
the target of 30 s on 2 cores. The images are packed ellipses (touching, cut into concave and
split pieces where they overlap), made once and varied per file by flips and rolls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage.draw import ellipse

from napari_synthseg.cli import main as synthseg
from napari_synthseg.image_io import write_tiff

TARGET_SECONDS = 30.0
TARGET_FILES = 100
TARGET_PIXELS = 5_000_000


def make_labels(shape: tuple[int, int], n_objects: int, seed: int = 0) -> np.ndarray:
    """Packed ellipses of 10 to 36 pixels across, ids 1..n_objects (later ones cover earlier ones)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16 if n_objects < 2**16 else np.uint32)
    for k in range(1, n_objects + 1):
        rr, cc = ellipse(rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.uniform(5, 18),
                         rng.uniform(5, 18), shape=shape, rotation=rng.uniform(0, np.pi))
        labels[rr, cc] = k
    return labels


def write_folder(folder: Path, n: int, shape: tuple[int, int], n_objects: int) -> None:
    base = make_labels(shape, n_objects)
    rng = np.random.default_rng(1)
    for i in range(n):
        labels = np.roll(base, tuple(int(v) for v in rng.integers(0, min(shape), 2)), axis=(0, 1))
        labels = labels[:: 1 if i % 2 else -1, :: 1 if i % 4 < 2 else -1]
        write_tiff(folder / f"img{i:03d}_labels.tif", np.ascontiguousarray(labels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=TARGET_FILES, help="number of label images")
    parser.add_argument("--size", type=int, nargs=2, default=[2236, 2236], metavar=("H", "W"))
    parser.add_argument("--objects", type=int, default=2500, help="ellipses drawn per image")
    parser.add_argument("--quick", action="store_true", help="3 images of 512x512 with 150 objects")
    parser.add_argument("--tmp", default=None, help="folder for the generated images [system temp]")
    args = parser.parse_args()
    if args.quick:
        args.n, args.size, args.objects = 3, [512, 512], 150
    shape = (args.size[0], args.size[1])
    work = Path(tempfile.mkdtemp(prefix="bench_measure_", dir=args.tmp))
    try:
        labels_dir = work / "labels"
        labels_dir.mkdir()
        write_folder(labels_dir, args.n, shape, args.objects)
        out = work / "measurements.csv"
        start = time.perf_counter()
        status = synthseg(["measure", str(labels_dir), "--out", str(out), "--pixel-size", "2", "--unit", "nm"])
        seconds = time.perf_counter() - start
        if status != 0:
            print(f"synthseg measure failed (exit {status})")
            return status
        with open(out, encoding="utf-8") as handle:
            n_rows = sum(1 for _ in handle) - 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pixels = shape[0] * shape[1]
    scaled = seconds * (TARGET_FILES / args.n) * (TARGET_PIXELS / pixels)
    print(f"synthseg measure: {args.n} images of {shape[0]}x{shape[1]} ({pixels / 1e6:.1f} Mpixel), "
          f"{n_rows} objects: {seconds:.2f} s ({seconds / args.n * 1000:.0f} ms per image), "
          f"{os.cpu_count()} CPUs")
    print(f"scaled to {TARGET_FILES} x {TARGET_PIXELS / 1e6:.0f} Mpixel: {scaled:.1f} s "
          f"(target <= {TARGET_SECONDS:.0f} s on 2 cores: {'met' if scaled <= TARGET_SECONDS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
