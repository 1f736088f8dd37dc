"""Labels as OME-NGFF (OME-Zarr 0.4) images: the layout napari-ome-zarr, Fiji and QuPath open (pure core).

A ``<stem>_labels.zarr`` output is an OME-Zarr image group: the input image (gray, ``s0`` and coarser
levels) with the labels in ``labels/segmentation`` (``s0``, ...), both with the pixel size as the level-0
``scale`` and the unit on the axes. It is written with ome-zarr-py (the OME reference implementation) in
NGFF 0.4, zarr format 2: 0.5 (zarr format 3) is newer than what Fiji's and QuPath's readers open today.
Reading needs no ome-zarr: the metadata are plain JSON attributes.

Outputs of earlier versions (one plain zarr array with this package's attributes) stay readable:
`labels_array` and `zarr_pixel_size` know both layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .pixel_size import PINT_NAMES, PixelSize, PixelSizeError

#: Name of the labels image inside ``labels/``.
LABELS_NAME = "segmentation"
#: Smallest side of the coarsest pyramid level written.
MIN_LEVEL_SIDE = 256


def _axes(ndim: int) -> str:
    return {2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}[ndim]


def scale_factors(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Downsampling factors 2, 4, 8, ... while the coarsest level keeps sides of at least `MIN_LEVEL_SIDE`."""
    factors, factor = [], 2
    while min(shape[-2:]) // factor >= MIN_LEVEL_SIDE:
        factors.append(factor)
        factor *= 2
    return tuple(factors)


def write_ome_labels(path: str | os.PathLike, labels, image=None, *, pixel_size: PixelSize | None = None,
                     attrs: dict | None = None, chunk: int = 1024) -> Path:
    """Write labels (and the image they segment) as an OME-Zarr 0.4 image group at ``path``.

    Parameters
    ----------
    path
        The ``.zarr`` folder to create (an existing one is replaced by the caller).
    labels
        Integer labels ``(..., Y, X)``: numpy, dask or zarr array (read lazily, chunk by chunk).
    image
        The image the labels segment, same shape (gray); None writes zeros of uint8 in its place,
        so the layout stays the one OME-Zarr readers expect (an image with its labels).
    pixel_size
        The scale of level 0 and the unit of the spatial axes; None: unit-less scale 1.
    attrs
        Extra attributes for the root group (this package's record and completion marker).

    Raises
    ------
    ImportError
        ome-zarr is not installed (it is a dependency of napari-synthseg).
    """
    import dask.array as da
    import zarr

    try:
        from ome_zarr.format import FormatV04
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image, write_labels
    except ImportError:
        raise ImportError("writing OME-Zarr needs ome-zarr; install it with pip install 'ome-zarr>=0.18'") from None
    path = Path(path)
    labels = _as_dask(labels, chunk)
    shape = tuple(labels.shape)
    if image is None:
        image = da.zeros(shape, dtype=np.uint8, chunks=labels.chunksize)
    image = _as_dask(image, chunk)
    if tuple(image.shape) != shape:
        raise ValueError(f"image has shape {tuple(image.shape)} but labels have {shape}")
    axes = _axes(labels.ndim)
    scale = {name: 1.0 for name in axes}
    units = {}
    if pixel_size is not None:
        scale["y"], scale["x"] = pixel_size.spacing
        units = {"y": PINT_NAMES[pixel_size.unit], "x": PINT_NAMES[pixel_size.unit]}
    options = dict(fmt=FormatV04(), axes=axes, scale=scale, axes_units=units or None,
                   scale_factors=scale_factors(shape),
                   storage_options={"chunks": tuple(1 for _ in shape[:-2]) + (chunk, chunk)})
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    write_image(image, root, **options)
    write_labels(labels.astype(np.uint32), root, name=LABELS_NAME, scaler=None, method=Methods.NEAREST,
                 **options)
    if attrs:
        root.attrs.update(attrs)
    return path


def _as_dask(array, chunk: int):
    import dask.array as da

    if isinstance(array, da.Array):
        return array
    if isinstance(array, np.ndarray):
        return da.from_array(array, chunks=tuple(1 for _ in array.shape[:-2]) + (chunk, chunk))
    return da.from_zarr(array)  # a zarr array keeps its own chunks


def is_ome_labels(path: str | os.PathLike) -> bool:
    """True when ``path`` is an OME-Zarr image group with labels (this package's or another's)."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        import zarr

        root = zarr.open_group(str(path), mode="r")
        return "multiscales" in root.attrs and "labels" in root.group_keys()
    except Exception:  # not a zarr group at all
        return False


def _multiscale_level0(group) -> tuple[str, list[dict], list[float]]:
    """The level-0 array name, the axes and the level-0 scale of an NGFF multiscales group."""
    meta = group.attrs["multiscales"][0]
    dataset = meta["datasets"][0]
    scale = next((t["scale"] for t in dataset.get("coordinateTransformations", []) if t.get("type") == "scale"),
                 None)
    axes = meta.get("axes", [])
    return dataset["path"], axes, scale or [1.0] * len(axes)


def labels_array(path: str | os.PathLike):
    """The full-resolution labels of a ``.zarr`` output as a zarr array (OME-Zarr or the older plain array)."""
    import zarr

    path = Path(path)
    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):  # an output of an earlier version: one plain array
        return node
    labels_group = node["labels"]
    name = labels_group.attrs.get("labels", [LABELS_NAME])[0]
    group = labels_group[name]
    level0, _, _ = _multiscale_level0(group)
    return group[level0]


def zarr_pixel_size(path: str | os.PathLike) -> PixelSize | None:
    """The pixel size of a ``.zarr`` image or labels output (NGFF scale and axis unit, or our old attributes)."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception:  # not zarr: no size
        return None
    if hasattr(node, "shape"):
        entry = node.attrs.get("napari_synthseg", {}).get("pixel_size")
        if isinstance(entry, dict):
            try:
                return PixelSize(entry["x"], entry["unit"], entry.get("y"))
            except (KeyError, PixelSizeError, TypeError):
                return None
        return None
    if "multiscales" not in node.attrs:
        return None
    try:
        _, axes, scale = _multiscale_level0(node)
        by_name = {axis.get("name"): (axis, s) for axis, s in zip(axes, scale)}
        (x_axis, dx), (y_axis, dy) = by_name["x"], by_name["y"]
        if not x_axis.get("unit"):
            return None
        x = PixelSize(float(dx), x_axis["unit"])
        y = PixelSize(float(dy), y_axis.get("unit", x_axis["unit"]))
        return PixelSize(x.value, x.unit, y.to(x.unit).value)
    except (KeyError, IndexError, TypeError, ValueError, PixelSizeError):
        return None
