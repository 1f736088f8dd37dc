"""Seeded scenes stay the same: fingerprints of ``synthesize_scene``'s output.

The hashes were computed with the code as it was before the synthesis speed-up and the
split of ``synthesis.py`` (issue 16), so a faster or reorganised ``synthesize_scene`` must
reproduce the old scenes. The labels must match exactly, the image's
statistics to 1e-6, so that float rounding of another CPU or library version does not fail it.
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


def scene_inputs():
    """The bank objects and background source of the cases (two sample scenes)."""
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


@pytest.fixture(scope="module")
def inputs():
    return scene_inputs()


CASES = {
    "defaults, noise background": ({}, False),
    "defaults, real background": ({}, True),
    "large pastes, blur": ({"scale_range": (1.0, 4.0), "blur_prob": 0.8, "n_objects": (10, 20)}, True),
    "training recipe": (dict(TRAINING_SCENE_PARAMS), True),
    "agglomerates": ({**TRAINING_SCENE_PARAMS, "cluster_prob": 0.6, "invert_prob": 0.3}, True),
    "hard edges, no rotation": ({"soft_edges": False, "rotate": False, "flip": False, "touch_prob": 0.9}, True),
}

# computed with the pre-split code (commit before "synthesis: split ..."), seeds 0..3: the labels'
# hash (object placement and ids, exact) and the image's mean and standard deviation (to 1e-6: a
# library's or CPU's float rounding may move single pixels by an ulp, a changed scene moves these)
FINGERPRINTS = {
    "agglomerates": [
        ("3643c7e6c3bfd9b0", 0.226527167, 0.130509953),
        ("ab3554dd119a033a", 0.177268436, 0.055932938),
        ("50bdc219a29c3804", 0.198654063, 0.096123895),
        ("95f2e20f05ca68f2", 0.200114463, 0.071806087)],
    "defaults, noise background": [
        ("e70672b0950dba68", 0.273254803, 0.132988937),
        ("a19580646f47b3cc", 0.235724342, 0.133802381),
        ("537c220ecdbce75a", 0.165099485, 0.118641356),
        ("2210cb3d3e770c14", 0.113097725, 0.115971225)],
    "defaults, real background": [
        ("f449231f37e585bc", 0.216277928, 0.138582394),
        ("6414502ec1bff72f", 0.218992593, 0.138411092),
        ("7af9555905c953ab", 0.189320419, 0.079582347),
        ("fa521f5598328731", 0.246638428, 0.178818287)],
    "hard edges, no rotation": [
        ("28f212a636ce08d7", 0.197845400, 0.077396243),
        ("ee141752ee1d8670", 0.202477480, 0.099282462),
        ("34afcb139c1dbf55", 0.187218476, 0.053833652),
        ("8d61ae2feea4a8cd", 0.248358457, 0.179952149)],
    "large pastes, blur": [
        ("67a7b5d79cfd21be", 0.278951511, 0.227665968),
        ("eb9dae4d03a0a051", 0.186562424, 0.126632605),
        ("f6d4dc1bea061f7e", 0.206671734, 0.101322473),
        ("13a0ec9a6e95b3e9", 0.250775396, 0.161924985)],
    "training recipe": [
        ("a0f8e9c15a99d884", 0.229353408, 0.138647416),
        ("3088bb2e37fff83c", 0.187555675, 0.066588824),
        ("50da0eac9bc705ae", 0.199412042, 0.094832809),
        ("a12c437841c5afa7", 0.197590282, 0.067780223)],
}


def _fingerprint(image: np.ndarray, labels: np.ndarray) -> tuple[str, float, float]:
    pixels = image.astype(np.float64)
    return hashlib.sha256(labels.astype(np.uint32).tobytes()).hexdigest()[:16], pixels.mean(), pixels.std()


def scene_fingerprints(inputs, case: str) -> list[str]:
    objects, source = inputs
    params, real = CASES[case]
    return [_fingerprint(*synthesize_scene(objects, (256, 320), np.random.default_rng(seed),
                                           source if real else None, **params)) for seed in range(4)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_seeded_scenes_are_unchanged(inputs, case):
    for (labels, mean, std), (want_labels, want_mean, want_std) in zip(scene_fingerprints(inputs, case),
                                                                       FINGERPRINTS[case], strict=True):
        assert labels == want_labels
        assert mean == pytest.approx(want_mean, abs=1e-6) and std == pytest.approx(want_std, abs=1e-6)
