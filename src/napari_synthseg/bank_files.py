"""The object bank on disk: its folder layout, the writer's lock, manifest lines and object files.

The layout is described in ``napari_synthseg.bank``; this module holds what reads and writes
it, so `ObjectBank` keeps only the bookkeeping of a bank in memory. It also reads and writes
the reference program's folders of object images and masks (``Rocks/`` + ``Masks_of_Rocks/``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .image_io import IMAGE_SUFFIXES, ImageReadError, is_rgb, read_image, to_gray, unique_path, write_png, write_tiff

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

FORMAT = "napari-synthseg-bank/1"
HEADER_NAME = "bank.json"
MANIFEST_NAME = "objects.jsonl"
OBJECTS_DIR = "objects"
LOCK_NAME = ".lock"
_KEPT_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_RECORD_KEYS = ("id", "image", "mask")  # a manifest line without these is corrupt


def _gray_like(image: np.ndarray) -> np.ndarray:
    """RGB(A) to gray, rounded back to uint8/uint16 when the input was one of those."""
    gray = to_gray(image)
    if gray is not image and image.dtype in _KEPT_DTYPES:
        info = np.iinfo(image.dtype)
        gray = np.clip(np.rint(gray), info.min, info.max).astype(image.dtype)
    return gray


def _storage_image(image: np.ndarray) -> np.ndarray:
    """The array exactly as the bank stores it: uint8/uint16 kept, anything else float32."""
    if image.dtype in _KEPT_DTYPES:
        return image.astype(image.dtype.newbyteorder("="), copy=False)
    return image.astype(np.float32)


def _jsonable(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"object metadata value {value!r} is not JSON-serialisable; pass str/int/float/list")


def _set_lock(handle, locked: bool) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if locked else fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows: lock the first byte
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if locked else msvcrt.LK_UNLCK, 1)


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive inter-process lock on ``lock_path`` (created if needed).

    Only writers lock; a user who may only read a bank never opens the lock file.
    """
    try:
        handle = open(lock_path, "a+b")
    except PermissionError:
        raise PermissionError(f"cannot write to the object bank {lock_path.parent} (permission denied); "
                              "ask its owner for write access or copy the bank to a folder of yours") from None
    with handle:
        _set_lock(handle, True)
        try:
            yield
        finally:
            _set_lock(handle, False)


def header_unreadable(path: Path) -> bool:
    """True when ``path`` holds a bank header that this user may not read."""
    header = path / HEADER_NAME
    return header.is_file() and not os.access(header, os.R_OK)


def is_bank_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a readable bank header."""
    try:
        header = json.loads((Path(path) / HEADER_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and str(header.get("format", "")).startswith("napari-synthseg-bank/")


def append_to_manifest(manifest: Path, data: bytes) -> None:
    """Append lines to the manifest file (the caller holds the lock)."""
    with open(manifest, "a+b") as handle:
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = b"\n" + data  # end a torn line left by a crash so ours stays whole
        handle.write(data)


def write_object_files(folder: Path, record: dict, image: np.ndarray, mask: np.ndarray) -> None:
    """Write one object's crop and mask (uint8 0/255) where its manifest ``record`` says."""
    (write_png if image.dtype in _KEPT_DTYPES else write_tiff)(folder / record["image"], image)
    write_png(folder / record["mask"], mask.astype(np.uint8) * 255)


def _inside_bank(relative: str) -> bool:
    """True when a manifest path is relative and stays inside the bank folder."""
    path = Path(relative)
    return not path.is_absolute() and not path.drive and ".." not in path.parts and bool(path.parts)


def _whole_record(raw: bytes) -> bool:
    try:
        record = json.loads(raw)
    except ValueError:
        return False
    return isinstance(record, dict) and all(isinstance(record.get(k), str) for k in _RECORD_KEYS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _images_by_stem(folder: str | os.PathLike) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; pass the folder of object images / masks")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def read_folder_pairs(images_dir: str | os.PathLike, masks_dir: str | os.PathLike,
                      report: Callable[[str], None]) -> Iterator[tuple[np.ndarray, np.ndarray, Path]]:
    """``(image, mask, image path)`` of each object image and mask paired by file stem, in sorted order.

    RGB masks become their channels' maximum. Unpaired, unreadable, empty or mismatched files
    are passed to ``report`` (one line each) and skipped.
    """
    images = _images_by_stem(images_dir)
    masks = _images_by_stem(masks_dir)
    for stem in sorted(images.keys() ^ masks.keys()):
        path, other = (images[stem], masks_dir) if stem in images else (masks[stem], images_dir)
        report(f"{path} skipped: no file named {stem}.* in {other}")
    for stem in sorted(images.keys() & masks.keys()):
        try:
            image, mask = read_image(images[stem]), read_image(masks[stem])
        except ImageReadError as exc:
            report(f"pair {stem!r} skipped: {exc}")
            continue
        if is_rgb(mask):
            mask = mask[..., :3].max(axis=-1)
        if mask.ndim != 2 or not (mask > 0).any() or image.shape[:2] != mask.shape:
            report(f"pair {stem!r} skipped: mask {mask.shape} is empty, not 2D or does not match "
                   f"image {image.shape}")
            continue
        yield image, mask, images[stem]


def write_folder_pairs(objects, images_dir: str | os.PathLike, masks_dir: str | os.PathLike) -> int:
    """Write each object as ``<id>.png`` (float: ``.tif``) in ``images_dir`` and its mask (0/255) in ``masks_dir``.

    Existing files are never overwritten (new names get a ``-1`` suffix). Returns the count.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        kept = obj.image.dtype in _KEPT_DTYPES
        image_path = unique_path(images_dir / f"{obj.id}{'.png' if kept else '.tif'}")
        (write_png if kept else write_tiff)(image_path, obj.image)
        write_png(unique_path(masks_dir / f"{image_path.stem}.png"), obj.mask.astype(np.uint8) * 255)
    return len(objects)
