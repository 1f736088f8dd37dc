"""Object measurements (measure.py) and `synthseg measure`."""

import csv

import numpy as np
import pytest
from scipy.spatial import ConvexHull
from skimage.draw import disk, ellipse
from skimage.measure import regionprops_table

from napari_synthseg.cli import main
from napari_synthseg.image_io import write_tiff
from napari_synthseg.measure import measure_labels, measure_objects, write_measurements_csv


def test_rectangle_by_hand():
    labels = np.zeros((40, 60), np.uint16)
    labels[5:17, 10:40] = 3  # 12 rows x 30 columns
    m = measure_labels(labels)
    assert list(m["label"]) == [3]
    assert m["area_px2"][0] == 360
    # scikit-image's perimeter runs through the border pixels' centres: 2 * (11 + 29)
    assert m["perimeter_px"][0] == pytest.approx(80)
    # Feret diameters of the pixel squares: the diagonal and the short side
    assert m["feret_max_px"][0] == pytest.approx(np.hypot(12, 30))
    assert m["feret_min_px"][0] == pytest.approx(12)
    assert m["aspect_ratio"][0] == pytest.approx(np.hypot(12, 30) / 12)
    assert m["solidity"][0] == pytest.approx(1) and m["convexity"][0] == pytest.approx(1)
    assert m["circularity"][0] == pytest.approx(4 * np.pi * 360 / 80**2)
    assert (m["centroid_y_px"][0], m["centroid_x_px"][0]) == (10.5, 24.5)
    box = [m[f"bbox_{k}_px"][0] for k in ("min_row", "min_col", "max_row", "max_col")]
    assert box == [5, 10, 17, 40]


def test_disc_by_hand():
    labels = np.zeros((120, 120), np.uint8)
    radius = 40
    rr, cc = disk((60, 60), radius)
    labels[rr, cc] = 1
    m = measure_labels(labels)
    assert m["area_px2"][0] == pytest.approx(np.pi * radius**2, rel=0.01)
    # scikit-image's digital perimeter runs a few per cent long on circles
    assert m["perimeter_px"][0] == pytest.approx(2 * np.pi * radius, rel=0.05)
    assert m["circularity"][0] == pytest.approx(1, abs=0.1)
    # the disc is 2r - 1 pixel squares across (centres closer than r): Feret min; max a little more,
    # between the outer corners of pixels on a diagonal (each at most half a pixel diagonal beyond r)
    assert m["feret_min_px"][0] == pytest.approx(2 * radius - 1, abs=0.01)
    assert 2 * radius - 1 < m["feret_max_px"][0] < 2 * radius + np.sqrt(2)
    assert m["aspect_ratio"][0] == pytest.approx(1, abs=0.03)
    assert 0.97 < m["solidity"][0] < 1 and 0.95 < m["convexity"][0] <= 1


def test_units_in_column_names_and_values():
    labels = np.zeros((40, 60), np.uint16)
    labels[5:17, 10:40] = 1
    plain = measure_labels(labels)
    assert "area_px2" in plain and "feret_max_px" in plain and "centroid_y_px" in plain
    nm = measure_labels(labels, spacing=2.5, unit="nm")
    assert {"area_nm2", "feret_max_nm", "feret_min_nm", "perimeter_nm", "equivalent_diameter_nm"} <= set(nm)
    assert not any(name.endswith(("_px", "_px2")) for name in nm if not name.startswith("bbox"))
    assert nm["area_nm2"][0] == pytest.approx(360 * 2.5**2)
    for length in ("perimeter", "feret_max", "feret_min", "equivalent_diameter"):
        assert nm[f"{length}_nm"][0] == pytest.approx(2.5 * plain[f"{length}_px"][0])
    for ratio in ("aspect_ratio", "circularity", "solidity", "convexity"):
        assert nm[ratio][0] == pytest.approx(plain[ratio][0])
    assert "area_um2" in measure_labels(labels, spacing=0.1, unit="µm")
    # rectangular pixels: 12 rows of 3 nm, 30 columns of 1 nm
    wide = measure_labels(labels, spacing=(3.0, 1.0), unit="nm")
    assert wide["area_nm2"][0] == pytest.approx(360 * 3)
    assert wide["feret_max_nm"][0] == pytest.approx(np.hypot(36, 30))
    assert wide["feret_min_nm"][0] == pytest.approx(30)
    assert wide["perimeter_nm"][0] == pytest.approx(2 * (11 * 3 + 29))
    with pytest.raises(ValueError, match="unit"):
        measure_labels(labels, spacing=2.0)
    with pytest.raises(ValueError, match="positive"):
        measure_labels(labels, spacing=0, unit="nm")
    with pytest.raises(ValueError, match="letters"):
        measure_labels(labels, spacing=1, unit="n m")


def random_objects(seed=0, shape=(300, 400), n=40):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for k in range(1, n + 1):
        rr, cc = ellipse(rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.uniform(1, 25),
                         rng.uniform(1, 25), shape=shape, rotation=rng.uniform(0, np.pi))
        labels[rr, cc] = 3 * k  # overlaps cut objects into concave and split pieces; sparse ids
    return labels, rng.random(shape).astype(np.float32)


def test_columns_agree_with_scikit_image_regionprops():
    labels, image = random_objects()
    m = measure_labels(labels, image, spacing=1.5, unit="nm")
    props = regionprops_table(labels, image, spacing=(1.5, 1.5),
                              properties=["label", "area", "perimeter", "centroid", "intensity_mean", "bbox"])
    np.testing.assert_array_equal(m["label"], props["label"])
    np.testing.assert_allclose(m["area_nm2"], props["area"])
    np.testing.assert_allclose(m["perimeter_nm"], props["perimeter"], atol=1e-9)
    np.testing.assert_allclose(m["centroid_y_nm"], props["centroid-0"])
    np.testing.assert_allclose(m["mean_intensity"], props["intensity_mean"], rtol=1e-6)
    np.testing.assert_array_equal(m["bbox_max_col_px"], props["bbox-3"])


def test_hull_measures_agree_with_brute_force():
    labels, _ = random_objects(seed=1)
    m = measure_labels(labels, spacing=(2.0, 0.5), unit="nm")
    for k, label in enumerate(m["label"]):
        rows, cols = np.nonzero(labels == label)
        corners = np.concatenate([np.column_stack([rows + a, cols + b]) for a in (0, 1) for b in (0, 1)]) * [2.0, 0.5]
        hull = ConvexHull(corners)
        vertices = corners[hull.vertices]
        assert m["solidity"][k] == pytest.approx(rows.size / (hull.volume / 1.0), rel=1e-9)
        distances = np.linalg.norm(vertices[:, None] - vertices[None], axis=-1)
        assert m["feret_max_nm"][k] == pytest.approx(distances.max())
        edges = np.roll(vertices, -1, axis=0) - vertices
        widths = [np.abs(np.cross(edge, vertices - start)).max() / np.linalg.norm(edge)
                  for edge, start in zip(edges, vertices)]
        assert m["feret_min_nm"][k] == pytest.approx(min(widths))


def test_tiny_and_empty_objects():
    labels = np.zeros((10, 10), np.uint64)
    labels[2, 2] = 2**40  # a huge id, one pixel
    labels[5, 1:8] = 7    # one row
    m = measure_labels(labels)
    assert list(m["label"]) == [7, 2**40]
    assert m["feret_min_px"][1] == 1 and m["feret_max_px"][1] == pytest.approx(np.sqrt(2))
    assert np.isnan(m["circularity"][1]) and np.isnan(m["convexity"][1])  # no perimeter
    assert m["feret_min_px"][0] == 1 and m["feret_max_px"][0] == pytest.approx(np.hypot(1, 7))
    assert measure_labels(np.zeros((4, 4), np.uint8))["label"].size == 0
    with pytest.raises(TypeError, match="integer"):
        measure_labels(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="negative"):
        measure_labels(-np.ones((4, 4), np.int16))


def test_csv_rows_leave_nan_cells_empty(tmp_path):
    labels = np.zeros((10, 10), np.uint8)
    labels[3, 3] = 1
    rows = measure_objects(labels, plane=2)
    path = write_measurements_csv(rows, tmp_path / "m.csv")
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert read[0]["circularity"] == "" and read[0]["plane"] == "2" and read[0]["area_px2"] == "1.0"


@pytest.fixture
def labels_folder(tmp_path):
    labels_dir, images_dir = tmp_path / "labels", tmp_path / "images"
    labels_dir.mkdir()
    images_dir.mkdir()
    for k in range(3):
        labels = np.zeros((60, 80), np.uint16)
        labels[5:15, 10:40] = 1
        rr, cc = disk((40, 40), 12)
        labels[rr, cc] = 2 + k
        write_tiff(labels_dir / f"img{k}_labels.tif", labels)
        write_tiff(images_dir / f"img{k}.tif", (labels * 10).astype(np.uint8))
    (labels_dir / "img0_overlay.png").write_bytes(b"not read")  # other outputs in the folder are ignored
    return labels_dir, images_dir


def test_cli_measure_folder(labels_folder, tmp_path, capsys):
    labels_dir, images_dir = labels_folder
    out = tmp_path / "m.csv"
    assert main(["measure", str(labels_dir), "--out", str(out), "--pixel-size", "2", "--unit", "nm",
                 "--images", str(images_dir)]) == 0
    assert "6 objects from 3 files" in capsys.readouterr().out
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["img0_labels.tif"] * 2 + ["img1_labels.tif"] * 2 + ["img2_labels.tif"] * 2
    assert rows[0]["area_nm2"] == str(300 * 4.0) and float(rows[0]["feret_min_nm"]) == 20
    assert float(rows[3]["mean_intensity"]) == 30
    # no replacing without --overwrite; with it, pixels
    before = out.read_text()
    assert main(["measure", str(labels_dir), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == before
    assert main(["measure", str(labels_dir / "img1_labels.tif"), "--out", str(out), "--overwrite"]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and "area_px2" in rows[0] and "mean_intensity" not in rows[0]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize("extra, message", [
    (["--pixel-size", "2"], "--unit"),
    (["--unit", "nm"], "--pixel-size"),
    (["--pixel-size", "-1", "--unit", "nm"], "positive"),
    (["--pixel-size", "1", "--unit", "n m"], "unknown unit"),
    (["--images", "missing"], "not a folder"),
])
def test_cli_measure_bad_options(labels_folder, tmp_path, capsys, extra, message):
    labels_dir, _ = labels_folder
    out = tmp_path / "bad.csv"
    assert main(["measure", str(labels_dir), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_cli_measure_bad_inputs(labels_folder, tmp_path, capsys):
    labels_dir, images_dir = labels_folder
    out = tmp_path / "m.csv"
    assert main(["measure", str(images_dir), "--out", str(out)]) == 2
    assert "no *_labels.tif" in capsys.readouterr().err
    assert main(["measure", str(labels_dir), "--out", str(out), "--images", str(labels_dir)]) == 2
    assert "no image named img0" in capsys.readouterr().err
    assert main(["measure", str(labels_dir), "--out", str(tmp_path / "m.txt")]) == 2
    assert not out.exists()
    # a file that is no label image fails alone: the others are measured and written, exit 1
    write_tiff(labels_dir / "img9_labels.tif", np.full((5, 5), 0.5, np.float32))
    assert main(["measure", str(labels_dir), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "img9_labels.tif" in captured.err and "6 objects from 3 files" in captured.out and out.exists()


def test_label_file_stack_plane_by_plane(tmp_path):
    from napari_synthseg.measure import measure_label_file

    stack = np.zeros((3, 20, 30), np.uint16)
    stack[0, 2:6, 3:7] = 1
    stack[2, 10:15, 10:20] = 2
    stack[2, 1:3, 1:3] = 3
    write_tiff(tmp_path / "s_labels.tif", stack)
    write_tiff(tmp_path / "s.tif", (stack * 7).astype(np.uint8))
    rows = measure_label_file(tmp_path / "s_labels.tif", tmp_path / "s.tif")
    assert [(r["file"], r["plane"], r["label"]) for r in rows] == [("s_labels.tif", 0, 1), ("s_labels.tif", 2, 2),
                                                                  ("s_labels.tif", 2, 3)]
    assert rows[1]["area_px2"] == 50 and rows[1]["mean_intensity"] == 14
    write_tiff(tmp_path / "rgb_labels.tif", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="colour image"):
        measure_label_file(tmp_path / "rgb_labels.tif")
    with pytest.raises(ValueError, match="shape"):
        measure_label_file(tmp_path / "s_labels.tif", tmp_path / "rgb_labels.tif")


def test_measure_and_evaluate_take_the_zarr_outputs_of_a_large_image(tmp_path, capsys):
    from napari_synthseg.largeimage import process_large

    labels = np.zeros((300, 260), np.uint16)
    for i, (cy, cx) in enumerate([(60, 60), (150, 200), (240, 90)], start=1):
        labels[disk((cy, cx), 25, shape=labels.shape)] = i
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    out_dir = tmp_path / "pred"
    process_large(image, out_dir / "scan_labels.zarr", lambda tile: _components(tile > 100), tile=128, overlap=32,
                  scheduler="sync", pixel_size=None)
    masks = tmp_path / "masks"
    masks.mkdir()
    write_tiff(masks / "scan.tif", labels)
    csv_path = tmp_path / "objects.csv"
    assert main(["measure", str(out_dir), "--out", str(csv_path)]) == 0  # the folder's *_labels.zarr
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and {row["file"] for row in rows} == {"scan_labels.zarr"}
    assert sorted(float(row["area_px2"]) for row in rows) == sorted(np.bincount(labels.ravel())[1:].astype(float))
    capsys.readouterr()
    assert main(["evaluate", str(out_dir), str(masks)]) == 0  # a folder holding only the zarr output
    assert "pixel IoU 1.000" in capsys.readouterr().out


def _components(mask):
    from scipy import ndimage

    return ndimage.label(mask)[0].astype(np.uint32)
