"""Which training recipe fits a folder, decided from its images alone (pure core).

Two recipes exist (docs/recipes.md):

- ``synthetic``: the network learns from synthetic scenes only, inputs scaled by each image's
  percentiles. Its scenes restyle the banked objects, which teaches it objects that a threshold
  misses; it needs a folder whose images share one look (one instrument, one contrast).
- ``mixed``: every image is *anchored* (background at one level, objects at another, dark
  objects inverted) and half of each batch is a crop of a real image labelled by its
  auto-segmentation (``method="edge"``). It is the recipe for folders that mix unrelated
  images, such as bright-field and dark-field figures: percentile-scaled scenes from such a
  bank teach contradictory contrasts.

``choose_recipe`` calls a folder mixed when its images disagree about which phase is the object:
at least two images, and the minority contrast in at least ``MIXED_MINORITY_SHARE`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

#: The recipes and what each sets: auto-segmentation keywords and ``train_model`` keywords.
RECIPES: dict[str, dict] = {
    "synthetic": {"autoseg": {"method": "otsu"},
                  "train": {"normalization": "percentile", "real_fraction": 0.0}},
    "mixed": {"autoseg": {"method": "edge"},
              "train": {"normalization": "anchored", "real_fraction": 0.5}},
}
#: ``synthseg run --recipe`` choices: ``auto`` decides from the images.
RECIPE_CHOICES = ("auto", *RECIPES)
#: Share of images with the other contrast from which a folder counts as mixed: one image in
#: seven is no outlier but a second kind of image that one intensity model cannot serve.
MIXED_MINORITY_SHARE = 0.15
#: Longest side the polarity is judged on (a strided copy; polarity is a coarse property).
_POLARITY_SIDE = 1024


@dataclass(frozen=True)
class RecipeDecision:
    """The recipe a run trains with, and why.

    Attributes
    ----------
    name
        ``"synthetic"`` or ``"mixed"``.
    autoseg, train
        The keywords the recipe sets for ``autosegment`` and ``train_model``
        (``real_fraction`` included).
    chosen_by
        ``"images"`` (decided by ``choose_recipe``) or ``"user"`` (named by the caller).
    evidence
        What the decision rests on: image count, objects bright / dark per image.
    """

    name: str
    autoseg: dict
    train: dict
    chosen_by: str
    evidence: dict = field(default_factory=dict)

    def line(self, override: str = "--recipe") -> str:
        """One line for the user: the recipe and the evidence; ``override`` names the control that
        chooses another recipe (the CLI's ``--recipe``, a dock's recipe box)."""
        e = self.evidence
        if self.chosen_by == "user":
            return f"recipe: {self.name} (chosen with {override})"
        contrast = f"objects bright in {e['bright']} and dark in {e['dark']} of {e['n_images']} images"
        why = ("mixed contrasts" if self.name == "mixed" else "one contrast")
        return f"recipe: {self.name} ({why}: {contrast}; override with {override})"

    def to_dict(self) -> dict:
        return asdict(self)


def recipe(name: str) -> RecipeDecision:
    """The named recipe, as the user's choice."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_CHOICES)}")
    return RecipeDecision(name=name, autoseg=dict(RECIPES[name]["autoseg"]),
                          train=dict(RECIPES[name]["train"]), chosen_by="user")


def image_polarity(gray: np.ndarray) -> str:
    """``"bright"`` or ``"dark"`` objects, judged as ``autosegment`` does (smoothed, scale bar left out)."""
    from scipy import ndimage as ndi

    from .autoseg import choose_polarity
    from .scalebar import resolve_ignore_box

    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"image_polarity needs a 2D image, got shape {gray.shape}")
    stride = max(1, int(np.ceil(max(gray.shape) / _POLARITY_SIDE)))
    small = np.ascontiguousarray(gray[::stride, ::stride])
    valid = np.ones(small.shape, dtype=bool)
    box = resolve_ignore_box(small, "auto")
    if box is not None:
        y0, y1, x0, x1 = box
        valid[y0:y1, x0:x1] = False
    return choose_polarity(ndi.gaussian_filter(small, 1.5), valid)


def choose_recipe(images: Sequence[np.ndarray]) -> RecipeDecision:
    """Decide the recipe from 2D gray images: ``mixed`` when their contrasts disagree.

    Parameters
    ----------
    images
        The folder's images (2D arrays).

    Returns
    -------
    RecipeDecision
        ``chosen_by="images"``, with per-image polarities in ``evidence``.
    """
    images = list(images)
    if not images:
        raise ValueError("choose_recipe needs at least one image")
    polarities = [image_polarity(image) for image in images]
    bright = polarities.count("bright")
    dark = len(polarities) - bright
    minority = min(bright, dark)
    mixed = len(images) >= 2 and minority >= max(1, MIXED_MINORITY_SHARE * len(images))
    name = "mixed" if mixed else "synthetic"
    evidence = {"n_images": len(images), "bright": bright, "dark": dark,
                "minority_share": round(minority / len(images), 3),
                "mixed_from_share": MIXED_MINORITY_SHARE}
    return RecipeDecision(name=name, autoseg=dict(RECIPES[name]["autoseg"]),
                          train=dict(RECIPES[name]["train"]), chosen_by="images", evidence=evidence)
