"""Pixel size: parsing, conversion, and reading it from every format a microscope writes (files made here)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from _em_files import write_dm, write_fei_tiff, write_mrc, write_ser, write_zeiss_tiff
from napari_synthseg.cli import main
from napari_synthseg.em_formats import MissingReaderError, read_em
from napari_synthseg.image_io import list_images, read_image, write_tiff
from napari_synthseg.pixel_size import PixelSize, PixelSizeError, parse_pixel_size, read_pixel_size


@pytest.fixture
def image():
    return ((np.arange(30 * 40).reshape(30, 40) * 7) % 1000).astype(np.uint16)


@pytest.mark.parametrize("text, value, unit", [
    ("2.5nm", 2.5, "nm"), ("2.5 nm", 2.5, "nm"), ("0.01um", 0.01, "µm"), ("3 Å", 3.0, "Å"), ("3A", 3.0, "Å"),
    ("1e-9m", 1e-9, "m"), ("0.5 micron", 0.5, "µm"),
])
def test_parse_pixel_size(text, value, unit):
    size = parse_pixel_size(text)
    assert size.value == pytest.approx(value) and size.unit == unit and size.spacing == (size.value, size.value)


@pytest.mark.parametrize("text, message", [
    ("2.5nmm", "unknown unit 'nmm'"), ("nm", "not a number"), ("-1nm", "positive"), ("0nm", "positive"),
    ("2.5", "no unit"), ("2.5 px", "unknown unit 'px'"),
])
def test_parse_pixel_size_errors(text, message):
    with pytest.raises(PixelSizeError, match=message) as info:
        parse_pixel_size(text)
    assert "\n" not in str(info.value)


def test_conversions():
    size = PixelSize(2.5, "nm")
    assert size.nm == 2.5 and size.to("Å").value == pytest.approx(25.0)
    assert size.to("µm").value == pytest.approx(0.0025) and size.to("um").unit == "µm"
    assert PixelSize(25, "Å").to_nm() == PixelSize(2.5, "nm")
    assert PixelSize(2.5e-9, "m").readable().unit == "nm"
    assert str(PixelSize(2.5, "nm")) == "2.5 nm"
    assert PixelSize(2, "nm", 3).spacing == (3.0, 2.0)


@pytest.mark.parametrize("version", [3, 4])
def test_dm_file(tmp_path, image, version):
    path = write_dm(tmp_path / f"a.dm{version}", image.astype(np.float32), 2.5, "nm", version)
    assert read_pixel_size(path) == PixelSize(2.5, "nm")
    assert np.array_equal(read_image(path), image)


def test_dm_file_in_micrometres(tmp_path, image):
    path = write_dm(tmp_path / "b.dm4", image, 0.004, "µm", 4)
    assert read_pixel_size(path).to_nm().value == pytest.approx(4.0)
    assert read_image(path).dtype == np.uint16


def test_mrc_file(tmp_path, image):
    path = write_mrc(tmp_path / "a.mrc", image.astype(np.float32), 25.0)
    assert read_pixel_size(path).to_nm().value == pytest.approx(2.5)
    assert np.array_equal(read_image(path), image)


def test_mrc_without_voxel_size(tmp_path, image):
    path = write_mrc(tmp_path / "a.mrc", image.astype(np.float32), 0.0)
    assert read_pixel_size(path) is None


def test_emd_file(tmp_path, image):
    from rsciio.emd import file_writer

    axes = [{"size": n, "scale": 2.5, "units": "nm", "name": name, "offset": 0.0, "navigate": False}
            for n, name in zip(image.shape, "yx")]
    file_writer(str(tmp_path / "a.emd"), {"data": image.astype(np.float32), "axes": axes,
                                          "metadata": {"General": {"title": "t"}, "Signal": {}},
                                          "original_metadata": {}})
    assert read_pixel_size(tmp_path / "a.emd") == PixelSize(2.5, "nm")
    assert np.array_equal(read_image(tmp_path / "a.emd"), image)


def test_ser_file(tmp_path, image):
    path = write_ser(tmp_path / "a.ser", image, 2.5e-9)
    assert read_pixel_size(path).value == pytest.approx(2.5) and read_pixel_size(path).unit == "nm"
    assert np.array_equal(read_image(path), image)


def test_a_file_of_another_format_is_one_line(tmp_path):
    (tmp_path / "a.ser").write_bytes(b"not a TIA file" * 10)
    with pytest.raises(ValueError, match="cannot read .*a.ser as SER") as info:
        read_image(tmp_path / "a.ser")
    assert "\n" not in str(info.value)


def test_em_file_errors(tmp_path):
    (tmp_path / "bad.dm3").write_bytes(b"\0\0\0\x09garbage")
    with pytest.raises(ValueError, match="cannot read .*bad.dm3 as DM3"):
        read_image(tmp_path / "bad.dm3")
    with pytest.raises(ValueError, match="does not exist"):
        read_em(tmp_path / "missing.mrc")


def test_missing_reader_names_the_extra(tmp_path, image, monkeypatch):
    import builtins

    path = write_dm(tmp_path / "a.dm3", image.astype(np.float32), 2.5, "nm")
    real_import = builtins.__import__

    def no_rsciio(name, *args, **kwargs):
        if name.startswith("rsciio"):
            raise ImportError("No module named 'rsciio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rsciio)
    expected = r"needs rosettasciio; install it with pip install 'napari-synthseg\[em\]'"
    with pytest.raises(MissingReaderError, match=expected):
        read_image(path)


def test_fei_tiff(tmp_path, image):
    size = read_pixel_size(write_fei_tiff(tmp_path / "fei.tif", image, 2.5e-9))
    assert size.unit == "nm" and size.value == pytest.approx(2.5)


def test_zeiss_tiff(tmp_path, image):
    assert read_pixel_size(write_zeiss_tiff(tmp_path / "zeiss.tif", image, 2.5, "nm")) == PixelSize(2.5, "nm")
    size = read_pixel_size(write_zeiss_tiff(tmp_path / "zeiss_um.tif", image, 0.0125, "µm"))
    assert size.to_nm().value == pytest.approx(12.5)


def test_imagej_tiff(tmp_path, image):
    tifffile.imwrite(tmp_path / "ij.tif", image, imagej=True, resolution=(1 / 2.5, 1 / 2.5), metadata={"unit": "nm"})
    assert read_pixel_size(tmp_path / "ij.tif").value == pytest.approx(2.5)
    tifffile.imwrite(tmp_path / "ij_um.tif", image, imagej=True, resolution=(400, 400), metadata={"unit": "micron"})
    assert read_pixel_size(tmp_path / "ij_um.tif").to_nm().value == pytest.approx(2.5)


def test_ome_tiff(tmp_path, image):
    tifffile.imwrite(tmp_path / "a.ome.tif", image, ome=True,
                     metadata={"PhysicalSizeX": 2.5, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 3.0, "PhysicalSizeYUnit": "nm"})
    assert read_pixel_size(tmp_path / "a.ome.tif") == PixelSize(2.5, "nm", 3.0)


def test_resolution_tags(tmp_path, image):
    tifffile.imwrite(tmp_path / "cm.tif", image, resolution=(4e6, 4e6), resolutionunit="CENTIMETER")
    assert read_pixel_size(tmp_path / "cm.tif").to_nm().value == pytest.approx(2.5)
    # screen and print resolutions are no microscope's pixel size
    tifffile.imwrite(tmp_path / "dpi.tif", image, resolution=(300, 300), resolutionunit="INCH")
    assert read_pixel_size(tmp_path / "dpi.tif") is None
    tifffile.imwrite(tmp_path / "plain.tif", image)
    assert read_pixel_size(tmp_path / "plain.tif") is None
    assert read_pixel_size(tmp_path / "plain.png") is None


def test_written_tiff_keeps_its_pixel_size(tmp_path, image):
    path = write_tiff(tmp_path / "labels.tif", image.astype(np.uint32), pixel_size=PixelSize(2.5, "nm"))
    assert read_pixel_size(path) == PixelSize(2.5, "nm")
    with tifffile.TiffFile(path) as tif:  # what Fiji and QuPath read: resolution in centimetres
        page = tif.pages.first
        assert page.tags["ResolutionUnit"].value == 3
        x = page.tags["XResolution"].value
        assert x[0] / x[1] == pytest.approx(4e6)
    assert read_pixel_size(write_tiff(tmp_path / "none.tif", image)) is None


def test_folders_list_em_files(tmp_path, image):
    write_dm(tmp_path / "a.dm4", image, 2.5, "nm", 4)
    write_mrc(tmp_path / "b.mrc", image.astype(np.float32), 25.0)
    assert [p.name for p in list_images(tmp_path)] == ["a.dm4", "b.mrc"]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_measure_reads_pixel_size_from_files(tmp_path, capsys):
    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 10:30] = 1  # 10 x 20 px
    write_tiff(tmp_path / "a_labels.tif", labels, pixel_size=PixelSize(2.5, "nm"))
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--out", str(tmp_path / "m.csv")]) == 0
    row = _rows(tmp_path / "m.csv")[0]
    assert float(row["area_nm2"]) == pytest.approx(200 * 2.5 ** 2) and float(row["feret_min_nm"]) == pytest.approx(25)
    # --pixel-size overrides the file's size, with its unit in the option
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--out", str(tmp_path / "o.csv"),
                 "--pixel-size", "0.01um"]) == 0
    assert float(_rows(tmp_path / "o.csv")[0]["feret_min_um"]) == pytest.approx(0.1)
    # a labels file without a size takes its image's (an FEI TIFF here)
    write_tiff(tmp_path / "b_labels.tif", labels)
    images = tmp_path / "images"
    images.mkdir()
    write_fei_tiff(images / "b.tif", labels.astype(np.uint8), 2e-9)
    assert main(["measure", str(tmp_path / "b_labels.tif"), "--out", str(tmp_path / "b.csv"),
                 "--images", str(images)]) == 0
    assert float(_rows(tmp_path / "b.csv")[0]["area_nm2"]) == pytest.approx(200 * 4)


@pytest.mark.parametrize("size, message", [("2.5nmm", "unknown unit 'nmm'"), ("2.5", "no unit"), ("x", "not a number")])
def test_measure_bad_pixel_size(tmp_path, capsys, size, message):
    labels = np.zeros((20, 20), np.uint16)
    labels[5:10, 5:10] = 1
    write_tiff(tmp_path / "a_labels.tif", labels)
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--out", str(tmp_path / "m.csv"),
                 "--pixel-size", size]) == 2
    err = capsys.readouterr().err
    assert "--pixel-size" in err and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.csv").exists()


# --- pixel size out: every labels output carries its image's pixel size ---------------------------------

def _blobs():
    from skimage.draw import disk

    image = np.full((96, 128), 40, np.uint8)
    for k, (r, c) in enumerate([(20, 20), (30, 70), (60, 40), (70, 100), (20, 110)]):
        rr, cc = disk((r, c), 8 + k % 3, shape=image.shape)
        image[rr, cc] = 200
    return image


def test_autoseg_labels_carry_the_images_pixel_size(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    write_fei_tiff(images / "fei.tif", _blobs(), 2.5e-9)
    write_dm(images / "gatan.dm4", _blobs().astype(np.float32), 0.004, "µm", 4)
    out = tmp_path / "labels"
    assert main(["autoseg", str(images), "--bank", str(tmp_path / "bank"), "--labels-out", str(out),
                 "--min-area", "10"]) == 0
    assert read_pixel_size(out / "fei_labels.tif").value == pytest.approx(2.5)
    size = read_pixel_size(out / "gatan_labels.tif")
    assert size.unit == "µm" and size.value == pytest.approx(0.004)
    assert read_image(out / "fei_labels.tif").max() == 5
    # --pixel-size overrides every file's own
    over = tmp_path / "over"
    assert main(["autoseg", str(images), "--bank", str(tmp_path / "bank2"), "--labels-out", str(over),
                 "--min-area", "10", "--pixel-size", "3nm"]) == 0
    assert read_pixel_size(over / "gatan_labels.tif") == PixelSize(3, "nm")


def test_tiled_outputs_carry_the_pixel_size(tmp_path):
    from napari_synthseg.largeimage import process_large, read_labels

    write_fei_tiff(tmp_path / "fei.tif", _blobs(), 2.5e-9)

    def threshold(tile):
        from skimage.measure import label

        return label(tile > 100).astype(np.uint32)

    process_large(tmp_path / "fei.tif", tmp_path / "out.tif", threshold, tile=64, overlap=16)
    assert read_pixel_size(tmp_path / "out.tif").value == pytest.approx(2.5)
    assert read_labels(tmp_path / "out.tif").max() == 5
    process_large(_blobs(), tmp_path / "given.tif", threshold, tile=64, overlap=16, pixel_size=PixelSize(1, "nm"))
    assert read_pixel_size(tmp_path / "given.tif") == PixelSize(1, "nm")


def test_run_outputs_carry_the_pixel_size(tmp_path):
    from napari_synthseg.pipeline import Plane, _write_outputs

    write_zeiss_tiff(tmp_path / "z.tif", _blobs(), 2.5, "nm")
    labels = (_blobs() > 100).astype(np.uint32)
    planes = [Plane(tmp_path / "z.tif", (), _blobs())]
    out = tmp_path / "out"
    out.mkdir()
    _write_outputs(out, planes, {"z": labels}, lambda *a: None)
    assert read_pixel_size(out / "z_labels.tif") == PixelSize(2.5, "nm")
    _write_outputs(out, planes, {"z": labels}, lambda *a: None, PixelSize(4, "Å"))
    assert read_pixel_size(out / "z_labels.tif") == PixelSize(4, "Å")


@pytest.mark.parametrize("command", ["predict", "run", "autoseg"])
def test_bad_pixel_size_is_one_line_before_any_work(tmp_path, capsys, command):
    image = str(write_fei_tiff(tmp_path / "a.tif", _blobs(), 2.5e-9))
    out = str(tmp_path / "out")
    argv = {"predict": ["predict", "model.keras", image, "--out", out],
            "run": ["run", image, "--out", out, "--steps", "1"],
            "autoseg": ["autoseg", image, "--bank", str(tmp_path / "b"), "--labels-out", out]}[command]
    assert main([*argv, "--pixel-size", "2.5 furlong"]) == 2
    err = capsys.readouterr().err
    assert "unknown unit 'furlong'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "b").exists()


def test_measure_writes_one_unit_for_files_in_different_units(tmp_path, capsys):
    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 10:30] = 1
    write_tiff(tmp_path / "a_labels.tif", labels, pixel_size=PixelSize(2.5, "nm"))
    write_tiff(tmp_path / "b_labels.tif", labels, pixel_size=PixelSize(0.005, "µm"))
    write_tiff(tmp_path / "c_labels.tif", labels)
    assert main(["measure", str(tmp_path), "--out", str(tmp_path / "m.csv")]) == 0
    rows = _rows(tmp_path / "m.csv")
    assert [float(r["feret_min_nm"]) for r in rows[:2]] == pytest.approx([25.0, 50.0])
    assert float(rows[2]["feret_min_px"]) == 10
    assert "1 file(s) carry no pixel size (c_labels.tif" in capsys.readouterr().err


def test_pixel_size_takes_numpy_numbers_and_refuses_others():
    assert PixelSize(np.float32(2.5), "nm").value == 2.5
    for bad in ("2.5", None, True, float("nan"), -1.0):
        with pytest.raises(PixelSizeError):
            PixelSize(bad, "nm")
    with pytest.raises(PixelSizeError, match="unknown length unit"):
        PixelSize(1.0, "px")
