import numpy as np
import pytest

from napari_synthseg.instances import probabilities_to_instances
from napari_synthseg.seams import join_along_weak_seams, seam_lengths
from test_instances import _targets, _touching_disks


def _disk_cut(wander: int, size: int = 120) -> np.ndarray:
    """A disk of radius 45 cut in two left and right pieces along x = 60, shifted by ``wander`` pixels
    every 3 rows (a seam through texture wanders; 0: a straight cut)."""
    yy, xx = np.mgrid[:size, :size]
    disk = np.hypot(yy - 60, xx - 60) < 45
    seam = 60 + wander * ((yy // 3) % 2)
    return np.where(disk, np.where(xx < seam, 1, 2), 0).astype(np.uint32)


def test_seam_lengths_count_the_pixel_sides_under_the_bar():
    labels = np.zeros((10, 10), np.uint32)
    labels[2:8, 1:5], labels[2:8, 5:9] = 1, 2
    boundary = np.zeros((10, 10), np.float32)
    pairs, lengths = seam_lengths(labels, boundary, 0.8)
    assert pairs.tolist() == [[1, 2]] and lengths.tolist() == [6]
    boundary[2:5, 5] = 0.9  # the network drew half the seam
    assert seam_lengths(labels, boundary, 0.8)[1].tolist() == [3]
    assert seam_lengths(np.zeros((4, 4), np.uint32), np.zeros((4, 4)), 0.8)[0].shape == (0, 2)


def test_pieces_along_a_wandering_weak_seam_are_joined_and_a_straight_cut_is_not():
    weak = np.full((120, 120), 0.5, np.float32)
    wandering = _disk_cut(wander=16)
    joined = join_along_weak_seams(wandering, weak)
    assert len(np.unique(joined[wandering > 0])) == 1
    straight = _disk_cut(wander=0)  # a seam as short as the pieces are wide: a neck, kept
    assert np.array_equal(join_along_weak_seams(straight, weak), straight)
    assert join_along_weak_seams(straight, weak) is straight  # nothing joined: not copied nor renumbered
    sure = np.full((120, 120), 0.9, np.float32)  # an outline the network is sure of, however it wanders
    assert np.array_equal(join_along_weak_seams(wandering, sure), wandering)
    with pytest.raises(ValueError, match="min_seam must be above 0"):
        join_along_weak_seams(wandering, weak, min_seam=0)


def test_touching_particles_stay_apart_even_where_their_neck_is_faint():
    labels = _touching_disks()
    faint = np.full(labels.shape, 0.5, np.float32)
    assert np.array_equal(join_along_weak_seams(labels, faint), labels)


def test_a_particle_cut_by_a_wandering_crease_comes_out_whole():
    truth = (_disk_cut(wander=16) > 0).astype(np.uint32)
    prob = _targets(truth)
    crease = _disk_cut(wander=16)
    seam = np.zeros(truth.shape, bool)
    seam[:, 1:] = crease[:, 1:] != crease[:, :-1]
    seam[1:] |= crease[1:] != crease[:-1]
    seam &= truth > 0
    prob[..., 2] = np.maximum(prob[..., 2], np.where(seam, 0.5, 0.0))  # texture the network is unsure of
    assert probabilities_to_instances(prob, join_seam=None).max() == 2
    found = probabilities_to_instances(prob)
    assert found.max() == 1 and np.count_nonzero(found) >= 0.95 * np.count_nonzero(truth)
    with pytest.raises(ValueError, match="join_seam must be above 0"):
        probabilities_to_instances(prob, join_seam=0.0)
