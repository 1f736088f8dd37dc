"""Event-loop stalls of the napari viewer while the Train dock trains in its child process.

Run under a display (``xvfb-run -a .venv/bin/python benchmarks/bench_event_loop.py``). A 10 ms
QTimer records the gaps between its ticks; the figure is the longest gap and the 99th
percentile while training runs (default network, realistic load), next to the same
measurement with the viewer idle, taken in the same run. Target: no stall over 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(app, seconds: float, until=None) -> np.ndarray:
    """Gaps (ms) between 10 ms timer ticks over ``seconds`` of the running event loop."""
    from qtpy.QtCore import QTimer

    stamps: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and (until is None or not until()):
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return np.diff(np.asarray(stamps)) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time measured [60]")
    args = parser.parse_args()

    from qtpy.QtWidgets import QApplication

    import napari
    from napari_synthseg._napari.sample import sample_grains
    from napari_synthseg._napari.train_widget import TrainWidget
    from napari_synthseg.bank import ObjectBank

    (image, _, _), (truth, _, _) = sample_grains()
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    layer = viewer.add_image(image, name="grains")
    with tempfile.TemporaryDirectory() as tmp:
        bank = ObjectBank(Path(tmp) / "bank")
        bank.add_from_labels(image, truth, source="sample")
        idle = measure(app, min(args.seconds, 20.0))

        dock = TrainWidget(viewer)
        dock.bank_path.set_path(Path(tmp) / "bank")
        dock.model_path.set_path(Path(tmp) / "model.keras")
        dock.backgrounds.set_checked([layer])
        dock.set_budget("steps", 100_000)
        dock.start()
        # let the child start and import TensorFlow before measuring the steady state
        measure(app, 300.0, until=lambda: dock.n_progress_events >= 2 or not dock.busy)
        busy = measure(app, args.seconds, until=lambda: not dock.busy)
        steps = (dock.last_progress or {}).get("step", 0)
        dock.stop()
        measure(app, 120.0, until=lambda: not dock.busy)

    load = os.getloadavg()
    print(f"cpus: {os.cpu_count()}, load average at the end: {load[0]:.2f}")
    print(f"idle viewer ({idle.size} ticks): max gap {idle.max():.1f} ms, p99 {np.percentile(idle, 99):.1f} ms")
    print(f"training in the child ({busy.size} ticks, {steps} steps): max gap {busy.max():.1f} ms, "
          f"p99 {np.percentile(busy, 99):.1f} ms")
    print(f"ratio of max gaps training/idle: {busy.max() / max(idle.max(), 1e-9):.2f}; "
          f"target max gap <= 100 ms: {'met' if busy.max() <= 100 else 'NOT met'}")
    print(f"tensorflow in the napari process: {'tensorflow' in sys.modules}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
