"""napari reader for images that carry their pixel size: MRC, DM3/DM4, EMD, SER and TIFF.

Layers get ``scale`` (the pixel size) and ``units`` (napari >= 0.6). Pixels are shown as stored (no
conversion). napari matches readers by file name only, so for ``.tif`` it asks once whether napari's
own reader or this one opens TIFFs (with "remember my choice"): this one opens every TIFF as napari's
would, adding the scale when the file carries a physical pixel size (SEM, OME, ImageJ, ours); labels
TIFFs (``<stem>_labels.tif`` or written as labels by this package) open as Labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_TIFF = (".tif", ".tiff")


def _em_suffixes() -> tuple[str, ...]:
    from napari_synthseg.em_formats import EM_SUFFIXES

    return EM_SUFFIXES


def get_reader(path):
    """A reader for an EM file or a TIFF; else None."""
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return None
    suffix = Path(path).suffix.lower()
    return read_scaled if suffix in _em_suffixes() or suffix in _TIFF else None


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
    from napari_synthseg.em_formats import read_em
    from napari_synthseg.image_io import is_rgb
    from napari_synthseg.pixel_size import read_pixel_size, tiff_holds_labels

    path = Path(path)
    if path.suffix.lower() in _TIFF:
        import tifffile

        data, labels = tifffile.imread(path), tiff_holds_labels(path) or path.stem.endswith("_labels")
    else:
        data, labels = read_em(path).data, False
    data = np.asarray(data)
    pixel_size = read_pixel_size(path)
    rgb = is_rgb(data)  # a last axis of 3 or 4 holds colours (the package's rule everywhere)
    kwargs = {"name": path.stem, **layer_geometry(pixel_size, data.ndim - (1 if rgb else 0))}
    if labels and data.dtype.kind in "iu" and not rgb:
        return [(data, kwargs, "labels")]
    return [(data, {**kwargs, "rgb": rgb}, "image")]
