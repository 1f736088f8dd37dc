"""A folder of a kind this project holds no real images of: SEM images of agglomerated spheres.

Run (the folder, then the default command on it, then the scores; 2-core CPU, ~20 minutes):

    .venv/bin/python benchmarks/sem_agglomerates.py --out /work/exp/agg
    .venv/bin/synthseg run /work/exp/agg/images --out /work/exp/agg_run --minutes 15
    .venv/bin/synthseg evaluate /work/exp/agg_run /work/exp/agg/masks --split /work/exp/agg/split.csv --subset tune

The images are rendered from geometry, not with the package's synthesizer: spheres of one
material (log-normal sizes, 10-26 px median diameter per image) lie singly and in agglomerates
whose members touch or overlap a little, seen from above with a z-buffer, so the masks hold each
particle's visible part. Gray levels follow a secondary-electron image: brighter where the surface
tilts (the secant law, so rims are bright), one side brighter (the detector's), crevices darker,
then blur and shot noise. 24 images of 768 x 1024 (``split.csv``: even ones ``tune``, odd ones
``check``); visible pieces under 10 px are not counted as particles. The script prints, per half,
what two plain methods score on the folder: Li's threshold (objects = connected components) and
Li's threshold split by a watershed of its distance transform, the baseline for touching particles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, io, measure, segmentation
from skimage.feature import peak_local_max

from napari_synthseg.metrics import DatasetScores

SHAPE = (768, 1024)
MIN_PARTICLE_PX = 10


def place_spheres(rng: np.random.Generator, shape: tuple[int, int], count: int, median_diameter: float) -> list:
    """``count`` spheres ``(y, x, radius, height of the centre)``: a third alone, the rest in agglomerates."""
    height, width = shape

    def radius() -> float:
        return max(3.0, rng.lognormal(np.log(median_diameter / 2), 0.35))

    spheres = []
    while len(spheres) < count:
        if rng.random() < 0.35:
            r = radius()
            spheres.append((rng.uniform(0, height), rng.uniform(0, width), r, r * (1 + rng.uniform(0, 0.3))))
            continue
        members = int(rng.geometric(1 / 6))
        r = radius()
        group = [(rng.uniform(0, height), rng.uniform(0, width), r, r)]
        for _ in range(members):
            anchor = group[rng.integers(len(group))]
            r = radius()
            angle = rng.uniform(0, 2 * np.pi)
            reach = (anchor[2] + r) * rng.uniform(0.78, 1.0)  # touching, or overlapping a little
            y, x = anchor[0] + reach * np.sin(angle), anchor[1] + reach * np.cos(angle)
            if any(np.hypot(y - o[0], x - o[1]) < 0.7 * (o[2] + r) for o in group if o is not anchor):
                continue
            group.append((y, x, r, r * (1 + rng.uniform(0, 0.6))))
        spheres += [o for o in group if -o[2] < o[0] < height + o[2] and -o[2] < o[1] < width + o[2]]
    return spheres[:count]


def render_sem(rng: np.random.Generator, shape: tuple[int, int], spheres: list) -> tuple[np.ndarray, np.ndarray]:
    """uint8 secondary-electron image and the visible part of each sphere as labels."""
    top = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.int32)
    facing = np.ones(shape, np.float32)  # cosine of the surface's tilt
    side = np.zeros(shape, np.float32)
    gain = np.ones(shape, np.float32)
    for i, (y, x, r, z) in enumerate(spheres, start=1):
        y0, y1 = max(0, int(y - r)), min(shape[0], int(y + r) + 2)
        x0, x1 = max(0, int(x - r)), min(shape[1], int(x + r) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        rows, cols = np.mgrid[y0:y1, x0:x1]
        d2 = (rows - y) ** 2 + (cols - x) ** 2
        h = np.sqrt(np.clip(r * r - d2, 0, None))
        seen = (d2 < r * r) & (z + h > top[y0:y1, x0:x1])
        box = (slice(y0, y1), slice(x0, x1))
        top[box][seen] = (z + h)[seen]
        labels[box][seen] = i
        facing[box][seen] = np.maximum(h[seen] / r, 0.12)
        side[box][seen] = ((cols - x) / r)[seen]
        gain[box][seen] = rng.normal(1.0, 0.05)
    ground_level, particle_level = rng.uniform(0.12, 0.28), rng.uniform(0.35, 0.55)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    ground = ground_level * (1 + 0.25 * (rng.uniform(-1, 1) * rows + rng.uniform(-1, 1) * cols))
    ground = ground + ndi.gaussian_filter(rng.normal(0, 0.04, shape), 6)
    particle = (particle_level * gain * (0.55 + 0.45 * np.minimum(1 / facing, 4.0))
                * (1 + 0.25 * side * rng.choice([-1, 1])))
    image = np.where(labels > 0, particle, ground)
    crevice = np.clip(ndi.gaussian_filter(top, 3) - top, 0, None)  # lower than its surroundings
    image = ndi.gaussian_filter(image * np.exp(-crevice / 6.0), rng.uniform(0.7, 1.3))
    image = rng.poisson(np.clip(image, 0, None) * 120) / 120.0 + rng.normal(0, 0.02, shape)
    image = np.clip(image / np.percentile(image, 99.8) * 230, 0, 255).astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    labels[(sizes < MIN_PARTICLE_PX)[labels] & (labels > 0)] = 0
    return image, labels


def write_folder(out: Path, n: int = 24, seed: int = 0) -> dict[str, list[str]]:
    """Write ``images/``, ``masks/`` and ``split.csv`` under ``out``; the stems of each half."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    halves: dict[str, list[str]] = {"tune": [], "check": []}
    for k in range(n):
        diameter = rng.uniform(10, 26)
        count = int(rng.uniform(0.08, 0.3) * SHAPE[0] * SHAPE[1] / (np.pi * (diameter / 2) ** 2))
        image, labels = render_sem(rng, SHAPE, place_spheres(rng, SHAPE, count, diameter))
        stem = f"agg{k:02d}"
        io.imsave(out / "images" / f"{stem}.png", image, check_contrast=False)
        io.imsave(out / "masks" / f"{stem}.png", labels.astype(np.uint16), check_contrast=False)
        halves["tune" if k % 2 == 0 else "check"].append(stem)
    rows = [f"{s}.png,{h}" for h in halves for s in halves[h]]
    (out / "split.csv").write_text("image,half\n" + "\n".join(rows) + "\n")
    return halves


def li_labels(image: np.ndarray, split: bool) -> np.ndarray:
    """Li's threshold of the smoothed image; ``split``: parted by a distance-transform watershed."""
    smooth = filters.gaussian(image.astype(float), 1)
    foreground = ndi.binary_fill_holes(smooth > filters.threshold_li(smooth))
    components = measure.label(foreground)
    if not split:
        return components
    distance = ndi.distance_transform_edt(foreground)
    peaks = peak_local_max(filters.gaussian(distance, 1), min_distance=4, labels=components, exclude_border=False)
    markers = np.zeros(foreground.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-distance, markers, mask=foreground)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write images/, masks/ and split.csv to")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    halves = write_folder(args.out, args.images, args.seed)
    for half, stems in halves.items():
        masks = {s: io.imread(args.out / "masks" / f"{s}.png") for s in stems}
        print(f"{half}: {len(stems)} images, {sum(len(np.unique(m)) - 1 for m in masks.values())} particles")
        for name, split in (("Li threshold", False), ("Li + distance watershed", True)):
            scores = DatasetScores()
            for s in stems:
                scores.add(li_labels(io.imread(args.out / "images" / f"{s}.png"), split), masks[s])
            r = scores.summary()
            print(f"  {name:24s} pixel IoU {r['pixel_iou']:.3f}  object F1 {r['object_f1']:.3f}  AP {r['ap']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
