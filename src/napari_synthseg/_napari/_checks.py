"""Checks the docks run before they start work, so that no job fails after minutes of loading.

Each check raises ``ValueError`` with one line naming the problem and the fix (the docks turn it
into one notification) and imports neither Qt nor Keras: model files are checked through their
zip archive and JSON sidecar only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def check_model_backend() -> None:
    """Refuse model work when Keras or its backend is not installed (the message has the install line)."""
    from napari_synthseg import backend

    message = backend.missing_backend_message()
    if message:
        raise ValueError(message)


def check_bank_has_objects(bank_dir: Path) -> None:
    """Refuse a folder that is not an object bank or holds no objects."""
    from napari_synthseg.bank import ObjectBank

    if not ObjectBank.is_bank(bank_dir):
        raise ValueError(f"{bank_dir} is not an object bank; add objects to it with Auto-segment or Curate first")
    with warnings.catch_warnings():  # damaged entries are reported by the job that reads them
        warnings.simplefilter("ignore")
        n_objects = len(ObjectBank(bank_dir, create=False))
    if n_objects == 0:
        raise ValueError(f"bank {bank_dir} holds no objects; add objects to it with Auto-segment or Curate first")


def model_sidecar(model_path: Path) -> dict:
    """The JSON sidecar of a ``.keras`` model, after checking that the model file can be used.

    Raises
    ------
    ValueError
        The file is missing, a folder, unreadable, not a zip archive, or its sidecar is
        missing, damaged or describes other outputs than this version makes.
    """
    from napari_synthseg.model.sidecar import check_model_file  # its ModelFileError is a ValueError

    return check_model_file(model_path)


def check_writable_file(path: Path, what: str, replace: bool = True) -> None:
    """Refuse an output file that is a folder, or whose folder cannot be made or written to;
    with ``replace=False`` also an existing file (results are never replaced unasked)."""
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; choose a file name")
    if not replace and path.exists():
        raise ValueError(f"{what} {path} already exists; tick 'replace existing files' or choose another name")
    _check_can_write_in(path.parent, path, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot replace the {what} {path}: no permission to write it; choose another name")


def check_output_folder(folder: Path, what: str) -> None:
    """Refuse an output folder that is a file or cannot be made or written to."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is a file, not a folder; choose a folder")
    _check_can_write_in(folder, folder, what)


def _check_can_write_in(folder: Path, target: Path, what: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folders below it are made when the output is written
    if not existing.is_dir():
        raise ValueError(f"cannot write the {what} {target}: {existing} is a file, not a folder; "
                         "choose another place")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the {what} {target}: no permission to write in {existing}; "
                         "choose a folder of yours")


def check_real_pairs(recipe: str, pairs) -> None:
    """Refuse a recipe that trains on real images when an image has no labels of its shape.

    Parameters
    ----------
    recipe
        The recipe's name (for the message).
    pairs
        ``(image name, image shape, labels name or None, labels shape or None)`` per ticked image.
    """
    if not pairs:
        raise ValueError(f"the {recipe} recipe trains on real images with their labels: tick at least one image "
                         "under 'images' and auto-segment it (or choose its labels in the table)")
    for image, image_shape, labels, labels_shape in pairs:
        if labels is None:
            raise ValueError(f"image '{image}' has no labels for the {recipe} recipe: auto-segment it (the "
                             f"Auto-segment dock makes '{image} autoseg') or choose its labels in the table")
        if tuple(labels_shape) != tuple(image_shape):
            raise ValueError(f"labels '{labels}' are {_size(labels_shape)} but image '{image}' is "
                             f"{_size(image_shape)}: choose the labels made for '{image}' or auto-segment it again")


def check_labels_have_objects(image: str, labels: str, data) -> None:
    """Refuse labels (the plane that trains) without any object."""
    import numpy as np

    if not np.any(np.asarray(data)):
        raise ValueError(f"labels '{labels}' of image '{image}' hold no objects: auto-segment '{image}' again "
                         "(another method or polarity) or choose other labels")


def _size(shape) -> str:
    return "×".join(str(int(n)) for n in shape) + " px"
