"""Scores of a run: ground-truth masks found and read as labels, objects scored, rounds compared.

Also which objects a model segmented confidently enough to join the bank between
self-training rounds (``confident_objects``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .image_io import ImageReadError, list_images, read_image
from .metrics import DatasetScores


def find_ground_truth(gt_dir: str | Path, stems: Sequence[str]) -> dict[str, Path]:
    """Map image stems to mask files with the same stem in ``gt_dir`` (any image format)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise ImageReadError(f"ground-truth folder {gt_dir} does not exist")
    files = {p.stem: p for p in list_images(gt_dir)}
    for stem in list(files):
        # masks are often named <stem>_mask or <stem>_labels
        for suffix in ("_mask", "_masks", "_labels", "_gt"):
            if stem.endswith(suffix):
                files.setdefault(stem[: -len(suffix)], files[stem])
    found = {stem: files[stem] for stem in stems if stem in files}
    if not found:
        raise ImageReadError(
            f"no mask in {gt_dir} has the stem of any image (e.g. {stems[0]}.png); "
            "name masks like their images"
        )
    return found


def score_labels(predictions: dict[str, np.ndarray], gt_files: dict[str, Path], *,
                 per_image: dict | None = None) -> dict:
    """Pooled pixel and object scores of predicted labels against masks (read by `as_label_image`).

    ``per_image``, when given, receives each image's own summary by stem.
    """
    scores = DatasetScores()
    for stem, gt_path in gt_files.items():
        if stem not in predictions:
            continue
        gt = as_label_image(read_image(gt_path), str(gt_path))
        pred = as_label_image(predictions[stem], stem)
        if gt.shape != pred.shape:
            raise ValueError(f"mask {gt_path} has shape {gt.shape} but the prediction has {pred.shape}; "
                             "score labels made from the same images as the masks")
        gt = _as_instances(gt)
        scores.add(pred, gt)
        if per_image is not None:
            one = DatasetScores()
            one.add(pred, gt)
            per_image[stem] = one.summary()
    return scores.summary()


def as_label_image(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """Integer labels from a label or mask image as users save them.

    RGB(A) masks: each colour is one label (black = background; alpha is not an object).
    Float masks with whole-number values are labels; other float masks (soft masks,
    probabilities) are objects where above half their maximum. NaN counts as background.
    """
    array = np.asarray(array)
    if array.ndim >= 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4:
        flat = np.ascontiguousarray(array[..., :3]).reshape(-1, 3)
        values, inverse = np.unique(flat, axis=0, return_inverse=True)
        ids = np.arange(1, len(values) + 1, dtype=np.int64)
        black = np.flatnonzero((values == 0).all(axis=1))
        if black.size:  # black keeps 0, the other colours 1..n
            ids[black[0]] = 0
            ids[black[0] + 1:] -= 1
        return ids[inverse.ravel()].reshape(array.shape[:-1])
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        finite = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
        if np.all(finite == np.round(finite)) and finite.min(initial=0) >= 0:
            return finite.astype(np.int64)
        top = float(finite.max(initial=0))
        return (finite > top / 2).astype(np.uint8) if top > 0 else np.zeros(array.shape, np.uint8)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError(f"{name} has negative values; labels are 0 (background) and positive ids")
    return array


def _as_instances(mask: np.ndarray) -> np.ndarray:
    """Binary masks become connected components; instance masks stay as they are."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask)
    if np.unique(mask).size <= 2:
        return ndi.label(mask > 0)[0]
    return mask


def confident_objects(labels: np.ndarray, foreground: np.ndarray, *, min_confidence: float = 0.85,
                      min_solidity: float = 0.8, min_area: int = 30) -> np.ndarray:
    """Ids of objects a model segmented confidently and plausibly.

    An object qualifies when its mean foreground probability is at least ``min_confidence``,
    it does not touch the image border, its solidity is at least ``min_solidity`` and its area
    at least ``min_area`` pixels.
    """
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table
    from skimage.segmentation import clear_border

    ids = np.unique(labels)
    ids = ids[ids > 0]
    if ids.size == 0:
        return ids
    mean_prob = np.asarray(ndi.mean(foreground, labels=labels, index=ids))
    inner = clear_border(labels)
    props = regionprops_table(inner, properties=("label", "area", "solidity"))
    plausible = set(
        int(lab) for lab, area, sol in zip(props["label"], props["area"], props["solidity"])
        if area >= min_area and sol >= min_solidity
    )
    return np.array([i for i, p in zip(ids, mean_prob) if p >= min_confidence and int(i) in plausible],
                    dtype=ids.dtype)


def _foreground_change(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """1 - pooled foreground IoU between two rounds' predictions (0 = identical)."""
    inter = union = 0
    for stem, la in a.items():
        fa, fb = la > 0, b[stem] > 0
        inter += int(np.count_nonzero(fa & fb))
        union += int(np.count_nonzero(fa | fb))
    return 0.0 if union == 0 else 1.0 - inter / union
