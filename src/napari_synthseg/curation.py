"""Curation (pure core): fill enclosed contours, pick objects, and curations of real images.

A `Curation` records what a person said about one image: objects known to be right (picked,
added, filled), pixels known to be background (rejected objects), and nothing about the rest
(unknown). Retraining counts only the known pixels (`Curation.known`). Every operation returns
a new Curation, so undo is a stack of them. Measuring lives in `measure`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .add_outline import foreground_probability, grow_from_image, grow_from_probability, narrowed_by_image
from .instances import basin_at

# the Curate dock's measurements, kept importable from here
from .measure import measure_objects, write_measurements_csv  # noqa: F401


def _point(shape: tuple[int, ...], point: Sequence[float]) -> tuple[int, int]:
    if len(point) != 2:
        raise ValueError(f"point must be (row, col); got {tuple(point)!r}")
    row, col = (int(round(float(v))) for v in point)
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise ValueError(f"point (row {row}, col {col}) lies outside the image of shape {shape}; "
                         "click inside the image")
    return row, col


def fill_enclosed(mask: np.ndarray, background_point: Sequence[float]) -> np.ndarray:
    """Everything not reachable from a background pixel becomes object.

    Pixels reachable from ``background_point`` through non-object pixels
    (4-connectivity) stay background; object pixels and every region they enclose
    become object. One connected-component labelling, no flood fill in Python.

    Parameters
    ----------
    mask
        2D bool or label array; > 0 is object/contour.
    background_point
        ``(row, col)`` of a background pixel.

    Returns
    -------
    numpy.ndarray
        2D bool mask.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"fill_enclosed needs a 2D mask (Y, X); got shape {mask.shape}")
    row, col = _point(mask.shape, background_point)
    objects = mask > 0
    if objects[row, col]:
        raise ValueError(f"the point (row {row}, col {col}) is on an object pixel; "
                         "click a background pixel")
    regions, _ = ndi.label(~objects)  # default structure: 4-connectivity
    return regions != regions[row, col]


# ---------------------------------------------------------------------------------------------
# Curations: what a person said about one real image (issue 17)
# ---------------------------------------------------------------------------------------------

UNKNOWN = 0
"""Value of pixels nobody said anything about in a curation image (``Curation.as_image``)."""
BACKGROUND = -1
"""Value of pixels known to be background in a curation image."""

CURATION_FORMAT = "napari-synthseg-curation/1"
OUTLINE_RING_PX = 3
"""Width of the ring outside each curated object that `Curation.known` counts as background.

A person who picks an object says its outline is right, so the pixels just outside it are not
that object. Three pixels, not one, so that a round also learns the gap between touching
neighbours; measured in docs/curation.md ("The known ring")."""
ADD_MIN_AREA = 10
"""Smallest object `add_object` creates (prediction drops smaller objects too)."""
ADD_MAX_FRACTION = 0.25
"""Largest share of the image `add_object` accepts: more is a leak into the background."""
_COUNT_KINDS = ("pick", "reject", "add", "fill", "split", "merge")


@dataclass(frozen=True, eq=False)
class Curation:
    """What a person said about one real image.

    Attributes
    ----------
    objects : ndarray of int32, shape (H, W)
        Instances known to be right (picked, added or filled), 0 elsewhere.
    background : ndarray of bool, shape (H, W)
        Pixels known to be background (rejected objects). Never overlaps ``objects``.
    counts : dict
        Actions in effect, by kind (``pick``, ``reject``, ``add``, ``fill``, ``merge``; ``split``
        counts the parts splits made): un-picking a picked object takes one pick back, so the
        counts say what the curation holds.
    origins : dict
        Object id -> the action that made it (``"pick"``, ``"add"``, ``"fill"``, ``"split"``, ``"merge"``).
    """

    objects: np.ndarray
    background: np.ndarray
    counts: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)

    def __post_init__(self):
        objects = np.asarray(self.objects)
        background = np.asarray(self.background)
        if objects.ndim != 2 or background.shape != objects.shape:
            raise ValueError(f"a curation needs 2D objects and background of one shape; got "
                             f"{objects.shape} and {background.shape}")
        if not np.issubdtype(objects.dtype, np.integer) or (objects.size and objects.min() < 0):
            raise ValueError("curation objects must be non-negative integer labels")
        objects = objects.astype(np.int32, copy=True)
        background = background.astype(bool, copy=True) & (objects == 0)
        objects.flags.writeable = False
        background.flags.writeable = False
        object.__setattr__(self, "objects", objects)
        object.__setattr__(self, "background", background)
        counts = {kind: 0 for kind in _COUNT_KINDS}
        counts.update({str(k): int(v) for k, v in dict(self.counts).items()})
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "origins", {int(k): str(v) for k, v in dict(self.origins).items()})

    @classmethod
    def empty(cls, shape) -> Curation:
        """A curation of an image of ``shape`` (H, W) where nothing is known yet."""
        shape = tuple(int(v) for v in shape)
        if len(shape) != 2:
            raise ValueError(f"a curation is of one 2D image (H, W); got shape {shape}")
        return cls(np.zeros(shape, np.int32), np.zeros(shape, bool))

    @property
    def shape(self) -> tuple[int, int]:
        return self.objects.shape

    @property
    def clicks(self) -> int:
        """The number of actions in effect (picks + rejects + adds + fills + split parts + merges)."""
        return int(sum(self.counts.get(kind, 0) for kind in _COUNT_KINDS))

    def is_empty(self) -> bool:
        """True when nothing is known (no object, no background)."""
        return not (self.objects.any() or self.background.any())

    def known(self, ring_px: int = OUTLINE_RING_PX) -> np.ndarray:
        """Pixels a loss may count: bool (H, W).

        Object pixels (so the boundaries between picked neighbours, which lie inside the
        objects), background pixels, and a ring of ``ring_px`` pixels outside every object,
        which counts as background: the person who picked the object said its outline is
        right (an unpicked neighbour touching the object loses its outermost pixels to the
        ring). ``ring_px=0`` counts objects and background only.
        """
        known = (self.objects > 0) | self.background
        if ring_px > 0 and self.objects.any():
            grown = ndi.binary_dilation(self.objects > 0, iterations=int(ring_px))
            known |= grown
        return known

    def as_image(self) -> np.ndarray:
        """One int32 image: object ids > 0, `UNKNOWN` (0), `BACKGROUND` (-1)."""
        image = self.objects.astype(np.int32, copy=True)
        image[self.background] = BACKGROUND
        return image

    @classmethod
    def from_image(cls, image, counts=None, origins=None) -> Curation:
        """The curation saved by `as_image` (values < 0 are background, > 0 objects)."""
        image = np.asarray(image)
        if image.ndim != 2 or not np.issubdtype(image.dtype, np.integer):
            raise ValueError(f"a curation image is a 2D integer image; got shape {image.shape}, "
                             f"dtype {image.dtype}")
        objects = np.where(image > 0, image, 0).astype(np.int32)
        if counts is None:
            ids = np.unique(objects[objects > 0])
            counts = {"pick": int(ids.size), "reject": int(ndi.label(image < 0)[1])}
        return cls(objects, image < 0, counts=counts or {}, origins=origins or {})

    def _with(self, objects, background, counts, origins) -> Curation:
        return Curation(objects, background, counts=counts, origins=origins)


def _check_labels(curation: Curation, labels, what: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != curation.shape:
        raise ValueError(f"the {what} have shape {labels.shape} but the curation is of an image of shape "
                         f"{curation.shape}; curate the labels of this image")
    return labels


def _next_id(objects: np.ndarray) -> int:
    return int(objects.max()) + 1 if objects.size else 1


def _changed_counts(counts: dict, **delta) -> dict:
    out = dict(counts)
    for kind, step in delta.items():
        out[kind] = max(0, int(out.get(kind, 0)) + step)
    return out


def _remove_object(curation: Curation, object_id: int) -> Curation:
    objects = np.array(curation.objects)
    objects[objects == object_id] = 0
    origins = dict(curation.origins)
    kind = origins.pop(object_id, "pick")
    return curation._with(objects, curation.background, _changed_counts(curation.counts, **{kind: -1}), origins)


def _with_object(curation: Curation, region: np.ndarray, kind: str) -> Curation:
    """``region`` (minus other curated objects) becomes a new known object made by ``kind``."""
    region = region & (curation.objects == 0)
    objects = np.array(curation.objects)
    new_id = _next_id(objects)
    objects[region] = new_id
    background = curation.background & ~region
    origins = dict(curation.origins)
    origins[new_id] = kind
    return curation._with(objects, background, _changed_counts(curation.counts, **{kind: 1}), origins)


def pick_object(curation: Curation, labels, point) -> Curation:
    """The predicted object at ``point`` is right; picking a curated object un-picks it.

    Un-picking removes the curated object (of any origin: picked, added, filled), so its
    pixels become unknown again. A new Curation is returned; the input is never changed.
    """
    labels = _check_labels(curation, labels)
    row, col = _point(labels.shape, point)
    curated = int(curation.objects[row, col])
    if curated:
        return _remove_object(curation, curated)
    label = int(labels[row, col])
    if label == 0:
        raise ValueError(f"no predicted object at (row {row}, col {col}); pick clicks inside an object "
                         "(use add for an object the model missed)")
    return _with_object(curation, labels == label, "pick")


def reject_object(curation: Curation, labels, point) -> Curation:
    """The object at ``point`` is wrong: its pixels become known background.

    A curated object at ``point`` (picked or added) is rejected whole, together with the
    predicted object under the click; clicking rejected pixels again un-rejects them (their
    connected patch of background becomes unknown).
    """
    labels = _check_labels(curation, labels)
    row, col = _point(labels.shape, point)
    if curation.background[row, col]:
        patches, _ = ndi.label(curation.background)
        background = curation.background & (patches != patches[row, col])
        return curation._with(curation.objects, background, _changed_counts(curation.counts, reject=-1),
                              curation.origins)
    label = int(labels[row, col])
    curated = int(curation.objects[row, col])
    if not label and not curated:
        raise ValueError(f"no object at (row {row}, col {col}) to reject; reject clicks inside a "
                         "predicted or curated object")
    region = labels == label if label else np.zeros(labels.shape, bool)
    if curated:
        region |= curation.objects == curated
        curation = _remove_object(curation, curated)
    region &= curation.objects == 0
    return curation._with(curation.objects, curation.background | region,
                          _changed_counts(curation.counts, reject=1), curation.origins)


def add_object(curation: Curation, point, *, probability=None, image=None, labels=None,
               distance=None) -> Curation:
    """A missed object at ``point`` becomes a known object.

    A click inside a predicted object of ``labels`` says the object there is not the one the
    model drew: with the model's inner ``distance`` (or a ``probability`` stack holding it as its
    second channel) the object is carved out of that prediction around the distance peak of the
    click (``instances.basin_at``). Otherwise, or when the prediction has one peak only, it is the
    blob of the model's foreground ``probability`` around the click, cut at half its peak (see
    `add_outline.grow_from_probability`); when no probability is given, or it outlines nothing, the region
    of ``image`` on the click's side of a local Otsu threshold. On background, when that blob is
    several objects wide and holds the image's region (`add_outline.narrowed_by_image`), the image's
    region is taken. Other predicted objects of
    ``labels`` (all but the one under the click), curated objects and known background are never
    taken; holes are filled.

    Raises
    ------
    ValueError
        One line, when nothing usable is found (too small, or a leak over a quarter of the image).
    """
    row, col = _point(curation.shape, point)
    if probability is None and image is None:
        raise ValueError("add needs the model's probability map or the image to grow the object from")
    allowed = (curation.objects == 0) & ~curation.background
    if labels is not None:
        labels = _check_labels(curation, labels)
        clicked = labels[row, col]
        allowed &= (labels == 0) | (labels == clicked)
    if not allowed[row, col]:
        raise ValueError(f"(row {row}, col {col}) is already curated; un-pick or un-reject it first")
    reasons = []
    growers = []
    if distance is None and probability is not None and np.ndim(probability) == 3 and np.shape(probability)[2] > 1:
        distance = np.asarray(probability)[..., 1]  # the model's output stack: foreground, distance, ...
    if labels is not None and labels[row, col] and distance is not None:
        growers.append(lambda: (basin_at(distance, labels == labels[row, col], (row, col)),
                                f"the predicted object at (row {row}, col {col}) has one centre only"))
    if probability is not None:
        foreground = foreground_probability(probability, curation.shape)
        on_background = labels is None or not labels[row, col]
        growers.append(lambda: narrowed_by_image(grow_from_probability(foreground, row, col, allowed),
                                                  image if on_background else None, row, col, allowed, ADD_MIN_AREA))
    if image is not None:
        growers.append(lambda: grow_from_image(image, row, col, allowed))
    limit = ADD_MAX_FRACTION * allowed.size
    for grow in growers:
        region, why = grow()
        if region is None:
            reasons.append(why)
            continue
        region = ndi.binary_fill_holes(region) & allowed
        area = int(region.sum())
        if area < ADD_MIN_AREA:
            reasons.append(why)
        elif area > limit:
            reasons.append(f"the object grown at (row {row}, col {col}) would cover {area / allowed.size:.0%} "
                           "of the image")
        else:
            return _with_object(curation, region, "add")
    raise ValueError("; ".join(reasons) + "; click nearer the object's centre or pick it in another way")


def fill_object(curation: Curation, labels, point) -> Curation:
    """Every region the ``labels`` (objects or contours) enclose, seen from the background
    pixel ``point``, becomes a known object (one per connected filled region that holds
    enclosed pixels); see `fill_enclosed`."""
    labels = _check_labels(curation, labels)
    outline = labels > 0
    filled = fill_enclosed(outline, point)
    enclosed = filled & ~outline
    if not enclosed.any():
        row, col = _point(labels.shape, point)
        raise ValueError(f"nothing is enclosed as seen from (row {row}, col {col}); every hole is already "
                         "filled (use add for a missed object)")
    regions, n = ndi.label(filled)
    keep = np.unique(regions[enclosed])
    result = curation
    for region_id in keep[keep > 0]:
        region = regions == region_id
        if (region & (result.objects == 0)).sum() >= ADD_MIN_AREA:
            result = _with_object(result, region, "fill")
    if result is curation:
        raise ValueError("every enclosed region is already curated")
    return result


def curation_path(labels_or_image_path) -> Path:
    """Where the curation of an image is kept: ``<stem>_curation.tif`` beside it.

    ``a.tif`` and its labels ``a_labels.tif`` share ``a_curation.tif``.
    """
    path = Path(labels_or_image_path)
    stem = path.name.split(".")[0] if path.name.lower().endswith((".ome.tif", ".ome.tiff")) else path.stem
    if stem.endswith("_labels"):
        stem = stem[: -len("_labels")]
    if stem.endswith("_curation"):
        stem = stem[: -len("_curation")]
    return path.with_name(f"{stem}_curation.tif")


def _json_sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_curation(curation: Curation, path, *, meta: dict | None = None) -> Path:
    """Write ``curation`` as an int32 TIFF (`Curation.as_image`) and a JSON beside it.

    The JSON (same stem, ``.json``) holds the format, the counts, each object's origin and
    ``meta`` (e.g. the image and model it was made with). Both writes are atomic.
    """
    from .image_io import atomic_write, write_tiff

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"a curation is saved as a TIFF; got {path.name!r} (use curation_path(image))")
    write_tiff(path, curation.as_image())
    info = {"format": CURATION_FORMAT, "shape": list(curation.shape), "counts": curation.counts,
            "origins": {str(k): v for k, v in curation.origins.items()}, "meta": dict(meta or {})}
    text = json.dumps(info, indent=2, default=str)
    atomic_write(_json_sidecar(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_curation(path) -> Curation:
    """Read a curation saved by `save_curation` (the JSON beside it is optional)."""
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no curation at {path}; save one first (or pass the `<stem>_curation.tif` file)")
    try:
        image = tifffile.imread(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one line
        raise ValueError(f"cannot read the curation {path.name}: {exc}") from None
    counts = origins = None
    sidecar = _json_sidecar(path)
    if sidecar.is_file():
        try:
            info = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"the curation's JSON {sidecar.name} is not valid JSON ({exc}); delete it to load "
                             "the image alone") from None
        if info.get("format") != CURATION_FORMAT:
            raise ValueError(f"{sidecar.name} is not a napari-synthseg curation (format {info.get('format')!r})")
        counts = info.get("counts")
        origins = {int(k): v for k, v in (info.get("origins") or {}).items()}
    return Curation.from_image(np.asarray(image), counts=counts, origins=origins)
