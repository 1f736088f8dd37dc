"""Reading and writing images, labels and folders of them (pure core)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

#: File suffixes read as images (lower case).
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif")


class ImageReadError(ValueError):
    """A file is missing, unreadable or not an image."""


def list_images(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Parameters
    ----------
    paths
        Image files and/or folders. Folders contribute their image files
        (not recursive), sorted by name.

    Raises
    ------
    ImageReadError
        A path does not exist, a file is not an image, or a folder holds no image.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not files:
                raise ImageReadError(
                    f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                    "point at a folder of images or list the files"
                )
            found.extend(files)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageReadError(
                    f"{path} is not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})"
                )
            found.append(path)
        else:
            raise ImageReadError(f"{path} does not exist; check the path")
    return found


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an array (TIFF through tifffile, others through imageio).

    Raises
    ------
    ImageReadError
        The file is missing or cannot be decoded as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path} does not exist; check the path")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            data = iio.imread(path)
    except Exception as exc:  # decoders raise many types; name the file instead
        raise ImageReadError(f"cannot read {path} as an image: {exc}") from exc
    data = np.asarray(data)
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(f"{path} is not a 2D image (shape {data.shape})")
    return data


def is_rgb(image: np.ndarray) -> bool:
    """True when the last axis holds RGB or RGBA channels (napari's convention)."""
    return image.ndim >= 3 and image.shape[-1] in (3, 4)


def to_gray(image: np.ndarray, rgb: bool | None = None) -> np.ndarray:
    """Collapse RGB/RGBA channels to luminance, keeping the dtype's scale.

    Gray inputs (and stacks ``(..., Y, X)``) are returned unchanged. For RGB, the
    alpha channel is dropped and the result is float32 in the input's units.
    """
    image = np.asarray(image)
    if rgb is None:
        rgb = is_rgb(image)
    if not rgb:
        return image
    channels = image[..., :3].astype(np.float32)
    weights = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return channels @ weights


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale an image to float32 in [0, 1] by its dtype's range (floats: by min/max if outside)."""
    image = np.asarray(image)
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        if info.min < 0:
            return ((image.astype(np.float32) - info.min) / (info.max - info.min)).astype(np.float32)
        return image.astype(np.float32) / np.float32(info.max)
    out = image.astype(np.float32)
    lo, hi = float(np.nanmin(out)) if out.size else 0.0, float(np.nanmax(out)) if out.size else 1.0
    if lo < 0.0 or hi > 1.0:
        out = (out - lo) / max(hi - lo, 1e-12)
    return np.nan_to_num(out, copy=False)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write a file through a temporary sibling and rename it into place.

    A reader never sees a half-written file; on failure the temporary file is removed
    and any existing file at ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_tiff(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an array (labels or image) to TIFF atomically, zlib-compressed."""
    import tifffile

    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, np.asarray(array), compression="zlib"))


def write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8/uint16 array to PNG atomically."""
    import imageio.v3 as iio

    return atomic_write(path, lambda tmp: iio.imwrite(tmp, np.asarray(array), extension=".png"))


def unique_path(path: str | os.PathLike) -> Path:
    """Return ``path`` or, if it exists, ``stem-1.suffix``, ``stem-2.suffix``, ... that does not."""
    path = Path(path)
    if not path.exists():
        return path
    i = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
        i += 1


def iter_planes(shape: Iterable[int]) -> list[tuple[int, ...]]:
    """Indices of the 2D planes of an array of ``shape`` (``(..., Y, X)``); ``[()]`` for 2D."""
    lead = tuple(shape)[:-2]
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*lead)] if lead else [()]
