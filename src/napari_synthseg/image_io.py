"""Reading and writing images, labels and folders of them (pure core)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

#: File suffixes read as images (lower case); the EM formats (after .gif) need the ``em`` extra.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".mrc", ".dm3", ".dm4", ".emd", ".ser")


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
    """Read an image file as an array (TIFF through tifffile, EM formats through `em_formats`,
    others through imageio).

    What users have is brought to the shapes the rest of the package reads: 1-bit images
    become uint8 0/255, palette images RGB, a last axis of 1 is dropped, gray + alpha
    ``(..., Y, X, 2)`` keeps its gray channel, and NaN/inf pixels of float images are
    ignored (set to the median of the finite pixels, see `finite_image`).

    Raises
    ------
    ImageReadError
        The file is missing, cannot be decoded as an image, or has a shape no command reads
        (e.g. five or more colour channels).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path} does not exist; check the path")
    from .em_formats import EM_SUFFIXES, read_em

    if path.suffix.lower() in EM_SUFFIXES:
        return standard_image(read_em(path).data, str(path))
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            data = iio.imread(path)
    except Exception as exc:  # decoders raise many types (imageio adds install advice); name the file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(f"cannot read {path} as an image ({reason}): the file may be damaged or not what "
                             f"its name says; save it again (as .tif or .png) or move it out of the folder") from exc
    return standard_image(np.asarray(data), str(path))


def standard_image(data: np.ndarray, name: str = "array") -> np.ndarray:
    """An image array in the shapes the package reads (see `read_image`), or ImageReadError."""
    data = np.asarray(data)
    if data.ndim >= 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(f"{name} is not a 2D image (shape {data.shape})")
    if data.dtype.kind not in "biuf":
        raise ImageReadError(f"{name} has pixels of type {data.dtype}; save it as a gray, RGB or float image")
    if data.dtype == np.bool_:  # 1-bit images: black and white at the ends of uint8
        data = data.astype(np.uint8) * np.uint8(255)
    channels = channel_count(data.shape)
    if channels == 2:  # gray + alpha: the gray channel is the image
        data = data[..., 0]
    elif channels is None and data.ndim >= 3 and 5 <= data.shape[-1] <= 16 < data.shape[-2]:
        raise ImageReadError(f"{name} has shape {data.shape}: its last axis looks like {data.shape[-1]} colour "
                             "channels; napari-synthseg reads gray, gray + alpha, RGB or RGBA images and stacks "
                             "(..., Y, X): save one channel per file")
    if data.dtype.kind == "f":
        data = finite_image(data, name)
    return data


def channel_count(shape: Sequence[int]) -> int | None:
    """1 to 4 when the last axis holds channels (gray, gray + alpha, RGB, RGBA), else None.

    A last axis of 1 to 4 is channels when the axis before it is longer than 4 (an image is
    not 4 pixels wide), so an ``(H, W, 2)`` TIFF is one gray + alpha image, not H planes of W x 2.
    """
    shape = tuple(shape)
    if len(shape) >= 3 and 1 <= shape[-1] <= 4 and shape[-2] > 4:
        return int(shape[-1])
    return None


def finite_image(image: np.ndarray, name: str = "array") -> np.ndarray:
    """A float image whose NaN and +-inf pixels (no data) are set to the median of its finite pixels.

    The median is neither object nor background extreme, so those pixels do not move
    thresholds or intensity ranges. An image without any finite pixel raises ImageReadError.
    """
    image = np.asarray(image)
    if image.dtype.kind != "f":
        return image
    finite = np.isfinite(image)
    if finite.all():
        return image
    if not finite.any():
        raise ImageReadError(f"{name} holds no finite pixel (all NaN or inf); check the file")
    image = image.copy()
    image[~finite] = np.median(image[finite])
    return image


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
    if image.shape[-1] <= 2:  # gray (+ alpha)
        return image[..., 0].astype(np.float32)
    channels = image[..., :3].astype(np.float32)
    weights = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return channels @ weights


def gray_planes(image, rgb: bool | None = None) -> np.ndarray:
    """The image as gray planes ``(..., Y, X)`` (colour made gray, bool as float32), or a clear
    error for what cannot be segmented.

    ``rgb=None`` reads a last axis of 3 or 4 as colour (napari's convention); pass
    ``rgb=False`` for a stack of 3 or 4 planes.
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must be a real-valued (bool, integer or float) array; got dtype {image.dtype}")
    if rgb is None:
        rgb = is_rgb(image)
    if rgb and (image.ndim < 3 or image.shape[-1] not in (3, 4)):
        raise ValueError(f"rgb=True needs a last axis of 3 or 4 channels; got shape {image.shape}")
    gray = to_gray(image, rgb=bool(rgb))
    if gray.ndim < 2:
        raise ValueError(f"image must be at least 2D (Y, X); got shape {image.shape}")
    if gray.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); pass an image with pixels")
    return gray.astype(np.float32) if gray.dtype == np.bool_ else gray


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
    and any existing file at ``path`` is left untouched. The file gets the permissions the
    umask gives (``0o666 & ~umask``), as a file created in place would.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp makes the file 0600; the output gets what a plainly created file would
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process's file-creation mask (read from /proc on Linux, so no other thread sees it change)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_tiff(path: str | os.PathLike, array: np.ndarray, pixel_size=None, labels: bool = False) -> Path:
    """Write an array (labels or image) to TIFF atomically, zlib-compressed.

    With a `~napari_synthseg.pixel_size.PixelSize`, the file carries it: resolution tags in
    centimetres (what Fiji and QuPath read) and the size in its own unit in the description.
    ``labels=True`` notes in the description that the file holds labels (napari opens it as Labels).
    """
    import tifffile

    from .pixel_size import tiff_write_options

    options = tiff_write_options(pixel_size, labels=labels)
    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, np.asarray(array), compression="zlib", **options))


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
