"""An object bank as a gallery: every object in a frame of one size, with its mask and provenance (pure core).

For looking at what a model learns from: the crops are centred in equal frames (padded with each crop's
own median, so the frame border does not stand out), object ``k`` is label ``k + 1`` in its frame, and one
table row per object holds its id, source file, plane, bounding box in the source, method and shape numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

#: Most objects put into one gallery (a bank can hold tens of thousands).
DEFAULT_MAX_OBJECTS = 1000

#: Provenance and shape columns of the table, in order (from each object's manifest record).
COLUMNS = ("id", "source", "plane", "bbox", "method", "area", "solidity", "eccentricity", "quality",
           "mean_intensity", "time")


@dataclass
class Gallery:
    """Frames ``(N, H, W)``, labels ``(N, H, W)`` (object k is k + 1), and the table (``index`` = label)."""

    images: np.ndarray
    labels: np.ndarray
    features: dict[str, list]
    total: int  # objects in the bank (more than N when the gallery is cut at max_objects)


def _cell(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else value


def bank_gallery(path: str | os.PathLike, *, max_objects: int = DEFAULT_MAX_OBJECTS, margin: int = 2) -> Gallery:
    """The first ``max_objects`` objects of the bank at ``path`` as a gallery.

    Raises
    ------
    NotABankError
        ``path`` is not a bank folder.
    ValueError
        The bank holds no object.
    """
    from .bank import ObjectBank

    bank = ObjectBank(path, create=False)
    objects = bank.objects()
    if not objects:
        raise ValueError(f"bank {path} holds no objects yet; add some with `synthseg autoseg` or the Curate dock")
    chosen = objects[:max_objects]
    height = max(obj.image.shape[0] for obj in chosen) + 2 * margin
    width = max(obj.image.shape[1] for obj in chosen) + 2 * margin
    same = {obj.image.dtype for obj in chosen}
    dtype = same.pop() if len(same) == 1 else np.float32
    images = np.zeros((len(chosen), height, width), dtype=dtype)
    labels = np.zeros((len(chosen), height, width), dtype=np.uint32)
    features: dict[str, list] = {"index": []} | {name: [] for name in COLUMNS}
    for k, obj in enumerate(chosen):
        h, w = obj.image.shape
        top, left = (height - h) // 2, (width - w) // 2
        images[k] = np.median(obj.image)
        images[k, top: top + h, left: left + w] = obj.image
        labels[k, top: top + h, left: left + w][obj.mask] = k + 1
        features["index"].append(k + 1)
        record = {"id": obj.id, **obj.meta}
        for name in COLUMNS:
            features[name].append(_cell(record.get(name)))
    return Gallery(images, labels, features, total=len(objects))
