"""Lazy image sources for large images: zarr, TIFF (memory-mapped or chunk-wise) and arrays.

An :class:`ImageSource` is a picklable description of an image that reads only the region a
task asks for, so it travels to dask workers and reopens its file there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..image_io import IMAGE_SUFFIXES, ImageReadError, channel_count, finite_image, read_image, to_gray

#: Suffixes opened lazily (the rest are read whole).
LAZY_SUFFIXES = (".zarr", ".tif", ".tiff")


class LargeImageError(ValueError):
    """A large-image input or output cannot be used (wrong kind, shape, or half-written)."""


@dataclass
class ImageSource:
    """A picklable, lazily read 2D image (or stack ``(..., Y, X)``, RGB last axis allowed).

    Create with :func:`open_image`. ``read(plane, rows, cols)`` returns the gray pixels of
    one plane's region; only that region is read from disk.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    rgb: bool
    path: str | None = None
    kind: str = "array"  # "zarr", "tiff-memmap", "tiff-zarr", "array"
    component: str | None = None
    series: int = 0
    array: Any = None  # numpy or dask array for kind == "array"
    _opened: Any = field(default=None, repr=False, compare=False)

    @property
    def spatial_shape(self) -> tuple[int, int]:
        """``(Y, X)`` of one plane."""
        yx = self.shape[-3:-1] if self.rgb else self.shape[-2:]
        return int(yx[0]), int(yx[1])

    @property
    def plane_shape(self) -> tuple[int, ...]:
        """Leading (stack) axes, ``()`` for one plane."""
        return tuple(self.shape[:-3] if self.rgb else self.shape[:-2])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_opened"] = None  # file handles do not travel; reopen on the worker
        return state

    def _handle(self):
        if self._opened is not None:
            return self._opened
        if self.kind == "array":
            self._opened = self.array
        elif self.kind == "zarr":
            import zarr

            node = zarr.open(self.path, mode="r")
            self._opened = node[self.component] if self.component else node
        elif self.kind == "tiff-memmap":
            import tifffile

            self._opened = tifffile.memmap(self.path, mode="r", series=self.series)
        else:
            import tifffile
            import zarr

            self._opened = zarr.open(tifffile.imread(self.path, aszarr=True, series=self.series), mode="r")
        return self._opened

    def read(self, plane: tuple[int, ...], rows: slice, cols: slice) -> np.ndarray:
        """Gray pixels of ``plane`` (index of the stack axes) at ``rows, cols``."""
        index = tuple(plane) + (rows, cols)
        data = self._handle()[index]
        if hasattr(data, "compute"):
            data = data.compute(scheduler="sync")
        data = np.asarray(data)
        if data.dtype == np.bool_:
            data = data.astype(np.uint8) * np.uint8(255)
        data = to_gray(data, rgb=True) if self.rgb else data
        return finite_image(data, self.path or "array") if data.dtype.kind == "f" else data


def _zarr_array(path: Path, component: str | None):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a bad store
        raise ImageReadError(f"cannot open {path} as zarr: {exc}") from exc
    if component:
        node = node[component]
    if not hasattr(node, "shape"):
        # A group (e.g. OME-Zarr): take its first array, the full-resolution level by convention.
        names = sorted(name for name, _ in node.arrays())
        if not names:
            raise ImageReadError(f"zarr group {path} holds no array; pass component=<array name>")
        component = names[0]
        node = node[component]
    return node, component


def open_image(path_or_array, *, component: str | None = None, rgb: bool | None = None) -> ImageSource:
    """Open an image lazily: zarr (array or group), TIFF (memory-mapped or chunk-wise), or an array.

    Parameters
    ----------
    path_or_array
        A ``.zarr`` directory, a ``.tif``/``.tiff`` file, another image file (read whole),
        a numpy array or a dask array.
    component
        Array name inside a zarr group (default: the first array, sorted by name).
    rgb
        Whether the last axis is colour; None: a last axis of 3 or 4 is colour.

    Raises
    ------
    ImageReadError
        Missing path, unreadable or corrupt file, or not at least 2D.
    """
    if isinstance(path_or_array, ImageSource):
        return path_or_array
    if not isinstance(path_or_array, (str, os.PathLike)):
        array = path_or_array
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            array = np.asarray(array)
        return _make_source(array, None, "array", None, 0, rgb, array=array)
    path = Path(path_or_array)
    if not path.exists():
        raise ImageReadError(f"{path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".zarr" or (path.is_dir() and ((path / "zarr.json").exists() or (path / ".zarray").exists()
                                                or (path / ".zgroup").exists())):
        node, component = _zarr_array(path, component)
        return _make_source(node, str(path), "zarr", component, 0, rgb)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            arr = tifffile.memmap(str(path), mode="r")
            kind = "tiff-memmap"
        except Exception:  # compressed or not contiguous: read chunk-wise through zarr
            try:
                arr = __import__("zarr").open(tifffile.imread(str(path), aszarr=True), mode="r")
            except Exception as exc:
                raise ImageReadError(f"cannot read {path} as a TIFF image: {exc}") from exc
            kind = "tiff-zarr"
        return _make_source(arr, str(path), kind, None, 0, rgb)
    if suffix in IMAGE_SUFFIXES:
        array = read_image(path)
        return _make_source(array, str(path), "array", None, 0, rgb, array=array)
    raise ImageReadError(f"{path} is not an image this reader knows (.zarr, {', '.join(IMAGE_SUFFIXES)})")


def _make_source(arr, path, kind, component, series, rgb, array=None) -> ImageSource:
    shape = tuple(int(s) for s in arr.shape)
    dtype = np.dtype(arr.dtype)
    if rgb is None:  # a last axis of 2-4 after a longer one is colour (gray + alpha, RGB, RGBA)
        rgb = channel_count(shape) is not None
    if len(shape) < (3 if rgb else 2) or 0 in shape:
        raise ImageReadError(f"{path or 'array'} is not a non-empty 2D image or stack (shape {shape})")
    if dtype.kind not in "biuf":
        raise ImageReadError(f"{path or 'array'} has non-numeric dtype {dtype}")
    if not rgb and len(shape) >= 3 and 5 <= shape[-1] <= 16 < shape[-2]:
        raise ImageReadError(f"{path or 'array'} has shape {shape}: its last axis looks like {shape[-1]} colour "
                             "channels; napari-synthseg reads gray, gray + alpha, RGB or RGBA images and stacks "
                             "(..., Y, X): save one channel per file")
    return ImageSource(shape=shape, dtype=dtype, rgb=bool(rgb), path=path, kind=kind, component=component,
                       series=series, array=array)


def open_lazy(path, *, component: str | None = None, chunks: int | None = None):
    """The image at ``path`` as a dask array (nothing read until computed).

    zarr keeps its own chunks (or ``chunks``); TIFF is chunked by ``chunks`` rows and columns
    (default 2048).
    """
    import dask.array as da

    source = open_image(path, component=component, rgb=False)
    handle = source._handle()
    if source.kind == "zarr" and chunks is None:
        return da.from_zarr(handle)
    size = chunks or 2048
    chunk_shape = tuple(1 for _ in source.shape[:-2]) + (size, size)
    return da.from_array(handle, chunks=chunk_shape, asarray=True, lock=source.kind == "tiff-zarr")


def _planes(source: ImageSource) -> list[tuple[int, ...]]:
    lead = source.plane_shape
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*lead)] if lead else [()]


def read_whole(path: str | os.PathLike, rgb: bool | None = None) -> np.ndarray:
    """Read a whole image (file or ``.zarr``) into memory as gray (RGB converted)."""
    source = open_image(path, rgb=rgb)
    data = source._handle()
    image = np.asarray(data[...] if not isinstance(data, np.ndarray) else data)
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * np.uint8(255)
    image = to_gray(image, rgb=True) if source.rgb else image
    return finite_image(image, str(path)) if image.dtype.kind == "f" else image


def _lazy_gray(source: ImageSource, chunk: int):
    """The source image as a lazy gray dask array (RGB to luminance), for the OME-Zarr output's image."""
    import dask.array as da

    handle = source._handle()
    if source.kind == "zarr":
        data = da.from_zarr(handle)
    else:
        data = da.from_array(handle, chunks=tuple(1 for _ in source.shape[:-2]) + (chunk, chunk), asarray=True,
                             lock=source.kind == "tiff-zarr")
    if data.dtype == np.bool_:
        data = data.astype(np.uint8) * np.uint8(255)
    if source.rgb:
        data = data[..., :3].astype(np.float32) @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return data
