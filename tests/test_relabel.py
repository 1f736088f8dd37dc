"""Label-id bookkeeping shared by the core (napari_synthseg.relabel) and the paths that use it."""

from pathlib import Path

import numpy as np

from napari_synthseg.autoseg import autosegment
from napari_synthseg.pipeline import Plane, per_file
from napari_synthseg.relabel import renumber_kept, stack_planes


def _two_objects() -> np.ndarray:
    labels = np.zeros((20, 20), np.uint32)
    labels[2:8, 2:8] = 1
    labels[10:18, 10:18] = 2
    return labels


def _ids(plane: np.ndarray) -> set[int]:
    return set(np.unique(plane[plane > 0]).tolist())


def test_renumber_kept_numbers_the_kept_ids_in_order_and_drops_the_rest():
    labels = np.array([[0, 3, 3], [5, 0, 7], [9, 9, 1]], dtype=np.int64)
    keep = np.zeros(10, dtype=bool)
    keep[[0, 3, 7, 9]] = True  # keep[0], the background, is ignored
    got = renumber_kept(labels, keep)
    assert got.dtype == np.uint32
    assert got.tolist() == [[0, 1, 1], [0, 0, 2], [3, 3, 0]]
    assert renumber_kept(labels, np.zeros(10, dtype=bool)).max() == 0


def test_stack_planes_continues_ids_after_the_largest_so_far():
    out = np.zeros((3, 20, 20), np.uint32)
    empty = np.zeros((20, 20), np.uint32)
    top = stack_planes(out, [((0,), _two_objects()), ((1,), empty), ((2,), _two_objects())])
    assert top == 4
    assert _ids(out[0]) == {1, 2} and _ids(out[1]) == set() and _ids(out[2]) == {3, 4}
    np.testing.assert_array_equal(out[2] > 0, _two_objects() > 0)  # shifted, background untouched
    # an offset (ids kept from an earlier run) is started after
    again = np.zeros((1, 20, 20), np.uint32)
    assert stack_planes(again, [((0,), _two_objects())], offset=10) == 12
    assert _ids(again[0]) == {11, 12}
    assert stack_planes(again, [((0,), empty)], offset=5) == 5


def test_autosegment_and_per_file_give_ids_that_never_collide_across_planes():
    image = np.zeros((2, 64, 64), np.uint8)
    image[:, 10:25, 10:25] = 200
    image[:, 35:55, 30:50] = 200
    labels = autosegment(image, method="otsu", clear_border=False, fill_holes=True)
    assert _ids(labels[0]) and _ids(labels[1])
    assert not _ids(labels[0]) & _ids(labels[1])

    planes = [Plane(Path("stack.tif"), (k,), image[k]) for k in range(2)]
    files = per_file(planes, {plane.key: _two_objects() for plane in planes})
    stack = files["stack"]
    assert stack.shape == (2, 20, 20) and stack.dtype == np.uint32
    assert _ids(stack[0]) == {1, 2} and _ids(stack[1]) == {3, 4}
