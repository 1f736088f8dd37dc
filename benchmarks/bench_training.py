"""Training speed of the U-Net sizes and of the Keras backends (run by hand).

    .venv/bin/python benchmarks/bench_training.py                 # sizes, TensorFlow
    .venv/bin/python benchmarks/bench_training.py --backends tensorflow,jax,torch
    .venv/bin/python benchmarks/bench_training.py --xla --bases 8 16 --depths 3

Prints, per network size, training patches/s (patch 256, batch 4, fixed batches so only the
network is timed) and the ratio to a baseline measured in the same run: a plain 4-layer,
16-filter full-resolution FCN like the reference program's. Also the scene-generation rate
(synthesis + targets), to show whether data or the network limits training. With
``--backends`` each backend runs in its own process (KERAS_BACKEND must be set before Keras
is imported) and reports training patches/s and prediction tiles/s for base 16, depth 3.
With ``--xla`` each U-Net is also trained with its step compiled by XLA (``train_model(xla="on")``;
Keras leaves XLA off on CPU-only machines), and the ratio to the same network without it is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _objects(n=40, seed=0):
    from napari_synthseg.bank import BankObject

    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n):
        r = int(rng.integers(6, 30))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        mask = np.hypot(yy / r, xx / (r * rng.uniform(0.5, 1.0))) <= 1
        image = (rng.uniform(90, 230) + rng.normal(0, 8, mask.shape)).clip(0, 255).astype(np.uint8)
        objects.append(BankObject(id=f"o{i}", image=image, mask=mask))
    return objects


def _batches(patch, batch, n, seed=0):
    from napari_synthseg.model.data import SyntheticScenes

    scenes = SyntheticScenes(_objects(), patch=patch, batch_size=batch, seed=seed)
    t0 = time.perf_counter()
    batches = [scenes.batch(i) for i in range(n)]
    seconds = time.perf_counter() - t0
    return batches, n * batch / seconds


def _baseline_model():
    import keras
    from keras import layers

    inputs = keras.Input((None, None, 1))
    x = inputs
    for _ in range(4):
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(3, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="baseline_fcn")


def _train_rate(model, batches, steps, warmup=2, jit_compile=False):
    import keras

    from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SegmentationLoss(), metrics=[ForegroundIoU()],
                  jit_compile=jit_compile)
    t0 = time.perf_counter()
    for i in range(warmup):
        model.train_on_batch(*batches[i % len(batches)])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        model.train_on_batch(*batches[i % len(batches)])
    seconds = time.perf_counter() - t0
    return steps * len(batches[0][0]) / seconds, first


def _predict_rate(model, tile=512, batch=4, repeats=3):
    x = np.random.default_rng(0).random((batch, tile, tile, 1), dtype=np.float32)
    model.predict_on_batch(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        model.predict_on_batch(x)
    return repeats * batch / (time.perf_counter() - t0)


def run_sizes(args) -> None:
    import keras

    from napari_synthseg.model.network import build_unet

    batches, scene_rate = _batches(args.patch, args.batch, 4)
    base_rate, base_first = _train_rate(_baseline_model(), batches, args.steps)
    print(f"backend {keras.backend.backend()}, patch {args.patch}, batch {args.batch}, {args.steps} timed steps, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"scene generation (synthesis + augmentation + targets): {scene_rate:.1f} patches/s")
    print(f"{'network':<24}{'params':>9}{'train patches/s':>17}{'vs baseline':>13}{'first 2 steps s':>17}")
    print(f"{'baseline FCN 4x16':<24}{_baseline_model().count_params():>9}{base_rate:>17.2f}{1.0:>13.2f}"
          f"{base_first:>17.1f}")
    for depth in args.depths:
        for base in args.bases:
            model = build_unet(base, depth)
            rate, first = _train_rate(model, batches, args.steps)
            print(f"{f'unet base {base} depth {depth}':<24}{model.count_params():>9}{rate:>17.2f}"
                  f"{rate / base_rate:>13.2f}{first:>17.1f}", flush=True)
            if args.xla:
                xla_rate, xla_first = _train_rate(build_unet(base, depth), batches, args.steps, jit_compile=True)
                print(f"{'  same, XLA':<24}{'':>9}{xla_rate:>17.2f}{xla_rate / base_rate:>13.2f}{xla_first:>17.1f}"
                      f"   XLA / plain: {xla_rate / rate:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def run_backend(args) -> dict:
    import keras

    from napari_synthseg.model.network import build_unet

    batches, _ = _batches(args.patch, args.batch, 4)
    keras.utils.set_random_seed(0)
    rate, first = _train_rate(build_unet(16, 3), batches, args.steps)
    predict_rate = _predict_rate(build_unet(16, 3))
    return {"backend": keras.backend.backend(), "train_patches_per_s": rate, "first_steps_s": first,
            "predict_tiles512_per_s": predict_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per network")
    parser.add_argument("--bases", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--depths", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--backends", help="comma-separated, e.g. tensorflow,jax,torch")
    parser.add_argument("--xla", action="store_true", help="also time each U-Net with XLA compilation")
    parser.add_argument("--_one-backend", dest="one_backend", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_backend:
        print("RESULT" + json.dumps(run_backend(args)))
        return
    if not args.backends:
        run_sizes(args)
        return
    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [sys.executable, __file__, "--_one-backend", "--patch", str(args.patch), "--batch", str(args.batch),
               "--steps", str(args.steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{backend}: failed ({tail})")
            continue
        results.append(json.loads(lines[-1][len("RESULT"):]))
    reference = next((r for r in results if r["backend"] == "tensorflow"), results[0] if results else None)
    print(f"U-Net base 16 depth 3, train patch {args.patch} batch {args.batch}; predict 4 tiles of 512; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'backend':<12}{'train patches/s':>17}{'vs tf':>8}{'predict tiles/s':>17}{'vs tf':>8}"
          f"{'first 2 steps s':>17}")
    for r in results:
        print(f"{r['backend']:<12}{r['train_patches_per_s']:>17.2f}"
              f"{r['train_patches_per_s'] / reference['train_patches_per_s']:>8.2f}"
              f"{r['predict_tiles512_per_s']:>17.2f}"
              f"{r['predict_tiles512_per_s'] / reference['predict_tiles512_per_s']:>8.2f}{r['first_steps_s']:>17.1f}")


if __name__ == "__main__":
    main()
