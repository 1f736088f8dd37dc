"""benchmarks/sem_agglomerates.py: a rendered folder of agglomerated spheres with their masks."""

import numpy as np
import pytest
from skimage import io

from _scripts import loaded_script


@pytest.fixture(scope="module")
def agglomerates():
    with loaded_script("benchmarks/sem_agglomerates.py") as module:
        yield module


def test_touching_spheres_are_separate_particles_in_the_masks(agglomerates):
    rng = np.random.default_rng(3)
    spheres = [(40.0, 40.0, 12.0, 12.0), (40.0, 61.0, 10.0, 14.0), (100.0, 100.0, 14.0, 14.0)]  # a pair, one alone
    image, labels = agglomerates.render_sem(rng, (140, 160), spheres)
    assert image.dtype == np.uint8 and labels.shape == image.shape
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    # the higher sphere hides part of the one it overlaps; both stay whole particles of their own
    assert (labels == 2).sum() == pytest.approx(np.pi * 10 ** 2, rel=0.1)
    assert (labels == 1).sum() < np.pi * 12 ** 2
    # secondary-electron look: particles brighter than the ground, rims brighter than centres
    assert image[labels > 0].mean() > image[labels == 0].mean() + 30
    rows, cols = np.mgrid[:140, :160]
    reach = np.hypot(rows - 100, cols - 100)
    assert image[(reach > 9) & (reach < 12)].mean() > image[reach < 4].mean() + 10


def test_the_folder_has_masks_a_split_and_touching_particles(agglomerates, tmp_path, monkeypatch):
    monkeypatch.setattr(agglomerates, "SHAPE", (192, 256))
    halves = agglomerates.write_folder(tmp_path, n=2, seed=0)
    assert halves == {"tune": ["agg00"], "check": ["agg01"]}
    assert (tmp_path / "split.csv").read_text().splitlines() == ["image,half", "agg00.png,tune", "agg01.png,check"]
    masks = io.imread(tmp_path / "masks" / "agg00.png")
    image = io.imread(tmp_path / "images" / "agg00.png")
    sizes = np.bincount(masks.ravel())[1:]
    assert (sizes[sizes > 0] >= agglomerates.MIN_PARTICLE_PX).all()
    # agglomerates: a threshold joins particles that the watershed of its distance parts
    joined = agglomerates.li_labels(image, split=False).max()
    parted = agglomerates.li_labels(image, split=True).max()
    assert joined < parted <= (sizes > 0).sum() * 1.5
