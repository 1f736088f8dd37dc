"""Seeded scenes stay the same: fingerprints of ``synthesize_scene``'s output.

The hashes were computed with the code as it was before the synthesis speed-up and the
split of ``synthesis.py`` (issue 16), so a faster or reorganised ``synthesize_scene`` must
reproduce the old scenes bit for bit. They depend on numpy/scipy/scikit-image's float
arithmetic; if a library upgrade changes them, recompute them with the old code at hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import ndimage

from napari_synthseg.sample_data import make_sample_scene
from napari_synthseg.synthesis import TRAINING_SCENE_PARAMS, BackgroundSource, synthesize_scene


@dataclass
class Obj:
    image: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def inputs():
    objects, images, labels = [], [], []
    for seed in range(2):
        image, lab = make_sample_scene(seed=seed, shape=(384, 512))
        images.append(image)
        labels.append(lab)
        for i, box in enumerate(ndimage.find_objects(lab), start=1):
            if box is not None:
                box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
                objects.append(Obj(image[box], lab[box] == i, {"source": f"image{seed}"}))
    source = BackgroundSource.from_images(images, labels, names=["image0", "image1"])
    return objects, source


CASES = {
    "defaults, noise background": ({}, False),
    "defaults, real background": ({}, True),
    "large pastes, blur": ({"scale_range": (1.0, 4.0), "blur_prob": 0.8, "n_objects": (10, 20)}, True),
    "training recipe": (dict(TRAINING_SCENE_PARAMS), True),
    "agglomerates": ({**TRAINING_SCENE_PARAMS, "cluster_prob": 0.6, "invert_prob": 0.3}, True),
    "hard edges, no rotation": ({"soft_edges": False, "rotate": False, "flip": False, "touch_prob": 0.9}, True),
}

# computed with the pre-split code (commit before "synthesis: split ..."), seeds 0..3
FINGERPRINTS = {
    "agglomerates": ["07fb823d9bd3c101", "72196488e50c88a5", "2f390124eea4ccba", "9aeb3c52be02cca4"],
    "defaults, noise background": ["eda873858aea0a51", "afa1ecb3d89a3fed", "4908bcc7617a319e", "b368d4987e37fdd9"],
    "defaults, real background": ["05e279353a23be8f", "d3ebd60dc892de93", "4e3accd2e211a0b8", "eb7e1cb5d5409179"],
    "hard edges, no rotation": ["6f0b5751bc8d7815", "c564dedc8e595151", "8a0a22012397e041", "34264aeb745ee6de"],
    "large pastes, blur": ["c98f3e4e469c46f3", "a738bcf07fc93a15", "7a0a219ee3e9a56a", "e87427a9bad51629"],
    "training recipe": ["1aa784622c53ed9f", "dfe0fcf44a8b8e52", "09dae3cb9e0a82ce", "8c64e64a942d4258"],
}


def _fingerprint(image: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(image.astype(np.float32).tobytes())
    digest.update(labels.astype(np.uint32).tobytes())
    return digest.hexdigest()[:16]


def scene_fingerprints(inputs, case: str) -> list[str]:
    objects, source = inputs
    params, real = CASES[case]
    return [_fingerprint(*synthesize_scene(objects, (256, 320), np.random.default_rng(seed),
                                           source if real else None, **params)) for seed in range(4)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_seeded_scenes_are_unchanged(inputs, case):
    assert scene_fingerprints(inputs, case) == FINGERPRINTS[case]
