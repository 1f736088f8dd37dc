"""Objects cut from instance labels for the object bank, and adding labelled images to a bank.

`object_crops` turns an image and its labels into crops with their own masks (judged by shape
when asked, clumps split at necks, see ``napari_synthseg.shapes``); `ObjectBank.add_from_labels`
stores them. `add_labelled_images` is the one loop that adds several labelled images (or planes)
to a bank, which a run, the command line and the docks share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .bank_files import _gray_like, _now
from .image_io import is_rgb, iter_planes
from .shapes import SPLIT, judge_shape


def checked_label_image(image, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(image, labels)`` as arrays of one spatial shape (RGB made gray), or a clear error.

    Parameters
    ----------
    image
        Gray, RGB or a stack ``(..., Y, X)``.
    labels
        Integer (or bool) instance labels, 0 = background, the image's spatial shape.
    """
    labels = np.asarray(labels)
    image = np.asarray(image)
    if labels.dtype == np.bool_:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got {labels.dtype}; pass instance labels")
    if labels.ndim < 2:
        raise ValueError(f"labels must be 2D or a stack (..., Y, X), got shape {labels.shape}")
    if image.shape != labels.shape:
        if image.ndim == labels.ndim + 1 and image.shape[:-1] == labels.shape and is_rgb(image):
            image = _gray_like(image)
        else:
            raise ValueError(f"image shape {image.shape} does not match labels shape {labels.shape}; "
                             "pass the labels made from this image")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0 (0 = background)")
    return image, labels


def object_crops(image: np.ndarray, labels: np.ndarray, *, left_out: Counter, source="", ids=None, plane=None,
                 method="autoseg", min_area=16, padding=2, judge_shapes=True
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """``(crop, mask, meta)`` of each labelled object (see `ObjectBank.add_from_labels`).

    ``image`` and ``labels`` come from `checked_label_image`. Objects (and clump parts) that the
    shape judgement leaves out are counted in ``left_out`` by reason.
    """
    wanted = None if ids is None else {int(i) for i in ([ids] if np.isscalar(ids) else ids)}
    padding = max(0, int(padding))
    stack = labels.ndim > 2
    time = _now()
    for index in iter_planes(labels.shape):
        plane_labels, plane_image = labels[index], image[index]
        label_ids, compact = _compact_labels(plane_labels)
        for position, box in enumerate(ndimage.find_objects(compact)):
            label_id = int(label_ids[position]) if box is not None else 0
            if box is None or (wanted is not None and label_id not in wanted):
                continue
            crop = _padded(box, padding, compact.shape)
            mask = compact[crop] == position + 1
            if mask.sum() < min_area:
                continue
            meta = dict(source=str(source), plane=list(index) if stack else plane, label=label_id,
                        method=method, time=time)
            if not judge_shapes:
                yield plane_image[crop], mask, _placed(meta, crop, box, compact.shape)
                continue
            yield from _judged_parts(plane_image, mask, crop, meta, left_out, shape=compact.shape, padding=padding,
                                     min_area=min_area)


def _judged_parts(plane_image: np.ndarray, mask: np.ndarray, crop: tuple[slice, ...], meta: dict,
                  left_out: Counter, *, shape: tuple[int, ...], padding: int, min_area: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """The parts of one object the shape judgement keeps, each with its own crop of a plane of ``shape``."""
    verdict = judge_shape(mask, plane_image[crop], min_part_area=max(int(min_area), 1))
    left_out.update(verdict.left_out)
    if verdict.shape == SPLIT:
        meta["clump_parts"] = len(verdict.parts) + len(verdict.left_out)
    for part in verdict.parts:
        # the part's own box, in plane coordinates, and its crop
        part_box = tuple(slice(c.start + s.start, c.start + s.stop)
                         for c, s in zip(crop, ndimage.find_objects(part.view(np.uint8))[0]))
        part_crop = _padded(part_box, padding, shape)
        part_mask = np.zeros(tuple(s.stop - s.start for s in part_crop), dtype=bool)
        inner = tuple(slice(p.start - c.start, p.stop - c.start) for p, c in zip(part_box, part_crop))
        outer = tuple(slice(p.start - c.start, p.stop - c.start) for p, c in zip(part_box, crop))
        part_mask[inner] = part[outer]
        yield (plane_image[part_crop], part_mask,
               _placed(dict(meta, shape_verdict=verdict.shape), part_crop, part_box, shape))


def _compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, labels renumbered 1..n) so find_objects stays small even for huge label values."""
    top = int(labels.max()) if labels.size else 0
    if top <= (1 << 20):
        return np.arange(1, top + 1), labels
    values, inverse = np.unique(labels, return_inverse=True)
    shift = 0 if values[0] == 0 else 1
    return values[values > 0], inverse.reshape(labels.shape) + shift


def _padded(box: tuple[slice, ...], padding: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A bounding box grown by ``padding`` on every side, clipped to ``shape``."""
    return tuple(slice(max(s.start - padding, 0), min(s.stop + padding, n)) for s, n in zip(box, shape))


def _placed(meta: dict, crop: tuple[slice, ...], box: tuple[slice, ...], shape: tuple[int, ...]) -> dict:
    """``meta`` with the crop's ``bbox`` and whether the object's own ``box`` touches the image border."""
    return dict(meta, bbox=[crop[0].start, crop[1].start, crop[0].stop, crop[1].stop],
                touches_border=any(s.start == 0 or s.stop == n for s, n in zip(box, shape)))


@dataclass(frozen=True)
class LabelledImage:
    """One image (or stack plane) and its instance labels, to be added to a bank.

    Attributes
    ----------
    image, labels
        As `ObjectBank.add_from_labels` takes them.
    source
        Where the image came from (its path or layer name), recorded with each object.
    plane
        The plane's index in its stack, recorded for a 2D plane (None: a 2D image).
    ids
        Only these label ids (None: all).
    """

    image: np.ndarray
    labels: np.ndarray
    source: str = ""
    plane: Sequence[int] | None = None
    ids: Iterable[int] | None = None


def iter_add_labelled_images(bank, labelled: Iterable[LabelledImage], *, method: str = "autoseg",
                             judge_shapes: bool = True) -> Iterator[int]:
    """Add the objects of each labelled image to ``bank``, one image at a time.

    Yields how many objects each image added that were new to the bank, so a caller can report
    progress between images; nothing is added beyond what has been iterated.

    Parameters
    ----------
    bank
        An `ObjectBank`.
    labelled
        The images with their labels.
    method
        How the labels were made (``"autoseg"``, ``"curated"``, ...), recorded with each object.
    judge_shapes
        Judge objects by shape (`ObjectBank.add_from_labels`); False banks masks as given (a person's picks).
    """
    for item in labelled:
        yield bank.add_from_labels(item.image, item.labels, source=str(item.source), ids=item.ids,
                                   plane=None if item.plane is None else list(item.plane), method=method,
                                   judge_shapes=judge_shapes)


def add_labelled_images(bank, labelled: Iterable[LabelledImage], *, method: str = "autoseg",
                        judge_shapes: bool = True) -> int:
    """Add the objects of every labelled image to ``bank``; how many were new (`iter_add_labelled_images`)."""
    return sum(iter_add_labelled_images(bank, labelled, method=method, judge_shapes=judge_shapes))
