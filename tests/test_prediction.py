import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from napari_synthseg.model.network import build_unet  # noqa: E402
from napari_synthseg.model.params import PredictionParams  # noqa: E402
from napari_synthseg.model.prediction import (  # noqa: E402
    SYMMETRIES,
    ModelLoadError,
    SegmentationModel,
    load_model,
    predict,
    predict_probabilities,
)
from napari_synthseg.model.sidecar import sidecar_path, write_sidecar  # noqa: E402
from napari_synthseg.zoom import zoom_image, zoomed_shape  # noqa: E402


def _save(model, path, network):
    model.save(path)
    write_sidecar(path, {"network": network})
    return path


@pytest.fixture(scope="module")
def unet_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("models") / "unet.keras"
    return _save(build_unet(base_filters=4, depth=2), path, {"base_filters": 4, "depth": 2})


@pytest.fixture(scope="module")
def unet(unet_path):
    return load_model(unet_path)


@pytest.fixture(scope="module")
def threshold_model(tmp_path_factory):
    """A 1x1 'network' whose foreground is the normalised intensity thresholded at 0.5."""
    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(3, 1, activation="sigmoid")
    outputs = layer(inputs)
    model = keras.Model(inputs, outputs)
    layer.set_weights([np.array([[[[20.0, 20.0, 0.0]]]], np.float32), np.array([-10.0, -10.0, -10.0], np.float32)])
    path = tmp_path_factory.mktemp("models") / "threshold.keras"
    return load_model(_save(model, path, {"depth": 0}))


def _disks(shape, centres, radius, value=200, background=10, dtype=np.uint8):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.full(shape, background, dtype)
    for cy, cx in centres:
        image[np.hypot(yy - cy, xx - cx) < radius] = value
    return image


def test_load_model_reads_model_and_sidecar(unet, unet_path):
    assert isinstance(unet, SegmentationModel)
    assert unet.path == unet_path
    assert unet.info["channels"] == ["foreground", "distance", "boundary"]
    assert unet.pad_multiple == 4
    assert unet.percentiles == (1.0, 99.8)


def test_load_model_names_a_folder_and_an_unreadable_file(tmp_path, unet_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="is a folder, not a model file"):
        load_model(tmp_path)
    from napari_synthseg.model import sidecar

    # tests run as root, who may read anything: deny through os.access as a user would be denied
    monkeypatch.setattr(sidecar.os, "access", lambda path, mode: Path(path) != Path(unet_path))
    with pytest.raises(ModelLoadError, match="cannot read model file .*permission denied.*chmod a"):
        load_model(unet_path)


def test_load_model_errors_name_the_problem(tmp_path, unet_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.keras")

    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"\x00garbage, not a keras archive" * 10)
    write_sidecar(corrupt, {})
    with pytest.raises(ModelLoadError, match="not a Keras model archive"):
        load_model(corrupt)

    wrong_zip = tmp_path / "wrong.keras"
    with zipfile.ZipFile(wrong_zip, "w") as archive:
        archive.writestr("hello.txt", "not a model")
    write_sidecar(wrong_zip, {})
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_model(wrong_zip)

    no_sidecar = tmp_path / "no_sidecar.keras"
    no_sidecar.write_bytes(unet_path.read_bytes())
    with pytest.raises(ModelLoadError, match="sidecar"):
        load_model(no_sidecar)

    sidecar_path(no_sidecar).write_text('{"format": "something-else/3"}')
    with pytest.raises(ModelLoadError, match="not a napari-synthseg model sidecar"):
        load_model(no_sidecar)

    write_sidecar(no_sidecar, {"channels": ["foreground", "boundary"]})
    with pytest.raises(ModelLoadError, match="channels"):
        load_model(no_sidecar)

    inputs = keras.Input((None, None, 1))
    two_outputs = tmp_path / "two_outputs.keras"
    _save(keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)), two_outputs, {"depth": 0})
    with pytest.raises(ModelLoadError, match="gives 2 output channels"):
        load_model(two_outputs)

    with pytest.raises(TypeError, match="model must be"):
        predict(42, np.zeros((8, 8)))


@pytest.fixture(scope="module")
def small_field_model(tmp_path_factory):
    """A depth-1 U-Net (receptive-field radius ~10 px) with weights that vary its output strongly."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    net = build_unet(base_filters=4, depth=1)
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, *rest = layer.get_weights()
            scale = np.sqrt(2.0 / np.prod(kernel.shape[:3])) * (4.0 if layer.name == "probabilities" else 1.0)
            layer.set_weights([rng.normal(0.0, scale, kernel.shape).astype(np.float32), *rest])
    path = tmp_path_factory.mktemp("models") / "small_field.keras"
    return load_model(_save(net, path, {"base_filters": 4, "depth": 1}))


def test_tiled_and_untiled_prediction_agree(small_field_model):
    image = np.random.default_rng(1).random((97, 131)).astype(np.float32)
    whole = predict_probabilities(small_field_model, image, tile=512, overlap=32, precision="float32")  # one tile
    assert whole.std(axis=(0, 1)).min() > 0.05  # the comparison below is not between constants
    done = []
    tiled = predict_probabilities(small_field_model, image, tile=64, overlap=32, batch_size=3, precision="float32",
                                  on_batch=done.append)
    assert sum(done) >= 9 and max(done) <= 3  # really tiled, in batches
    assert whole.shape == tiled.shape == (97, 131, 3) and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=2e-3)
    # the blending is what makes them agree: abutting tiles leave seams
    seams = predict_probabilities(small_field_model, image, tile=64, overlap=0, precision="float32")
    assert np.abs(seams - whole).max() > 0.1


@pytest.mark.parametrize("shape,rgb", [((97, 131), False), ((2, 3, 40, 45), False), ((53, 61, 3), True),
                                       ((5, 7), False)])
def test_predict_output_shape_equals_input_spatial_shape(unet, shape, rgb):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65535, size=shape).astype(np.uint16)
    labels, prob = predict(unet, image, tile=32, overlap=8, return_probabilities=True, min_area=0)
    spatial = shape[:-1] if rgb else shape
    assert labels.shape == spatial and labels.dtype == np.uint32
    assert prob.shape == spatial + (3,) and prob.dtype == np.float32
    assert prob.min() >= 0 and prob.max() <= 1


def test_predict_finds_objects_in_place_and_ids_are_unique_across_a_stack(threshold_model, tmp_path):
    plane_a = _disks((70, 90), [(20, 20), (45, 65)], 9)
    plane_b = _disks((70, 90), [(35, 40)], 12)
    stack = np.stack([plane_a, plane_b])
    calls = []
    labels = predict(threshold_model, stack, tile=32, overlap=8, batch_size=2,
                     progress=lambda done, total: calls.append((done, total)))
    assert labels.shape == stack.shape
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    np.testing.assert_array_equal(labels > 0, stack > 100)
    assert set(np.unique(labels[0])) == {0, 1, 2} and set(np.unique(labels[1])) == {0, 3}
    total = calls[-1][1]
    assert calls[-1][0] == total and total > 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    # a path works as the model, RGB input too; min_area drops the small disk
    rgb = np.repeat(_disks((40, 50), [(20, 15)], 10)[..., None], 3, axis=-1)
    rgb[2:5, 40:43] = 200
    labels = predict(threshold_model.path, rgb, min_area=30)
    assert labels.shape == (40, 50) and labels.max() == 1 and labels[20, 15] == 1
    # the default overlap shrinks to fit small tiles
    default_tiling = predict(threshold_model, stack[0])
    assert default_tiling.max() == 2
    np.testing.assert_array_equal(predict(threshold_model, stack[0], tile=32), default_tiling)


def test_augment_averages_the_network_over_flips_and_transposes(small_field_model):
    image = np.random.default_rng(3).random((45, 70)).astype(np.float32)
    kw = dict(tile=64, overlap=16, precision="float32")
    plain = predict_probabilities(small_field_model, image, **kw)
    averaged = predict_probabilities(small_field_model, image, augment=True, **kw)
    assert averaged.shape == plain.shape == (45, 70, 3) and averaged.dtype == np.float32
    # the network alone is not symmetric, so averaging changes its answer ...
    assert np.abs(plain.transpose(1, 0, 2) - predict_probabilities(small_field_model, image.T, **kw)).max() > 0.05
    assert np.abs(averaged - plain).max() > 0.02
    # ... into one that is: a flipped or transposed image gets the flipped or transposed answer
    for flipped, undo in ((image[::-1], lambda p: p[::-1]), (image[:, ::-1], lambda p: p[:, ::-1]),
                          (image.T, lambda p: p.transpose(1, 0, 2))):
        again = predict_probabilities(small_field_model, np.ascontiguousarray(flipped), augment=True, **kw)
        np.testing.assert_allclose(undo(again), averaged, atol=1e-5)
    # and it is the mean of the eight views, each mapped back
    views = []
    for transpose, flip_y, flip_x in SYMMETRIES:
        view = image.T if transpose else image
        view = view[::-1 if flip_y else 1, ::-1 if flip_x else 1]
        p = predict_probabilities(small_field_model, np.ascontiguousarray(view), **kw)
        p = p[::-1 if flip_y else 1, ::-1 if flip_x else 1]
        views.append(p.transpose(1, 0, 2) if transpose else p)
    np.testing.assert_allclose(np.mean(views, axis=0), averaged, atol=1e-5)


def test_large_image_segmenter_passes_augment_on(small_field_model):
    from napari_synthseg.largeimage import ModelSegmenter

    image = np.random.default_rng(4).random((40, 56)).astype(np.float32)
    kw = dict(tile=64, overlap=16, value_range=(0.0, 1.0))
    segmenter = ModelSegmenter(model_path=str(small_field_model.path), tile=64, overlap=16, augment=True)
    np.testing.assert_allclose(segmenter.probabilities(image, (0.0, 1.0)),
                               predict_probabilities(small_field_model, image, augment=True, **kw), atol=1e-4)
    plain = predict_probabilities(small_field_model, image, **kw)
    assert np.abs(segmenter.probabilities(image, (0.0, 1.0)) - plain).max() > 0.02


def test_augmented_predict_reports_every_view_in_its_progress(threshold_model):
    image = _disks((70, 90), [(20, 20), (45, 65)], 9)
    calls, augmented_calls = [], []
    plain = predict(threshold_model, image, tile=32, overlap=8, progress=lambda d, t: calls.append((d, t)))
    augmented = predict(threshold_model, image, tile=32, overlap=8, augment=True,
                        progress=lambda d, t: augmented_calls.append((d, t)))
    assert augmented_calls[-1][0] == augmented_calls[-1][1] == 8 * calls[-1][1]
    np.testing.assert_array_equal(augmented > 0, plain > 0)  # a 1x1 network is symmetric already


def test_bfloat16_inference_is_close_to_float32(small_field_model):
    image = np.random.default_rng(2).random((64, 80)).astype(np.float32)
    exact = predict_probabilities(small_field_model, image, tile=64, overlap=16, precision="float32")
    fast = predict_probabilities(small_field_model, image, tile=64, overlap=16, precision="bfloat16")
    assert fast.dtype == np.float32
    assert np.abs(fast - exact).max() < 0.05 and np.abs(fast - exact).mean() < 0.005
    assert small_field_model.compute_model("bfloat16") is small_field_model.compute_model("bfloat16")
    assert small_field_model.compute_model("float32") is small_field_model.keras_model
    with pytest.raises(ValueError, match="precision"):
        predict(small_field_model, image, precision="float8")


def test_predict_fills_outlined_objects_on_request(threshold_model):
    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 32, xx - 32)
    outline = np.where((radius > 14) & (radius < 18), 200, 10).astype(np.uint8)
    assert predict(threshold_model, outline, min_area=0, fill_holes=False)[32, 32] == 0
    filled = predict(threshold_model, outline, min_area=0, fill_holes=False, fill_contours=True)
    assert filled[32, 32] == filled[32, 16] == 1 and filled[0, 0] == 0


def test_value_range_replaces_the_plane_percentiles(threshold_model):
    image = _disks((40, 40), [(20, 20)], 10)
    own = predict_probabilities(threshold_model, image)
    assert own[20, 20, 0] > 0.99
    np.testing.assert_allclose(predict_probabilities(threshold_model, image, value_range=(10, 200)), own, atol=1e-3)
    dimmer = predict_probabilities(threshold_model, image, value_range=(0, 1000))  # the disk is at 0.2 of it
    assert dimmer[20, 20, 0] < 0.01


def test_predict_rejects_bad_arguments(threshold_model):
    with pytest.raises(ValueError, match="overlap"):
        predict(threshold_model, np.zeros((8, 8)), tile=16, overlap=16)
    with pytest.raises(ValueError, match="batch_size"):
        predict(threshold_model, np.zeros((8, 8)), batch_size=0)
    with pytest.raises(TypeError, match="real-valued"):
        predict(threshold_model, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="image is empty"):
        predict(threshold_model, np.zeros((0, 8)))
    holes = _disks((40, 40), [(20, 20)], 10).astype(np.float32)
    holes[0, :5] = np.nan
    holes[5, 5] = np.inf
    labels, prob = predict(threshold_model, holes, return_probabilities=True)
    assert np.isfinite(prob).all() and labels[20, 20] == 1 and labels.max() == 1


def test_anchored_model_sees_dark_objects_as_bright(tmp_path):
    """An anchored model inverts dark-object images; the large-image path uses the same anchors."""
    from napari_synthseg.largeimage import ModelSegmenter, open_image
    from napari_synthseg.normalize import anchored_range

    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(3, 1, activation="sigmoid")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[[[20.0, 20.0, 0.0]]]], np.float32), np.array([-10.0, -10.0, -10.0], np.float32)])
    path = tmp_path / "anchored.keras"
    model.save(path)
    write_sidecar(path, {"network": {"depth": 0}, "normalization": {"low": 1.0, "high": 99.8, "mode": "anchored"}})
    anchored = load_model(path)
    assert anchored.normalization == "anchored"
    dark = _disks((96, 128), [(30, 30), (60, 90)], 12, value=40, background=200)
    labels = predict(anchored, dark, min_area=0)
    assert labels.max() == 2 and labels[30, 30] > 0 and labels[0, 0] == 0
    # a percentile model would call the bright background the object
    write_sidecar(path, {"network": {"depth": 0}})
    assert predict(load_model(path), dark, min_area=0)[0, 0] > 0
    write_sidecar(path, {"network": {"depth": 0}, "normalization": {"low": 1.0, "high": 99.8, "mode": "anchored"}})
    ready = ModelSegmenter(model_path=str(path)).prepare(open_image(dark))
    assert ready.value_ranges[()] == pytest.approx(anchored_range(dark))


def _scale_bar_image():
    """A bright grain (noisy, as a real one) and a bright info box with dark text in the lower right corner."""
    rng = np.random.default_rng(0)
    image = rng.normal(50, 5, (400, 600))
    image[100:140, 100:160] = rng.normal(230, 5, (40, 60))
    image[362:392, 420:590] = 180
    image[370:385, 450:520] = 5
    return np.clip(image, 0, 255).astype(np.uint8)


def test_predict_leaves_the_scale_bar_box_out(threshold_model, tmp_path):
    from napari_synthseg.largeimage import ModelSegmenter, open_image
    from napari_synthseg.pipeline import predict_at_scale

    image = _scale_bar_image()
    box = (slice(362, 392), slice(420, 590))
    # drop_overlays=False: the flat box is also a drawn overlay, which predict leaves out by default
    kept = predict(threshold_model, image, ignore_box=None, drop_overlays=False)
    assert kept[box].max() > 0  # the bright box is "object" to the network
    labels, prob = predict(threshold_model, image, return_probabilities=True)
    assert labels[box].max() == 0 and labels[120, 130] > 0
    assert prob[box][..., 0].max() == 0  # the probabilities returned are the ones cut
    given = predict(threshold_model, image, ignore_box=(0, 200, 0, 300), drop_overlays=False)
    assert given[120, 130] == 0 and given[box].max() > 0
    # zoomed prediction cuts the box found on the full image
    zoomed, _ = predict_at_scale(threshold_model, image, 0.5)
    assert zoomed[box].max() == 0 and zoomed[120, 130] > 0
    # the large-image segmenter finds the box once on the plane and cuts it from every tile
    ready = ModelSegmenter(model_path=str(threshold_model.path), tile=128).prepare(open_image(image))
    y0, y1, x0, x1 = ready.boxes[()]
    assert y0 <= 362 and y1 >= 392 and x0 <= 420 and x1 >= 590
    tile_labels = ready(image[300:, 400:], ((), slice(300, 400), slice(400, 600)))
    assert tile_labels[62:92, 20:190].max() == 0
    assert ModelSegmenter(model_path=str(threshold_model.path), ignore_box=None).prepare(
        open_image(image)).boxes[()] is None
    with pytest.raises(ValueError, match="ignore_box must be 'auto', None or"):
        predict(threshold_model, image, ignore_box="corner")
    with pytest.raises(ValueError, match="ignore_box must be 'auto', None or"):
        predict(threshold_model, image, ignore_box=(1, 2))


def test_predict_leaves_out_objects_drawn_on_the_image(threshold_model):
    """A drawn bar (one gray level) is left out by default; a noisy grain is kept; every path does it."""
    from napari_synthseg.largeimage import ModelSegmenter, open_image
    from napari_synthseg.pipeline import predict_at_scale

    rng = np.random.default_rng(1)
    image = rng.normal(50, 5, (300, 400))
    image[100:140, 100:140] = rng.normal(200, 5, (40, 40))  # a grain, noisy like its surroundings
    image[200:206, 150:330] = 255  # a drawn bar, away from the corners
    image = np.clip(image, 0, 254.5).round().astype(np.uint8)
    image[200:206, 150:330] = 255
    bar = (slice(200, 206), slice(150, 330))
    kept = predict(threshold_model, image, drop_overlays=False)
    assert kept[bar].max() > 0 and kept[120, 120] > 0  # the bright bar is "object" to the network
    labels = predict(threshold_model, image)
    assert labels[bar].max() == 0 and labels[120, 120] > 0
    zoomed, _ = predict_at_scale(threshold_model, image, 0.5)
    assert zoomed[bar].max() == 0 and zoomed[120, 120] > 0
    segmenter = ModelSegmenter(model_path=str(threshold_model.path)).prepare(open_image(image))
    whole = segmenter(image, ((), slice(0, 300), slice(0, 400)))
    assert whole[bar].max() == 0 and whole[120, 120] > 0
    assert ModelSegmenter(model_path=str(threshold_model.path), drop_overlays=False)(image)[bar].max() > 0
    with pytest.raises(ValueError, match="drop_overlays must be True or False"):
        predict(threshold_model, image, drop_overlays="yes")


def test_predict_leaves_out_the_support_with_the_drawn_overlays(threshold_model):
    """A film over 40 % of the image, a shade lighter than the bare part (a step of 0.06 of the gray range),
    is foreground to this network; predict leaves it out with the drawn overlays, and so does the large-image
    segmenter given the whole image; a block of a large image is not judged (a share of a block is not a share
    of the image)."""
    from napari_synthseg.largeimage import ModelSegmenter, open_image

    rng = np.random.default_rng(2)
    image = np.full((200, 300), 117.0) + rng.normal(0, 2, (200, 300))
    image[:, :120] += 16  # the film
    image[:, 250:] = _disks((200, 50), [(50, 25)], 15, value=250, background=117)  # a bright particle
    dark = _disks((200, 50), [(150, 25)], 15, value=1, background=0) > 0
    image[:, 250:][dark] = 0  # a dark disk: the low end of the gray range
    image = np.clip(image, 0, 255).round().astype(np.uint8)
    kept = predict(threshold_model, image, min_confidence=0.0, ignore_box=None, drop_overlays=False)
    assert kept[100, 60] > 0 and kept[50, 275] > 0
    labels = predict(threshold_model, image, min_confidence=0.0, ignore_box=None)
    assert labels[100, 60] == 0 and labels[50, 275] > 0 and labels.max() == kept.max() - 1
    segmenter = ModelSegmenter(model_path=str(threshold_model.path), min_confidence=0.0, ignore_box=None)
    np.testing.assert_array_equal(segmenter(image), labels)
    block = segmenter.prepare(open_image(image))(image, ((), slice(0, 200), slice(0, 300)))
    assert block[100, 60] > 0


def _record_planes(monkeypatch, module):
    """Wrap ``module.predict_probabilities`` to record the shape and value range of each plane it is given."""
    seen = []
    original = module.predict_probabilities

    def recording(model, plane, **kwargs):
        seen.append((np.shape(plane), kwargs.get("value_range")))
        return original(model, plane, **kwargs)

    monkeypatch.setattr(module, "predict_probabilities", recording)
    return seen


def test_shrink_candidates_halve_down_to_max_shrink_while_the_view_keeps_its_pixels():
    from napari_synthseg.model.views import MIN_SHRUNK_SIDE, shrink_candidates

    assert shrink_candidates((1000, 2000), 4.0) == [1.0, 0.5, 0.25]
    assert shrink_candidates((1000, 2000), 3.0) == [1.0, 0.5]
    assert shrink_candidates((1000, 2000), 1.0) == [1.0]  # never shrink
    assert shrink_candidates((4 * MIN_SHRUNK_SIDE - 1, 2000), 4.0) == [1.0, 0.5]  # a quarter would be too small
    assert shrink_candidates((MIN_SHRUNK_SIDE, MIN_SHRUNK_SIDE), 4.0) == [1.0]
    assert zoom_image(np.zeros((301, 299), np.float32), 0.25).shape == zoomed_shape((301, 299), 0.25)


def _confident_at(sizes: dict):
    """A ``probabilities(image, value_range)`` whose foreground over the image's bright half is
    ``sizes[image's rows]`` (0.6 where not given), recording each call."""
    calls = []

    def probabilities(image, value_range):
        calls.append((image.shape, value_range))
        prob = np.zeros(image.shape + (3,), np.float32)
        prob[..., 0] = np.where(image > 100, sizes.get(image.shape[0], 0.6), 0.0)
        return prob

    return probabilities, calls


def test_shrunk_probabilities_keeps_the_view_the_network_is_most_confident_about(threshold_model):
    from napari_synthseg.model.views import foreground_confidence, shrunk_probabilities

    plane = _disks((400, 400), [(200, 200)], 120).astype(np.float32)
    probabilities, calls = _confident_at({200: 0.95, 100: 0.8})
    prob = shrunk_probabilities(threshold_model, plane, 4.0, None, probabilities)
    assert [shape for shape, _ in calls] == [(400, 400), (200, 200), (100, 100)]  # full size, half, quarter
    assert all(value_range == threshold_model.value_range(plane) for _, value_range in calls)  # the whole plane's
    assert prob.shape == (400, 400, 3)
    assert prob[200, 200, 0] == pytest.approx(0.95)  # the half view's, brought back to full resolution
    probabilities, calls = _confident_at({})  # as sure at every size: the full-size view, the first of equals
    assert shrunk_probabilities(threshold_model, plane, 4.0, None, probabilities)[200, 200, 0] == pytest.approx(0.6)
    probabilities, calls = _confident_at({200: 0.95})
    shrunk_probabilities(threshold_model, plane, 1.0, None, probabilities)
    assert [shape for shape, _ in calls] == [(400, 400)]  # max_shrink 1: one pass at full size
    # judged on the plane's grid: small objects that a shrunk view calls sure come back blurred
    specks = _disks((400, 400), [(y, x) for y in range(20, 400, 40) for x in range(20, 400, 40)], 6)
    probabilities, calls = _confident_at({400: 0.88, 200: 0.9, 100: 0.9})
    assert shrunk_probabilities(threshold_model, specks.astype(np.float32), 4.0, None,
                                probabilities)[20, 20, 0] == pytest.approx(0.88)
    # what the ignore box covers (a scale bar, lettering) does not sway the judgement
    foreground = np.zeros((40, 40), np.float32)
    foreground[:10] = 1.0
    foreground[20:] = 0.7
    assert foreground_confidence(foreground) == pytest.approx((10 + 20 * 0.7) / 30)
    assert foreground_confidence(foreground, (0, 10, 0, 40)) == pytest.approx(0.7)
    assert foreground_confidence(np.zeros((8, 8), np.float32)) == 0.0


def test_predict_segments_the_most_confident_view_at_full_resolution(threshold_model, monkeypatch):
    import napari_synthseg.model.prediction as prediction

    image = _disks((480, 480), [(120, 120), (120, 360), (360, 240)], 90)
    seen = _record_planes(monkeypatch, prediction)
    full = predict(threshold_model, image, tile=64, max_shrink=1)
    assert [shape for shape, _ in seen] == [image.shape] and full.max() == 3
    seen.clear()
    ticks = []
    labels = predict(threshold_model, image, tile=64, progress=lambda done, total: ticks.append((done, total)))
    assert [shape for shape, _ in seen] == [(480, 480), (240, 240), (120, 120)]
    assert all(value_range == threshold_model.value_range(image) for _, value_range in seen)
    assert ticks[-1][0] == ticks[-1][1] and all(total == ticks[0][1] for _, total in ticks)  # counted up front
    # a thresholding network is surest at full size, where the fewest pixels are edge
    np.testing.assert_array_equal(labels, full)

    def unsure_at_full_size(model, plane, **kwargs):  # a network that guesses inside large objects
        prob = original(model, plane, **kwargs)
        if np.shape(plane) == image.shape:
            prob[..., 0] = np.where(prob[..., 0] > 0.5, 0.55, prob[..., 0])
        return prob

    original = prediction.predict_probabilities
    monkeypatch.setattr(prediction, "predict_probabilities", unsure_at_full_size)
    choices = []
    labels, prob = predict(threshold_model, image, tile=64, return_probabilities=True, on_view=choices.append)
    assert labels.shape == image.shape and labels.max() == 3  # objects from a shrunk view, at full resolution
    assert len(choices) == 1 and choices[0].zoom < 1.0  # one plane: its choice and the evidence
    assert [zoom for zoom, _ in choices[0].confidences] == [1.0, 0.5, 0.25]
    assert choices[0].confidences[0][1] == pytest.approx(0.55, abs=1e-3)
    assert max(choices[0].confidences, key=lambda pair: pair[1])[0] == choices[0].zoom
    assert prob[120, 120, 0] > 0.9
    overlap = ((labels > 0) & (full > 0)).sum() / ((labels > 0) | (full > 0)).sum()
    assert overlap > 0.97  # the outlines survive the round trip


def _grain_seen_as_its_rim(monkeypatch) -> np.ndarray:
    """A 300-pixel grain, and the network patched to call its inside background at full size (an open ring
    left), as a network does inside a grain wider than it sees; smaller views see it whole."""
    import napari_synthseg.model.prediction as prediction

    image = _disks((480, 480), [(240, 240)], 150, value=120, background=50)
    yy, xx = np.mgrid[:480, :480]
    inner = (np.hypot(yy - 240, xx - 240) < 120) | ((np.abs(yy - 240) < 12) & (xx > 240))
    network = prediction.predict_probabilities

    def ring_at_full_size(model, plane, **kwargs):
        prob = network(model, plane, **kwargs)
        if np.shape(plane) == image.shape:
            prob[..., 0] = np.where(inner, 0.0, np.where(prob[..., 0] > 0.5, 1.0, prob[..., 0]))
        return prob

    monkeypatch.setattr(prediction, "predict_probabilities", ring_at_full_size)
    return image


def test_predict_fills_an_object_wider_than_the_kept_view_from_a_smaller_view(threshold_model, monkeypatch):
    image = _grain_seen_as_its_rim(monkeypatch)
    grain = image > 100
    choices = []
    labels = predict(threshold_model, image, tile=64, on_view=choices.append)
    assert choices[0].zoom == 1.0  # the ring is what the network is surest of
    assert labels.max() == 1 and ((labels == 1) & grain).sum() >= 0.97 * grain.sum()
    assert ((labels > 0) & ~grain).sum() < 0.01 * grain.sum()
    ring = predict(threshold_model, image, tile=64, max_shrink=1)  # no smaller view: nothing to fill from
    assert ((ring > 0) & grain).sum() < 0.5 * grain.sum()


def test_predict_takes_whole_from_a_smaller_view_a_wide_grain_the_kept_view_saw_only_a_piece_of(
        threshold_model, monkeypatch):
    """Two 300-pixel grains; at full size the network patched to see the second only as a patch at its centre
    (a flat inside it cannot see across); the smaller views see both whole."""
    import napari_synthseg.model.prediction as prediction

    image = _disks((480, 960), [(240, 240), (240, 720)], 150, value=120, background=50)
    yy, xx = np.mgrid[:480, :960]
    unseen = (np.hypot(yy - 240, xx - 720) < 160) & ~((np.abs(yy - 240) < 15) & (np.abs(xx - 720) < 15))
    network = prediction.predict_probabilities

    def second_unseen_at_full_size(model, plane, **kwargs):
        prob = network(model, plane, **kwargs)
        if np.shape(plane) == image.shape:
            prob[..., 0] = np.where(unseen, 0.0, prob[..., 0])
        return prob

    monkeypatch.setattr(prediction, "predict_probabilities", second_unseen_at_full_size)
    second = np.hypot(yy - 240, xx - 720) < 150
    choices = []
    labels = predict(threshold_model, image, tile=64, on_view=choices.append)
    assert choices[0].zoom == 1.0
    assert labels.max() == 2 and labels[240, 240] != labels[240, 720]
    assert ((labels == labels[240, 720]) & second).sum() >= 0.97 * second.sum()  # the piece in it, one object
    assert ((labels > 0) & ~(image > 100)).sum() < 0.01 * second.sum()
    piece = predict(threshold_model, image, tile=64, max_shrink=1)  # no smaller view: the piece alone
    assert (piece[second] > 0).sum() <= 30 * 30


def test_receptive_field_is_the_window_an_output_pixel_of_the_unet_sees(threshold_model):
    from napari_synthseg.model.network import build_unet
    from napari_synthseg.model.params import receptive_field

    for depth in (1, 2, 3):
        network = build_unet(base_filters=2, depth=depth)
        for layer in network.layers:  # every path passes a signal: positive weights, batch norm as identity
            weights = layer.get_weights()
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.set_weights([np.ones_like(weights[0]), *(np.zeros_like(w) for w in weights[1:3]),
                                   np.ones_like(weights[3])])
            elif weights:
                layer.set_weights([np.full_like(w, 0.1) for w in weights])
        steps = 2 ** depth  # an impulse at each alignment to the poolings' grid
        impulses = np.zeros((steps, 128, 128, 1), np.float32)
        for k in range(steps):
            impulses[k, 64 + k, 64 + k, 0] = 1.0
        response = network.predict(impulses, verbose=0) - network.predict(np.zeros_like(impulses), verbose=0)
        widths = [np.ptp(np.nonzero(response[k, :, 64 + k, 0])[0]) + 1 for k in range(steps)]
        assert np.mean(widths) == receptive_field(depth)
    assert receptive_field(3) == 96
    assert threshold_model.view_radius == receptive_field(0) / 2  # from the sidecar's depth
    with pytest.raises(ValueError, match="depth"):
        receptive_field(-1)


def test_prediction_params_check_max_shrink():
    assert PredictionParams(max_shrink=2).max_shrink == 2.0
    assert PredictionParams().max_shrink == 4.0
    for bad in (0.5, float("nan"), "big", True):
        with pytest.raises(ValueError, match="max_shrink must be a number >= 1"):
            PredictionParams(max_shrink=bad)


def test_model_segmenter_tries_shrunk_views_of_a_whole_image(threshold_model, monkeypatch):
    from napari_synthseg.largeimage import ModelSegmenter

    image = _disks((480, 480), [(120, 120), (120, 360), (360, 240)], 90)
    segmenter = ModelSegmenter(model_path=str(threshold_model.path), tile=64)
    shapes = []
    original = ModelSegmenter.probabilities
    monkeypatch.setattr(ModelSegmenter, "probabilities",
                        lambda self, tile, value_range: shapes.append(tile.shape) or original(self, tile, value_range))
    labels = segmenter(image)
    assert shapes == [(480, 480), (240, 240), (120, 120)] and labels.shape == image.shape and labels.max() == 3
    shapes.clear()
    # a tile is seen at its plane's zoom, chosen once by prepare (none chosen here: as it is)
    segmenter(image[:240], region=((), slice(0, 240), slice(0, 480)))
    assert shapes == [(240, 480)]
    # a whole image is filled from the smaller views, as predict fills it: a grain seen as its rim comes out whole
    grain = _grain_seen_as_its_rim(monkeypatch)  # the network both paths call
    labels = segmenter(grain)
    assert ((labels == 1) & (grain > 100)).sum() >= 0.97 * (grain > 100).sum()
    np.testing.assert_array_equal(labels, predict(threshold_model, grain, tile=64))


def test_surest_shrink_pools_the_windows_of_a_large_plane():
    from napari_synthseg.model.views import surest_shrink

    def sure_at(sizes):  # foreground over the bright half, sizes[view rows] sure (0.6 where not given)
        calls = []

        def probabilities(image):
            calls.append(image.shape)
            prob = np.zeros(image.shape + (3,), np.float32)
            prob[..., 0] = np.where(image > 100, sizes.get(image.shape[0], 0.6), 0.0)
            return prob

        return probabilities, calls

    grains = _disks((200, 200), [(100, 100)], 70).astype(np.float32)
    empty = np.full((200, 200), 10, np.float32)  # no object: adds nothing to any view's judgement
    probabilities, calls = sure_at({100: 0.9})
    assert surest_shrink([(grains, None), (empty, None)], 4.0, probabilities) == 0.5
    assert calls == [(200, 200)] * 2 + [(100, 100)] * 2  # a quarter of 200 px is under MIN_SHRUNK_SIDE
    probabilities, calls = sure_at({100: 0.9})
    assert surest_shrink([(grains, None)], 1.0, probabilities) == 1.0 and calls == [(200, 200)]
    # pooled by pixels: the grain, sure only at half size, outweighs a speck sure only at full size
    speck = _disks((200, 200), [(100, 100)], 8).astype(np.float32)

    def by_window(image):
        speck_window = (image > 100).mean() < 0.05
        sure = speck_window != (image.shape[0] == 100)
        prob = np.zeros(image.shape + (3,), np.float32)
        prob[..., 0] = np.where(image > 100, 0.95 if sure else 0.55, 0.0)
        return prob

    assert surest_shrink([(grains, None), (speck, None)], 2.0, by_window) == 0.5
    # the ignore box (in the window's pixels) is left out of the judgement
    assert surest_shrink([(grains, (0, 200, 0, 200)), (speck, None)], 2.0, by_window) == 1.0
    assert surest_shrink([(grains, None), (speck, (90, 110, 90, 110))], 2.0, by_window) == 0.5


def test_large_image_tiles_are_segmented_at_the_view_judged_on_the_plane(threshold_model, monkeypatch, tmp_path):
    from napari_synthseg.largeimage import ModelSegmenter, open_image, process_large, read_labels
    from napari_synthseg.largeimage.segmenters import _view_windows

    image = _disks((480, 480), [(120, 120), (120, 360), (360, 240)], 90)
    full = predict(threshold_model, image, max_shrink=1)
    original = ModelSegmenter.probabilities
    shapes = []

    def unsure_when_large(self, tile, value_range):  # a network that guesses inside objects it sees large
        shapes.append(tile.shape)
        prob = original(self, tile, value_range)
        if min(tile.shape) > 100:
            prob[..., 0] = np.where(prob[..., 0] > 0.5, 0.55, prob[..., 0])
        return prob

    monkeypatch.setattr(ModelSegmenter, "probabilities", unsure_when_large)
    segmenter = ModelSegmenter(model_path=str(threshold_model.path), tile=64, view_window=128)
    ready = segmenter.prepare(open_image(image))
    assert ready.zooms == {(): 0.5}
    assert shapes == [(128, 128)] * 4 + [(64, 64)] * 4  # four windows, two views each (a quarter: too small)
    shapes.clear()
    result = process_large(image, tmp_path / "labels.tif", segmenter, tile=160, overlap=32, scheduler="sync")
    judged, tiles = shapes[:8], shapes[8:]  # process_large prepares the segmenter first, then runs the tiles
    assert judged == [(128, 128)] * 4 + [(64, 64)] * 4
    assert tiles and all(max(shape) <= 112 for shape in tiles)  # every tile seen at half size (blocks up to 224)
    labels = read_labels(result.output_path)
    assert labels.shape == image.shape and result.n_objects == 3
    overlap = ((labels > 0) & (full > 0)).sum() / ((labels > 0) | (full > 0)).sum()
    assert overlap > 0.97  # outlines at full resolution
    assert ModelSegmenter(model_path=str(threshold_model.path), max_shrink=1).prepare(open_image(image)).zooms == {
        (): 1.0}
    assert _view_windows((480, 2000), 1024) == [(slice(0, 480), slice(0, 1024)), (slice(0, 480), slice(976, 2000))]


def test_predict_at_scale_does_not_shrink_a_zoomed_image_again(threshold_model, monkeypatch):
    import napari_synthseg.model.prediction as prediction
    from napari_synthseg.pipeline import predict_at_scale

    image = _disks((480, 480), [(120, 120), (120, 360), (360, 240)], 90)
    seen = _record_planes(monkeypatch, prediction)
    labels, prob = predict_at_scale(threshold_model, image, 0.5, tile=64)
    assert [shape for shape, _ in seen] == [(240, 240)]  # the size normalisation chose the scale
    assert labels.shape == image.shape and prob.shape == image.shape + (3,) and labels.max() == 3
    seen.clear()
    predict_at_scale(threshold_model, image, 1.0, tile=64, max_shrink=2.0)
    assert [shape for shape, _ in seen] == [(480, 480), (240, 240)]  # unzoomed: predict's own views


def test_describe_views_says_how_many_images_were_shrunk_and_how_far():
    from napari_synthseg.model.views import ViewChoice, describe_views

    full = ViewChoice(1.0, ((1.0, 0.9), (0.5, 0.8))).to_dict()
    assert full == {"zoom": 1.0, "confidences": {"1": 0.9, "0.5": 0.8}}
    assert describe_views({"a": full, "b": full}) == "all 2 image(s) segmented at full size"
    views = {"a": full, "b": ViewChoice(0.25).to_dict(), "c": ViewChoice(0.5).to_dict(), "d": ViewChoice(0.5).to_dict()}
    assert describe_views(views) == ("3 of 4 image(s) segmented shrunk (half size 2, a quarter 1), "
                                     "the others at full size")
