"""The napari readers: EM files and SEM TIFFs open with their pixel size as scale and units (files made here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_em_files.py

from _em_files import write_dm, write_fei_tiff, write_mrc, write_zeiss_tiff  # noqa: E402
from napari_synthseg._napari.scaled_reader import get_reader  # noqa: E402
from napari_synthseg.image_io import write_tiff  # noqa: E402
from napari_synthseg.pixel_size import PixelSize  # noqa: E402

IMAGE = ((np.arange(30 * 40).reshape(30, 40) * 7) % 1000).astype(np.uint16)


def _units(layer):
    return tuple(str(u) for u in layer.units[-2:]) if hasattr(layer, "units") else None


@pytest.mark.parametrize("name, write, nm", [
    ("a.dm4", lambda p: write_dm(p, IMAGE.astype(np.float32), 2.5, "nm", 4), 2.5),
    ("a.dm3", lambda p: write_dm(p, IMAGE, 0.004, "µm", 3), 4.0),
    ("a.mrc", lambda p: write_mrc(p, IMAGE.astype(np.float32), 25.0), 2.5),
    ("fei.tif", lambda p: write_fei_tiff(p, IMAGE, 2.5e-9), 2.5),
    ("zeiss.tif", lambda p: write_zeiss_tiff(p, IMAGE, 2.5, "nm"), 2.5),
])
def test_em_files_open_with_their_scale(make_napari_viewer, tmp_path, name, write, nm):
    path = write(tmp_path / name)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-synthseg")
    assert len(layers) == 1 and layers[0].data.shape == IMAGE.shape
    layer = layers[0]
    unit = _units(layer)
    factor = {"nanometer": 1.0, "micrometer": 1000.0, "angstrom": 0.1}[unit[0]]
    assert layer.scale[-1] * factor == pytest.approx(nm) and layer.scale[-2] * factor == pytest.approx(nm)
    assert np.array_equal(np.asarray(layer.data), IMAGE)


def test_plain_tiffs_open_as_napari_opens_them(make_napari_viewer, tmp_path):
    rgb = np.dstack([IMAGE % 256] * 3).astype(np.uint8)
    tifffile.imwrite(tmp_path / "plain.tif", IMAGE)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    assert get_reader(str(tmp_path / "other.png")) is None
    viewer = make_napari_viewer()
    (plain,) = viewer.open(str(tmp_path / "plain.tif"), plugin="napari-synthseg")
    (colour,) = viewer.open(str(tmp_path / "rgb.tif"), plugin="napari-synthseg")
    (builtin,) = viewer.open(str(tmp_path / "plain.tif"), plugin="napari")
    assert np.array_equal(plain.data, builtin.data) and tuple(plain.scale) == tuple(builtin.scale) == (1.0, 1.0)
    assert colour.rgb and np.array_equal(colour.data, rgb)


def test_labels_tiff_opens_as_labels_with_scale(make_napari_viewer, tmp_path):
    labels = (IMAGE > 500).astype(np.uint32)
    path = write_tiff(tmp_path / "x_labels.tif", labels, pixel_size=PixelSize(2.5, "nm"))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-synthseg")
    assert layer.__class__.__name__ == "Labels" and tuple(layer.scale) == (2.5, 2.5)
    assert _units(layer) == ("nanometer", "nanometer")


def test_ome_zarr_output_opens_in_napari_ome_zarr(make_napari_viewer, tmp_path):
    pytest.importorskip("napari_ome_zarr", reason="napari-ome-zarr is in the testing extra")
    from napari_synthseg.largeimage import process_large

    def threshold(tile):
        from skimage.measure import label

        return label(tile > 500).astype(np.uint32)

    process_large(IMAGE, tmp_path / "a_labels.zarr", threshold, tile=16, overlap=8, pixel_size=PixelSize(2.5, "nm"))
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "a_labels.zarr"), plugin="napari-ome-zarr")
    kinds = {layer.__class__.__name__: layer for layer in layers}
    assert set(kinds) == {"Image", "Labels"}
    labels = kinds["Labels"]
    assert tuple(labels.scale) == (2.5, 2.5) and _units(labels) == ("nanometer", "nanometer")
    level0 = labels.data[0] if labels.multiscale else labels.data
    assert np.array_equal(np.asarray(level0) > 0, IMAGE > 500)
    # and through this package's own reader: the image and its labels with the same scale
    ours = viewer.open(str(tmp_path / "a_labels.zarr"), plugin="napari-synthseg")
    assert [layer.__class__.__name__ for layer in ours] == ["Image", "Labels"]
    assert all(tuple(layer.scale) == (2.5, 2.5) for layer in ours)
