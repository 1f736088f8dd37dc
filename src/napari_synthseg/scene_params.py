"""The settings of a synthetic scene, checked when made: the one place their defaults live.

Pure core. :class:`SceneParams` holds every tunable keyword of
:func:`napari_synthseg.scenes.synthesize_scene` (and the scene shape); ``synthesize_scene``'s
signature, the command line and the Synthesize dock read their defaults here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from ._synthesis_common import _scene_shape
from .backgrounds import _kind_weights


@dataclass(frozen=True)
class SceneParams:
    """The settings of :func:`~napari_synthseg.scenes.synthesize_scene`, checked and normalised.

    Ranges are stored as ``(low, high)`` tuples (a single number ``n`` becomes ``(n, n)``),
    ``background_kinds`` as ``(kind, weight)`` pairs. ``as_dict()`` gives
    ``synthesize_scene``'s keywords (``shape`` included); ``from_dict`` checks a dict of them
    (JSON lists are accepted for ranges). A bad value raises ``ValueError``, one line naming
    the setting, the value and what it accepts.

    Attributes
    ----------
    shape
        ``(height, width)`` of the scene, at least 8x8.
    n_objects
        Number of pasted objects, an inclusive ``(low, high)`` range. With ``coverage``
        this is the most objects a scene gets.
    scale_range
        ``(low, high)`` scale factors, drawn log-uniformly.
    rotate, flip
        Allow random rotations (90-degree steps plus an arbitrary angle) / mirror flips.
    brightness, contrast
        Maximal additive brightness shift and relative contrast change (below 1) per object.
    blur_prob
        Probability that an object is blurred (sigma 0.5-1.5 px).
    noise_std
        Range of the standard deviation of Gaussian noise over the whole scene.
    touch_prob
        Probability that an object is placed against (touching or overlapping) an
        earlier one rather than anywhere.
    background_kinds
        None (defaults), one kind, a list of kinds, or a ``{kind: weight}`` mapping;
        kinds are ``backgrounds.BACKGROUND_KINDS``.
    soft_edges
        Blend the 1-pixel band of partial coverage at object edges (as a real
        micrograph does) instead of a hard cut.
    restyle_prob
        Probability that an object's gray level is replaced: its mean is set to the
        local background level plus a random contrast from ``restyle_contrast``
        (log-uniform, in [0, 1] image units), keeping its inner texture (scaled by
        0.5-1.5): objects only slightly brighter or darker than their surroundings,
        which objects banked from thresholds never are.
    restyle_contrast
        ``(low, high)`` absolute contrast of restyled objects against the local background.
    invert_prob
        Probability that a restyled object's contrast sign is flipped, for mixed-polarity data.
    rim_prob
        Probability that an object gets a darker rim 1-3 px wide (as edges often look in
        SEM/TEM images).
    group_prob
        Probability that a scene is made from one source image: all its objects come
        from the image a random object came from (bank meta ``source``), on a
        background with that image's level and texture (when the backgrounds are a
        BackgroundSource whose ``names`` include it). Keeps scenes consistent on mixed data.
    coverage
        None, or a ``(low, high)`` range of the fraction of the scene that objects
        should cover: a target is drawn and objects are pasted until their (scaled)
        areas add up to it. Without it, a bank of large objects fills whole scenes.
    cluster_prob
        Probability that an object joins an agglomerate: it is slid, from a random
        direction, against a random earlier object until it touches the objects there
        along its outline, overlapping them by only ``scenes.CLUSTER_OVERLAP`` of their
        areas (touching particles with their true dividing lines, which ``touch_prob``
        rarely gives). Takes precedence over ``touch_prob`` for the objects it picks.
    alike_prob
        Probability that an object placed against an earlier one (by ``touch_prob`` or
        ``cluster_prob``) takes that neighbour's mean gray level as pasted, keeping its own
        texture: touching particles of one material look alike, so only the dividing line and
        the shapes tell them apart (otherwise each object's own ``brightness`` shift does).
    """

    shape: tuple[int, int] = (512, 512)
    n_objects: tuple[int, int] = (30, 60)
    scale_range: tuple[float, float] = (0.5, 2.0)
    rotate: bool = True
    flip: bool = True
    brightness: float = 0.15
    contrast: float = 0.2
    blur_prob: float = 0.3
    noise_std: tuple[float, float] = (0.0, 0.03)
    touch_prob: float = 0.5
    background_kinds: tuple[tuple[str, float], ...] | None = None
    soft_edges: bool = True
    restyle_prob: float = 0.0
    restyle_contrast: tuple[float, float] = (0.03, 0.4)
    invert_prob: float = 0.0
    rim_prob: float = 0.0
    group_prob: float = 0.0
    coverage: tuple[float, float] | None = None
    cluster_prob: float = 0.0
    alike_prob: float = 0.0

    def __post_init__(self) -> None:
        checked = {
            "shape": _scene_shape(self.shape),
            "n_objects": _range_pair(self.n_objects, "n_objects", integer=True),
            "scale_range": _range_pair(self.scale_range, "scale_range", low=1e-3),
            "noise_std": _range_pair(self.noise_std, "noise_std"),
            "brightness": _range_pair(self.brightness, "brightness")[1],
            "contrast": _range_pair(self.contrast, "contrast")[1],
            "restyle_contrast": _range_pair(self.restyle_contrast, "restyle_contrast", low=1e-4),
            "coverage": None if self.coverage is None else _range_pair(self.coverage, "coverage", high=1.0),
            "background_kinds": _kind_pairs(self.background_kinds),
        }
        if checked["contrast"] >= 1.0:
            raise ValueError(f"contrast must be below 1 (a relative change), got {self.contrast!r}")
        for name in ("blur_prob", "touch_prob", "restyle_prob", "invert_prob", "rim_prob", "group_prob",
                     "cluster_prob", "alike_prob"):
            checked[name] = _probability(getattr(self, name), name)
        for name in ("rotate", "flip", "soft_edges"):
            checked[name] = _flag(getattr(self, name), name)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, params: Mapping) -> SceneParams:
        """Settings from ``synthesize_scene`` keywords; a key that is no setting is an error."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown scene setting(s) {', '.join(map(repr, unknown))}; use {', '.join(names)}")
        return cls(**params)

    def as_dict(self) -> dict:
        """``synthesize_scene``'s keywords (``background_kinds`` as a ``{kind: weight}`` dict)."""
        out = asdict(self)
        if self.background_kinds is not None:
            out["background_kinds"] = dict(self.background_kinds)
        return out

    def replace(self, **changes) -> SceneParams:
        """A copy with ``changes`` applied (and checked)."""
        return type(self).from_dict({**self.as_dict(), **changes})


def _range_pair(value, name: str, *, low: float = 0.0, high: float = math.inf,
                integer: bool = False) -> tuple[float, float]:
    """Normalise a number or (lo, hi) pair, checking low <= lo <= hi <= high."""
    if np.isscalar(value):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
        if len(pair) != 2:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    try:
        lo, hi = (int(v) if integer else float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < low or hi < lo or hi > high:
        upper = "" if high == math.inf else f" <= {high}"
        raise ValueError(f"{name}={value!r} is not a valid range: need {low} <= low <= high{upper}")
    return lo, hi


def _probability(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_, int, np.integer)) or value not in (0, 1):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _kind_pairs(background_kinds) -> tuple[tuple[str, float], ...] | None:
    """``background_kinds`` as ``(kind, weight)`` pairs (checked), or None for the defaults."""
    if background_kinds is not None and not isinstance(background_kinds, (str, Mapping)):
        items = list(background_kinds)
        if items and all(isinstance(item, (tuple, list)) and len(item) == 2 for item in items):
            background_kinds = dict(items)  # pairs, as stored (or a JSON list of them)
    weights = _kind_weights(background_kinds)
    return None if weights is None else tuple(weights.items())


__all__ = ["SceneParams"]
