"""napari reader for an object bank folder: its objects as a gallery (image stack + masks with provenance)."""

from __future__ import annotations

from pathlib import Path


def get_reader(path):
    """A reader for a bank folder (``bank.json`` inside), else None."""
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    if not isinstance(path, (str, Path)) or not Path(path).is_dir():
        return None
    from napari_synthseg.bank import ObjectBank

    return read_bank if ObjectBank.is_bank(path) else None


def read_bank(path):
    """Layer data: the objects (one per plane of the stack) and a Labels layer of their masks, with
    each object's id, source, plane, bounding box and method in ``features`` (hover or the Curate dock's table)."""
    if isinstance(path, list):
        path = path[0]
    from napari_synthseg.bank_gallery import bank_gallery

    path = Path(path)
    gallery = bank_gallery(path)
    shown = len(gallery.features["index"])
    name = path.name + (f" (first {shown} of {gallery.total})" if shown < gallery.total else "")
    return [(gallery.images, {"name": f"{name} objects", "metadata": {"bank": str(path)}}, "image"),
            (gallery.labels, {"name": f"{name} masks", "features": gallery.features, "opacity": 0.35}, "labels")]
