"""napari reader for labels written by ``napari_synthseg.largeimage`` (``*_labels.zarr``).

Opens the zarr lazily (dask) as a Labels layer; napari loads only what is on screen.
Only stores this package finished (marker attribute present) are claimed; other zarr
stores are left to other readers.
"""

from __future__ import annotations

from pathlib import Path


def _is_our_labels(path) -> bool:
    if not isinstance(path, (str, Path)):
        return False
    path = Path(path)
    if path.suffix.lower() != ".zarr" or not path.is_dir():
        return False
    from napari_synthseg.largeimage import is_complete

    return is_complete(path)


def get_reader(path):
    """Return a reader for a finished ``*_labels.zarr`` from this package, else None."""
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    return read_labels_zarr if _is_our_labels(path) else None


def read_labels_zarr(path):
    """Layer data for napari: ``[(dask labels, {"name": ...}, "labels")]``."""
    if isinstance(path, list):
        path = path[0]
    from napari_synthseg.largeimage import open_lazy

    data = open_lazy(path)
    return [(data, {"name": Path(path).stem}, "labels")]
