"""Seconds from a compiled network to its first finished training step (run by hand).

    .venv/bin/python benchmarks/first_step.py                  # default network, XLA off and on
    .venv/bin/python benchmarks/first_step.py --repeats 3 --base 4 --depth 2

What a user waits for after "building the model" before the first step shows, and what every short
training in the test suite pays. Two arms, alternating in one process on the same batch: ``built``
builds Adam's slot variables before the first step, as ``train_model`` does; ``keras`` leaves that to
Keras, which (TensorFlow backend, no distribution strategy) creates them inside the first step's trace,
so TensorFlow traces the step twice. Prints each arm's median seconds, how many times the step was
traced, and the ratio keras / built.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _first_step(arm: str, base: int, depth: int, patch: int, xla: bool) -> tuple[float, int]:
    """Seconds to the first step's end, and the number of traces of the step."""
    import keras

    from napari_synthseg.model.losses import ForegroundIoU, SegmentationLoss
    from napari_synthseg.model.network import build_unet

    rng = np.random.default_rng(0)
    x = rng.random((4, patch, patch, 1), dtype=np.float32)
    y = (rng.random((4, patch, patch, 3)) > 0.5).astype(np.float32)
    model = build_unet(base, depth)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SegmentationLoss(), metrics=[ForegroundIoU()],
                  jit_compile=xla)
    traces = []
    real_step = model.train_step

    def train_step(data):
        traces.append(1)  # Python runs here only while TensorFlow traces
        return real_step(data)

    model.train_step = train_step
    t0 = time.perf_counter()
    if arm == "built":
        model.optimizer.build(model.trainable_variables)
    model.train_on_batch(x, y)
    return time.perf_counter() - t0, len(traces)


def main(argv=None) -> int:
    from napari_synthseg.model.params import TrainingParams

    default = TrainingParams(steps=1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="networks per arm and setting [3]")
    parser.add_argument("--base", type=int, default=default.base_filters)
    parser.add_argument("--depth", type=int, default=default.depth)
    parser.add_argument("--patch", type=int, default=default.patch)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    print(f"network base {args.base}, depth {args.depth}, batch 4 of {args.patch}²; {args.repeats} per arm")
    for xla in (False, True):
        seconds = {"keras": [], "built": []}
        traces = {}
        _first_step("built", args.base, args.depth, args.patch, xla)  # warm-up: TensorFlow's own first use
        for _ in range(args.repeats):
            for arm in ("keras", "built"):
                s, n = _first_step(arm, args.base, args.depth, args.patch, xla)
                seconds[arm].append(s)
                traces[arm] = n
        median = {arm: statistics.median(v) for arm, v in seconds.items()}
        print(f"XLA {'on ' if xla else 'off'}  keras {median['keras']:.2f} s ({traces['keras']} traces)  "
              f"built {median['built']:.2f} s ({traces['built']} trace)  ratio {median['keras'] / median['built']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
