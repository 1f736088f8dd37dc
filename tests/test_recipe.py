"""The recipe a run trains with, decided from its images."""

import json

import numpy as np
import pytest

from napari_synthseg.image_io import write_png
from napari_synthseg.recipe import (
    RECIPES,
    SYNTHETIC_FROM_MISSED,
    choose_recipe,
    image_polarity,
    missed_by_threshold,
    missed_on_other_side,
    recipe,
)
from napari_synthseg.sample_data import make_sample_scene

TINY = ["--base-filters", "4", "--depth", "2"]


def _scenes(n, seed=0, shape=(160, 200)):
    return [make_sample_scene(shape=shape, seed=seed + i)[0] for i in range(n)]


def _inverted(image):
    return (image.max() - image).astype(image.dtype)


def _discs(seed, mid_gray_share=0.0, shape=(192, 192), n=14, mid_gray=0.62):
    """Gray background (0.5) with ``n`` bright discs, ``mid_gray_share`` of them at ``mid_gray`` instead (by
    default only a little brighter than the background; below 0.5, darker than it)."""
    rng = np.random.default_rng(seed)
    image = 0.5 + rng.normal(0.0, 0.02, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cells = rng.permutation((shape[0] // 48) * (shape[1] // 48))[:n]  # one disc per 48-pixel cell: none touch
    for i, cell in enumerate(cells):
        cy, cx = 24 + 48 * (cell // (shape[1] // 48)) + rng.uniform(-6, 6), 24 + 48 * (cell % (shape[1] // 48))
        radius = rng.uniform(6, 12)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius] = mid_gray if i < round(mid_gray_share * n) else 0.85
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def test_one_contrast_folder_that_a_threshold_labels_gets_the_mixed_recipe():
    folder = [_discs(seed) for seed in range(3)]
    assert all(missed_by_threshold(image) < 0.05 for image in folder)
    decision = choose_recipe(folder)
    assert decision.name == "mixed" and decision.chosen_by == "images"
    evidence = dict(decision.evidence)
    assert evidence.pop("missed_by_threshold") < 0.05
    assert evidence == {"n_images": 3, "bright": 3, "dark": 0, "minority_share": 0.0, "mixed_from_share": 0.15,
                        "mixed_contrasts": False,
                        "synthetic_from_missed": SYNTHETIC_FROM_MISSED, "missed_on_other_side": 0.0}
    assert decision.train == RECIPES["mixed"]["train"] and decision.autoseg == {"method": "edge"}
    assert decision.line().startswith("recipe: mixed (one contrast: objects bright in 3 and dark in 0 of 3 images, ")
    assert "a threshold misses 0% of the typical image's object pixels; override with --recipe)" in decision.line()
    # the same discs darker than their background: one contrast, labelled by a threshold
    assert choose_recipe([255 - image for image in folder]).name == "mixed"


def test_one_contrast_folder_whose_objects_a_threshold_misses_gets_the_synthetic_recipe():
    folder = [_discs(seed, mid_gray_share=0.5) for seed in range(3)]  # half the discs mid-gray
    assert [image_polarity(image) for image in folder] == ["bright"] * 3
    shares = [missed_by_threshold(image) for image in folder]
    assert all(SYNTHETIC_FROM_MISSED < share < 0.75 for share in shares)
    decision = choose_recipe(folder)
    assert decision.name == "synthetic" and decision.chosen_by == "images"
    assert decision.evidence["missed_by_threshold"] == round(float(np.median(shares)), 3)
    # the missed discs are brighter than the background, like the labelled ones: restyled objects keep their side
    assert [missed_on_other_side(image) for image in folder] == [0.0] * 3
    assert decision.train == {**RECIPES["synthetic"]["train"], "scene_params": {"invert_prob": 0.0}}
    assert decision.autoseg == {"method": "otsu"}
    assert decision.line().startswith("recipe: synthetic (one contrast: objects bright in 3 and dark in 0 of 3")
    assert ", 0% of them darker than the background; override with --recipe)" in decision.line()


def test_objects_missed_on_the_backgrounds_other_side_are_taught_in_their_share():
    # half the discs darker than the background, the rest bright: the threshold finds the bright ones only
    folder = [_discs(seed, mid_gray_share=0.5, mid_gray=0.38) for seed in range(3)]
    assert [image_polarity(image) for image in folder] == ["bright"] * 3
    assert all(missed_on_other_side(image) > 0.9 for image in folder)
    decision = choose_recipe(folder)
    assert decision.name == "synthetic"
    side = decision.evidence["missed_on_other_side"]
    assert side == round(float(np.median([missed_on_other_side(image) for image in folder])), 2)
    assert decision.train["scene_params"] == {"invert_prob": side}
    assert f", {side:.0%} of them darker than the background;" in decision.line()
    # of the seven discs the threshold misses, three darker and four a little brighter than the background
    # (the same draw of discs: the first three dark in one image, the first seven mid-gray in the other)
    dark = [_discs(seed, 3 / 14, mid_gray=0.38) for seed in range(3)]
    mixed = [np.where(image < 0.45 * 255, image, _discs(seed, 0.5)) for seed, image in enumerate(dark)]
    shares = [missed_on_other_side(image) for image in mixed]
    assert all(0.15 < share < 0.85 for share in shares)
    decision = choose_recipe(mixed)
    assert decision.name == "synthetic"
    assert decision.train["scene_params"]["invert_prob"] == round(float(np.median(shares)), 2)
    assert missed_on_other_side(np.full((32, 32), 7, dtype=np.uint8)) == 0.0  # nothing missed
    with pytest.raises(ValueError, match="2D image"):
        missed_on_other_side(np.zeros((2, 8, 8)))


def test_the_built_in_sample_scenes_get_the_synthetic_recipe():
    # mid-gray grains beside bright ones, as in the ore-grain images: Otsu labels the bright ones only
    scenes = [make_sample_scene(seed=seed)[0] for seed in range(2)]
    assert choose_recipe(scenes).name == "synthetic"


def test_bright_and_dark_field_folder_gets_the_mixed_recipe():
    images = _scenes(4)
    folder = images[:2] + [_inverted(im) for im in images[2:]]
    assert [image_polarity(im) for im in folder] == ["bright", "bright", "dark", "dark"]
    decision = choose_recipe(folder)
    assert decision.name == "mixed"
    assert decision.train == {"normalization": "anchored", "real_fraction": 0.5}
    assert decision.autoseg == {"method": "edge"}
    assert "mixed contrasts: objects bright in 2 and dark in 2 of 4 images" in decision.line()


def test_a_lone_outlier_does_not_make_a_folder_mixed():
    images = [_discs(seed, mid_gray_share=0.5) for seed in range(8)]
    assert choose_recipe(images[:7] + [255 - images[7]]).name == "synthetic"  # 1 in 8 < 15 %
    assert choose_recipe(images[:6] + [255 - image for image in images[6:]]).name == "mixed"  # 2 in 8
    assert choose_recipe([255 - images[0]]).name == "synthetic"  # one image has one contrast


def test_named_recipe_and_bad_input():
    decision = recipe("mixed")
    assert decision.chosen_by == "user" and decision.line() == "recipe: mixed (chosen with --recipe)"
    with pytest.raises(ValueError, match="unknown recipe 'fancy'"):
        recipe("fancy")
    with pytest.raises(ValueError, match="at least one image"):
        choose_recipe([])
    with pytest.raises(ValueError, match="2D image"):
        image_polarity(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="2D image"):
        missed_by_threshold(np.zeros((2, 8, 8)))
    assert missed_by_threshold(np.full((32, 32), 7, dtype=np.uint8)) == 0.0  # a flat image has no objects


def test_run_default_decides_and_records_the_recipe(tmp_path, capsys):
    from napari_synthseg.cli import main

    folder = tmp_path / "mixed_folder"
    folder.mkdir()
    images = _scenes(2, seed=7, shape=(128, 160))
    # a bright straight bar carrying noise (a scratch, not drawn: the auto-segmentation keeps it): no particle,
    # kept out of the bank by its shape
    bar = images[0][60:63, 20:140]
    bar[...] = images[0].max() - np.abs(np.random.default_rng(3).normal(0, 0.03 * np.ptp(images[0]), bar.shape))
    for i, image in enumerate([images[0], _inverted(images[1])]):
        write_png(folder / f"img{i}.png", image)
    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--steps", "2", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "recipe: mixed (mixed contrasts: objects bright in 1 and dark in 1 of 2 images" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["name"] == "mixed" and summary["recipe"]["chosen_by"] == "images"
    left_out = summary["bank_left_out"]  # the bar, as a straight bar or a thin stroke
    assert left_out.get("straight bar", 0) + left_out.get("thin stroke", 0) >= 1
    assert "bank: left out by shape:" in printed
    info = json.loads((out / "model.json").read_text())
    assert info["recipe"] == summary["recipe"]
    # the decision reached training: anchored inputs, real crops from both images
    assert info["normalization"]["mode"] == "anchored" and info["training"]["real_training_images"] == 2

    # a flag overrides the recipe's setting, the recipe named by the user is recorded as such
    out2 = tmp_path / "out2"
    assert main(["run", str(folder), "--out", str(out2), "--steps", "2", "--recipe", "synthetic",
                 "--normalization", "anchored", *TINY]) == 0
    assert "recipe: synthetic (chosen with --recipe)" in capsys.readouterr().out
    info = json.loads((out2 / "model.json").read_text())
    assert info["recipe"]["chosen_by"] == "user" and info["normalization"]["mode"] == "anchored"
    assert "real_training_images" not in info["training"] or not info["training"]["real_training_images"]


def test_run_trains_the_synthetic_recipe_with_objects_on_the_side_the_images_show(tmp_path):
    from napari_synthseg.cli import main

    folder = tmp_path / "grains"
    folder.mkdir()
    for seed in range(2):  # bright discs labelled by the threshold, dark ones missed
        write_png(folder / f"img{seed}.png", _discs(seed, mid_gray_share=0.5, mid_gray=0.38))
    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--steps", "2", *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["name"] == "synthetic"
    side = summary["recipe"]["evidence"]["missed_on_other_side"]
    assert side > 0.9 and summary["recipe"]["train"]["scene_params"] == {"invert_prob": side}
    info = json.loads((out / "model.json").read_text())
    assert info["training"]["scene_params"]["invert_prob"] == side  # reached the scenes training drew


def test_the_line_names_the_control_that_overrides_it():
    images = _scenes(2)
    decision = choose_recipe([images[0], _inverted(images[1])])
    assert decision.line(override="the recipe box").endswith("; override with the recipe box)")
    assert decision.line().endswith("; override with --recipe)")
    assert recipe("synthetic").line(override="the recipe box") == "recipe: synthetic (chosen with the recipe box)"
