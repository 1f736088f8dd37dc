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


def test_recipe_inputs_cut_bank_and_backgrounds_from_the_network_images(tmp_path):
    from napari_synthseg.normalize import normalize_image
    from napari_synthseg.pipeline import network_images, recipe_inputs
    from napari_synthseg.sample_data import make_sample_scene

    bright, labels = make_sample_scene(seed=3, shape=(128, 160))
    dark = (255 - bright).astype(np.uint8)
    inputs = recipe_inputs(tmp_path / "bank", ["a.png", "b.png"], [bright, dark], [labels, labels], "anchored")
    # anchored: both images become bright objects on a dark background, in [0, 1]
    assert [np.array_equal(w, np.clip(normalize_image(im, "anchored"), 0, 1))
            for w, im in zip(inputs.network_images, [bright, dark])] == [True, True]
    inside, outside = labels > 0, labels == 0
    for work in inputs.network_images:
        assert work.min() >= 0 and work.max() <= 1 and work[inside].mean() > work[outside].mean() + 0.1
    # every object the bank takes from these labels (its minimum area and shape judgement), from both images
    from napari_synthseg.bank import ObjectBank

    n_objects = ObjectBank(tmp_path / "reference").add_from_labels(inputs.network_images[0], labels)
    assert n_objects > 10
    assert len(inputs.bank) == 2 * n_objects and inputs.bank.path == tmp_path / "bank"
    assert {o.meta["source"] for o in inputs.bank.objects()} == {"a.png", "b.png"}
    assert list(inputs.backgrounds.names) == ["a.png", "b.png"]
    # the banked objects carry the anchored gray levels, not the raw ones
    assert max(float(np.max(o.image)) for o in inputs.bank.objects()) <= 1.0

    plain = recipe_inputs(tmp_path / "plain", ["a.png"], [bright], [labels], "percentile")
    assert plain.network_images[0] is bright and network_images([bright], "percentile")[0] is bright
    assert max(float(np.max(o.image)) for o in plain.bank.objects()) > 1.0


def test_a_run_without_background_names_the_auto_segmentation_and_the_fix(tmp_path):
    from napari_synthseg.pipeline_inputs import recipe_inputs

    image = np.random.default_rng(0).integers(0, 255, (64, 80)).astype(np.uint8)
    everything = np.ones(image.shape, np.uint32)  # the auto-segmentation called every pixel object
    with pytest.raises(ValueError, match=r"the auto-segmentation called \(almost\) every pixel of the 1 image\(s\) "
                                         r"object \(80 x 64 px\).*--polarity bright\|dark"):
        recipe_inputs(tmp_path / "bank", ["a.png"], [image], [everything], "percentile")


def test_a_run_refuses_an_image_too_large_to_hold_whole_before_reading_it(tmp_path, monkeypatch, capsys):
    import tifffile

    from napari_synthseg.cli import main
    from napari_synthseg.largeimage import batch
    from napari_synthseg.pipeline_inputs import load_planes

    folder = tmp_path / "mosaics"
    folder.mkdir()
    tifffile.imwrite(folder / "mosaic.tif", np.zeros((300, 400), np.uint8))
    monkeypatch.setattr(batch, "DEFAULT_IN_MEMORY_PIXELS", 100_000)  # the limit, made small for the test
    read = []
    monkeypatch.setattr("napari_synthseg.pipeline_inputs.read_image", lambda path: read.append(path))
    with pytest.raises(ValueError, match=r"mosaic.tif has planes of 400 x 300 pixels \(0 Mpixel\); `synthseg run` "
                                         r"reads every image whole .*`synthseg predict MODEL mosaic.tif --out DIR`"):
        load_planes([folder / "mosaic.tif"])
    assert read == []  # refused from the TIFF's header, before reading it
    monkeypatch.undo()
    assert main(["run", str(folder), "--out", str(tmp_path / "out"), "--steps", "1", "--in-memory-pixels",
                 "100000"]) == 2
    assert "(at most 0.1 Mpixel a plane, --in-memory-pixels" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.keras").exists()
    assert main(["run", str(folder), "--out", str(tmp_path / "out"), "--steps", "1", "--in-memory-pixels", "0"]) == 2
    assert "--in-memory-pixels must be at least 1" in capsys.readouterr().err
