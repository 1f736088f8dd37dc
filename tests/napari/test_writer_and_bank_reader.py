"""The Labels writers (TIFF, OME-Zarr) and the object-bank gallery reader, in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_synthseg.bank import ObjectBank
from napari_synthseg.largeimage import read_labels
from napari_synthseg.ome_zarr_io import zarr_pixel_size
from napari_synthseg.pixel_size import PixelSize, read_pixel_size


def _labels():
    data = np.zeros((40, 50), np.uint32)
    data[5:15, 10:30] = 1
    data[20:35, 5:20] = 7
    return data


@pytest.mark.parametrize("name", ["saved.tif", "saved.zarr"])
def test_save_labels_layer_with_its_pixel_size(make_napari_viewer, tmp_path, name):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(_labels(), name="seg", scale=(2.5, 2.5))
    layer.units = ("nm", "nm")
    written = viewer.layers.save(str(tmp_path / name), selected=False, plugin="napari-synthseg")
    assert written == [str(tmp_path / name)]
    assert np.array_equal(read_labels(tmp_path / name), _labels())
    size = read_pixel_size(tmp_path / name) if name.endswith(".tif") else zarr_pixel_size(tmp_path / name)
    assert size == PixelSize(2.5, "nm")
    # and it opens again with its scale
    (reopened,) = [lyr for lyr in viewer.open(str(tmp_path / name), plugin="napari-synthseg")
                   if lyr.__class__.__name__ == "Labels"]
    assert tuple(reopened.scale) == (2.5, 2.5)


def test_unscaled_labels_are_saved_without_a_size(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_labels(_labels(), name="seg")
    viewer.layers.save(str(tmp_path / "plain.tif"), selected=False, plugin="napari-synthseg")
    assert read_pixel_size(tmp_path / "plain.tif") is None and np.array_equal(read_labels(tmp_path / "plain.tif"),
                                                                              _labels())


def test_bank_folder_opens_as_a_gallery(make_napari_viewer, tmp_path):
    bank = ObjectBank(tmp_path / "bank")
    for k in range(3):
        image = np.full((12 + 2 * k, 14), 40, np.uint8)
        mask = np.zeros(image.shape, bool)
        mask[3:-3, 4:-4] = True
        image[mask] = 180
        bank.add_object(image, mask, source=f"scan{k}.dm4", bbox=[0, 12 + 2 * k, 0, 14], method="curated")
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "bank"), plugin="napari-synthseg")
    image_layer, labels_layer = layers
    assert image_layer.data.shape[0] == 3 and labels_layer.data.shape == image_layer.data.shape
    features = labels_layer.features
    assert list(features["index"]) == [1, 2, 3] and list(features["source"]) == ["scan0.dm4", "scan1.dm4",
                                                                                  "scan2.dm4"]
    assert list(features["id"]) == [obj.id for obj in bank.objects()]
    assert int(labels_layer.data[1].max()) == 2
