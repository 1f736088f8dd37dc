"""Synthetic training scenes: bank objects pasted through their masks onto realistic backgrounds.

Pure core (numpy/scipy). This module gathers the public names of four smaller ones:

- :mod:`napari_synthseg.backgrounds`: :class:`BackgroundSource` learns what the background
  of real images looks like (intensity distribution, texture patches, power spectrum) and
  makes new backgrounds of any size cheaply; :func:`estimate_background_mask`.
- :mod:`napari_synthseg.scene_objects`: :func:`prepare_objects` converts a bank's objects
  once (float crops and masks at a few resolutions).
- :mod:`napari_synthseg.scene_params`: :class:`SceneParams`, a scene's settings checked, with
  their defaults.
- :mod:`napari_synthseg.scenes`: :func:`synthesize_scene` pastes randomly transformed bank
  objects onto such a background and returns the image with its instance labels.

Everything expensive (float conversion of the crops, their mip levels, background patches,
spectrally shaped noise fields) is prepared once and cached, so that one 512x512 scene
costs milliseconds.
"""

from __future__ import annotations

from ._synthesis_common import MIN_SCENE_SIDE
from .backgrounds import BACKGROUND_KINDS, DEFAULT_KIND_WEIGHTS, BackgroundSource, estimate_background_mask
from .scene_objects import PreparedObject, PreparedObjects, prepare_objects
from .scene_params import SceneParams
from .scenes import CLUSTER_OVERLAP, MIN_VISIBLE_PIXELS, TRAINING_SCENE_PARAMS, synthesize_scene

__all__ = [
    "BACKGROUND_KINDS",
    "CLUSTER_OVERLAP",
    "DEFAULT_KIND_WEIGHTS",
    "MIN_SCENE_SIDE",
    "MIN_VISIBLE_PIXELS",
    "TRAINING_SCENE_PARAMS",
    "BackgroundSource",
    "PreparedObject",
    "PreparedObjects",
    "SceneParams",
    "estimate_background_mask",
    "prepare_objects",
    "synthesize_scene",
]
