"""Tests of curation helpers: fill_enclosed, picking, measurements."""

import csv
import json

import numpy as np
import pytest

from napari_synthseg.curation import (
    fill_enclosed,
    measure_objects,
    write_measurements_csv,
)


def ring(shape, cy, cx, r_in, r_out):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return (r2 >= r_in**2) & (r2 <= r_out**2), r2 < r_in**2


def test_ring_is_filled():
    mask, inside = ring((50, 60), 25, 30, 10, 12)
    out = fill_enclosed(mask, (0, 0))
    assert out.dtype == bool and out.shape == mask.shape
    assert out[inside].all() and out[mask].all()
    assert out.sum() == mask.sum() + inside.sum()


def test_touching_rings_both_filled_and_labels_input():
    a, ia = ring((50, 80), 25, 25, 8, 11)
    b, ib = ring((50, 80), 25, 46, 8, 11)
    labels = a.astype(np.int32) + 2 * (b & ~a)
    out = fill_enclosed(labels, (2, 2))
    assert out[ia].all() and out[ib].all()
    assert not out[0].any() and not out[:, -1].any()


def test_open_contour_not_filled():
    mask, inside = ring((50, 60), 25, 30, 10, 12)
    mask[25:, 28:33] = False  # cut a gap into the ring: its inside is reachable
    out = fill_enclosed(mask, (0, 0))
    np.testing.assert_array_equal(out, mask)


def test_diagonal_gap_stays_closed_under_4_connectivity():
    mask = np.zeros((7, 7), bool)
    mask[1, 3] = mask[2, 2] = mask[3, 1] = mask[2, 4] = mask[3, 5] = mask[4, 4] = mask[5, 3] = mask[4, 2] = True
    out = fill_enclosed(mask, (0, 0))
    assert out[3, 3]  # only diagonal gaps: the centre is enclosed


def test_point_inside_enclosed_region_makes_outside_object():
    mask, inside = ring((50, 60), 25, 30, 10, 12)
    out = fill_enclosed(mask, (25, 30))
    assert not out[inside].any() and out[0, 0]


def test_fill_enclosed_errors():
    mask, _ = ring((50, 60), 25, 30, 10, 12)
    with pytest.raises(ValueError, match="outside"):
        fill_enclosed(mask, (50, 0))
    with pytest.raises(ValueError, match="outside"):
        fill_enclosed(mask, (-1, 3))
    with pytest.raises(ValueError, match="background pixel"):
        fill_enclosed(mask, (25, 19))
    with pytest.raises(ValueError, match="2D"):
        fill_enclosed(np.zeros((2, 3, 4)), (0, 0))
    with pytest.raises(ValueError, match="row, col"):
        fill_enclosed(mask, (1, 2, 3))


def test_measure_objects():
    labels = np.zeros((20, 30), np.uint16)
    labels[2:6, 3:7] = 1      # 4x4 square
    labels[10:15, 10:20] = 4  # 5x10 rectangle
    image = np.zeros((20, 30), np.float32)
    image[labels == 4] = 2.5
    rows = measure_objects(labels, image, plane=3)
    assert [r["label"] for r in rows] == [1, 4]
    r1, r4 = rows
    assert r1["area_px2"] == 16 and r4["area_px2"] == 50
    assert r1["equivalent_diameter_px"] == pytest.approx(np.sqrt(4 * 16 / np.pi))
    assert r4["mean_intensity"] == pytest.approx(2.5) and r1["mean_intensity"] == 0
    bbox = (r4["bbox_min_row_px"], r4["bbox_min_col_px"], r4["bbox_max_row_px"], r4["bbox_max_col_px"])
    assert bbox == (10, 10, 15, 20)
    assert r1["plane"] == 3 and r1["perimeter_px"] > 0
    scaled = measure_objects(labels, spacing=0.5, unit="um")
    assert scaled[0]["area_um2"] == pytest.approx(4.0)
    assert scaled[0]["equivalent_diameter_um"] == pytest.approx(0.5 * r1["equivalent_diameter_px"])
    assert "mean_intensity" not in scaled[0]
    assert measure_objects(np.zeros((5, 5), np.uint8)) == []
    with pytest.raises(ValueError, match="shape"):
        measure_objects(labels, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2D"):
        measure_objects(np.zeros((2, 5, 5), np.uint8))


def test_write_measurements_csv(tmp_path):
    labels = np.zeros((20, 30), np.uint16)
    labels[2:6, 3:7] = 1
    labels[10:15, 10:20] = 2
    rows = measure_objects(labels)
    rows[0]["source"] = "a.tif"
    path = write_measurements_csv(rows, tmp_path / "sub" / "m.csv")
    with open(path, newline="") as fh:
        read = list(csv.DictReader(fh))
    assert len(read) == 2 and read[0]["label"] == "1" and read[1]["area_px2"] == "50.0"
    assert read[0]["source"] == "a.tif" and read[1]["source"] == ""
    assert read[0]["plane"] == ""
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.csv"]  # no temp files left


# --- curations (issue 17) ---------------------------------------------------------------------

from napari_synthseg.curation import (  # noqa: E402
    BACKGROUND,
    UNKNOWN,
    Curation,
    add_object,
    curation_path,
    fill_object,
    load_curation,
    pick_object,
    reject_object,
    save_curation,
)
from napari_synthseg.curation_edits import merge_objects, split_object  # noqa: E402


def three_objects():
    labels = np.zeros((40, 50), np.int32)
    labels[5:15, 5:15] = 3    # picked below
    labels[5:15, 15:25] = 4   # touches 3
    labels[25:35, 30:45] = 9  # a speck to reject
    return labels


def frozen_copy(curation):
    return curation.objects.copy(), curation.background.copy(), dict(curation.counts)


def assert_unchanged(curation, copy):
    objects, background, counts = copy
    np.testing.assert_array_equal(curation.objects, objects)
    np.testing.assert_array_equal(curation.background, background)
    assert curation.counts == counts


def test_empty_curation_knows_nothing():
    cur = Curation.empty((40, 50))
    assert cur.is_empty() and not cur.known().any() and cur.clicks == 0
    assert cur.as_image().dtype == np.int32 and (cur.as_image() == UNKNOWN).all()
    with pytest.raises(ValueError, match="2D"):
        Curation.empty((2, 40, 50))


def test_pick_twice_unpicks_and_never_mutates():
    labels = three_objects()
    labels_before = labels.copy()
    empty = Curation.empty(labels.shape)
    before = frozen_copy(empty)
    picked = pick_object(empty, labels, (10, 10))
    assert_unchanged(empty, before)
    np.testing.assert_array_equal(labels, labels_before)
    assert picked.counts["pick"] == 1 and picked.clicks == 1
    assert set(np.unique(picked.objects)) == {0, 1}
    np.testing.assert_array_equal(picked.objects > 0, labels == 3)
    both = pick_object(picked, labels, (10, 20))
    assert set(np.unique(both.objects)) == {0, 1, 2} and both.counts["pick"] == 2
    # the boundary between the two picked neighbours is known, as object pixels of each
    assert both.objects[10, 14] == 1 and both.objects[10, 15] == 2 and both.known()[10, 14:16].all()
    unpicked = pick_object(both, labels, (7, 7))
    assert unpicked.counts["pick"] == 1 and not unpicked.objects[labels == 3].any()
    assert (unpicked.objects[labels == 4] == 2).all()
    with pytest.raises(ValueError, match="no predicted object"):
        pick_object(empty, labels, (0, 0))
    with pytest.raises(ValueError, match="shape"):
        pick_object(empty, labels[:10], (3, 3))
    with pytest.raises(ValueError, match="outside"):
        pick_object(empty, labels, (40, 3))
    with pytest.raises(ValueError):  # arrays of a curation are read-only: undo stacks stay true
        picked.objects[0, 0] = 5


def test_reject_and_unreject():
    labels = three_objects()
    cur = reject_object(Curation.empty(labels.shape), labels, (30, 35))
    np.testing.assert_array_equal(cur.background, labels == 9)
    assert cur.counts["reject"] == 1 and not cur.objects.any()
    assert (cur.as_image()[labels == 9] == BACKGROUND).all()
    again = reject_object(cur, labels, (30, 35))
    assert not again.background.any() and again.counts["reject"] == 0
    with pytest.raises(ValueError, match="no object"):
        reject_object(cur, labels, (0, 0))


def test_reject_of_a_picked_object():
    labels = three_objects()
    picked = pick_object(Curation.empty(labels.shape), labels, (10, 10))
    rejected = reject_object(picked, labels, (10, 10))
    assert not rejected.objects.any()
    np.testing.assert_array_equal(rejected.background, labels == 3)
    assert rejected.counts["pick"] == 0 and rejected.counts["reject"] == 1
    # picking the rejected object again makes it an object: background and objects never overlap
    repicked = pick_object(rejected, labels, (10, 10))
    assert not (repicked.background & (repicked.objects > 0)).any()


def test_known_counts_objects_background_and_an_outline_ring():
    labels = three_objects()
    cur = pick_object(Curation.empty(labels.shape), labels, (10, 10))
    cur = reject_object(cur, labels, (30, 35))
    bare = cur.known(ring_px=0)
    np.testing.assert_array_equal(bare, (labels == 3) | (labels == 9))
    one = cur.known(ring_px=1)
    assert one[15, 10] and one[4, 10] and not one[16, 10]  # 1 px outside the picked object
    ringed = cur.known()  # the default: 3 px, the gap between touching neighbours
    assert ringed[17, 10] and ringed[2, 10] and not ringed[18, 10]
    assert ringed[30, 29] == False  # rejected pixels get no ring: only an outline said right does  # noqa: E712
    wide = cur.known(ring_px=2)
    assert wide[16, 10] and not wide[17, 10]
    assert bare.dtype == bool


def blob(shape=(60, 60), centre=(30, 30), radius=8.0, peak=0.6):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - centre[0], xx - centre[1])
    return (peak * np.clip(1.5 - r / radius, 0, 1)).astype(np.float32).clip(0, peak), r


def test_add_object_from_probability():
    prob, r = blob()
    cur = Curation.empty(prob.shape)
    added = add_object(cur, (30, 31), probability=prob)
    assert added.counts["add"] == 1 and added.origins[1] == "add"
    region = added.objects == 1
    # half of the peak: 1.5 - r/8 >= 0.5 -> r <= 8, the blob's outline
    assert region[30, 30] and region[30, 37] and not region[30, 40]
    assert abs(int(region.sum()) - int((r <= 8).sum())) <= 8
    assert not cur.objects.any()
    # a 3-channel model output works the same way (foreground first)
    stack = np.stack([prob, np.zeros_like(prob), np.zeros_like(prob)], axis=-1)
    np.testing.assert_array_equal(add_object(cur, (30, 31), probability=stack).objects, added.objects)
    # un-pick removes an added object too
    assert pick_object(added, np.zeros(prob.shape, np.int32), (30, 30)).counts["add"] == 0


def test_add_object_keeps_out_of_other_objects_and_fails_clearly():
    prob, _ = blob()
    labels = np.zeros(prob.shape, np.int32)
    labels[:, 33:] = 2  # a predicted neighbour covering the blob's right side
    added = add_object(Curation.empty(prob.shape), (30, 28), probability=prob, labels=labels)
    assert added.objects[30, 28] and not added.objects[:, 33:].any()
    with pytest.raises(ValueError, match="sees nothing") as err:
        add_object(Curation.empty(prob.shape), (2, 2), probability=prob)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="cover"):  # a flat high map leaks over the whole image
        add_object(Curation.empty(prob.shape), (2, 2), probability=np.full(prob.shape, 0.4, np.float32))
    with pytest.raises(ValueError, match="probability map or the image"):
        add_object(Curation.empty(prob.shape), (2, 2))
    with pytest.raises(ValueError, match="shape"):
        add_object(Curation.empty(prob.shape), (2, 2), probability=prob[:10])


def test_add_object_from_the_image_when_the_model_sees_nothing():
    _, r = blob()
    image = np.where(r <= 8, 0.8, 0.2).astype(np.float32)
    added = add_object(Curation.empty(image.shape), (30, 30), probability=np.zeros(image.shape), image=image)
    disk = r <= 8
    assert ((added.objects > 0) != disk).sum() <= 0.05 * disk.sum()  # smoothing moves a few corner pixels


def test_add_on_background_takes_the_image_grain_when_the_blob_joins_several():
    """A young model sees three touching grains as one faint blob; the image shows each grain."""
    yy, xx = np.mgrid[:60, :100]
    discs = [np.hypot(yy - 30, xx - cx) <= 9 for cx in (30, 50, 70)]
    image = np.where(discs[0] | discs[1] | discs[2], 0.8, 0.2).astype(np.float32)
    # the blob at half its peak: an ellipse over all three grains, more than three grains' area
    blob = np.clip(1.0 - np.hypot((yy - 30) / 24.0, (xx - 50) / 60.0), 0, 1).astype(np.float32) * 0.6
    empty = Curation.empty(image.shape)
    added = add_object(empty, (30, 50), probability=blob, image=image, labels=np.zeros(image.shape, np.int32))
    region = added.objects > 0
    assert (region & discs[1]).sum() / (region | discs[1]).sum() > 0.8  # the clicked grain alone
    # the blob alone (no image) takes all three grains: what the image changes
    whole = add_object(empty, (30, 50), probability=blob).objects > 0
    assert whole[discs[0]].mean() > 0.5 and whole[discs[2]].mean() > 0.5
    # a blob that outlines one grain is kept as the model drew it
    r = np.hypot(yy - 30, xx - 50)
    single = (0.6 * np.clip(1.5 - r / 9, 0, 1)).astype(np.float32).clip(0, 0.6)
    kept = add_object(empty, (30, 50), probability=single, image=image).objects > 0
    np.testing.assert_array_equal(kept, add_object(empty, (30, 50), probability=single).objects > 0)


def _two_grains_predicted_as_one():
    """Two touching discs the model drew as one object, its inner distance peaking in each."""
    yy, xx = np.mgrid[:50, :70]
    left, right = np.hypot(yy - 25, xx - 24), np.hypot(yy - 25, xx - 43)
    clump = (left <= 10) | (right <= 10)
    labels = np.where(clump, 3, 0).astype(np.int32)
    distance = np.clip(np.maximum(1 - left / 10, 1 - right / 10), 0, 1).astype(np.float32)
    foreground = np.where(clump, 0.95, 0.02).astype(np.float32)
    return labels, np.stack([foreground, distance, np.zeros_like(distance)], axis=-1), left <= 10


def test_add_inside_a_prediction_carves_the_grain_at_its_distance_peak():
    labels, prob, left_disc = _two_grains_predicted_as_one()
    added = add_object(Curation.empty(labels.shape), (25, 22), probability=prob, labels=labels)
    region = added.objects > 0
    assert (region & left_disc).sum() / (region | left_disc).sum() > 0.85  # the left grain, not the clump
    assert added.counts["add"] == 1
    # the same with the foreground and the distance given apart (as the Curate dock does)
    apart = add_object(Curation.empty(labels.shape), (25, 22), probability=prob[..., 0], distance=prob[..., 1],
                       labels=labels)
    np.testing.assert_array_equal(apart.objects, added.objects)
    # without the distance the click can only take the prediction whole
    whole = add_object(Curation.empty(labels.shape), (25, 22), probability=prob[..., 0], labels=labels)
    np.testing.assert_array_equal(whole.objects > 0, labels > 0)


def test_add_inside_a_one_peak_prediction_falls_back_to_the_probability():
    labels, prob, left_disc = _two_grains_predicted_as_one()
    labels[~left_disc] = 0
    prob[~left_disc, :2] = (0.02, 0.0)  # the right grain gone
    added = add_object(Curation.empty(labels.shape), (25, 24), probability=prob, labels=labels)
    np.testing.assert_array_equal(added.objects > 0, left_disc)
    with pytest.raises(ValueError, match="distance map has shape"):
        add_object(Curation.empty(labels.shape), (25, 24), probability=prob[..., 0], distance=prob[:10, :, 1],
                   labels=labels)


def test_fill_object_fills_enclosed_regions():
    mask, inside = ring((50, 60), 25, 30, 10, 12)
    cur = fill_object(Curation.empty(mask.shape), mask.astype(np.uint8), (0, 0))
    assert cur.counts["fill"] == 1 and cur.objects[inside].all() and cur.objects[mask].all()
    with pytest.raises(ValueError, match="nothing is enclosed"):
        fill_object(Curation.empty(mask.shape), (mask | inside).astype(np.uint8), (0, 0))


def test_save_load_round_trip(tmp_path):
    labels = three_objects()
    cur = pick_object(Curation.empty(labels.shape), labels, (10, 10))
    cur = reject_object(cur, labels, (30, 35))
    cur = add_object(cur, (30, 12), probability=blob(labels.shape, (30, 12), 4.0)[0])
    path = curation_path(tmp_path / "img_labels.tif")
    assert path.name == "img_curation.tif" and curation_path(tmp_path / "img.png") == path
    save_curation(cur, path, meta={"image": "img.png"})
    loaded = load_curation(path)
    np.testing.assert_array_equal(loaded.objects, cur.objects)
    np.testing.assert_array_equal(loaded.background, cur.background)
    assert loaded.counts == cur.counts and loaded.origins == cur.origins
    assert json.loads(path.with_suffix(".json").read_text())["meta"] == {"image": "img.png"}
    path.with_suffix(".json").unlink()  # the image alone still loads: objects count as picks
    alone = load_curation(path)
    assert alone.counts["pick"] == 2 and alone.counts["reject"] == 1
    np.testing.assert_array_equal(alone.as_image(), cur.as_image())
    with pytest.raises(ValueError, match="no curation"):
        load_curation(tmp_path / "missing_curation.tif")
    with pytest.raises(ValueError, match="TIFF"):
        save_curation(cur, tmp_path / "x.png")


def two_touching_discs(shape=(60, 80), radius=12, gap=22):
    """Labels: two discs whose centres are ``gap`` px apart, predicted as one object (id 5)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    left = np.hypot(yy - 30, xx - 25) <= radius
    right = np.hypot(yy - 30, xx - 25 - gap) <= radius
    labels = np.zeros(shape, np.int32)
    labels[left | right] = 5
    return labels, left, right


def test_split_object_cuts_a_clump_at_its_neck_into_known_objects():
    labels, left, right = two_touching_discs()
    empty = Curation.empty(labels.shape)
    split = split_object(empty, labels, (30, 36))
    assert not empty.objects.any()  # the input never changes
    ids = [i for i in np.unique(split.objects) if i]
    assert len(ids) == 2 and split.counts["split"] == 2 and split.clicks == 2
    assert set(split.origins.values()) == {"split"}
    left_id, right_id = int(split.objects[30, 20]), int(split.objects[30, 52])
    assert left_id != right_id
    for part, disc in ((split.objects == left_id, left), (split.objects == right_id, right)):
        assert (part & disc).sum() / (part | disc).sum() > 0.85
    np.testing.assert_array_equal(split.objects > 0, labels > 0)  # every pixel of the clump is kept
    # un-picking one part takes one part back; the other stays known
    unpicked = pick_object(split, labels, (30, 20))
    assert unpicked.counts["split"] == 1 and not unpicked.objects[30, 20] and unpicked.objects[30, 52]
    # a curated object is split too (a pick that turned out to be a clump)
    picked = pick_object(empty, labels, (30, 36))
    resplit = split_object(picked, labels, (30, 36))
    assert resplit.counts["pick"] == 0 and resplit.counts["split"] == 2


def test_split_object_fails_clearly_on_a_convex_object_or_background():
    yy, xx = np.mgrid[:60, :60]
    labels = (np.hypot(yy - 30, xx - 30) <= 15).astype(np.int32)
    with pytest.raises(ValueError, match="narrows nowhere") as err:
        split_object(Curation.empty(labels.shape), labels, (30, 30))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no object"):
        split_object(Curation.empty(labels.shape), labels, (1, 1))


def test_merge_objects_joins_pieces_across_the_boundary_band():
    labels = np.zeros((40, 60), np.int32)
    labels[10:30, 10:28] = 1
    labels[10:30, 30:48] = 2  # a 2-px band between the two halves of one object
    labels[2:6, 2:6] = 3
    cur = Curation.empty(labels.shape)
    merged = merge_objects(cur, labels, [(20, 15), (20, 40)])
    assert merged.counts["merge"] == 1 and merged.origins == {1: "merge"}
    region = merged.objects == 1
    assert region[10:30, 10:48].all() and region.sum() == 20 * 38  # the band joins, nothing else does
    assert not region[2:6, 2:6].any()
    # curated pieces leave the curation and join the merged object
    picked = pick_object(cur, labels, (20, 15))
    joined = merge_objects(picked, labels, [(20, 15), (20, 40)])
    assert joined.counts["pick"] == 0 and joined.counts["merge"] == 1 and joined.objects[20, 29]


def test_merge_objects_fails_clearly():
    labels = np.zeros((40, 60), np.int32)
    labels[10:30, 5:15] = 1
    labels[10:30, 40:50] = 2  # far apart
    cur = Curation.empty(labels.shape)
    with pytest.raises(ValueError, match="apart"):
        merge_objects(cur, labels, [(20, 8), (20, 45)])
    with pytest.raises(ValueError, match="one object"):
        merge_objects(cur, labels, [(20, 8), (21, 9)])
    with pytest.raises(ValueError, match="two or more"):
        merge_objects(cur, labels, [(20, 8)])
    with pytest.raises(ValueError, match="no object"):
        merge_objects(cur, labels, [(20, 8), (0, 0)])
    # a merged and saved curation keeps its kinds
    np.testing.assert_array_equal(Curation.from_image(cur.as_image()).objects, cur.objects)
