"""The `synthseg` command line end to end (classical stages; the model stages are in test_run)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_synthseg.cli import main
from napari_synthseg.image_io import read_image, write_png

SEED_EM = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed_em" / "train"


@pytest.fixture
def two_seed_images(tmp_path):
    if not SEED_EM.is_dir():
        pytest.skip(f"seed_em images not found at {SEED_EM} (the shared data folder sits beside the repo in CI)")
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(SEED_EM.glob("*.jpg"))[:2]:
        shutil.copy(path, folder / path.name)
    return folder


def test_autoseg_then_synth_on_seed_em(two_seed_images, tmp_path, capsys):
    bank = tmp_path / "bank"
    labels_out = tmp_path / "labels"
    assert main(["autoseg", str(two_seed_images), "--bank", str(bank), "--labels-out", str(labels_out)]) == 0
    out = capsys.readouterr().out
    assert "autoseg: 2 images" in out
    written = sorted(labels_out.glob("*_labels.tif"))
    assert len(written) == 2
    source = read_image(sorted(two_seed_images.iterdir())[0])
    labels = read_image(written[0])
    assert labels.shape == source.shape[:2] and labels.max() > 5
    n_bank = len(list((bank / "objects").glob("*_mask.png")))
    assert n_bank > 10

    # a second run over the same images adds nothing new: identical objects are not stored twice
    assert main(["autoseg", str(two_seed_images), "--bank", str(bank)]) == 0
    assert len(list((bank / "objects").glob("*_mask.png"))) == n_bank

    scenes = tmp_path / "scenes"
    assert main(["synth", "--bank", str(bank), "--backgrounds", str(two_seed_images), "--out", str(scenes),
                 "-n", "3", "--size", "128", "160", "--seed", "1"]) == 0
    images = sorted((scenes / "images").glob("*.png"))
    masks = sorted((scenes / "labels").glob("*.tif"))
    assert len(images) == 3 and len(masks) == 3
    assert read_image(images[0]).shape == (128, 160)
    assert read_image(masks[0]).max() > 0
    assert "synth: 3 scenes" in capsys.readouterr().out


def test_bad_inputs_exit_nonzero_with_message(tmp_path, capsys):
    assert main(["autoseg", str(tmp_path / "missing.png"), "--bank", str(tmp_path / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["autoseg", str(empty), "--bank", str(tmp_path / "b")]) == 2
    assert "holds no images" in capsys.readouterr().err

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert main(["autoseg", str(text), "--bank", str(tmp_path / "b")]) == 2
    assert "not an image" in capsys.readouterr().err

    not_bank = tmp_path / "stuff"
    not_bank.mkdir()
    (not_bank / "precious.txt").write_text("keep me")
    img = tmp_path / "img.png"
    write_png(img, np.zeros((32, 32), np.uint8))
    assert main(["autoseg", str(img), "--bank", str(not_bank)]) == 2
    assert "not" in capsys.readouterr().err.lower()
    assert (not_bank / "precious.txt").read_text() == "keep me"

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "broken.png").write_bytes(b"\x89PNG garbage")
    write_png(corrupt / "fine.png", np.zeros((32, 32), np.uint8))
    assert main(["autoseg", str(corrupt), "--bank", str(tmp_path / "b2")]) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.out + captured.err


def test_image_without_objects_is_reported(tmp_path, capsys):
    img = tmp_path / "flat.png"
    write_png(img, np.full((64, 64), 80, np.uint8))
    assert main(["autoseg", str(img), "--bank", str(tmp_path / "bank")]) == 1
    assert "no objects found in flat.png" in capsys.readouterr().err


def test_synth_refuses_empty_bank(tmp_path, capsys):
    from napari_synthseg.bank import ObjectBank

    ObjectBank(tmp_path / "bank")
    assert main(["synth", "--bank", str(tmp_path / "bank"), "--out", str(tmp_path / "o"), "-n", "2"]) == 2
    assert "holds no objects" in capsys.readouterr().err
    # a mistyped bank path is an error, not a new empty bank
    assert main(["synth", "--bank", str(tmp_path / "bnak"), "--out", str(tmp_path / "o"), "-n", "2"]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "bnak").exists()


def test_autoseg_zarr_output_and_resume(tmp_path, capsys):
    from napari_synthseg.largeimage import is_complete, read_labels
    from napari_synthseg.sample_data import write_sample_folder

    images_dir, _ = write_sample_folder(tmp_path / "sample", n=2, shape=(192, 256))
    out = tmp_path / "labels"
    args = ["autoseg", str(images_dir), "--bank", str(tmp_path / "bank"), "--labels-out", str(out), "--zarr-out"]
    assert main(args) == 0
    stores = sorted(out.glob("*_labels.zarr"))
    assert len(stores) == 2 and all(is_complete(s) for s in stores)
    first = read_labels(stores[0])
    assert first.shape == (192, 256) and first.max() > 0
    capsys.readouterr()
    # a re-run resumes: complete outputs are skipped, not redone
    assert main(args) == 0
    assert "0 images segmented, 2 already done" in capsys.readouterr().out
    np.testing.assert_array_equal(read_labels(stores[0]), first)
