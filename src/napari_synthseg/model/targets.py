"""Training targets from instance labels (pure numpy/scipy; must not import Keras).

Channels, in the order of ``napari_synthseg.model.sidecar.CHANNELS``:

0. ``foreground``: 1 inside any object.
1. ``distance``: each object's inner Euclidean distance transform divided by that object's
   maximum (1 at the object's centre, falling to 0 at its edge; 0 outside). Touching objects are
   cut apart first, so the peaks mark separate objects even inside a clump.
2. ``boundary``: the 2-px band where a pixel's 4-neighbour carries a different label (object
   against background, or object against object). Image borders are not edges: the object may
   continue outside the patch.

Targets of a curated real image (`curation_targets`) add a fourth channel, ``known``: 1 where
the loss counts the pixel, 0 where nobody said anything (``losses.SegmentationLoss``).
Synthetic scenes are known everywhere (`with_known`). A fifth channel, ``shape_known``, narrows
the distance and boundary terms further: 0 inside an auto-segmented clump, where the labels say
"object" but not where its particles meet (``shapes.clump_interiors``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

N_CHANNELS = 3
#: Index of the optional ``known`` channel (1 = counted by the loss, 0 = ignored).
KNOWN_CHANNEL = 3
#: Index of the optional ``shape_known`` channel (0 = distance and boundary not counted).
SHAPE_KNOWN_CHANNEL = 4


def label_edges(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge masks of a 2D label image.

    Returns
    -------
    edges : ndarray of bool
        Pixels whose 4-neighbourhood holds a different value (both sides of every edge).
    touching : ndarray of bool
        Object pixels with a 4-neighbour in a *different object* (not background).
    """
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edges = np.zeros(labels.shape, dtype=bool)
    touching = np.zeros(labels.shape, dtype=bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        differs = neighbour != centre
        edges |= differs
        touching |= differs & (neighbour != 0)
    touching &= centre != 0
    return edges, touching


def labels_to_targets(labels: np.ndarray) -> np.ndarray:
    """Foreground, normalised inner distance and boundary targets for instance labels.

    Parameters
    ----------
    labels : ndarray of int or bool, shape (H, W) or (..., H, W)
        Instance labels, 0 = background. Stacks are converted plane by plane.

    Returns
    -------
    ndarray of float32, shape labels.shape + (3,)
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer (or bool) label image, got dtype {labels.dtype}; "
                        "round or cast float masks first")
    if labels.ndim < 2:
        raise ValueError(f"labels must be at least 2D (H, W), got shape {labels.shape}")
    if labels.ndim > 2:
        out = np.empty(labels.shape + (N_CHANNELS,), dtype=np.float32)
        for index in np.ndindex(labels.shape[:-2]):
            out[index] = labels_to_targets(labels[index])
        return out
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 = background)")

    targets = np.zeros(labels.shape + (N_CHANNELS,), dtype=np.float32)
    foreground = labels != 0
    if not foreground.any():
        return targets
    edges, touching = label_edges(labels)

    # One EDT for all objects: cutting the touching pixels makes every object's distance
    # run to its own edge, never across into a neighbour.
    interior = foreground & ~touching
    distance = ndimage.distance_transform_edt(interior).astype(np.float32)
    n = int(labels.max())
    per_label_max = (ndimage.maximum(distance, labels=labels, index=np.arange(n + 1))
                     if n <= max(labels.size, 65535) else None)
    if per_label_max is None:  # huge label ids: compact them first so the lookup table stays small
        ids, compact = np.unique(labels, return_inverse=True)
        compact = compact.reshape(labels.shape)
        per_label_max = ndimage.maximum(distance, labels=compact, index=np.arange(ids.size))
        lookup = compact
    else:
        lookup = labels
    per_label_max = np.asarray(per_label_max, dtype=np.float32)
    per_label_max[per_label_max <= 0] = 1.0  # all-edge specks stay at 0 instead of dividing by 0
    targets[..., 0] = foreground
    targets[..., 1] = distance / per_label_max[lookup]
    targets[..., 2] = edges
    return targets


def with_known(targets: np.ndarray, known: np.ndarray | None = None,
               shape_known: np.ndarray | bool | None = None) -> np.ndarray:
    """``targets`` (..., 3) with the ``known`` channel appended: (..., 4), float32.

    ``known=None`` means every pixel is known (synthetic scenes, whose labels are complete).
    With ``shape_known`` (a mask, or True for all pixels) the fifth channel is appended too:
    (..., 5); where it is False the distance and boundary targets are not counted.
    """
    targets = np.asarray(targets, dtype=np.float32)
    channels = [targets]
    for name, mask in (("known", known), ("shape_known", shape_known)):
        if mask is None and name == "shape_known":
            break
        if mask is None or mask is True:
            mask = np.ones(targets.shape[:-1], dtype=np.float32)
        mask = np.asarray(mask)
        if mask.shape != targets.shape[:-1]:
            raise ValueError(f"{name} has shape {mask.shape}, the targets {targets.shape[:-1]}; "
                             "give one mask per pixel")
        channels.append(mask.astype(np.float32)[..., None])
    return np.concatenate(channels, axis=-1)


def curation_targets(curation, ring_px: int | None = None) -> np.ndarray:
    """Targets (H, W, 4) of a curated image: its known objects' targets and the known mask.

    Parameters
    ----------
    curation : napari_synthseg.curation.Curation or (labels, known)
        What a person said about the image; a pair gives instance labels and a bool mask of
        the pixels the loss may count.
    ring_px : int, optional
        For a Curation: width of the ring outside each object counted as background
        (``Curation.known``; its default when None).

    Returns
    -------
    ndarray of float32, shape (H, W, 4)
        Channels foreground, distance, boundary (of the known objects; everything else
        background) and known.
    """
    if hasattr(curation, "objects") and hasattr(curation, "known"):
        labels = curation.objects
        known = curation.known() if ring_px is None else curation.known(ring_px=ring_px)
    else:
        try:
            labels, known = curation
        except (TypeError, ValueError):
            raise TypeError("curation must be a Curation or a (labels, known) pair") from None
    labels, known = np.asarray(labels), np.asarray(known)
    if labels.ndim != 2 or known.shape != labels.shape:
        raise ValueError(f"a curation needs 2D labels and a known mask of one shape; "
                         f"got {labels.shape} and {known.shape}")
    return with_known(labels_to_targets(labels), known > 0)
