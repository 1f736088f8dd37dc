"""Tests of the classical auto-segmentation (tiny synthetic images)."""

from pathlib import Path

import numpy as np
import pytest

from napari_synthseg.autoseg import autosegment, choose_polarity

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def disks(shape=(96, 128), centres=((30, 30), (60, 90)), radius=12, fg=200, bg=40, seed=0, rim=0):
    """uint8 image with bright disks on a noisy background (optionally dark rims), and the true masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, dtype=np.uint32)
    for k, (cy, cx) in enumerate(centres, start=1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = k
    image = np.where(truth > 0, fg, bg).astype(np.float64)
    if rim:
        ring = np.zeros(shape, bool)
        for cy, cx in centres:
            r2 = (yy - cy) ** 2 + (xx - cx) ** 2
            ring |= (r2 > radius**2) & (r2 <= (radius + rim) ** 2)
        image[ring] = 5
    image += rng.normal(0, 4, shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_two_disks_found_with_defaults():
    image, truth = disks()
    labels = autosegment(image)
    assert labels.dtype == np.uint32 and labels.shape == image.shape
    assert labels.max() == 2
    for k in (1, 2):
        found = labels[truth == k]
        assert np.bincount(found).argmax() > 0
        assert (found > 0).mean() > 0.95


@pytest.mark.parametrize("method", ["otsu", "li", "triangle", "local", "contours", "combined", "edge"])
def test_every_method_returns_labels(method):
    image, truth = disks(rim=3)
    labels = autosegment(image, method=method, polarity="bright")
    assert labels.dtype == np.uint32 and labels.shape == image.shape
    assert (labels[truth > 0] > 0).mean() > 0.5
    # The background far from the disks stays background (the adaptive "local" threshold too).
    assert labels[:, -8:].max() == 0


def test_contours_finds_gray_grain_with_dark_rim():
    # A mid-gray grain, only slightly brighter than the background, with a dark rim.
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:80, :80]
    r2 = (yy - 40) ** 2 + (xx - 40) ** 2
    image = np.full((80, 80), 60.0) + rng.normal(0, 2, (80, 80))
    image[r2 <= 15**2] = 75
    image[(r2 > 15**2) & (r2 <= 18**2)] = 10
    labels = autosegment(image.astype(np.float32), method="contours", polarity="bright",
                         contour_fraction=0.1, sigma=0.5)
    assert labels.max() == 1
    assert (labels[r2 <= 15**2] == 1).all()
    assert labels[r2 > 22**2].max() == 0


def test_dark_objects_and_auto_polarity():
    image, truth = disks()
    inverted = 255 - image
    assert choose_polarity(image) == "bright"
    assert choose_polarity(inverted) == "dark"
    a = autosegment(image)
    b = autosegment(inverted)
    c = autosegment(inverted, polarity="dark")
    # Same objects up to pixels exactly at the threshold.
    assert np.count_nonzero((a > 0) != (b > 0)) <= 0.002 * a.size
    np.testing.assert_array_equal(b, c)


def test_manual_threshold_and_missing_value():
    image, truth = disks()
    labels = autosegment(image, method="manual", threshold=120, polarity="bright")
    assert labels.max() == 2
    with pytest.raises(ValueError, match="threshold"):
        autosegment(image, method="manual")


def test_rgb_rgba_uint16_float_agree():
    image, _ = disks()
    gray = autosegment(image)
    rgb = autosegment(np.stack([image] * 3, axis=-1))
    rgba = autosegment(np.concatenate([np.stack([image] * 3, -1), np.full(image.shape + (1,), 255, np.uint8)], -1))
    u16 = autosegment(image.astype(np.uint16) * 257)
    flt = autosegment(image.astype(np.float32) / 255)
    for other in (rgb, rgba, u16, flt):
        assert other.shape == image.shape
        np.testing.assert_array_equal(other > 0, gray > 0)


def test_stack_plane_by_plane_unique_ids():
    a, _ = disks(seed=0)
    b, _ = disks(centres=((50, 50),), seed=1)
    stack = np.stack([a, b, a])
    labels = autosegment(stack, rgb=False)
    assert labels.shape == stack.shape and labels.dtype == np.uint32
    np.testing.assert_array_equal(labels[0], autosegment(a))
    ids = [set(np.unique(p)) - {0} for p in labels]
    assert [len(s) for s in ids] == [2, 1, 2]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    # 4D stacks work too.
    assert autosegment(stack[None], rgb=False).shape == (1,) + stack.shape


def test_empty_constant_and_no_objects():
    assert autosegment(np.zeros((40, 50), np.uint8)).max() == 0
    assert autosegment(np.full((40, 50), 7.5, np.float32)).max() == 0
    specks = np.full((64, 64), 20, np.uint8)
    specks[10:12, 10:12] = specks[40:43, 50:52] = 250  # bright, but far below min_area
    assert autosegment(specks, min_area=30).max() == 0
    with pytest.raises(ValueError, match="empty"):
        autosegment(np.zeros((0, 10)))
    with pytest.raises(ValueError, match="2D"):
        autosegment(np.zeros(10))


def test_object_touching_every_border_and_clear_border():
    image = np.full((60, 60), 200, np.uint8)
    image[20:40, 20:40] = 30  # a dark hole: the bright frame touches all borders
    labels = autosegment(image, polarity="bright", fill_holes=False, split_touching=False)
    assert labels.max() == 1 and labels[0, 0] == 1 and labels[30, 30] == 0
    filled = autosegment(image, polarity="bright", fill_holes=True)
    assert filled[30, 30] == 1  # the enclosed dark square is a hole of the frame
    assert autosegment(image, polarity="bright", clear_border=True).max() == 0


def test_min_max_area_and_holes():
    image, truth = disks(centres=((30, 30), (60, 90)), radius=12)
    image[28:33, 28:33] = 40  # a pore inside the first disk
    labels = autosegment(image, sigma=0)
    assert labels[30, 30] > 0
    assert autosegment(image, sigma=0, fill_holes=False)[30, 30] == 0
    assert autosegment(image, min_area=1000).max() == 0
    assert autosegment(image, max_area=100).max() == 0


def test_split_touching_disks():
    image, truth = disks(shape=(80, 120), centres=((40, 40), (40, 76)), radius=18)
    merged = autosegment(image, split_touching=False)
    split = autosegment(image, split_touching=True)
    assert merged.max() == 1
    assert split.max() == 2
    # Each half is mostly one label.
    assert np.bincount(split[truth == 1]).argmax() != np.bincount(split[truth == 2]).argmax()


def test_ignore_mask_and_box():
    image, truth = disks()
    mask = np.zeros(image.shape, bool)
    mask[:, :64] = True
    labels = autosegment(image, ignore_mask=mask)
    assert labels[:, :64].max() == 0 and labels.max() == 1
    labels = autosegment(image, ignore_box=(0, 96, 64, 128))
    assert labels[:, 64:].max() == 0 and labels.max() == 1


def test_deterministic():
    image, _ = disks(seed=3)
    np.testing.assert_array_equal(autosegment(image, method="combined"), autosegment(image, method="combined"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="magic"), "method"),
    (dict(polarity="up"), "polarity"),
    (dict(sigma=-1), "sigma"),
    (dict(min_area=-3), "min_area"),
    (dict(max_area=5, min_area=10), "max_area"),
    (dict(contour_fraction=0.7), "contour_fraction"),
    (dict(block_size=50), "block_size"),
    (dict(ignore_box="somewhere"), "ignore_box"),
    (dict(ignore_mask=np.zeros((3, 3), bool)), "ignore_mask"),
])
def test_bad_params(kwargs, match):
    image, _ = disks()
    with pytest.raises(ValueError, match=match):
        autosegment(image, **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="threshold"):
        autosegment(np.zeros((8, 8)), method="manual", threshold="high")
    with pytest.raises(TypeError, match="dtype"):
        autosegment(np.zeros((8, 8), dtype=complex))
    with pytest.raises(TypeError, match="bool"):
        autosegment(np.zeros((8, 8)), ignore_mask=np.zeros((8, 8), int))


def test_seed_em_image_if_available():
    folder = SHARED / "seed_em" / "test"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (outside the project checkout)")
    from napari_synthseg.image_io import list_images, read_image, to_gray

    image = read_image(list_images(folder)[0])
    gray = to_gray(image)[::2, ::2]  # half size keeps the test fast
    labels = autosegment(gray)
    assert labels.dtype == np.uint32 and 10 < labels.max() < 2000


# --------------------------------------------------------------------------- AutosegParams
def test_autosegment_defaults_are_the_parameter_objects():
    import inspect

    from napari_synthseg.autoseg import AutosegParams

    signature = inspect.signature(autosegment).parameters
    defaults = AutosegParams().as_dict()
    assert set(defaults) <= set(signature)
    assert {name: signature[name].default for name in defaults} == defaults


def test_the_command_lines_autoseg_defaults_are_the_parameter_objects():
    from napari_synthseg.autoseg import AutosegParams
    from napari_synthseg.cli import _autoseg_params, build_parser

    args = build_parser().parse_args(["autoseg", "image.png", "--bank", "bank"])
    given = _autoseg_params(args)
    assert given == {name: value for name, value in AutosegParams().as_dict().items() if name in given}
    assert args.method == AutosegParams().method
    # --keep-overlays keeps drawn bars and lettering; on `run` one flag keeps them in the auto-segmentation too
    kept = build_parser().parse_args(["autoseg", "image.png", "--bank", "bank", "--keep-overlays"])
    assert _autoseg_params(kept)["drop_overlays"] is False
    run = build_parser().parse_args(["run", "images", "--out", "out", "--steps", "1", "--keep-overlays"])
    assert _autoseg_params(run)["drop_overlays"] is False


def test_parameters_are_checked_when_made_and_frozen():
    import dataclasses

    from napari_synthseg.autoseg import AutosegParams

    params = AutosegParams(method="manual", threshold="12", ignore_box=[1, 2, 3, 4])
    assert params.threshold == 12.0 and params.ignore_box == (1, 2, 3, 4)
    assert AutosegParams.from_dict(params.as_dict()) == params
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.sigma = 3.0
    with pytest.raises(ValueError, match="method='manual' needs a threshold"):
        AutosegParams(method="manual")
    with pytest.raises(ValueError, match=r"unknown auto-segmentation setting\(s\) 'smoothing'; use sigma, method"):
        AutosegParams.from_dict({"smoothing": 2.0})


def test_the_large_image_segmenter_checks_and_fills_in_the_parameters():
    from napari_synthseg.autoseg import AutosegParams
    from napari_synthseg.largeimage import AutosegSegmenter, open_image

    image, _ = disks()
    source = open_image(image)
    with pytest.raises(ValueError, match="sigma must be a number >= 0"):
        AutosegSegmenter(params={"sigma": -1.0}).prepare(source)
    with pytest.raises(ValueError, match="unknown auto-segmentation setting"):
        AutosegSegmenter(params={"simga": 1.0}).prepare(source)
    ready = AutosegSegmenter(params={"min_area": 5, "rgb": None}).prepare(source)
    assert ready.params == AutosegParams(min_area=5).as_dict()


# ------------------------------------------------------------------------- method="edge"
def _three_phase(seed=0):
    """Dark rods (20) in a gray matrix (120) that covers most of a bright film (200)."""
    rng = np.random.default_rng(seed)
    image = np.full((200, 240), 200.0)
    image[:, :170] = 120.0  # the matrix, touching three borders
    rods = np.zeros(image.shape, dtype=bool)
    for i, (y, x) in enumerate([(20, 20), (20, 90), (70, 40), (70, 120), (120, 20), (120, 90), (165, 50),
                                (165, 125)]):
        if i % 2:
            rods[y:y + 8, x:x + 22] = True
        else:
            rods[y:y + 22, x:x + 8] = True
    image[rods] = 20.0
    return image + rng.normal(0, 4, image.shape), rods


def test_edge_method_takes_the_objects_out_of_their_matrix():
    image, rods = _three_phase()
    otsu = autosegment(image, method="otsu", polarity="dark")
    assert np.bincount(otsu.ravel())[1:].max() > 0.5 * otsu.size  # matrix and rods as one object
    edge = autosegment(image, method="edge", polarity="dark")
    assert edge.max() == 8
    found = edge > 0
    assert (found & rods).sum() / (found | rods).sum() > 0.8


def test_edge_method_keeps_otsu_when_only_a_few_sharp_letters_beat_it():
    rng = np.random.default_rng(1)
    image = np.full((200, 200), 40.0)
    yy, xx = np.mgrid[:200, :200]
    for y, x in [(30, 30), (30, 90), (30, 150), (90, 30), (90, 90), (90, 150), (150, 30), (150, 90)]:
        image[np.hypot(yy - y, xx - x) < 12] = 110.0
    for x in (120, 138, 156):  # three white strokes of a label (2.6 % of the image), sharper than the particles
        image[150:194, x:x + 8] = 255.0
    image += rng.normal(0, 3, image.shape)
    # the strokes kept as objects (a line of text is left out by default): this is about the level chosen
    otsu = autosegment(image, method="otsu", polarity="bright", ignore_box=None, drop_overlays=False)
    edge = autosegment(image, method="edge", polarity="bright", ignore_box=None, drop_overlays=False)
    assert otsu.max() == 11  # eight particles and three strokes
    np.testing.assert_array_equal(edge > 0, otsu > 0)
