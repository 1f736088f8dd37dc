"""Running lists of dask-delayed tasks on local threads or a dask.distributed cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .sources import LargeImageError

#: Seconds to wait for a dask.distributed scheduler to answer.
SCHEDULER_TIMEOUT_S = 5


def _describe(scheduler) -> str:
    if scheduler is None:
        return "threads"
    if isinstance(scheduler, str):
        return scheduler
    return f"distributed {getattr(scheduler, 'scheduler_info', lambda: {})().get('address', '')}".strip()


def _is_address(scheduler) -> bool:
    return isinstance(scheduler, str) and ("://" in scheduler or (":" in scheduler and scheduler not in
                                                                    ("threads", "sync", "processes")))


class _Runner:
    """Runs lists of dask-delayed tasks on the chosen scheduler, reporting each finished one."""

    def __init__(self, scheduler=None, num_workers: int | None = None):
        self.scheduler = scheduler
        self.num_workers = num_workers
        self.client = None
        self._own_client = False

    def __enter__(self):
        if _is_address(self.scheduler):
            from distributed import Client

            try:
                self.client = Client(self.scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:  # nothing listens there (distributed raises OSError)
                raise LargeImageError(
                    f"cannot reach a dask scheduler at {self.scheduler} within {SCHEDULER_TIMEOUT_S} s; start one "
                    "(`dask scheduler`) and check the address, or leave out --scheduler to use local threads"
                ) from exc
            self._own_client = True
        elif self.scheduler is not None and not isinstance(self.scheduler, str):
            self.client = self.scheduler  # a distributed.Client
        elif self.scheduler not in (None, "threads", "sync", "synchronous", "processes"):
            raise ValueError(f"scheduler must be None, 'threads', 'sync', 'processes', a dask.distributed "
                             f"address like tcp://127.0.0.1:8786, or a Client; got {self.scheduler!r}")
        return self

    def __exit__(self, *exc):
        if self._own_client:
            self.client.close()

    def run(self, tasks: list, on_done: Callable[[Any], None] | None = None,
            return_exceptions: bool = False) -> list:
        import dask

        if not tasks:
            return []
        if self.client is not None:
            from distributed import as_completed

            futures = self.client.compute(tasks)
            index = {f.key: i for i, f in enumerate(futures)}
            results: list = [None] * len(futures)
            for future in as_completed(futures):
                try:
                    results[index[future.key]] = future.result()
                except Exception as exc:
                    if not return_exceptions:
                        for f in futures:
                            f.cancel()
                        raise
                    results[index[future.key]] = exc
                if on_done is not None:
                    on_done(results[index[future.key]])
            return results
        from dask.callbacks import Callback

        keys = {t.key for t in tasks}
        lock = threading.Lock()

        def posttask(key, result, dsk, state, worker_id):
            if key in keys and on_done is not None:
                with lock:
                    on_done(result)

        scheduler = "sync" if self.scheduler in ("sync", "synchronous") else (self.scheduler or "threads")
        kwargs = {"num_workers": self.num_workers} if self.num_workers and scheduler != "sync" else {}
        with Callback(posttask=posttask):
            return list(dask.compute(*tasks, scheduler=scheduler, **kwargs))
