import numpy as np
import pytest

from napari_synthseg.image_io import (
    ImageReadError,
    atomic_write,
    gray_planes,
    is_rgb,
    iter_planes,
    list_images,
    read_image,
    to_gray,
    to_unit_float,
    unique_path,
    write_png,
    write_tiff,
)


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.tif", "c.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.tif", "b.png"]


def test_list_images_errors(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        list_images(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ImageReadError, match="not an image"):
        list_images(tmp_path / "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageReadError, match="holds no images"):
        list_images(empty)


def test_read_write_round_trip(tmp_path):
    labels = np.arange(12, dtype=np.uint32).reshape(3, 4)
    write_tiff(tmp_path / "l.tif", labels)
    np.testing.assert_array_equal(read_image(tmp_path / "l.tif"), labels)
    img16 = (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)
    write_png(tmp_path / "i.png", img16)
    back = read_image(tmp_path / "i.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img16)


def test_read_image_corrupt(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(bad)


def test_to_gray_rgb_and_passthrough():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., :] = 100
    gray = to_gray(rgb)
    assert gray.shape == (4, 5)
    np.testing.assert_allclose(gray, 100, atol=1e-3)
    stack = np.zeros((2, 4, 5), np.uint16)
    assert to_gray(stack) is stack
    assert is_rgb(np.zeros((4, 5, 4))) and not is_rgb(np.zeros((4, 5)))


def test_gray_planes_makes_colour_gray_and_names_what_cannot_be_segmented():
    rgb = np.full((4, 5, 3), 100, np.uint8)
    assert gray_planes(rgb).shape == (4, 5)
    assert gray_planes(rgb, rgb=False).shape == (4, 5, 3)  # four planes of 5 x 3
    assert gray_planes(np.ones((4, 5), bool)).dtype == np.float32
    with pytest.raises(TypeError, match="real-valued"):
        gray_planes(np.zeros((4, 5), complex))
    with pytest.raises(ValueError, match="rgb=True needs a last axis of 3 or 4"):
        gray_planes(np.zeros((4, 5)), rgb=True)
    with pytest.raises(ValueError, match="at least 2D"):
        gray_planes(np.zeros(5))
    with pytest.raises(ValueError, match="empty"):
        gray_planes(np.zeros((0, 5)))


def test_to_unit_float_scales_by_dtype():
    assert to_unit_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert to_unit_float(np.array([0, 65535], np.uint16)).tolist() == [0.0, 1.0]
    np.testing.assert_allclose(to_unit_float(np.array([-1.0, 3.0])), [0.0, 1.0])
    np.testing.assert_allclose(to_unit_float(np.array([0.2, 0.4])), [0.2, 0.4])


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_unique_path_and_planes(tmp_path):
    (tmp_path / "x.tif").write_text("1")
    assert unique_path(tmp_path / "x.tif").name == "x-1.tif"
    assert iter_planes((5, 6)) == [()]
    assert iter_planes((2, 3, 5, 6))[-1] == (1, 2)
