"""napari reader for labels written by ``napari_synthseg.largeimage`` (``*_labels.zarr``).

Opens the zarr lazily (dask): napari loads only what is on screen. A current output is an OME-Zarr
image with its labels (both layers come with the pixel size as scale and units, all pyramid levels);
an output of an earlier version is one plain array (one Labels layer). Only stores this package
finished (marker attribute present) are claimed; other zarr stores are left to other readers
(napari-ome-zarr opens ours too).
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


def _pyramid(group):
    """The levels of an NGFF multiscales group as dask arrays, finest first."""
    import dask.array as da

    return [da.from_zarr(group[d["path"]]) for d in group.attrs["multiscales"][0]["datasets"]]


def read_labels_zarr(path):
    """Layer data for napari: ``[(image, {...}, "image"), (labels, {...}, "labels")]`` (old outputs: labels only)."""
    if isinstance(path, list):
        path = path[0]
    import zarr

    from napari_synthseg._napari.scaled_reader import layer_geometry
    from napari_synthseg.ome_zarr_io import is_ome_labels, labels_array, zarr_pixel_size

    path = Path(path)
    geometry = layer_geometry(zarr_pixel_size(path), len(labels_array(path).shape))
    if not is_ome_labels(path):
        import dask.array as da

        return [(da.from_zarr(labels_array(path)), {"name": path.stem, **geometry}, "labels")]
    root = zarr.open_group(str(path), mode="r")
    labels_group = root["labels"][root["labels"].attrs.get("labels", ["segmentation"])[0]]
    image, labels = _pyramid(root), _pyramid(labels_group)
    name = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
    return [(image if len(image) > 1 else image[0], {"name": name, **geometry}, "image"),
            (labels if len(labels) > 1 else labels[0], {"name": path.stem, **geometry}, "labels")]
