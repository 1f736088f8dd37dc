import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_synthseg.instances import (
    fill_object_holes,
    probabilities_to_instances,
    relabel_consecutive,
    remove_small_objects,
)


def _targets(labels):
    """Ideal network output for instance labels: foreground, per-object normalised distance, boundary."""
    fg = (labels > 0).astype(np.float32)
    dist = np.zeros(labels.shape, np.float32)
    for obj in range(1, int(labels.max()) + 1):
        edt = ndi.distance_transform_edt(labels == obj)
        if edt.max() > 0:
            dist += (edt / edt.max()).astype(np.float32)
    grown = ndi.grey_dilation(labels, size=3)
    shrunk = ndi.grey_erosion(labels, size=3)
    boundary = ((grown != shrunk) & ((labels > 0) | (grown > 0))).astype(np.float32)
    return np.stack([fg, dist, boundary], -1)


def _touching_disks():
    yy, xx = np.mgrid[:80, :120]
    labels = np.zeros((80, 120), np.uint32)
    labels[np.hypot(yy - 40, xx - 40) < 20] = 1
    labels[(np.hypot(yy - 40, xx - 76) < 20) & (labels == 0)] = 2
    return labels


def test_distance_method_splits_touching_disks_that_components_merge():
    gt = _touching_disks()
    prob = _targets(gt)
    merged = probabilities_to_instances(prob, method="components")
    assert merged.max() == 1
    split = probabilities_to_instances(prob, method="distance")
    assert split.dtype == np.uint32 and split.shape == gt.shape
    assert split.max() == 2
    # each predicted object matches one disk
    for obj in (1, 2):
        overlap = np.bincount(gt[split == obj], minlength=3)
        assert overlap[1:].max() / overlap.sum() > 0.95
    assert probabilities_to_instances(prob).max() == 2  # auto = distance


def test_distance_method_keeps_objects_whose_distance_channel_is_missing():
    gt = _touching_disks()
    gt[:, 56:60] = 0  # separate the disks
    prob = _targets(gt)
    prob[..., 1][gt == 2] = 0.0  # the network found the object but no core
    labels = probabilities_to_instances(prob, method="distance")
    assert labels.max() == 2
    assert np.count_nonzero(labels) == np.count_nonzero(gt)


def test_watershed_baseline_splits_disks_and_works_on_foreground_only():
    gt = _touching_disks()
    labels = probabilities_to_instances(_targets(gt)[..., :1], method="auto")
    assert labels.max() == 2
    with pytest.raises(ValueError, match="distance channel"):
        probabilities_to_instances(_targets(gt)[..., :1], method="distance")


def test_min_area_removes_small_objects_and_labels_are_consecutive():
    gt = np.zeros((60, 60), np.uint32)
    gt[5:15, 5:15] = 1  # 100 px
    gt[30:34, 30:34] = 2  # 16 px
    gt[40:55, 40:55] = 3  # 225 px
    prob = _targets(gt)
    labels = probabilities_to_instances(prob, min_area=30)
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert np.bincount(labels.ravel())[1:].tolist() == [100, 225]
    assert probabilities_to_instances(prob, min_area=0).max() == 3


def test_holes_are_filled_only_when_enclosed_by_one_object():
    gt = np.zeros((60, 60), np.uint32)
    gt[5:30, 5:30] = 1
    gt[12:20, 12:20] = 0  # hole inside object 1
    prob = _targets(gt)
    prob[..., 1] = (gt > 0) * 0.9  # one core: keep it a single object
    filled = probabilities_to_instances(prob, fill_holes=True, min_area=0)
    assert filled.max() == 1 and filled[15, 15] == 1
    kept = probabilities_to_instances(prob, fill_holes=False, min_area=0)
    assert kept[15, 15] == 0

    two = np.zeros((30, 30), np.uint32)
    two[5:25, 5:15] = 1
    two[5:25, 15:25] = 2
    two[10:20, 12:18] = 0  # gap enclosed by two objects: not a hole of either
    out = fill_object_holes(two)
    assert (out[10:20, 12:18] == 0).all()
    ring = two.copy()
    ring[10:20, 12:15] = 0
    ring[10:20, 15:18] = 2
    ring[12:18, 19:22] = 0  # hole inside object 2 only
    out = fill_object_holes(ring)
    assert (out[12:18, 19:22] == 2).all() and (out[10:20, 12:15] == 0).all()


def test_holes_vectorised_on_many_objects():
    labels = np.zeros((200, 200), np.uint32)
    for i in range(10):
        for j in range(10):
            labels[i * 20 + 2:i * 20 + 18, j * 20 + 2:j * 20 + 18] = i * 10 + j + 1
            labels[i * 20 + 7:i * 20 + 12, j * 20 + 7:j * 20 + 12] = 0
    out = fill_object_holes(labels)
    assert np.count_nonzero(out == 0) == np.count_nonzero(labels == 0) - 100 * 25
    assert out[9, 9] == 1 and out[189, 189] == 100


def test_helpers_and_bad_input():
    labels = np.array([[0, 5, 5], [9, 9, 0], [0, 0, 2]], np.int32)
    assert relabel_consecutive(labels).tolist() == [[0, 2, 2], [3, 3, 0], [0, 0, 1]]
    assert relabel_consecutive(np.zeros((2, 2), int)).dtype == np.uint32
    assert remove_small_objects(labels, 2).tolist() == [[0, 5, 5], [9, 9, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="method"):
        probabilities_to_instances(np.zeros((4, 4, 3)), method="magic")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        probabilities_to_instances(np.zeros((4, 4, 3, 1)))
    empty = probabilities_to_instances(np.zeros((8, 9, 3), np.float32))
    assert empty.shape == (8, 9) and empty.dtype == np.uint32 and empty.max() == 0


def test_fill_contours_fills_regions_outlined_by_several_objects():
    yy, xx = np.mgrid[:60, :60]
    radius = np.hypot(yy - 30, xx - 30)
    fg = ((radius > 15) & (radius < 18)).astype(np.float32)  # a ring drawn as two halves
    fg[28:32, :] = 0
    fg[28:32, 10:13] = 1
    fg[28:32, 47:50] = 1
    bridges = np.zeros_like(fg)
    bridges[28:32, 10:13] = bridges[28:32, 47:50] = 1  # where the halves meet
    prob = np.stack([fg, fg * 0.9, bridges], -1)
    plain = probabilities_to_instances(prob, min_area=0)
    assert plain[30, 30] == 0
    filled = probabilities_to_instances(prob, min_area=0, fill_contours=True)
    assert filled[30, 30] > 0 and filled[0, 0] == 0
    assert np.count_nonzero(filled) > np.count_nonzero(radius < 18) * 0.95
    same = probabilities_to_instances(prob, min_area=0, fill_contours=True, background_point=(0, 59))
    np.testing.assert_array_equal(same > 0, filled > 0)
    with pytest.raises(ValueError, match="background pixel"):
        probabilities_to_instances(prob, fill_contours=True, background_point=(30, 11))


def test_distance_and_boundary_methods_beat_the_watershed_baseline_on_noisy_maps():
    from napari_synthseg.metrics import DatasetScores
    from napari_synthseg.model.targets import labels_to_targets
    from napari_synthseg.sample_data import make_sample_scene

    rng = np.random.default_rng(0)
    scores = {method: DatasetScores() for method in ("boundary", "distance", "watershed", "components")}
    for seed in range(2):
        truth = make_sample_scene(seed=seed, shape=(512, 640))[1]
        # a blurred, noisy stand-in for a network's output
        prob = ndi.gaussian_filter(labels_to_targets(truth), (2, 2, 0))
        prob += 0.3 * ndi.gaussian_filter(rng.standard_normal(prob.shape), (1, 1, 0))
        prob = np.clip(prob, 0, 1).astype(np.float32)
        for method, acc in scores.items():
            acc.add(probabilities_to_instances(prob, method=method), truth)
    f1 = {method: acc.summary()["object_f1"] for method, acc in scores.items()}
    assert f1["distance"] > 0.85
    assert f1["distance"] > f1["watershed"] + 0.05 and f1["distance"] > f1["components"] + 0.1
    assert f1["boundary"] > 0.8 and f1["boundary"] > f1["watershed"] + 0.03  # measured 0.84 vs 0.79
    # hysteresis is what keeps noise from seeding extra objects
    noisy_seeds = DatasetScores()
    noisy_seeds.add(probabilities_to_instances(prob, method="distance", seed_peak=0.0), truth)
    assert noisy_seeds.summary()["object_precision"] < 0.8


def test_unconfident_objects_are_removed():
    prob = np.zeros((40, 60, 3), np.float32)
    prob[5:15, 5:15, 0] = 0.95  # a confident object
    prob[25:35, 30:40, 0] = 0.55  # a faint blob, barely above the threshold
    kept = probabilities_to_instances(prob, min_area=0, min_confidence=0.8)
    assert kept.max() == 1 and kept[10, 10] == 1 and kept[30, 35] == 0
    assert probabilities_to_instances(prob, min_area=0).max() == 2
    with pytest.raises(ValueError, match="min_confidence"):
        probabilities_to_instances(prob, min_confidence=1.5)
    with pytest.raises(ValueError, match="boundary channel"):
        probabilities_to_instances(prob[..., :2], method="boundary")


def test_confidence_counts_only_pixels_the_network_called_object():
    yy, xx = np.mgrid[:60, :60]
    radius = np.hypot(yy - 30, xx - 30)
    prob = np.zeros((60, 60, 3), np.float32)
    prob[..., 0] = np.where(radius < 20, 0.97, 0.0)
    prob[radius < 14, 0] = 0.1  # a dim centre, filled as a hole: it must not make the object doubtful
    labels = probabilities_to_instances(prob, min_area=0, min_confidence=0.8)
    assert labels.max() == 1 and labels[30, 30] == 1


def _soft(targets, sigma=1.0):
    """A network-like map: the ideal targets blurred, so edges and small objects are not 0/1."""
    return np.stack([ndi.gaussian_filter(targets[..., c], sigma) for c in range(targets.shape[-1])], -1)


def test_defaults_keep_every_small_particle_of_ten_pixels_or_more():
    rng = np.random.default_rng(3)
    labels = np.zeros((200, 200), np.uint32)
    yy, xx = np.mgrid[:200, :200]
    radii = [2.0, 2.2, 2.5, 3.0, 4.0] * 8  # areas 10 to 50 px
    centres = [(20 + 40 * (i // 8), 12 + 24 * (i % 8)) for i in range(len(radii))]
    for k, ((cy, cx), r) in enumerate(zip(centres, radii), start=1):
        labels[np.hypot(yy - cy + rng.uniform(-1, 1), xx - cx + rng.uniform(-1, 1)) <= r] = k
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() >= 10
    prob = _soft(_targets(labels), sigma=0.7)
    for min_confidence in (0.0, 0.8):  # also through the prediction default's confidence filter
        found = probabilities_to_instances(prob, min_confidence=min_confidence)
        matched = [np.count_nonzero(found[labels == k]) >= 0.5 * areas[k - 1] for k in range(1, len(radii) + 1)]
        assert all(matched), f"lost {matched.count(False)} particles with min_confidence={min_confidence}"
        assert found.max() == len(radii)


def _particle_with_a_crease(crease: float) -> np.ndarray:
    """A large particle's ideal map with a closed crease of boundary probability ``crease`` inside it
    that cuts off a 9x14 interior."""
    yy, xx = np.mgrid[:120, :120]
    prob = _targets((np.hypot(yy - 60, xx - 60) < 45).astype(np.uint32))
    prob[30:40, 52:53, 2] = crease
    prob[30:31, 52:68, 2] = crease
    prob[40:41, 52:68, 2] = crease
    prob[30:41, 67:68, 2] = crease
    return prob


def test_texture_inside_a_large_particle_seeds_no_second_object():
    # texture: a crease the network is unsure is an outline (under the wall of 0.7)
    prob = _particle_with_a_crease(0.45)
    assert probabilities_to_instances(prob).max() == 1
    # without the share rule, the enclosed 9x14 interior would be a second particle ...
    assert probabilities_to_instances(prob, min_seed_share=0.0, join_seam=None).max() == 2
    # ... unless it is joined again along its weak seam, which runs all round it (seams.py)
    assert probabilities_to_instances(prob, min_seed_share=0.0).max() == 1


def test_a_small_interior_the_network_outlines_all_round_is_its_own_object():
    prob = _particle_with_a_crease(0.9)  # an outline the network is sure of: a particle on a particle
    found = probabilities_to_instances(prob)
    assert found.max() == 2
    assert len(np.unique(found[31:40, 53:67])) == 1 and found[35, 60] != found[80, 60]
    # the share rule alone (the distance has no peak in it) lets the large particle swallow it
    assert probabilities_to_instances(prob, min_seed_wall=None).max() == 1
    # a wall with a gap under the bar is no wall
    prob[35:37, 67:68, 2] = 0.3
    assert probabilities_to_instances(prob).max() == 1
    with pytest.raises(ValueError, match="min_seed_wall must be between 0 and 1"):
        probabilities_to_instances(prob, min_seed_wall=1.5)


def test_a_small_particle_touching_a_large_one_is_its_own_object():
    yy, xx = np.mgrid[:120, :140]
    labels = np.zeros((120, 140), np.uint32)
    labels[np.hypot(yy - 60, xx - 55) < 45] = 1
    labels[(np.hypot(yy - 60, xx - 108) < 9) & (labels == 0)] = 2  # its interior is ~3 % of the large one's
    prob = _soft(_targets(labels), sigma=0.7)
    found = probabilities_to_instances(prob)
    assert found.max() == 2
    small = np.bincount(found[labels == 2]).argmax()
    assert small > 0 and np.count_nonzero(found == small) >= 0.7 * np.count_nonzero(labels == 2)
    # each rescue finds it alone (its own peak of the distance; the boundary drawn all round it) ...
    assert probabilities_to_instances(prob, min_seed_prominence=None).max() == 2
    assert probabilities_to_instances(prob, min_seed_wall=None).max() == 2
    # ... the share rule alone drops the small interior and the large particle swallows it
    assert probabilities_to_instances(prob, min_seed_prominence=None, min_seed_wall=None).max() == 1
    with pytest.raises(ValueError, match="min_seed_prominence must be between 0 and 1"):
        probabilities_to_instances(prob, min_seed_prominence=2.0)


def test_touching_particles_of_similar_size_still_split_with_the_share_rule():
    gt = _touching_disks()
    found = probabilities_to_instances(_soft(_targets(gt), sigma=0.7))
    assert found.max() == 2
    with pytest.raises(ValueError, match="min_seed_share must be between 0 and 1"):
        probabilities_to_instances(_targets(gt), min_seed_share=1.5)


def test_basin_at_cuts_a_mask_between_its_distance_peaks():
    from napari_synthseg.instances import basin_at

    yy, xx = np.mgrid[:40, :60]
    left, right = np.hypot(yy - 20, xx - 20), np.hypot(yy - 20, xx - 38)
    mask = (left <= 10) | (right <= 10)
    distance = np.clip(np.maximum(1 - left / 10, 1 - right / 10), 0, 1)
    region = basin_at(distance, mask, (20, 36))
    assert region[20, 38] and not region[20, 20] and not (region & ~mask).any()
    assert region.sum() < 0.6 * mask.sum()
    assert basin_at(distance, mask, (0, 0)) is None  # a click outside the mask
    assert basin_at(distance, left <= 10, (20, 20)) is None  # one peak: nothing to carve
    # a bump lower than the peak height is no centre of its own
    assert basin_at(np.where(mask, 0.5, 0) + 0.02 * (right <= 2), mask, (20, 38)) is None


def test_drawn_on_leaves_out_a_drawn_scale_bar_and_numbers_the_rest_from_one():
    rng = np.random.default_rng(0)
    image = rng.normal(80.0, 6.0, (120, 200))
    labels = np.zeros(image.shape, np.int32)
    labels[10:16, 20:140] = 1  # a scale bar drawn in one gray level
    image[10:16, 20:140] = 255.0
    yy, xx = np.mgrid[:120, :200]
    for i, (cy, cx) in enumerate(((60, 50), (70, 150)), start=2):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 15 ** 2
        labels[disc], image[disc] = i, rng.normal(200.0, 6.0, int(disc.sum()))  # particles carry noise
    prob = _targets(labels)
    kept = probabilities_to_instances(prob)
    assert kept[13, 80] > 0 and kept.max() == 3
    dropped = probabilities_to_instances(prob, drawn_on=image)
    assert dropped[13, 80] == 0
    assert sorted(np.unique(dropped)) == [0, 1, 2]  # consecutive ids, no gap where the bar was
    assert dropped[60, 50] and dropped[70, 150] and dropped[60, 50] != dropped[70, 150]
