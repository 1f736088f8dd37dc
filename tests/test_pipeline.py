import numpy as np
import pytest

from napari_synthseg.pipeline import confident_objects, object_scale, zoom_image, zoom_labels


def _disks(shape, radius, n=4):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.uint32)
    for i in range(n):
        cy, cx = (i // 2 + 1) * shape[0] // 3, (i % 2 + 1) * shape[1] // 3
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i + 1
    return labels


def test_object_scale_shrinks_big_objects_only():
    big = _disks((600, 600), 80)  # diameter ~160 px
    assert object_scale(big, target_diameter=40) == pytest.approx(40 / 160, rel=0.05)
    small = _disks((200, 200), 10)
    assert object_scale(small, target_diameter=40) == 1.0  # never enlarged
    assert object_scale(np.zeros((10, 10), np.uint32)) == 1.0
    assert object_scale(_disks((2000, 2000), 400), target_diameter=40) == 0.25  # clipped


def test_zoom_round_trip_keeps_objects():
    labels = _disks((300, 400), 40)
    image = (labels > 0).astype(np.float32) * 100
    small = zoom_image(image, 0.5)
    assert small.shape == (150, 200) and small.dtype == np.float32
    small_labels = zoom_labels(labels, small.shape)
    assert set(np.unique(small_labels)) == set(np.unique(labels))
    back = zoom_labels(small_labels, labels.shape)
    assert back.shape == labels.shape
    assert np.mean(back == labels) > 0.98


def test_confident_objects_rejects_border_and_doubtful():
    labels = np.zeros((50, 50), np.uint32)
    labels[10:20, 10:20] = 1  # confident, inside
    labels[30:40, 10:20] = 2  # doubtful
    labels[0:10, 30:40] = 3  # touches the border
    prob = np.where(labels == 2, 0.6, 0.95).astype(np.float32)
    assert confident_objects(labels, prob).tolist() == [1]
