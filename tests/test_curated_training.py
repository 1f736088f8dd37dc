"""Training on curated real images: crops near known pixels, 4-channel targets (issue 17)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from napari_synthseg.bank import BankObject  # noqa: E402
from napari_synthseg.curation import Curation, pick_object, reject_object  # noqa: E402
from napari_synthseg.model.data import CuratedCrops, SyntheticScenes  # noqa: E402
from napari_synthseg.model.sidecar import read_sidecar  # noqa: E402
from napari_synthseg.model.training import train_model  # noqa: E402

TINY = dict(patch=64, batch_size=4, validation_scenes=4, base_filters=4, depth=2,
            scene_params={"n_objects": (4, 9)})


def make_objects(n=6, seed=0):
    """Bright disks with a darker rim, 9-21 px across."""
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n):
        r = int(rng.integers(4, 11))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        radius = np.hypot(yy, xx) / r
        image = np.where(radius > 0.75, 110, rng.uniform(170, 230)) + rng.normal(0, 6, radius.shape)
        objects.append(BankObject(id=f"disk{i}", image=image.clip(0, 255).astype(np.uint8), mask=radius <= 1))
    return objects


def curated_image(shape=(160, 200)):
    """A dark image with bright squares; the person picked one and rejected another."""
    image = np.full(shape, 30, np.uint8)
    labels = np.zeros(shape, np.int32)
    for i, (r, c) in enumerate([(20, 20), (20, 120), (110, 60), (110, 160)], start=1):
        labels[r:r + 16, c:c + 16] = i
        image[r:r + 16, c:c + 16] = 200
    cur = pick_object(Curation.empty(shape), labels, (115, 165))
    cur = reject_object(cur, labels, (25, 25))
    return image, labels, cur


def test_curated_crops_centre_near_known_pixels():
    image, _, cur = curated_image()
    crops = CuratedCrops([(image, cur)], 64)
    rng = np.random.default_rng(0)
    for _ in range(20):
        crop, labels, known = crops.crop(rng)
        assert crop.shape == labels.shape == known.shape == (64, 64)
        assert known.any()  # the centre is a known pixel moved by at most a quarter of the patch
        assert 0.0 <= crop.min() and crop.max() <= 1.0
        # only the picked object is an object: the other squares are unknown or background
        assert set(np.unique(labels)) <= {0, 1}
    with pytest.raises(ValueError, match="no known pixel"):
        CuratedCrops([(image, Curation.empty(image.shape))], 64)
    with pytest.raises(ValueError, match="same height"):
        CuratedCrops([(image[:50], cur)], 64)
    small = CuratedCrops([(image[:50, :60], (np.ones((50, 60), np.int32), np.ones((50, 60), bool)))], 64)
    assert small.crop(rng)[0].shape == (64, 64)


def test_curated_crops_show_picked_objects_as_often_as_rejected_background():
    # one small pick beside a rejected region 40 times its size: crops drawn by known-pixel count
    # would almost never hold the object, and the round would learn little but "background"
    shape = (400, 400)
    image = np.full(shape, 30, np.uint8)
    labels = np.zeros(shape, np.int32)
    labels[20:30, 20:30] = 1
    labels[200:400, 200:400] = 2
    image[labels > 0] = 200
    cur = pick_object(Curation.empty(shape), labels, (25, 25))
    cur = reject_object(cur, labels, (300, 300))
    crops = CuratedCrops([(image, cur)], 64)
    rng = np.random.default_rng(1)
    with_object = sum(crops.crop(rng)[1].any() for _ in range(200))
    assert 70 <= with_object <= 130


def test_curated_crops_draw_each_image_equally():
    # an image with a large rejected region has 20 times the known pixels of one with a single
    # pick; both were curated, so both teach the round as often
    large = np.random.default_rng(0).integers(100, 200, (300, 300)).astype(np.uint8)  # crops: few pixels at 0
    large_labels = np.zeros(large.shape, np.int32)
    large_labels[50:250, 50:250] = 1
    large_cur = reject_object(Curation.empty(large.shape), large_labels, (150, 150))
    small, _, _ = curated_image()
    small_labels = np.zeros(small.shape, np.int32)
    small_labels[20:36, 20:36] = 1
    small_cur = pick_object(Curation.empty(small.shape), small_labels, (25, 25))
    crops = CuratedCrops([(large, large_cur), (small, small_cur)], 64)
    rng = np.random.default_rng(2)
    # the small image is mostly dark background, which normalises to 0
    from_large = sum(float(np.mean(crops.crop(rng)[0] == 0.0)) < 0.2 for _ in range(200))
    assert 70 <= from_large <= 130


def test_batches_with_curated_images_carry_the_known_channel():
    image, _, cur = curated_image()
    objects = make_objects()
    only_curated = SyntheticScenes(objects, patch=64, batch_size=4, curated=[(image, cur)], curated_fraction=1.0,
                                   scene_params={"n_objects": (4, 9)})
    x, y = only_curated.batch(0)
    assert x.shape == (4, 64, 64, 1) and y.shape == (4, 64, 64, 4)
    assert 0 < y[..., 3].mean() < 1  # unknown pixels are marked
    no_curated = SyntheticScenes(objects, patch=64, batch_size=4, curated=[(image, cur)], curated_fraction=0.0,
                                 scene_params={"n_objects": (4, 9)})
    _, y_scenes = no_curated.batch(0)
    assert y_scenes.shape[-1] == 4 and (y_scenes[..., 3] == 1).all()  # scenes are known everywhere
    plain = SyntheticScenes(objects, patch=64, batch_size=4, scene_params={"n_objects": (4, 9)})
    _, y_plain = plain.batch(0)
    assert y_plain.shape[-1] == 3
    np.testing.assert_array_equal(y_plain, y_scenes[..., :3])  # same seeded scenes as without curation
    x_val, y_val = only_curated.validation_set(4)
    assert y_val.shape == (4, 64, 64, 4) and (y_val[..., 3] < 1).any()
    with pytest.raises(ValueError, match="curated_fraction"):
        SyntheticScenes(objects, curated=[(image, cur)], curated_fraction=2.0)


def test_train_model_with_curated_images_records_them(tmp_path):
    image, _, cur = curated_image()
    path = tmp_path / "net.keras"
    result = train_model(make_objects(), None, path, steps=4, steps_per_epoch=2, seed=0,
                         curated=[(image, cur)], curated_fraction=0.5, **TINY)
    assert path.is_file() and result.steps_done == 4
    training = read_sidecar(path)["training"]
    assert training["curated_images"] == 1 and training["curated_fraction"] == 0.5
    assert all(np.isfinite(h["val_loss"]) for h in result.history)
