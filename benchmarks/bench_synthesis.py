"""Benchmark: synthetic scenes per second at 512x512 with ~40 objects.

Run by hand: ``.venv/bin/python benchmarks/bench_synthesis.py [--scenes N] [--workers W]``.

The bank is made from built-in sample scenes (grain crops with their masks), the
background source from the same scenes. The baseline, measured in the same run, is the
straightforward approach: per paste ``skimage.transform.rescale`` + ``rotate`` of the
crop and its mask, boolean-mask copies, and each scene's background built from scratch
(Gaussian noise plus real background pixels resampled with ``rng.choice``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

SHAPE = (512, 512)
N_OBJECTS = (38, 42)


@dataclass
class Obj:
    image: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)


def build_inputs():
    from napari_synthseg.sample_data import make_sample_scene

    objects, images, labels = [], [], []
    for seed in range(3):
        image, lab = make_sample_scene(seed=seed, shape=(768, 1024))
        images.append(image)
        labels.append(lab)
        for i, sl in enumerate(ndimage.find_objects(lab), start=1):
            if sl is None:
                continue
            sl = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
            objects.append(Obj(image[sl], lab[sl] == i))
    return objects, images, labels


def naive_scene(objects, bg_pixels, shape, rng):
    """The simple way: transform every crop with skimage per paste, fresh background per scene."""
    from skimage.transform import rescale, rotate

    height, width = shape
    level = rng.choice(bg_pixels, size=height * width).reshape(shape).astype(np.float32)
    image = level + rng.normal(0, 0.01, size=shape).astype(np.float32)
    labels = np.zeros(shape, dtype=np.uint32)
    for label in range(1, int(rng.integers(N_OBJECTS[0], N_OBJECTS[1] + 1)) + 1):
        obj = objects[int(rng.integers(len(objects)))]
        crop = obj.image.astype(np.float32) / 255.0
        mask = obj.mask.astype(np.float32)
        scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        angle = float(rng.uniform(0, 360))
        crop = rotate(rescale(crop, scale, order=1), angle, resize=True, order=1)
        mask = rotate(rescale(mask, scale, order=1), angle, resize=True, order=1) > 0.5
        if rng.random() < 0.5:
            crop, mask = crop[:, ::-1], mask[:, ::-1]
        crop = np.clip(crop * rng.uniform(0.8, 1.2) + rng.uniform(-0.15, 0.15), 0, 1)
        h, w = mask.shape
        y, x = int(rng.integers(-h // 2, height - h // 2)), int(rng.integers(-w // 2, width - w // 2))
        y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, height), min(x + w, width)
        if y1 <= y0 or x1 <= x0:
            continue
        sub = mask[y0 - y : y1 - y, x0 - x : x1 - x]
        image[y0:y1, x0:x1][sub] = crop[y0 - y : y1 - y, x0 - x : x1 - x][sub]
        labels[y0:y1, x0:x1][sub] = label
    return image, labels


def _worker(args):
    from napari_synthseg.synthesis import BackgroundSource, synthesize_scene

    seed, count = args
    objects, images, labels = build_inputs()
    source = BackgroundSource.from_images(images, labels)
    synthesize_scene(objects, SHAPE, np.random.default_rng(seed), source, n_objects=N_OBJECTS)  # warm caches
    start = time.perf_counter()
    for k in range(count):
        synthesize_scene(objects, SHAPE, np.random.default_rng([seed, k]), source, n_objects=N_OBJECTS)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="scenes for the fast path (per process)")
    parser.add_argument("--baseline-scenes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="processes for the multi-core figure")
    args = parser.parse_args()

    from napari_synthseg.sample_data import make_sample_scene
    from napari_synthseg.synthesis import BackgroundSource, prepare_objects, synthesize_scene

    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    start = time.perf_counter()
    for seed in range(5):
        make_sample_scene(seed=seed, shape=(768, 1024))
    print(f"make_sample_scene 768x1024: {(time.perf_counter() - start) / 5 * 1e3:.0f} ms per scene")

    objects, images, labels = build_inputs()
    start = time.perf_counter()
    source = BackgroundSource.from_images(images, labels)
    print(f"BackgroundSource.from_images (3 images 768x1024): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    prepare_objects(objects)
    print(f"prepare_objects ({len(objects)} objects, once per bank): {(time.perf_counter() - start) * 1e3:.0f} ms")

    rng = np.random.default_rng(0)
    synthesize_scene(objects, SHAPE, rng, source, n_objects=N_OBJECTS)
    pasted = []
    start = time.perf_counter()
    for _ in range(args.scenes):
        _, lab = synthesize_scene(objects, SHAPE, rng, source, n_objects=N_OBJECTS)
        pasted.append(int(lab.max()))
    fast = args.scenes / (time.perf_counter() - start)
    print(
        f"synthesize_scene {SHAPE[0]}x{SHAPE[1]}, {N_OBJECTS} objects pasted "
        f"({np.mean(pasted):.1f} visible), 1 process: {fast:.1f} scenes/s"
    )

    bg_pixels = np.concatenate([im[lab == 0] for im, lab in zip(images, labels)]).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(args.baseline_scenes):
        naive_scene(objects, bg_pixels, SHAPE, rng)
    naive = args.baseline_scenes / (time.perf_counter() - start)
    print(f"naive baseline (skimage rescale+rotate per paste, fresh background), 1 process: {naive:.1f} scenes/s")
    print(f"speed-up over the baseline (1 process): {fast / naive:.1f}x")

    if args.workers > 1:
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.workers) as pool:
            start = time.perf_counter()
            times = pool.map(_worker, [(w, args.scenes) for w in range(args.workers)])
        total = args.workers * args.scenes / max(times)
        print(f"synthesize_scene with {args.workers} processes: {total:.1f} scenes/s in all")


if __name__ == "__main__":
    main()
