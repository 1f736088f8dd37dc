"""Files as users have them: odd image kinds, permissions, hand-edited banks (core, no model)."""

import json
import os
import stat
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_synthseg.autoseg import autosegment
from napari_synthseg.bank import BankWarning, ObjectBank
from napari_synthseg.image_io import ImageReadError, atomic_write, read_image, write_png
from napari_synthseg.largeimage import read_whole
from napari_synthseg.pipeline import as_label_image


def _blobs(shape=(96, 96)) -> np.ndarray:
    image = np.zeros(shape, np.uint8)
    image[20:40, 20:40] = 200
    image[60:80, 50:75] = 200
    return image


def test_one_bit_png_is_read_and_segmented(tmp_path):
    Image.fromarray(_blobs() > 0).save(tmp_path / "bw.png")
    image = read_image(tmp_path / "bw.png")
    assert image.dtype == np.uint8 and set(np.unique(image)) == {0, 255}
    assert autosegment(image).max() == 2  # the scale-bar search takes it too


def test_palette_and_gray_alpha_images_are_gray_or_rgb(tmp_path):
    Image.fromarray(_blobs()).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape[:2] == (96, 96)
    Image.fromarray(np.stack([_blobs(), np.full((96, 96), 255, np.uint8)], -1), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), _blobs())


def test_last_axis_of_two_is_channels_not_planes(tmp_path):
    data = np.stack([_blobs((256, 256)), np.full((256, 256), 255, np.uint8)], -1)
    tifffile.imwrite(tmp_path / "two.tif", data)
    assert read_image(tmp_path / "two.tif").shape == (256, 256)
    assert read_whole(tmp_path / "two.tif").shape == (256, 256)  # the lazy reader agrees


def test_many_channels_are_refused_in_one_line(tmp_path):
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(ImageReadError, match="5 colour channels") as info:
        read_image(tmp_path / "five.tif")
    assert "\n" not in str(info.value)


def test_nan_and_inf_pixels_are_ignored(tmp_path):
    image = _blobs().astype(np.float32)
    image[0, :10] = np.inf
    image[1, :10] = -np.inf
    image[2, :10] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", image)
    read = read_image(tmp_path / "f.tif")
    assert np.isfinite(read).all()
    assert autosegment(read, ignore_box=None).max() == 2
    tifffile.imwrite(tmp_path / "empty.tif", np.full((8, 8), np.nan, np.float32))
    with pytest.raises(ImageReadError, match="no finite pixel"):
        read_image(tmp_path / "empty.tif")


def test_non_image_file_is_one_line_without_install_advice(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "text.png")
    assert "\n" not in str(info.value) and "pip install" not in str(info.value)


def test_a_truncated_file_is_called_damaged_not_a_wrong_format(tmp_path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "a.jpg").read_bytes()[:3000])  # a copy that stopped early
    with pytest.raises(ImageReadError, match=r"cannot read .*cut\.jpg as an image \(.*\): the file may be damaged "
                                             r"or not what its name says; save it again"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_write_gives_the_umask_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
        write_png(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == mode


def _bank_with_one_object(path):
    bank = ObjectBank(path)
    image = _blobs()
    bank.add_from_labels(image, (image > 0).astype(np.uint8))
    return bank


def test_manifest_paths_stay_inside_the_bank(tmp_path):
    bank = _bank_with_one_object(tmp_path / "bank")
    record = json.loads((bank.path / "objects.jsonl").read_text().splitlines()[0])
    outside = dict(record, id="0" * 16, image="../secret.png", mask="/etc/passwd")
    with open(bank.path / "objects.jsonl", "a") as handle:
        handle.write(json.dumps(outside) + "\n")
    with pytest.warns(BankWarning, match="outside the bank"):
        reopened = ObjectBank(bank.path, create=False)
    assert len(reopened) == 1


def test_last_manifest_line_without_newline_is_read(tmp_path):
    bank = _bank_with_one_object(tmp_path / "bank")
    manifest = bank.path / "objects.jsonl"
    manifest.write_text(manifest.read_text().rstrip("\n"))  # as an editor may save it
    with warnings.catch_warnings():
        warnings.simplefilter("error", BankWarning)
        reopened = ObjectBank(bank.path, create=False)
        assert len(reopened) == 1
    # a later add keeps both lines whole
    image = np.full((20, 20), 90, np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    assert reopened.add_object(image, mask) is not None
    assert len(ObjectBank(bank.path, create=False)) == 2


def test_a_torn_last_line_is_reported(tmp_path):
    bank = _bank_with_one_object(tmp_path / "bank")
    with open(bank.path / "objects.jsonl", "a") as handle:
        handle.write('{"id": "abc", "ima')
    with pytest.warns(BankWarning, match="last line is incomplete"):
        assert len(ObjectBank(bank.path, create=False)) == 1


def test_reading_a_missing_bank_creates_nothing(tmp_path):
    from napari_synthseg.bank import NotABankError

    with pytest.raises(NotABankError, match="does not exist"):
        ObjectBank(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere; permissions cannot be tested")
def test_a_reader_without_write_access_reads_the_bank(tmp_path):
    bank = _bank_with_one_object(tmp_path / "bank")
    (bank.path / ".lock").unlink()
    os.chmod(bank.path, 0o555)
    try:
        assert len(ObjectBank(bank.path)) == 1 and len(ObjectBank(bank.path).objects()) == 1
        with pytest.raises(PermissionError, match="cannot write to the object bank"):
            ObjectBank(bank.path).add_object(np.ones((8, 8), np.uint8), np.ones((8, 8), np.uint8))
    finally:
        os.chmod(bank.path, 0o755)


def test_bank_reading_never_touches_the_lock(tmp_path, monkeypatch):
    from napari_synthseg import bank as bank_module

    _bank_with_one_object(tmp_path / "bank")

    def no_lock(path):
        raise AssertionError("reading took the writer's lock")

    monkeypatch.setattr(bank_module, "_exclusive", no_lock)
    reopened = ObjectBank(tmp_path / "bank")
    assert len(reopened.objects()) == 1


def test_label_images_as_saved():
    gt = np.zeros((16, 16), np.uint16)
    gt[2:6, 2:6] = 1
    gt[9:14, 9:14] = 2
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[gt == 1, :3] = (255, 0, 0)
    rgba[gt == 2, :3] = (0, 255, 0)
    rgba[..., 3] = 255
    labels = as_label_image(rgba)
    assert labels[0, 0] == 0 and len(np.unique(labels)) == 3
    np.testing.assert_array_equal(labels > 0, gt > 0)
    np.testing.assert_array_equal(as_label_image(gt.astype(np.float32)), gt)
    soft = np.where(gt > 0, 0.9, 0.1).astype(np.float32)
    np.testing.assert_array_equal(as_label_image(soft) > 0, gt > 0)


def test_lazy_reader_takes_one_and_two_channel_tiffs(tmp_path):
    from napari_synthseg.largeimage import open_image

    for channels in (1, 2):
        data = np.repeat(_blobs((128, 96))[..., None], channels, axis=-1)
        tifffile.imwrite(tmp_path / f"c{channels}.tif", data)
        source = open_image(tmp_path / f"c{channels}.tif")
        assert source.spatial_shape == (128, 96) and source.plane_shape == ()
        np.testing.assert_array_equal(source.read((), slice(0, 128), slice(0, 96)), _blobs((128, 96)))
