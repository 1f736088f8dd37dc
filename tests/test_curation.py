"""Tests of curation helpers: fill_enclosed, picking, measurements."""

import csv

import numpy as np
import pytest

from napari_synthseg.curation import (
    extract_picked,
    fill_enclosed,
    label_at,
    measure_objects,
    toggle_picked,
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


def test_label_at_and_picking():
    labels = np.zeros((10, 10), np.uint32)
    labels[2:4, 2:4] = 5
    labels[6:9, 6:9] = 7
    assert label_at(labels, (3, 3)) == 5
    assert label_at(labels, (7.4, 6.6)) == 7  # napari gives float coordinates
    assert label_at(labels, (0, 0)) == 0
    with pytest.raises(ValueError, match="outside"):
        label_at(labels, (10, 0))
    picked = toggle_picked(set(), 5)
    assert picked == {5}
    picked2 = toggle_picked(picked, 7)
    assert picked2 == {5, 7} and picked == {5}  # no mutation
    assert toggle_picked(picked2, 5) == {7}
    assert toggle_picked(picked2, 0) == {5, 7}
    kept = extract_picked(labels, {7})
    assert kept.dtype == labels.dtype
    assert set(np.unique(kept)) == {0, 7} and (kept == 7).sum() == 9
    assert not extract_picked(labels, []).any()


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
