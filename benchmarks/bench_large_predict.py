"""Peak memory and throughput of predicting a large uint8 zarr image lazily, tile by tile.

Run by hand::

    .venv/bin/python benchmarks/bench_large_predict.py                  # 16384^2, all tiles
    .venv/bin/python benchmarks/bench_large_predict.py --size 4096 --max-tiles 4

Model: ``build_unet(base_filters=8, depth=3)``, untrained (weights as initialised, seed 0):
enough for memory and throughput, not for accuracy. Each measurement runs in a child
process so its peak resident memory (``ru_maxrss``) is its own. Printed:

* peak RSS and Mpixel/s of ``process_large`` on the local threaded scheduler;
* the same on a ``LocalCluster`` (2 workers, 127.0.0.1): wall time and identical output
  (on the image given by ``--cluster-size``, default 2048^2 to stay short);
* a baseline in the same run: the in-memory ``predict`` of the same model on a 2048^2 image
  (its Mpixel/s and peak RSS), the ratio tiled/in-memory throughput;
* the cost of choosing the large image's view (``ModelSegmenter.prepare`` with ``max_shrink`` 4, four
  1024^2 windows seen at full size, half and a quarter) against ``prepare`` without views, and the zoom chosen.

The throughput runs segment at full size only (``max_shrink`` 1, in memory and tiled alike), so the ratio
measures the tiling; the views' cost is the ``prepare`` line (tiles then run at the chosen zoom).

``--max-tiles N`` processes only the first N core tiles (time per tile is extrapolated to
the whole image; the memory reported is what was measured, never extrapolated).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_model(path: Path) -> None:
    import keras

    from napari_synthseg.model.network import build_unet
    from napari_synthseg.model.sidecar import write_sidecar

    keras.utils.set_random_seed(0)
    model = build_unet(base_filters=8, depth=3)
    model.save(path)
    write_sidecar(path, {"network": {"base_filters": 8, "depth": 3}, "training": {"steps": 0}})


def make_zarr(path: Path, size: int) -> None:
    import numpy as np
    import zarr

    arr = zarr.open_array(str(path), mode="w", shape=(size, size), chunks=(1024, 1024), dtype="uint8")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1024, :1024]
    for r0 in range(0, size, 1024):
        for c0 in range(0, size, 1024):
            block = rng.normal(60, 12, (1024, 1024))
            for _ in range(20):  # grains
                cy, cx, r = rng.uniform(0, 1024, 2).tolist() + [rng.uniform(8, 60)]
                block[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += rng.uniform(40, 140)
            arr[r0:r0 + 1024, c0:c0 + 1024] = np.clip(block, 0, 255).astype(np.uint8)


def child(args) -> None:
    """One measurement in this process; prints a JSON line."""
    import resource

    import numpy as np

    from napari_synthseg.largeimage import ModelSegmenter, open_image, process_large

    t0 = time.perf_counter()
    extra = {}
    if args.mode == "inmemory":
        from napari_synthseg.model.prediction import load_model, predict

        image = np.asarray(open_image(args.image)._handle()[: args.inmem_size, : args.inmem_size])
        model = load_model(args.model)
        t0 = time.perf_counter()
        labels = predict(model, image, tile=512, overlap=64, batch_size=4, max_shrink=1)
        pixels = image.size
        n = int(labels.max())
    elif args.mode == "prepare":
        t0 = time.perf_counter()
        ready = ModelSegmenter(model_path=str(args.model), tile=512, overlap=64, batch_size=4,
                               max_shrink=args.max_shrink).prepare(open_image(args.image))
        pixels, n, extra = 0, 0, {"zoom": ready.zooms[()]}
    else:
        seg = ModelSegmenter(model_path=str(args.model), tile=512, overlap=64, batch_size=4, max_shrink=1)
        source = open_image(args.image)
        if args.max_tiles:
            # Process only the first N core tiles: crop the lazy source to those tile rows/cols.
            import math

            per_side = max(1, int(math.sqrt(args.max_tiles)))
            side = min(source.shape[0], per_side * args.tile)

            from napari_synthseg.largeimage import open_lazy

            source = open_lazy(args.image)[:side, :side]
        scheduler = None
        cluster = None
        if args.mode == "cluster":
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True,
                                   dashboard_address=None)
            scheduler = cluster.scheduler_address
        t0 = time.perf_counter()
        result = process_large(source, args.out, seg, tile=args.tile, overlap=args.overlap, scheduler=scheduler,
                               num_workers=2)
        if cluster is not None:
            cluster.close()
        pixels = result.shape[-1] * result.shape[-2]
        n = result.n_objects
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"mode": args.mode, "pixels": pixels, "seconds": seconds, "peak_rss_mb": peak_mb,
                      "children_peak_rss_mb": children_mb, "objects": n, **extra}))


def run_child(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--max-tiles", type=int, default=0)
    parser.add_argument("--cluster-size", type=int, default=2048)
    parser.add_argument("--inmem-size", type=int, default=2048)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--mode", default="local")
    parser.add_argument("--image")
    parser.add_argument("--model")
    parser.add_argument("--out")
    parser.add_argument("--max-shrink", type=float, default=1.0)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_large_"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny.keras"
    if not model.exists():
        make_model(model)
    big = work / f"image_{args.size}.zarr"
    if not big.exists():
        t = time.perf_counter()
        make_zarr(big, args.size)
        print(f"wrote {big} in {time.perf_counter() - t:.0f} s")
    small = work / f"image_{args.cluster_size}.zarr"
    if not small.exists():
        make_zarr(small, args.cluster_size)
    common = ["--model", str(model), "--tile", str(args.tile), "--overlap", str(args.overlap)]

    base = run_child(["--mode", "inmemory", "--image", str(small), "--inmem-size", str(args.inmem_size), *common])
    base_rate = base["pixels"] / base["seconds"] / 1e6
    print(f"baseline in-memory predict {args.inmem_size}^2: {base_rate:.2f} Mpixel/s, "
          f"peak RSS {base['peak_rss_mb']:.0f} MB")

    big_run = run_child(["--mode", "local", "--image", str(big), "--out", str(work / "big_labels.zarr"),
                         "--max-tiles", str(args.max_tiles), *common])
    rate = big_run["pixels"] / big_run["seconds"] / 1e6
    full_pixels = args.size * args.size
    print(f"process_large {args.size}^2 uint8 zarr (local threads, 2 workers"
          + (f", first {big_run['pixels'] / 1e6:.0f} Mpixel only" if args.max_tiles else "") + "): "
          f"peak RSS {big_run['peak_rss_mb']:.0f} MB, {rate:.2f} Mpixel/s, "
          f"{big_run['seconds']:.0f} s (whole image: {full_pixels / 1e6 / rate:.0f} s "
          + ("extrapolated" if args.max_tiles else "measured") + f"); ratio to in-memory throughput "
          f"{rate / base_rate:.2f}")

    plain = run_child(["--mode", "prepare", "--image", str(big), "--max-shrink", "1", *common])
    views = run_child(["--mode", "prepare", "--image", str(big), "--max-shrink", "4", *common])
    print(f"prepare {args.size}^2 (normalisation range, scale-bar box): {plain['seconds']:.1f} s without views, "
          f"{views['seconds']:.1f} s with the view judged on four 1024^2 windows (zoom chosen: {views['zoom']:g})")

    local = run_child(["--mode", "local", "--image", str(small), "--out", str(work / "small_local.zarr"), *common])
    cluster = run_child(["--mode", "cluster", "--image", str(small), "--out", str(work / "small_cluster.zarr"),
                         *common])
    import numpy as np

    from napari_synthseg.largeimage import read_labels

    # the outputs are OME-Zarr images with the labels in labels/segmentation
    same = np.array_equal(read_labels(work / "small_local.zarr"), read_labels(work / "small_cluster.zarr"))
    print(f"{args.cluster_size}^2: local scheduler {local['seconds']:.1f} s, LocalCluster(2 workers, 127.0.0.1) "
          f"{cluster['seconds']:.1f} s (ratio {cluster['seconds'] / local['seconds']:.2f}); identical output: {same}")
    for name in ("big_labels.zarr", "small_local.zarr", "small_cluster.zarr"):
        import shutil

        shutil.rmtree(work / name, ignore_errors=True)


if __name__ == "__main__":
    main()
