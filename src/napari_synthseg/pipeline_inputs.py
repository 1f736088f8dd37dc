"""What a run trains on, made before any model is involved: recipe defaults, planes, bank, backgrounds.

``run_pipeline`` (``napari_synthseg.pipeline``) and the Train dock's mixed recipe make their
synthetic scenes' inputs here; nothing in this module loads the model layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .image_io import ImageReadError, read_image, to_gray
from .recipe import RECIPES, RecipeDecision, choose_recipe
from .recipe import recipe as named_recipe
from .relabel import stack_planes
from .zoom import zoom_image, zoom_labels  # noqa: F401  (the pipeline's names for them)

#: Auto-segmentation and training of the synthetic recipe (see ``recipe.RECIPES``); a run decides
#: its recipe from the images unless told (``run_pipeline(recipe=...)``).
DEFAULT_AUTOSEG: dict = dict(RECIPES["synthetic"]["autoseg"])  # copies: callers may not change the recipes
DEFAULT_TRAIN: dict = dict(RECIPES["synthetic"]["train"])
#: Which banked objects training uses by default (see ``training_objects``).
# objects cut by the image border have straight cut edges that the network would learn
# (docs/benchmarks.md, "Why these defaults")
DEFAULT_BANK_FILTER: dict = {"min_quality": 0.0, "skip_border": True}


def build_bank(bank_path: str | Path, paths: Sequence[str | Path], images: Sequence[np.ndarray],
               labels: Sequence[np.ndarray], *, method: str = "autoseg"):
    """An ObjectBank at ``bank_path`` holding every labelled object of every image.

    Each object records its image's path as ``source`` (scenes can then be grouped by
    source image, see ``synthesize_scene(group_prob=...)``).
    """
    from .bank import LabelledImage, ObjectBank, add_labelled_images

    bank = ObjectBank(bank_path)
    add_labelled_images(bank, (LabelledImage(image, lab, source=str(path))
                               for path, image, lab in zip(paths, images, labels)), method=method)
    return bank


def network_images(images: Sequence[np.ndarray], normalization: str) -> list[np.ndarray]:
    """The images the bank and the backgrounds are cut from, for a model with ``normalization``.

    ``"anchored"``: each whole image normalised by ``anchored_range`` and clipped to [0, 1],
    so objects of bright-field and dark-field images look alike (bright on dark, at the
    same levels) in every synthetic scene. ``"percentile"``: the images as they are (scenes
    are normalised one by one).
    """
    if normalization != "anchored":
        return list(images)
    from .normalize import normalize_image

    return [np.clip(normalize_image(image, "anchored"), 0.0, 1.0) for image in images]


@dataclass
class RecipeInputs:
    """What the synthetic scenes of a recipe are made from (see ``recipe_inputs``).

    Attributes
    ----------
    network_images
        The images as the network sees them (``network_images``): anchored for the mixed recipe.
    bank
        The ObjectBank of every labelled object, cut from ``network_images``.
    backgrounds
        The BackgroundSource learned from ``network_images`` outside their objects.
    """

    network_images: list
    bank: object
    backgrounds: object


def recipe_inputs(bank_path: str | Path, names: Sequence[str | Path], images: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray], normalization: str) -> RecipeInputs:
    """The bank and the backgrounds a model with ``normalization`` trains on, as ``run_pipeline`` makes them.

    Parameters
    ----------
    bank_path
        Folder of the bank (created, or added to).
    names
        One name per image (its path): the objects' ``source`` and the backgrounds' ``names``.
    images, labels
        2D gray images and their instance labels (same shapes), e.g. the auto-segmentation.
    normalization
        ``"percentile"`` or ``"anchored"`` (``network_images``).
    """
    from .backgrounds import NoBackgroundError
    from .synthesis import BackgroundSource

    work_images = network_images(images, normalization)
    bank = build_bank(bank_path, names, work_images, labels)
    try:
        backgrounds = BackgroundSource.from_images(work_images, labels, names=[str(n) for n in names])
    except NoBackgroundError:
        # the labels are the auto-segmentation's here, not the user's: say what to change instead
        sizes = ", ".join(f"{image.shape[1]} x {image.shape[0]}" for image in images[:3])
        raise NoBackgroundError(
            f"the auto-segmentation called (almost) every pixel of the {len(images)} image(s) object "
            f"({sizes}{', ...' if len(images) > 3 else ''} px), so there is no background to build training "
            "scenes from: give images that show background around the objects, or choose the objects' "
            "side with --polarity bright|dark") from None
    return RecipeInputs(network_images=work_images, bank=bank, backgrounds=backgrounds)


def training_recipe(train_params: dict | None, base: dict | None = None) -> tuple[dict, float]:
    """``train_model`` keywords (``base``, default ``DEFAULT_TRAIN``, under ``train_params``) and the
    real-crop share taken out of them; the caller supplies the real crops when the share is above 0."""
    params = {**(DEFAULT_TRAIN if base is None else base), **(train_params or {})}
    return params, float(params.pop("real_fraction", 0.0))


def real_image_params(pairs: Sequence[tuple[np.ndarray, np.ndarray]], real_fraction: float) -> dict:
    """``train_model`` keywords for real images and their (auto-segmentation) labels.

    With ``real_fraction`` > 0 their crops make up that share of every batch, and the same
    images choose the model to keep late in training (``real_validation``): agreement with the
    auto-segmentation ranks checkpoints as the ground truth does (docs/benchmarks.md, "Why these defaults").
    """
    if real_fraction <= 0:
        return {}
    pairs = list(pairs)
    return {"real_training": pairs, "real_fraction": real_fraction, "real_validation": pairs}


def training_objects(bank, *, min_quality: float = 0.0, skip_border: bool = False) -> list:
    """The bank's objects fit for training: ``quality`` at least ``min_quality``, and not cut
    by the image border when ``skip_border``. Falls back to all objects if none qualifies."""
    objects = bank.objects()
    kept = [o for o in objects if float(o.meta.get("quality", 1.0)) >= min_quality
            and not (skip_border and o.meta.get("touches_border"))]
    return kept or objects


def object_scale(labels: np.ndarray, *, target_diameter: float = 40.0,
                 limits: tuple[float, float] = (0.25, 1.0)) -> float:
    """Zoom factor that brings an image's typical object to ``target_diameter`` pixels.

    The network sees about a hundred pixels around each pixel; objects much larger than that
    look like background from inside. The median equivalent diameter of the auto-segmented
    objects sets the factor, clipped to ``limits`` (never enlarged by default); no objects: 1.
    """
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    if areas.size == 0:
        return 1.0
    diameter = float(np.sqrt(4.0 * np.median(areas) / np.pi))
    return float(np.clip(target_diameter / diameter, *limits))


def decide_recipe(images: Sequence[np.ndarray], name: str = "auto") -> RecipeDecision:
    """The recipe named, or with ``"auto"`` the one ``choose_recipe`` takes from the images."""
    return choose_recipe(images) if name == "auto" else named_recipe(name)


def _given(params: dict | None) -> dict:
    """The keywords a caller set (None means "not given": the recipe decides)."""
    return {k: v for k, v in (params or {}).items() if v is not None}


@dataclass(frozen=True)
class Plane:
    """One 2D plane a run works on: a 2D image, or one plane of a stack (``index`` into its leading axes)."""

    path: Path
    index: tuple[int, ...]
    image: np.ndarray

    @property
    def key(self) -> str:
        """The plane's name in the run: the file's stem, with ``_z0003`` (per leading axis) for a stack plane."""
        return self.path.stem + "".join(f"_z{i:04d}" for i in self.index)


def load_planes(paths: Sequence[Path], max_pixels: int | None = None) -> list[Plane]:
    """Read images as 2D gray planes (RGB converted); a stack gives one plane per 2D slice.

    A plane over ``max_pixels`` (default ``largeimage.DEFAULT_IN_MEMORY_PIXELS``) is refused before it is
    read (a TIFF, from its header) or right after: a run holds every image, and several float copies of
    it, in memory.
    """
    from .image_io import iter_planes
    from .largeimage.sources import open_image

    planes = []
    for path in paths:
        if Path(path).suffix.lower() in (".tif", ".tiff"):  # mosaics come as TIFFs: their header says the size
            try:
                shape = open_image(path).spatial_shape
            except Exception:  # noqa: BLE001  (reading it whole below names what is wrong with the file)
                shape = (0, 0)
            _check_run_size(path, shape, max_pixels)
        image = to_gray(read_image(path))
        if image.ndim < 2:
            raise ImageReadError(f"{path} has shape {image.shape}; `synthseg run` needs 2D images or stacks of them")
        _check_run_size(path, image.shape[-2:], max_pixels)
        planes.extend(Plane(Path(path), index, np.ascontiguousarray(image[index]))
                      for index in iter_planes(image.shape))
    return planes


def _check_run_size(path, shape, max_pixels: int | None = None) -> None:
    """Refuse, in one line, an image whose planes are too large for a run to hold whole."""
    from .largeimage import batch

    limit = batch.DEFAULT_IN_MEMORY_PIXELS if max_pixels is None else int(max_pixels)
    height, width = (int(n) for n in shape[-2:])
    if height * width > limit:
        raise ImageReadError(
            f"{Path(path).name} has planes of {width} x {height} pixels ({height * width / 1e6:.0f} Mpixel); "
            f"`synthseg run` reads every image whole (at most {limit / 1e6:g} Mpixel a plane, --in-memory-pixels; "
            f"about 64 bytes a pixel): run it on smaller images or crops of this one, then segment this one with "
            f"`synthseg predict MODEL {Path(path).name} --out DIR`, which works tile by tile")


def per_file(planes: Sequence[Plane], arrays: dict[str, np.ndarray], *, labels: bool = True) -> dict[str, np.ndarray]:
    """Arrays of a run's planes (by ``Plane.key``) put back together per file (by stem).

    Label ids are offset plane by plane so that they stay unique across a stack.
    """
    grouped: dict[str, list[tuple[tuple[int, ...], np.ndarray]]] = {}
    for plane in planes:
        grouped.setdefault(plane.path.stem, []).append((plane.index, arrays[plane.key]))
    files = {}
    for stem, items in grouped.items():
        if items[0][0] == ():
            files[stem] = items[0][1]
            continue
        lead = tuple(max(index[d] for index, _ in items) + 1 for d in range(len(items[0][0])))
        first = items[0][1]
        stack = np.zeros(lead + first.shape, dtype=np.uint32 if labels else first.dtype)
        if labels:
            stack_planes(stack, items)
        else:
            for index, array in items:
                stack[index] = array
        files[stem] = stack
    return files
