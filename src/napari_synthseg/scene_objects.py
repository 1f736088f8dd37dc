"""Bank objects prepared once for pasting: float crops and their masks at a few resolutions.

Pure core (numpy). :func:`prepare_objects` converts a bank's objects once (cached per list)
so that :func:`napari_synthseg.scenes.synthesize_scene` only resamples them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._synthesis_common import _unit_gray


@dataclass
class PreparedObject:
    """A bank object ready for pasting: float crops at a few resolutions.

    ``levels[k]`` is ``(premultiplied image, mask)`` downsampled by ``2**k``; the
    image is pre-multiplied by the mask so bilinear resampling never mixes in the
    crop's own background.
    """

    levels: list[tuple[np.ndarray, np.ndarray]]
    mean: float
    area: int
    source: str = ""
    #: per level, the ``(row, col)`` of the mask pixels on its edge (float64), which bound
    #: where a resampled paste can be non-zero
    outlines: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.outlines) != len(self.levels):
            self.outlines = [_outline(alpha) for _, alpha in self.levels]


class PreparedObjects:
    """All objects of a bank converted once for fast synthesis (see :func:`prepare_objects`)."""

    def __init__(self, objects: list[PreparedObject]):
        self.objects = objects
        groups: dict[str, list[int]] = {}
        for i, obj in enumerate(objects):
            groups.setdefault(obj.source, []).append(i)
        #: object indices per source image
        self.groups = {name: np.asarray(ids) for name, ids in groups.items()}

    def __len__(self) -> int:
        return len(self.objects)


def _prepare_one(image: np.ndarray, mask: np.ndarray, index: int) -> PreparedObject | None:
    image = np.asarray(image)
    mask = np.asarray(mask)
    gray = _unit_gray(image)
    if gray.ndim != 2 or mask.ndim != 2 or gray.shape != mask.shape:
        raise ValueError(
            f"bank object {index}: image {image.shape} and mask {mask.shape} must be 2D and of the same shape"
        )
    alpha = (mask > 0).astype(np.float32)
    area = int(alpha.sum())
    if area == 0:
        return None
    premult = gray * alpha
    mean = float(premult.sum() / area)
    # a zero border makes every resampler treat "outside the crop" the same way
    levels = [(np.pad(premult, 1), np.pad(alpha, 1))]
    while min(levels[-1][1].shape) >= 8:
        p, a = levels[-1]
        h, w = (p.shape[0] // 2) * 2, (p.shape[1] // 2) * 2
        levels.append(
            (
                p[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)),
                a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)),
            )
        )
    return PreparedObject(levels=levels, mean=mean, area=area)


def _outline(alpha: np.ndarray) -> np.ndarray:
    """``(row, col)`` of the support pixels (alpha > 0) with a pixel outside it among their 8 neighbours."""
    support = alpha > 0
    edge = support & ~ndimage.binary_erosion(support, structure=np.ones((3, 3), dtype=bool))
    return np.argwhere(edge).astype(np.float64)


def prepare_objects(bank) -> PreparedObjects:
    """Convert a bank's objects once for :func:`synthesize_scene` (cached per list).

    Parameters
    ----------
    bank
        An ObjectBank (its ``objects()`` are used), a :class:`PreparedObjects`, or a
        sequence of objects with ``.image`` and ``.mask``.

    Raises
    ------
    ValueError
        The bank is empty or no object has any mask pixel.
    """
    if isinstance(bank, PreparedObjects):
        prepared = bank
    else:
        objects = bank.objects() if callable(getattr(bank, "objects", None)) else bank
        if not isinstance(objects, (list, tuple)):
            objects = list(objects)
        # keyed by the identity of the first and last items: the cache holds the
        # list, so these ids cannot be reused while the entry lives
        key = (len(objects), id(objects[0]), id(objects[-1])) if len(objects) else None
        hit = _OBJECT_CACHE.get(key) if key is not None else None
        if hit is not None and hit[0][0] is objects[0] and hit[0][-1] is objects[-1]:
            _OBJECT_CACHE.move_to_end(key)
            prepared = hit[2]
        else:
            items = []
            for i, obj in enumerate(objects):
                try:
                    image, mask = obj.image, obj.mask
                except AttributeError:
                    raise TypeError(f"bank object {i} has no .image/.mask; pass an ObjectBank or BankObjects") from None
                one = _prepare_one(image, mask, i)
                if one is not None:
                    one.source = str((getattr(obj, "meta", None) or {}).get("source", ""))
                    items.append(one)
            prepared = PreparedObjects(items)
            if objects:
                _OBJECT_CACHE[key] = (objects, len(objects), prepared)  # type: ignore[index]
                while len(_OBJECT_CACHE) > 4:
                    _OBJECT_CACHE.popitem(last=False)
    if len(prepared) == 0:
        raise ValueError("the object bank is empty (or all its masks are empty); add objects to it first")
    return prepared


_OBJECT_CACHE: OrderedDict[tuple, tuple[Any, int, PreparedObjects]] = OrderedDict()


__all__ = ["PreparedObject", "PreparedObjects", "prepare_objects"]
