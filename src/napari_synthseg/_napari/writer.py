"""napari writers for Labels layers (``File → Save Selected Layers``): TIFF with the pixel size, or OME-Zarr.

The layer's ``scale`` and ``units`` become the file's pixel size (TIFF resolution tags in cm plus the exact
size; OME-Zarr scale and axis units). A layer without a length unit is written without a size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def meta_pixel_size(meta: dict):
    """The pixel size of a layer from napari's layer metadata (``scale``, ``units``), or None."""
    from napari_synthseg.pixel_size import PixelSize, PixelSizeError

    scale = meta.get("scale")
    units = meta.get("units")
    if scale is None or units is None or len(scale) < 2:
        return None
    unit = str(units[-1])
    try:
        return PixelSize(float(scale[-1]), unit, float(scale[-2]))
    except PixelSizeError:
        return None  # pixels, or a unit that is no length


def _labels_array(data) -> np.ndarray:
    data = data[0] if isinstance(data, list) else data  # a multiscale layer: its full resolution
    data = np.asarray(data)
    if data.dtype.kind not in "biu":
        raise ValueError(f"labels of type {data.dtype} cannot be saved as labels; convert them to integers")
    return data.astype(np.uint32, copy=False) if data.dtype.kind == "b" or data.dtype.itemsize < 4 else data


def write_labels_tiff(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer to a zlib TIFF carrying the layer's pixel size (atomic)."""
    from napari_synthseg.image_io import write_tiff

    out = Path(path)
    if out.suffix.lower() not in (".tif", ".tiff"):
        out = out.with_suffix(".tif")
    write_tiff(out, _labels_array(data), pixel_size=meta_pixel_size(meta), labels=True)
    return [str(out)]


def write_labels_ome_zarr(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as an OME-Zarr (NGFF 0.4) image with its labels and the layer's pixel size."""
    from napari_synthseg.largeimage import write_ome_output

    out = Path(path)
    if out.suffix.lower() != ".zarr":
        out = out.with_suffix(".zarr")
    labels = _labels_array(data)
    write_ome_output(out, labels, None, meta_pixel_size(meta), {"kind": "labels", "saved_from": "napari"})
    return [str(out)]
