"""An object bank as a gallery: frames of one size, masks as labels, provenance per row."""

from __future__ import annotations

import numpy as np
import pytest

from napari_synthseg.bank import NotABankError, ObjectBank
from napari_synthseg.bank_gallery import bank_gallery


def _bank(tmp_path, n=3):
    bank = ObjectBank(tmp_path / "bank")
    for k in range(n):
        h, w = 10 + 4 * k, 12 + 2 * k
        image = np.full((h, w), 30, np.uint8)
        mask = np.zeros((h, w), bool)
        mask[2:-2, 3:-3] = True
        image[mask] = 200 - 10 * k
        bank.add_object(image, mask, source=f"img{k}.tif", bbox=[k, k + h, 0, w], method="autoseg otsu")
    return bank


def test_gallery_frames_masks_and_provenance(tmp_path):
    bank = _bank(tmp_path)
    gallery = bank_gallery(bank.path)
    assert gallery.images.shape == gallery.labels.shape == (3, 18 + 4, 16 + 4) and gallery.total == 3
    assert gallery.images.dtype == np.uint8
    for k, obj in enumerate(bank.objects()):
        frame_labels = gallery.labels[k]
        assert set(np.unique(frame_labels)) == {0, k + 1}
        assert (frame_labels == k + 1).sum() == obj.mask.sum()
        assert np.all(gallery.images[k][frame_labels == k + 1] == obj.image[obj.mask][0])
        assert np.median(gallery.images[k]) == np.median(obj.image)  # padded with the crop's own median
    features = gallery.features
    assert features["index"] == [1, 2, 3] and features["source"] == ["img0.tif", "img1.tif", "img2.tif"]
    assert features["id"] == [obj.id for obj in bank.objects()] and features["bbox"][1] == "1,15,0,14"
    assert features["method"] == ["autoseg otsu"] * 3


def test_gallery_is_cut_at_max_objects(tmp_path):
    gallery = bank_gallery(_bank(tmp_path).path, max_objects=2)
    assert gallery.images.shape[0] == 2 and gallery.total == 3


def test_gallery_errors(tmp_path):
    with pytest.raises(NotABankError):
        bank_gallery(tmp_path)
    ObjectBank(tmp_path / "empty")
    with pytest.raises(ValueError, match="holds no objects yet") as info:
        bank_gallery(tmp_path / "empty")
    assert "\n" not in str(info.value)
