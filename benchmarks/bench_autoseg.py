"""Benchmark autosegment on full-size seed_em images against the reference's method.

Run: .venv/bin/python benchmarks/bench_autoseg.py [--n 3] [--method otsu]

Figure: seconds per 2592x2048 image with default parameters (best of 3 per image,
after one warm-up call). Baseline, measured in the same run: the reference program's
enclosed-by-contours segmentation written as it was (image squashed to 600x600, darkest
5 % as contours, Python BFS flood fill from a corner, Python loop collecting regions).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import deque
from pathlib import Path

import numpy as np

from napari_synthseg.autoseg import autosegment
from napari_synthseg.image_io import list_images, read_image, to_gray

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed_em" / "train"


def reference_contours(gray600: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """The reference's pure-Python method on a 600x600 image (baseline only)."""
    h, w = gray600.shape
    cut = np.percentile(gray600, 100 * fraction)
    contour = (gray600 <= cut).tolist()
    outside = [[False] * w for _ in range(h)]
    queue = deque([(0, 0)])
    outside[0][0] = True
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < h and 0 <= nx < w and not outside[ny][nx] and not contour[ny][nx]:
                outside[ny][nx] = True
                queue.append((ny, nx))
    mask = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            mask[y, x] = not outside[y][x]
    return mask


def squash(gray: np.ndarray, size=(600, 600)) -> np.ndarray:
    from skimage.transform import resize

    return resize(gray, size, order=1, preserve_range=True, anti_aliasing=False).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=3, help="number of images")
    parser.add_argument("--method", default="otsu")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"seed_em not found at {args.data}; pass --data")
        return 1
    files = [f for f in list_images(args.data) if read_image(f).shape[:2] == (2048, 2592)][: args.n]
    images = [read_image(f) for f in files]
    autosegment(images[0], method=args.method)  # warm-up: imports, caches
    times, counts = [], []
    for image in images:
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            labels = autosegment(image, method=args.method)
            best = min(best, time.perf_counter() - t)
        times.append(best)
        counts.append(int(labels.max()))
    small = squash(to_gray(images[0]))
    t = time.perf_counter()
    reference_contours(small)
    base = time.perf_counter() - t
    mean = float(np.mean(times))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"autosegment(method={args.method!r}, defaults) on {len(images)} 2592x2048 RGB JPEGs: "
          f"{mean:.3f} s/image (per image: {', '.join(f'{x:.3f}' for x in times)}; "
          f"objects: {', '.join(map(str, counts))})")
    print(f"baseline (reference-style Python BFS contours on a 600x600 downscale): {base:.2f} s/image")
    print(f"ratio: ours takes {mean / base:.2f}x the baseline's time for {2592 * 2048 / 600**2:.1f}x the "
          f"pixels, i.e. {base / mean * 2592 * 2048 / 600**2:.0f}x the baseline's pixels per second; "
          f"cores: {os.cpu_count()}, load average: {load:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
