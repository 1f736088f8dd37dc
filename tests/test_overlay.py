import numpy as np
import pytest

from napari_synthseg.overlay import make_overlay


def test_overlay_outlines_objects_only():
    image = np.full((20, 20), 50, np.uint8)
    labels = np.zeros((20, 20), np.uint32)
    labels[5:10, 5:10] = 1
    rgb = make_overlay(image, labels, color=(255, 0, 0))
    assert rgb.shape == (20, 20, 3) and rgb.dtype == np.uint8
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0)
    assert red[5, 5] and red[9, 7] and not red[7, 7] and not red[0, 0]


def test_overlay_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        make_overlay(np.zeros((4, 4)), np.zeros((5, 5), np.uint32))
