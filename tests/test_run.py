"""`synthseg run`, `predict` and `evaluate` end to end on a tiny sample with a step budget."""

import json

import numpy as np
import pytest

from napari_synthseg.cli import main
from napari_synthseg.image_io import read_image
from napari_synthseg.sample_data import write_sample_folder

TINY = ["--base-filters", "4", "--depth", "2"]


def test_run_predict_evaluate_end_to_end(tmp_path, capsys):
    images, masks = write_sample_folder(tmp_path / "sample", n=2, shape=(192, 256), seed=5)
    out = tmp_path / "out"
    assert main(["run", str(images), "--out", str(out), "--steps", "3", "--rounds", "2",
                 "--gt-dir", str(masks), "--method", "triangle", "--object-size", "12",
                 "--normalization", "anchored", "--real-fraction", "0.5", "--real-clumps", "labels", "--augment",
                 "--keep-overlays", "--max-shrink", "1", "--lr-schedule", "constant",
                 *TINY]) == 0
    printed = capsys.readouterr().out
    assert "auto-segmentation" in printed and "model round 1" in printed and "pixel IoU" in printed
    assert "  views: " in printed  # the zoom each image was segmented at, in one line

    summary = json.loads((out / "summary.json").read_text())
    assert 1 <= len(summary["rounds"]) <= 2 and summary["baseline_scores"]["n_images"] == 2
    assert summary["predict_params"] == {"augment": True, "drop_overlays": False, "max_shrink": 1.0}
    assert summary["stopped_because"]
    stems = sorted(p.stem for p in images.iterdir())
    assert len(stems) == 2
    for r in summary["rounds"]:  # --object-size chose each image's zoom: recorded, with no views tried
        assert len(r["views"]) == 2 and all(0 < view["zoom"] <= 1 for view in r["views"].values())
    for stem in stems:
        labels = read_image(out / f"{stem}_labels.tif")
        assert labels.shape == (192, 256) and labels.dtype == np.uint32
        assert read_image(out / f"{stem}_overlay.png").shape == (192, 256, 3)
    assert (out / "model.keras").is_file() and (out / "model.json").is_file()
    info = json.loads((out / "model.json").read_text())
    # the mixed-folder recipe: anchored inputs, half of each batch cropped from the real images
    assert info["normalization"]["mode"] == "anchored"
    assert info["training"]["real_training_images"] == 2 and info["training"]["real_fraction"] == 0.5
    # the same images, with their auto-segmentation, choose the model to keep
    assert info["training"]["real_validation_images"] == 2 and info["metrics"]["selection"] == "real_val_iou"
    assert info["training"]["lr_schedule"] == "constant"
    assert info["training"]["params"]["real_clumps"] == "labels" and info["training"]["real_clump_pixels"] == 0
    assert info["training"]["xla"] is False  # "auto" leaves a 3-step budget uncompiled
    assert any((out / "bank" / "objects").iterdir())

    pred = tmp_path / "pred"
    assert main(["predict", str(out / "model.keras"), str(images), "--out", str(pred), "--tile", "128",
                 "--augment"]) == 0
    assert sorted(p.name for p in pred.glob("*_labels.tif")) == [f"{s}_labels.tif" for s in stems]
    # the sample scenes carry a scale bar: with --ignore-box none the model may label it, never with auto
    kept = tmp_path / "kept"
    assert main(["predict", str(out / "model.keras"), str(images), "--out", str(kept), "--tile", "128",
                 "--ignore-box", "none", "--keep-overlays", "--no-overlay"]) == 0
    from napari_synthseg.scalebar import find_scale_bar
    for stem in stems:
        y0, y1, x0, x1 = find_scale_bar(read_image(next(images.glob(f"{stem}.*"))))
        assert read_image(pred / f"{stem}_labels.tif")[y0:y1, x0:x1].max() == 0
        assert read_image(kept / f"{stem}_labels.tif").shape == (192, 256)
    capsys.readouterr()
    assert main(["evaluate", str(pred), str(masks)]) == 0
    assert "object P" in capsys.readouterr().out


def test_train_from_a_bank_with_a_schedule(tmp_path, capsys):
    images, _ = write_sample_folder(tmp_path / "sample", n=1, shape=(128, 160), seed=3)
    bank = tmp_path / "bank"
    assert main(["autoseg", str(images), "--bank", str(bank), "--method", "edge"]) == 0
    model = tmp_path / "m.keras"
    assert main(["train", "--bank", str(bank), "--backgrounds", str(images), "--model-out", str(model),
                 "--steps", "2", "--patch", "64", "--xla", "on", *TINY]) == 0
    assert "train: 2 steps" in capsys.readouterr().out
    training = json.loads(model.with_suffix(".json").read_text())["training"]
    assert training["lr_schedule"] == "cosine"  # default
    assert training["xla"] is True
    with pytest.raises(SystemExit):
        main(["train", "--bank", str(bank), "--backgrounds", str(images), "--model-out", str(model),
              "--steps", "2", "--lr-schedule", "step"])
    assert "invalid choice: 'step'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--bank", str(bank), "--backgrounds", str(images), "--model-out", str(model),
              "--steps", "2", "--xla", "yes"])
    assert "invalid choice: 'yes'" in capsys.readouterr().err


def test_run_refuses_bad_budget_and_missing_model(tmp_path, capsys):
    images, _ = write_sample_folder(tmp_path / "sample", n=1, shape=(96, 128))
    assert main(["run", str(images), "--out", str(tmp_path / "o")]) == 2
    assert "exactly one training budget" in capsys.readouterr().err
    assert main(["run", str(images), "--out", str(tmp_path / "o"), "--steps", "1", "--real-fraction", "2"]) == 2
    assert "--real-fraction must be between 0 and 1" in capsys.readouterr().err
    assert main(["predict", "model.keras", str(images), "--out", str(tmp_path / "p"), "--min-confidence", "2"]) == 2
    assert "--min-confidence must be between 0 and 1" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.keras"), str(images), "--out", str(tmp_path / "p")]) == 2
    assert "none.keras" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "model.keras", str(images), "--out", str(tmp_path / "p"), "--ignore-box", "corner"])
    assert "--ignore-box takes 'auto', 'none' or Y0,Y1,X0,X1" in capsys.readouterr().err


def test_run_takes_a_stack_plane_by_plane(tmp_path, capsys):
    import tifffile

    from napari_synthseg.sample_data import make_sample_scene

    scenes = [make_sample_scene(shape=(128, 160), seed=s) for s in (11, 12)]
    folder, masks = tmp_path / "stack", tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    tifffile.imwrite(folder / "pair.tif", np.stack([image for image, _ in scenes]))
    tifffile.imwrite(masks / "pair.tif", np.stack([labels for _, labels in scenes]).astype(np.uint16))
    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--steps", "2", "--gt-dir", str(masks), *TINY]) == 0
    assert "model round 1" in capsys.readouterr().out
    labels = read_image(out / "pair_labels.tif")
    assert labels.shape == (2, 128, 160) and labels.dtype == np.uint32
    ids = [set(np.unique(plane)) - {0} for plane in labels]
    assert not ids[0] & ids[1]  # ids stay unique across the stack
    assert sorted(p.name for p in out.glob("*_overlay.png")) == ["pair_z0000_overlay.png", "pair_z0001_overlay.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline_scores"]["n_images"] == 1 and summary["rounds"][0]["scores"]["n_images"] == 1


def test_run_says_when_only_some_images_have_masks(tmp_path, capsys):
    images, masks = write_sample_folder(tmp_path / "sample", n=2, shape=(128, 160), seed=7)
    sorted(masks.iterdir())[1].unlink()  # the second image has no mask
    out = tmp_path / "out"
    assert main(["run", str(images), "--out", str(out), "--steps", "2", "--gt-dir", str(masks), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "scores on the 1 of 2 images that have a mask in --gt-dir" in printed
    assert json.loads((out / "summary.json").read_text())["baseline_scores"]["n_images"] == 1
