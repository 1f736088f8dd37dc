"""napari reader for images that carry their pixel size: MRC, DM3/DM4, EMD, SER and TIFFs with a physical size.

Layers get ``scale`` (the pixel size) and ``units`` (napari >= 0.6). TIFFs without a physical pixel size
(no FEI/Zeiss/OME/ImageJ metadata, no centimetre resolution) are left to napari's own reader, so a plain
TIFF opens as before; ``<stem>_labels.tif`` files with integer pixels open as Labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_TIFF = (".tif", ".tiff")


def _em_suffixes() -> tuple[str, ...]:
    from napari_synthseg.em_formats import EM_SUFFIXES

    return EM_SUFFIXES


def get_reader(path):
    """A reader for an EM file, or for a TIFF that carries a physical pixel size; else None."""
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return None
    suffix = Path(path).suffix.lower()
    if suffix in _em_suffixes():
        return read_scaled
    if suffix in _TIFF:
        from napari_synthseg.pixel_size import tiff_pixel_size

        return read_scaled if tiff_pixel_size(path) is not None else None
    return None


def layer_geometry(pixel_size, ndim: int) -> dict:
    """``scale`` (and ``units``, where napari has them) for a layer of ``ndim`` spatial axes."""
    if pixel_size is None:
        return {}
    from napari_synthseg.pixel_size import PINT_NAMES

    lead = ndim - 2
    geometry = {"scale": (1.0,) * lead + tuple(pixel_size.spacing)}
    if _napari_has_units():
        geometry["units"] = ("pixel",) * lead + (PINT_NAMES[pixel_size.unit],) * 2
    return geometry


def _napari_has_units() -> bool:
    import inspect

    from napari.layers import Image

    return "units" in inspect.signature(Image.__init__).parameters


def read_scaled(path):
    """Layer data for napari: the image (or labels) with its pixel size as ``scale`` and ``units``."""
    if isinstance(path, list):
        path = path[0]
    from napari_synthseg.image_io import is_rgb, read_image
    from napari_synthseg.pixel_size import read_pixel_size

    path = Path(path)
    data = read_image(path)
    pixel_size = read_pixel_size(path)
    rgb = is_rgb(data)
    kwargs = {"name": path.stem, **layer_geometry(pixel_size, data.ndim - (1 if rgb else 0))}
    from napari_synthseg.pixel_size import tiff_holds_labels

    if data.dtype.kind in "iu" and not rgb and (path.stem.endswith("_labels") or tiff_holds_labels(path)):
        return [(np.asarray(data), kwargs, "labels")]
    if rgb:
        kwargs["rgb"] = True
    return [(data, kwargs, "image")]
