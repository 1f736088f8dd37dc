"""The object bank: cropped objects with their masks and provenance, on disk (pure core).

A bank is a folder::

    bank.json              {"format": "napari-synthseg-bank/1", "created": ...}
    objects.jsonl          one JSON record per object, in insertion order
    objects/<id>.png       gray crop (uint8/uint16 kept; other dtypes as float32 <id>.tif)
    objects/<id>_mask.png  its mask, uint8 0/255
    .lock                  taken exclusively while adding

An object's id is a hash of its pixels and mask, so identical objects are stored once
and a stored object never changes. Several ``ObjectBank`` instances (threads or
processes) may share one folder: adds append to the manifest under the lock, and every
instance picks up new lines when the manifest's size or mtime changes.

Reading and writing the folder is in ``bank_files``; cutting objects out of labels, and adding
several labelled images at once (``add_labelled_images``), in ``bank_labels``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bank_files import (
    _KEPT_DTYPES,
    _RECORD_KEYS,
    FORMAT,
    HEADER_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    OBJECTS_DIR,
    _exclusive,
    _gray_like,
    _inside_bank,
    _jsonable,
    _now,
    _storage_image,
    _whole_record,
    append_to_manifest,
    header_unreadable,
    is_bank_folder,
    read_folder_pairs,
    write_folder_pairs,
    write_object_files,
)
from .bank_labels import (  # noqa: F401  (re-exported: adding labelled images is part of the bank's API)
    LabelledImage,
    add_labelled_images,
    checked_label_image,
    iter_add_labelled_images,
    object_crops,
)
from .image_io import ImageReadError, atomic_write, is_rgb, read_image


class NotABankError(ValueError):
    """A folder is not an object bank and cannot become one."""


class BankWarning(UserWarning):
    """A corrupt or missing object file or manifest line was skipped."""


@dataclass(eq=False)
class BankObject:
    """One banked object: gray crop (stored dtype), boolean mask of the same shape, provenance."""

    id: str
    image: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)


def object_id(image: np.ndarray, mask: np.ndarray) -> str:
    """Content hash (sha1, 16 hex digits) of a stored crop and its mask."""
    digest = hashlib.sha1(f"{image.dtype.str}{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()[:16]


def _shape_stats(mask: np.ndarray) -> tuple[float, float]:
    """Solidity (pixels / convex hull pixels) and eccentricity (from the inertia tensor) of a mask."""
    from skimage.morphology import convex_hull_image

    solidity = mask.sum() / max(int(convex_hull_image(mask).sum()), 1)
    points = np.argwhere(mask).astype(np.float64)
    small, large = np.linalg.eigvalsh(np.cov(points.T, bias=True)) if len(points) > 1 else (0.0, 0.0)
    eccentricity = float(np.sqrt(max(0.0, 1.0 - small / large))) if large > 0 else 0.0
    return min(1.0, float(solidity)), eccentricity


class ObjectBank:
    """An object bank folder (layout in the module docstring).

    ``path`` may be an existing bank or, with ``create``, a missing or empty folder
    (made a new bank). Anything else raises `NotABankError`. ``problems`` lists the
    corrupt or missing files and manifest lines that were skipped; ``left_out`` counts,
    by reason, the objects (and clump parts) that `add_from_labels` judged by shape and
    left out (``shapes.LEFT_OUT_REASONS``), over this instance's life.
    """

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path)
        self.problems: list[str] = []
        self.left_out: Counter = Counter()
        self._reported: set[str] = set()
        self._records: dict[str, dict] = {}  # id -> manifest record, in manifest order
        self._cache: dict[str, BankObject] = {}
        self._unreadable: set[str] = set()
        self._mutex = threading.RLock()  # one instance shared by threads (GUI + worker)
        self._reset(None)
        self._open(create)

    @staticmethod
    def is_bank(path: str | os.PathLike) -> bool:
        """True when ``path`` is a folder holding a readable bank header."""
        return is_bank_folder(path)

    def _open(self, create: bool) -> None:
        fix = "choose an empty folder or an existing bank"
        if self.path.exists() and not self.path.is_dir():
            raise NotABankError(f"{self.path} is a file, not an object bank folder; {fix}")
        if header_unreadable(self.path):
            raise NotABankError(f"cannot read the object bank {self.path} (permission denied on {HEADER_NAME}); "
                                "ask its owner for read access")
        if not self.is_bank(self.path):
            if not create:
                what = "does not exist" if not self.path.exists() else "is not an object bank"
                raise NotABankError(f"{self.path} {what}; {fix}, or pass create=True to make a new bank")
            self.path.mkdir(parents=True, exist_ok=True)
            with self._lock():  # a second creator waits here, then finds the bank made
                if not self.is_bank(self.path):
                    if any(entry.name != LOCK_NAME for entry in self.path.iterdir()):
                        raise NotABankError(
                            f"{self.path} is not empty and is not an object bank (no {HEADER_NAME}); {fix}"
                        )
                    (self.path / OBJECTS_DIR).mkdir(exist_ok=True)
                    (self.path / MANIFEST_NAME).touch()
                    header = {"format": FORMAT, "created": _now()}
                    atomic_write(self.path / HEADER_NAME,
                                 lambda tmp: tmp.write_text(json.dumps(header, indent=2) + "\n", "utf-8"))
        self._sync()

    def _lock(self):
        return _exclusive(self.path / LOCK_NAME)

    def _report(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.problems.append(message)
            warnings.warn(message, BankWarning, stacklevel=3)

    def _sync(self) -> None:
        """Parse manifest lines appended since the last look (all of it if replaced or truncated)."""
        with self._mutex:
            self._sync_unlocked()

    def _sync_unlocked(self) -> None:
        manifest = self.path / MANIFEST_NAME
        try:
            stat = manifest.stat()
        except FileNotFoundError:
            self._report(f"{manifest} is missing; the bank lists no objects until one is added")
            self._reset(None)
            return
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key == self._stat_key:
            return
        first_look = self._stat_key is None
        if self._stat_key is None or stat.st_ino != self._stat_key[0] or stat.st_size < self._offset:
            self._reset(key)
        with open(manifest, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        tail = data[complete:]
        if tail.strip():
            # A last line without its newline: whole (an editor or another tool dropped the
            # newline) when it parses, else still being written (read next time) or torn.
            if _whole_record(tail):
                complete = len(data)
            elif first_look:
                self._report(f"{manifest}: the last line is incomplete (being written, or cut by a crash) "
                             f"and is skipped for now: {tail[:80]!r}")
        for raw in data[:complete].splitlines():
            self._parse_line(raw)
        self._offset += complete
        self._stat_key = key
        self._list = None

    def _reset(self, key) -> None:
        self._records.clear()
        self._cache.clear()
        self._unreadable.clear()
        self._offset, self._stat_key, self._list = 0, key, None

    def _parse_line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            record = json.loads(raw)
            valid = isinstance(record, dict) and all(isinstance(record.get(k), str) for k in _RECORD_KEYS)
        except ValueError:
            valid = False
        if valid and not all(_inside_bank(record[k]) for k in ("image", "mask")):
            self._report(f"{self.path / MANIFEST_NAME}: skipped a line whose files lie outside the bank folder: "
                         f"{raw[:80]!r}")
            return
        if not valid:
            self._report(f"{self.path / MANIFEST_NAME}: skipped a corrupt line: {raw[:80]!r}")
        elif record["id"] not in self._records:
            self._records[record["id"]] = record

    def _append(self, data: bytes) -> None:
        """Append lines to the manifest (caller holds the lock)."""
        append_to_manifest(self.path / MANIFEST_NAME, data)

    def _prepare(self, image, mask, meta: dict) -> tuple[str, np.ndarray, np.ndarray, dict | None]:
        """Validate and measure one object; returns (id, stored image, bool mask, manifest record)."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"an object mask must be 2D, got shape {mask.shape}; add stack planes one by one")
        mask = mask > 0
        if not mask.any():
            raise ValueError("the object mask is empty; mark the object's pixels with values > 0")
        image = np.asarray(image)
        if image.ndim == 3 and is_rgb(image) and image.shape[:2] == mask.shape:
            image = _gray_like(image)
        if image.shape != mask.shape:
            raise ValueError(f"object image shape {image.shape} differs from its mask shape {mask.shape}")
        image = _storage_image(image)
        oid = object_id(image, mask)
        if oid in self._records:  # already banked: skip measuring (the record is not needed)
            return oid, image, mask, None
        area = int(mask.sum())
        solidity, eccentricity = _shape_stats(mask)
        # Cheap usefulness score: compact, not tiny, not cut by the image border.
        quality = solidity * min(1.0, (area / 100.0) ** 0.5) * (0.5 if meta.get("touches_border") else 1.0)
        record = {"id": oid, "source": "", "plane": None, "bbox": None, "method": "added", "time": _now(), **meta}
        record["id"] = oid
        record.update(area=area, mean_intensity=round(float(image[mask].mean()), 4), solidity=round(solidity, 4),
                      eccentricity=round(eccentricity, 4),
                      quality=round(float(np.clip(meta.get("quality", quality), 0.0, 1.0)), 4),
                      shape=list(image.shape), dtype=image.dtype.name,
                      image=f"{OBJECTS_DIR}/{oid}{'.png' if image.dtype in _KEPT_DTYPES else '.tif'}",
                      mask=f"{OBJECTS_DIR}/{oid}_mask.png")
        json.dumps(record, default=_jsonable)  # unserialisable metadata fails here, before any write
        return oid, image, mask, record

    def _commit(self, items: Iterable[tuple[str, np.ndarray, np.ndarray, dict]]) -> int:
        """Store prepared objects not yet in the bank; return how many were new."""
        items = list(items)
        if not items:  # no lock taken for nothing
            return 0
        with self._mutex, self._lock():
            self._sync()
            lines, new = [], {}
            for oid, image, mask, record in items:
                if record is None or oid in self._records or oid in new:
                    continue
                # Files first, then the manifest line: a reader that sees the line finds the files.
                write_object_files(self.path, record, image, mask)
                new[oid] = (image.copy(), mask.copy())
                lines.append(json.dumps(record, default=_jsonable) + "\n")
            if lines:
                self._append("".join(lines).encode("utf-8"))
            self._sync()
            for oid, (image, mask) in new.items():  # no need to decode what we just wrote
                if oid in self._records:
                    self._cache[oid] = _frozen(BankObject(oid, image, mask, self._records[oid]))
            self._list = None
        return len(lines)

    def add_object(self, image: np.ndarray, mask: np.ndarray, **meta) -> str | None:
        """Add one object (2D gray or RGB crop and its mask, >0 = object).

        ``meta`` (source, plane, bbox, method, quality, ...) is stored with it.
        Returns the new id, or None when an identical object is already banked.
        """
        oid, image, mask, record = self._prepare(image, mask, meta)
        return oid if self._commit([(oid, image, mask, record)]) else None

    def add_from_labels(self, image, labels, *, source="", ids=None, plane=None, method="autoseg",
                        min_area=16, padding=2, judge_shapes=True) -> int:
        """Crop each labelled object (bounding box + ``padding``, clipped) with its own mask.

        ``image`` (gray, RGB or a stack ``(..., Y, X)``) and integer ``labels`` (0 =
        background) share the spatial shape; stacks are cropped plane by plane and the
        plane index is recorded (``plane`` is recorded for 2D input). Other objects inside
        a crop are not in its mask. ``ids`` restricts to those labels; objects under
        ``min_area`` pixels are skipped.

        With ``judge_shapes`` each object is judged by shape (`shapes.judge_shape`): a clump
        of round particles is banked as its parts (meta ``shape_verdict`` "split from clump",
        ``clump_parts``), text, panel letters, scale bars, flat boxes and clumps that do not
        split cleanly are left out and counted in ``left_out``; the rest are banked whole
        (``shape_verdict`` "single", or "too small to judge"). Returns how many objects were new to
        the bank.
        """
        image, labels = checked_label_image(image, labels)
        self._sync()
        left_out: Counter = Counter()
        crops = object_crops(image, labels, left_out=left_out, source=source, ids=ids, plane=plane, method=method,
                             min_area=min_area, padding=padding, judge_shapes=judge_shapes)
        added = self._commit([self._prepare(crop, mask, meta) for crop, mask, meta in crops])
        with self._mutex:
            self.left_out.update(left_out)
        return added

    def _load(self, record: dict) -> BankObject | None:
        oid = record["id"]
        try:
            image = read_image(self.path / record["image"])
            mask = read_image(self.path / record["mask"])
        except ImageReadError as exc:
            self._report(f"object {oid} skipped: {exc}")
            return None
        if mask.ndim == 3:
            mask = mask[..., 0]
        expected = tuple(record.get("shape") or image.shape)
        if image.shape != expected or mask.shape != expected:
            self._report(f"object {oid} skipped: image {image.shape} / mask {mask.shape} do not match "
                         f"the manifest's shape {expected}")
            return None
        return _frozen(BankObject(oid, image, mask > 0, record))

    def objects(self, refresh: bool = False) -> list[BankObject]:
        """All readable objects in insertion order, decoded once and cached in memory.

        The cache follows the manifest (adds from other instances appear); ``refresh``
        re-reads every file from disk. The arrays are read-only: copy before editing.
        """
        if refresh:
            self._reset(None)
        self._sync()
        if self._list is None:
            self._list = [obj for obj in map(self._decoded, self._records) if obj is not None]
        return list(self._list)

    def get(self, oid: str, default=None) -> BankObject | None:
        """The object with id ``oid``, or ``default`` if unknown or unreadable."""
        self._sync()
        obj = self._decoded(oid) if oid in self._records else None
        return default if obj is None else obj

    def _decoded(self, oid: str) -> BankObject | None:
        if oid not in self._cache and oid not in self._unreadable:
            obj = self._load(self._records[oid])
            if obj is None:
                self._unreadable.add(oid)
            else:
                self._cache[oid] = obj
        return self._cache.get(oid)

    def sample(self, rng: np.random.Generator, n: int, *, min_quality: float | None = None) -> list[BankObject]:
        """``n`` objects drawn uniformly with replacement (optionally only ``quality >= min_quality``)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        pool = self.objects()
        if min_quality is not None:
            pool = [obj for obj in pool if obj.meta.get("quality", 0.0) >= min_quality]
        if not pool:
            fix = "add objects first" if min_quality is None else f"quality >= {min_quality}; lower min_quality"
            raise ValueError(f"bank {self.path} has no readable objects; {fix}")
        return [pool[i] for i in rng.integers(0, len(pool), size=int(n))]

    def content_hash(self) -> str:
        """Stable hash of the set of object ids (identifies what a model was trained on)."""
        self._sync()
        return hashlib.sha1("\n".join(sorted(self._records)).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        self._sync()
        return len(self._records)

    def __iter__(self) -> Iterator[BankObject]:
        return iter(self.objects())

    def __contains__(self, oid: object) -> bool:
        self._sync()
        return oid in self._records

    def __repr__(self) -> str:
        return f"ObjectBank({str(self.path)!r}, objects={len(self)})"

    def import_folder(self, images_dir: str | os.PathLike, masks_dir: str | os.PathLike, *,
                      method: str = "imported") -> int:
        """Import the reference program's layout (``Rocks/`` + ``Masks_of_Rocks/``).

        Images and masks are paired by file stem in sorted order; mask pixels > 0 are the
        object; RGB images become gray. Unpaired or unreadable files are reported in
        ``problems`` and skipped. Returns how many objects were new.
        """
        self._sync()
        items = [self._prepare(image, mask, {"source": str(path), "method": method})
                 for image, mask, path in read_folder_pairs(images_dir, masks_dir, self._report)]
        return self._commit(items)

    def export_folder(self, images_dir: str | os.PathLike, masks_dir: str | os.PathLike) -> int:
        """Write every object as ``<id>.png`` (float: ``.tif``) + ``<id>.png`` mask (0/255).

        Existing files are never overwritten (new names get a ``-1`` suffix). Returns the count.
        """
        return write_folder_pairs(self.objects(), images_dir, masks_dir)


def _frozen(obj: BankObject) -> BankObject:
    obj.image.flags.writeable = False
    obj.mask.flags.writeable = False
    return obj
