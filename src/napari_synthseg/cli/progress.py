"""Progress bars on stderr, Ctrl-C that stops cleanly, and what an interrupted run says about its model."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _stop_on_ctrl_c(event: threading.Event, what: str):
    """The first Ctrl-C sets ``event`` (the work stops at its next check, keeping what it has);
    a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print(f"\nsynthseg: stopping {what} (press Ctrl-C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _bar(total: int, desc: str, unit: str = "file"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=None if sys.stderr.isatty() else False, leave=True)


def _training_reporter(bar):
    """A ``train_model`` callback that shows the step, loss and validation IoU on a progress bar."""
    def report(p):
        bar.total = p.total_steps or bar.total
        bar.n = p.step
        bar.set_postfix(loss=f"{p.loss:.3f}", val_iou="-" if p.val_iou is None else f"{p.val_iou:.3f}")
        bar.refresh()

    return report


def _stage_progress():
    bars: dict[str, object] = {}

    def report(stage: str, done: int, total: int, message: str = "") -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = _bar(total, stage, unit="step" if stage.startswith("train") else "image")
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if total and done >= total:
            bar.close()

    return report, bars


def _model_state(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _where_model(path: Path, before: tuple | None) -> str:
    """A true sentence about the model file after an interrupted run."""
    now = _model_state(path)
    if now is None:
        return "no model was saved"
    if now == before:
        return f"no model was saved; {path} is as it was"
    return f"the best model so far is in {path}"
