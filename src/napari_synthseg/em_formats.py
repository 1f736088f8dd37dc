"""Electron-microscope file formats: MRC, DM3/DM4 (Gatan), EMD (Velox, Berkeley) and SER (TIA) (pure core).

MRC is read with mrcfile (the CCP-EM reference library; ``voxel_size`` in Å). DM3/DM4, EMD and SER are
read with rosettasciio, the readers HyperSpy uses: one maintained package that reads all three vendors'
formats, with their calibrations as axes (scale and unit), and is tested against real instrument files.
Both come with the ``em`` extra (``pip install 'napari-synthseg[em]'``); without it, reading such a
file raises `MissingReaderError` naming the install line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .image_io import ImageReadError
from .pixel_size import PixelSize, PixelSizeError

#: File suffixes read here (lower case).
EM_SUFFIXES = (".mrc", ".dm3", ".dm4", ".emd", ".ser")

_INSTALL = "pip install 'napari-synthseg[em]'"


class MissingReaderError(ImageReadError):
    """The library that reads this format is not installed (the message names the install line)."""


@dataclass
class EMImage:
    """An image read from an EM file: its pixels (None when only the metadata was asked) and pixel size."""

    data: np.ndarray | None
    pixel_size: PixelSize | None


def read_em(path: str | os.PathLike, *, data: bool = True) -> EMImage:
    """Read an MRC, DM3/DM4, EMD or SER file: the first image in it and its pixel size.

    Parameters
    ----------
    path
        The file.
    data
        False reads only the metadata (the pixel size), not the pixels.

    Raises
    ------
    MissingReaderError
        mrcfile or rosettasciio is not installed.
    ImageReadError
        The file is missing, not of its suffix's format, or holds no 2D image.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EM_SUFFIXES:
        raise ImageReadError(f"{path} is not an EM file ({', '.join(EM_SUFFIXES)})")
    if not path.is_file():
        raise ImageReadError(f"{path} does not exist; check the path")
    if suffix == ".mrc":
        return _read_mrc(path, data)
    return _read_rsciio(path, suffix, data)


def _read_mrc(path: Path, data: bool) -> EMImage:
    try:
        import mrcfile
    except ImportError:
        raise MissingReaderError(f"reading {path.name} needs mrcfile; install it with {_INSTALL}") from None
    try:
        with mrcfile.open(path, mode="r", permissive=True, header_only=not data) as mrc:
            voxel = mrc.voxel_size
            pixels = None if not data or mrc.data is None else np.array(mrc.data)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read {path} as MRC ({_first_line(exc)})") from exc
    if data and pixels is None:
        raise ImageReadError(f"{path} holds no image data (MRC header only)")
    size = None
    if float(voxel.x) > 0 and float(voxel.y) > 0:
        size = PixelSize(float(voxel.x), "Å", float(voxel.y)).readable()
    return EMImage(pixels, size)


def _rsciio_reader(path: Path, suffix: str):
    try:
        if suffix in (".dm3", ".dm4"):
            from rsciio.digitalmicrograph import file_reader
        elif suffix == ".emd":
            from rsciio.emd import file_reader
        else:
            from rsciio.tia import file_reader
    except ImportError:
        raise MissingReaderError(f"reading {path.name} needs rosettasciio; install it with {_INSTALL}") from None
    return file_reader


def _read_rsciio(path: Path, suffix: str, data: bool) -> EMImage:
    file_reader = _rsciio_reader(path, suffix)
    try:
        signals = file_reader(str(path), lazy=True)
    except Exception as exc:  # the vendor readers raise many types for a file that is not theirs
        raise ImageReadError(f"cannot read {path} as {suffix[1:].upper()} ({_first_line(exc)})") from exc
    for signal in signals:
        shape = np.shape(signal["data"])
        if len(shape) < 2 or min(shape[-2:]) < 2:
            continue  # a spectrum or a single value, not an image
        size = _axes_pixel_size(signal.get("axes", []), len(shape))
        pixels = None
        if data:
            raw = signal["data"]
            pixels = np.asarray(raw.compute() if hasattr(raw, "compute") else raw)
        return EMImage(pixels, size)
    raise ImageReadError(f"{path} holds no 2D image (only spectra or single values)")


def _axes_pixel_size(axes: list[dict], ndim: int) -> PixelSize | None:
    """The pixel size from rosettasciio's axes (y and x are the last two by index in the array)."""
    by_index = {int(axis.get("index_in_array", i)): axis for i, axis in enumerate(axes)}
    y_axis, x_axis = by_index.get(ndim - 2), by_index.get(ndim - 1)
    if x_axis is None or y_axis is None:
        return None
    unit_x, unit_y = str(x_axis.get("units", "")), str(y_axis.get("units", ""))
    try:
        x = PixelSize(float(x_axis.get("scale", 0)), unit_x)
        y = PixelSize(float(y_axis.get("scale", 0)), unit_y)
    except (PixelSizeError, TypeError, ValueError):
        return None  # uncalibrated (px, <undefined>) or reciprocal (1/nm) axes
    return PixelSize(x.value, x.unit, y.to(x.unit).value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
