"""Which training recipe fits a folder, decided from its images alone (pure core).

Two recipes exist (docs/recipes.md):

- ``mixed``: every image is *anchored* (background at one level, objects at another, dark
  objects inverted) and half of each batch is a crop of a real image labelled by its
  auto-segmentation (``method="edge"``); the other half are synthetic scenes. The real crops
  bring the real images' look, which scenes only imitate. It is the recipe for folders whose
  objects a threshold labels, in one contrast or in several (bright-field and dark-field figures).
- ``synthetic``: the network learns from synthetic scenes only, inputs scaled by each image's
  percentiles. Its scenes restyle the banked objects, which teaches it objects that a threshold
  misses, on either side of the background in the share the images show (``missed_on_other_side``).
  It is the recipe for one-contrast folders where the threshold leaves many objects unlabelled
  (mid-gray and dark grains beside bright ones): there the real crops would teach those objects as
  background.

``choose_recipe`` calls a folder mixed when its images disagree about which phase is the object
(the minority contrast in at least ``MIXED_MINORITY_SHARE`` of them), or when they agree and the
threshold labels their objects; synthetic when they agree and the typical image has at least
``SYNTHETIC_FROM_MISSED`` of its object-looking pixels in regions the threshold leaves unlabelled.
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
#: Share of an image's object-looking pixels (outside the background's gray mode) in regions that
#: its threshold leaves unlabelled, from which the folder gets the synthetic recipe: objects of
#: another gray level than the labelled ones, more than the odd speck or stain of a particle
#: folder (docs/recipes.md, "How the run decides").
SYNTHETIC_FROM_MISSED = 0.15
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
        The keywords the recipe sets for ``autosegment`` and ``train_model`` (``real_fraction``
        included; a synthetic recipe decided from images also sets ``scene_params``' ``invert_prob``).
    chosen_by
        ``"images"`` (decided by ``choose_recipe``) or ``"user"`` (named by the caller).
    evidence
        What the decision rests on: image count, objects bright / dark per image, the share a
        threshold misses and how much of that lies on the background's other side.
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
        missed = f"a threshold misses {e['missed_by_threshold']:.0%} of the typical image's object pixels"
        if self.name == "synthetic":
            side = "darker" if e["bright"] >= e["dark"] else "brighter"
            missed += f", {e['missed_on_other_side']:.0%} of them {side} than the background"
        if e["mixed_contrasts"]:
            why = f"mixed contrasts: {contrast}"
        else:
            why = f"one contrast: {contrast}, {missed}"
        return f"recipe: {self.name} ({why}; override with {override})"

    def to_dict(self) -> dict:
        return asdict(self)


def recipe(name: str) -> RecipeDecision:
    """The named recipe, as the user's choice."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_CHOICES)}")
    return RecipeDecision(name=name, autoseg=dict(RECIPES[name]["autoseg"]),
                          train=dict(RECIPES[name]["train"]), chosen_by="user")


def _strided(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A strided copy of at most ``_POLARITY_SIDE`` pixels a side, and its pixels outside the scale bar."""
    from .scalebar import resolve_ignore_box

    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"the recipe is judged on 2D images, got shape {gray.shape}")
    stride = max(1, int(np.ceil(max(gray.shape) / _POLARITY_SIDE)))
    small = np.ascontiguousarray(gray[::stride, ::stride])
    valid = np.ones(small.shape, dtype=bool)
    box = resolve_ignore_box(small, "auto")
    if box is not None:
        y0, y1, x0, x1 = box
        valid[y0:y1, x0:x1] = False
    return small, valid


def image_polarity(gray: np.ndarray) -> str:
    """``"bright"`` or ``"dark"`` objects, judged as ``autosegment`` does (smoothed, scale bar left out)."""
    return _polarity(*_strided(gray))[1]


def missed_on_other_side(gray: np.ndarray) -> float:
    """Share of the pixels that ``missed_by_threshold`` counts lying in regions on the background's other side.

    A missed region lies on the other side when its mean gray is below the background's median for
    bright objects (above it for dark ones): dark grains and dark-rimmed grains beside bright ones.
    0 when nothing is missed.
    """
    return _judged(gray)[2]


def missed_by_threshold(gray: np.ndarray) -> float:
    """Share of an image's object-looking pixels in regions that its threshold leaves unlabelled.

    Object-looking pixels lie outside the background's main gray mode
    (``backgrounds.estimate_background_mask`` with no margin); a region of them (8-connected)
    counts as missed when the threshold labels none of its pixels. The threshold is the mixed
    recipe's (``method="edge"``, polarity as ``autosegment`` judges it) on the smoothed image, the
    scale bar left out. 0: every region holds a labelled object (rims and halos included); high:
    objects of another gray level (mid-gray or dark grains apart from bright ones) that the real
    crops would teach as background.
    """
    return _judged(gray)[1]


def _polarity(small: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, str]:
    """The smoothed strided copy and the polarity judged on it."""
    from scipy import ndimage as ndi

    from .autoseg import choose_polarity

    smooth = ndi.gaussian_filter(small, 1.5)
    return smooth, choose_polarity(smooth, valid)


def _judged(gray: np.ndarray) -> tuple[str, float, float]:
    """The image's polarity, the share its threshold misses, and the share of that on the background's
    other side, from one strided copy."""
    from scipy import ndimage as ndi

    from .autoseg import edge_threshold
    from .backgrounds import estimate_background_mask

    small, valid = _strided(gray)
    smooth, polarity = _polarity(small, valid)
    ground = estimate_background_mask(small, margin=0) & valid
    regions, n = ndi.label(~ground & valid, structure=np.ones((3, 3), bool))
    if n == 0:
        return polarity, 0.0, 0.0
    level = edge_threshold(smooth, valid, polarity == "bright")
    labelled = (smooth > level) if polarity == "bright" else (smooth < level)
    area = np.bincount(regions.ravel(), minlength=n + 1)
    hit = np.bincount(regions[labelled & valid], minlength=n + 1)
    unlabelled = (hit == 0) & (np.arange(n + 1) > 0)
    missed = float(area[unlabelled].sum())
    share = missed / float(area[1:].sum())
    if missed == 0 or not ground.any():
        return polarity, share, 0.0
    # each region's summed difference from the background's median gray: its mean's side, without a loop
    level_sum = np.bincount(regions.ravel(), weights=smooth.ravel(), minlength=n + 1)
    offset = level_sum - area * float(np.median(smooth[ground]))
    other_side = unlabelled & ((offset < 0) if polarity == "bright" else (offset > 0))
    return polarity, share, float(area[other_side].sum()) / missed


def choose_recipe(images: Sequence[np.ndarray]) -> RecipeDecision:
    """Decide the recipe from 2D gray images: ``synthetic`` for one contrast with many objects that a
    threshold misses, else ``mixed``.

    Parameters
    ----------
    images
        The folder's images (2D arrays).

    Returns
    -------
    RecipeDecision
        ``chosen_by="images"``, with the polarity counts and the typical share missed by the threshold in
        ``evidence``.
    """
    images = list(images)
    if not images:
        raise ValueError("choose_recipe needs at least one image")
    judged = [_judged(image) for image in images]
    polarities = [polarity for polarity, _, _ in judged]
    bright = polarities.count("bright")
    dark = len(polarities) - bright
    minority = min(bright, dark)
    mixed_contrasts = len(images) >= 2 and minority >= max(1, MIXED_MINORITY_SHARE * len(images))
    missed = float(np.median([share for _, share, _ in judged]))
    other_side = round(float(np.median([share for _, _, share in judged])), 2)
    name = "synthetic" if not mixed_contrasts and missed >= SYNTHETIC_FROM_MISSED else "mixed"
    evidence = {"n_images": len(images), "bright": bright, "dark": dark,
                "minority_share": round(minority / len(images), 3),
                "mixed_from_share": MIXED_MINORITY_SHARE, "mixed_contrasts": mixed_contrasts,
                "missed_by_threshold": round(missed, 3), "synthetic_from_missed": SYNTHETIC_FROM_MISSED,
                "missed_on_other_side": other_side}
    train = dict(RECIPES[name]["train"])
    if name == "synthetic":
        # the restyled objects stand for what the threshold misses: on either side of the background,
        # in the share the images show (mixed inverts dark objects by anchoring instead)
        train["scene_params"] = {"invert_prob": other_side}
    return RecipeDecision(name=name, autoseg=dict(RECIPES[name]["autoseg"]), train=train, chosen_by="images",
                          evidence=evidence)
