"""Time full-resolution ``predict`` on a 2592x2048 image for several tile sizes and batches.

Run by hand: ``.venv/bin/python benchmarks/bench_predict.py [--tiles 256 512 1024]
[--batches 1 2 4] [--overlap 96] [--overlaps 32 64 128] [--precision auto] [--repeats 1]``.

The network is the default ``build_unet()`` (``--base-filters``, ``--depth``) with random He-normal weights
(the cost does not depend on the weights; these make the output vary, so tiling differences show). Baseline,
measured in the same run: one untiled pass of the whole padded image through the network. Also reports, for
each tile size, how far the tiled probabilities are from the untiled ones (max and mean absolute difference),
and the post-processing time on the ideal probabilities of a sample scene with ground truth.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_synthseg.model import DEFAULT_BASE_FILTERS, DEFAULT_DEPTH

SHAPE = (2048, 2592)


def _image() -> tuple[np.ndarray, str]:
    seed_dir = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed_em" / "test"
    from napari_synthseg.image_io import list_images, read_image, to_gray

    if seed_dir.is_dir():
        for path in list_images(seed_dir):
            image = to_gray(read_image(path))
            if image.shape == SHAPE:
                return image, f"seed_em/test/{path.name}"
    from napari_synthseg.sample_data import make_sample_scene

    return make_sample_scene(seed=0, shape=SHAPE)[0], "make_sample_scene(seed=0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--overlap", type=int, default=96)
    parser.add_argument("--overlaps", type=int, nargs="*", default=[32, 64, 128],
                        help="other overlaps tried with the best tile and batch")
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per setting (best is kept)")
    parser.add_argument("--base-filters", type=int, default=DEFAULT_BASE_FILTERS)
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    args = parser.parse_args()

    import keras

    from napari_synthseg.instances import probabilities_to_instances
    from napari_synthseg.model.network import build_unet
    from napari_synthseg.model.prediction import (
        _fast_bfloat16,
        _pad_to_multiple,
        load_model,
        predict,
        predict_probabilities,
    )
    from napari_synthseg.model.sidecar import write_sidecar
    from napari_synthseg.normalize import percentile_normalize

    image, source = _image()
    precision = args.precision if args.precision != "auto" else ("bfloat16" if _fast_bfloat16() else "float32")
    print(f"image: {source} {image.shape} {image.dtype}; keras {keras.__version__} ({keras.backend.backend()}); "
          f"{os.cpu_count()} CPUs; precision {precision}; load average {os.getloadavg()[0]:.2f}", flush=True)
    keras.utils.set_random_seed(0)
    network = build_unet(args.base_filters, args.depth)
    # He-normal kernels: a freshly initialised U-Net's output is nearly constant, which would
    # make the tiled-vs-untiled differences below meaninglessly small; these weights use the
    # whole receptive field (a worst case for tiling; timing does not depend on weights).
    rng = np.random.default_rng(0)
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, *rest = layer.get_weights()
            std = np.sqrt(2.0 / np.prod(kernel.shape[:3]))
            layer.set_weights([rng.normal(0.0, std, kernel.shape).astype(np.float32), *rest])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.keras"
        network.save(path)
        write_sidecar(path, {"network": {"base_filters": args.base_filters, "depth": args.depth}})
        model = load_model(path)

    def timed(fn):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - start)
        return best, out

    # Keras traces a new graph per input shape until it falls back to a shape-generic one
    # (about 0.7 s each); pay that before timing, as a long session would have.
    for prec in {"float32", precision}:
        for shape in ((1, 64, 64), (2, 96, 96), (3, 64, 128), (4, 128, 64)):
            model.compute_model(prec).predict_on_batch(np.zeros(shape + (1,), np.float32))

    # Baseline: the whole (padded) image through the float32 network in one call, no tiling.
    plane, crop = _pad_to_multiple(percentile_normalize(image, *model.percentiles), model.pad_multiple, 0)
    whole = plane[None, ..., None]
    untiled_s, untiled = timed(lambda: np.asarray(model.keras_model.predict_on_batch(whole))[0][crop])
    print(f"baseline: untiled float32 network pass {untiled_s:.2f} s", flush=True)

    results = []
    for tile in args.tiles:
        for batch_size in args.batches:
            net_s, prob = timed(lambda tile=tile, batch_size=batch_size: predict_probabilities(
                model, image, tile=tile, overlap=args.overlap, batch_size=batch_size, precision=precision))
            diff = np.abs(prob - untiled)
            inner = diff[args.overlap:-args.overlap, args.overlap:-args.overlap]  # the baseline has no border margin
            results.append((net_s, tile, batch_size))
            print(f"tile {tile:5d} batch {batch_size}: tiled {precision} probabilities {net_s:6.2f} s "
                  f"= {net_s / untiled_s:4.2f}x baseline; |tiled - untiled float32| inside max {inner.max():.4f} "
                  f"mean {diff.mean():.5f}", flush=True)
    net_s, tile, batch_size = min(results)
    # Seams: float32 both ways, so the differences come from tiling alone.
    for overlap in [args.overlap] + list(args.overlaps):
        other_s, prob = timed(lambda overlap=overlap: predict_probabilities(
            model, image, tile=tile, overlap=overlap, batch_size=batch_size, precision="float32"))
        inner = np.abs(prob - untiled)[args.overlap:-args.overlap, args.overlap:-args.overlap]
        print(f"float32 tile {tile} batch {batch_size} overlap {overlap:3d}: {other_s:.2f} s; "
              f"|tiled - untiled| inside max {inner.max():.4f} mean {inner.mean():.5f}", flush=True)

    # Post-processing on realistic maps: the ideal targets of a sample scene with ground truth
    # (untrained weights give a near-constant map, which says nothing about this cost).
    from napari_synthseg.model.targets import labels_to_targets
    from napari_synthseg.sample_data import make_sample_scene

    truth = make_sample_scene(seed=1, shape=SHAPE)[1]
    ideal = labels_to_targets(truth)
    post = {}
    for method in ("distance", "watershed", "components"):
        post[method], found = timed(lambda method=method: probabilities_to_instances(ideal, method=method))
        print(f"post-processing {method:10s} on ideal maps of a sample scene: {post[method]:.2f} s, "
              f"{found.max()} objects (truth {len(np.unique(truth)) - 1})")
    print(f"best: tile {tile} batch {batch_size} ({precision}): {net_s:.2f} s probabilities + "
          f"{post['distance']:.2f} s instances = {net_s + post['distance']:.2f} s per 2592x2048 image "
          f"(target <= 10 s); {untiled_s / net_s:.2f}x faster than the untiled float32 pass")

    full_s, labels = timed(lambda: predict(model, image, tile=tile, overlap=args.overlap, batch_size=batch_size,
                                           precision=precision))
    print(f"end-to-end predict() with random weights: {full_s:.2f} s ({labels.max()} objects from a "
          f"meaningless map; its post-processing cost is not that of a trained model)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
