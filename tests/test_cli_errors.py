"""Bad and unusual input through `synthseg`: one line, the right exit status, nothing earlier changed."""

import hashlib
import json
import os
import signal
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from napari_synthseg.cli import main, progress, train_commands
from napari_synthseg.image_io import write_png
from napari_synthseg.sample_data import write_sample_folder

TINY = ["--base-filters", "4", "--depth", "2", "--patch", "64"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Images, a bank, labels and a 2-step model made once; the cases must leave them as they are."""
    root = tmp_path_factory.mktemp("made")
    old = os.umask(0o022)
    try:
        images, masks = write_sample_folder(root / "sample", n=2, shape=(96, 128), seed=2)
        assert main(["autoseg", str(images), "--bank", str(root / "bank"), "--labels-out", str(root / "labels"),
                     "--method", "edge"]) == 0
        assert main(["train", "--bank", str(root / "bank"), "--backgrounds", str(images), "--model-out",
                     str(root / "model.keras"), "--steps", "2", *TINY]) == 0
    finally:
        os.umask(old)
    (root / "afile").write_text("a file, not a folder")
    (root / "adir.keras").mkdir()
    (root / "notes.png").write_text("a text file named like an image")
    import tifffile

    tifffile.imwrite(root / "stack.tif", np.zeros((3, 64, 64), np.uint8))
    tifffile.imwrite(root / "five.tif", np.zeros((64, 64, 5), np.uint8))
    return {"root": root, "images": images, "masks": masks, "bank": root / "bank", "labels": root / "labels",
            "model": root / "model.keras"}


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _call(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# name, argv (with {placeholders} from the fixture), exit status, words the one line must hold
CASES = [
    ("sigma-negative", "autoseg {images} --bank {new}/b --sigma -1", 2, "--sigma"),
    ("min-area-negative", "autoseg {images} --bank {new}/b --min-area -1", 2, "--min-area"),
    ("manual-without-threshold", "autoseg {images} --bank {new}/b --method manual", 2, "--threshold"),
    ("ignore-box-inverted", "autoseg {images} --bank {new}/b --ignore-box 50,10,0,20", 2, "--ignore-box"),
    ("bank-is-a-file", "autoseg {images} --bank {root}/afile", 2, "is a file"),
    ("labels-out-is-a-file", "autoseg {images} --bank {new}/b --labels-out {root}/afile", 2, "is a file"),
    ("rerun-with-other-method", "autoseg {images} --bank {new}/b --labels-out {labels} --method otsu", 2,
     "--overwrite"),
    ("tile-zero", "predict {model} {images} --out {new}/p --tile 0", 2, "--tile"),
    ("model-is-a-folder", "predict {root}/adir.keras {images} --out {new}/p", 2, "folder"),
    ("predict-out-is-a-file", "predict {model} {images} --out {root}/afile", 2, "is a file"),
    ("seed-negative", "train --bank {bank} --backgrounds {images} --model-out {new}/m.keras --steps 2 --seed -1",
     2, "--seed"),
    ("model-exists", "train --bank {bank} --backgrounds {images} --model-out {model} --steps 2", 2, "--overwrite"),
    ("model-out-is-a-folder", "train --bank {bank} --backgrounds {images} --model-out {root}/adir.keras --steps 2",
     2, "folder"),
    ("resume-without-model",
     "train --bank {bank} --backgrounds {images} --model-out {new}/m.keras --steps 2 --resume", 2, "--resume"),
    ("bank-mistyped-train", "train --bank {new}/bnak --backgrounds {images} --model-out {new}/m.keras --steps 2",
     2, "does not exist"),
    ("bank-mistyped-synth", "synth --bank {new}/bnak --out {new}/s -n 2", 2, "does not exist"),
    ("synth-out-is-a-file", "synth --bank {bank} --out {root}/afile -n 2", 2, "is a file"),
    ("demo-out-is-a-file", "demo --out {root}/afile", 2, "is a file"),
    ("object-size-zero", "run {images} --out {new}/r --steps 1 --object-size 0", 2, "--object-size"),
    ("object-size-negative", "run {images} --out {new}/r --steps 1 --object-size -5", 2, "--object-size"),
    ("max-shrink-under-one-run", "run {images} --out {new}/r --steps 1 --max-shrink 0.5", 2,
     "--max-shrink must be a number >= 1 (1: never shrink), got 0.5"),
    ("max-shrink-nan-predict", "predict {model} {images} --out {new}/p --max-shrink nan", 2, "--max-shrink"),
    ("run-labels-exist", "run {images} --out {labels} --model-out {new}/m.keras --steps 1", 2, "--overwrite"),
    ("run-model-exists", "run {images} --out {new}/r --model-out {model} --steps 1", 2, "--overwrite"),
    ("run-gt-dir-mistyped", "run {images} --out {new}/r --steps 1 --gt-dir {new}/masks", 2, "does not exist"),
    ("run-bad-image", "run {root}/notes.png --out {new}/r --steps 1", 2, "cannot read"),
    ("run-blank-stack", "run {root}/stack.tif --out {new}/r --steps 1", 2, "found no objects"),
    ("five-channels", "autoseg {root}/five.tif --bank {new}/b --labels-out {new}/l", 1, "5 colour channels"),
    ("evaluate-no-labels", "evaluate {root}/adir.keras {masks}", 2, "holds no images"),
    ("evaluate-worst-negative", "evaluate {labels} {masks} --worst -1", 2, "--worst"),
    ("scheduler-bad-word", "autoseg {images} --bank {new}/b --scheduler nowhere", 2, "scheduler"),
    ("steps-not-a-number", "train --bank {bank} --backgrounds {images} --model-out {new}/m.keras --steps x", 2,
     "--steps"),
    ("not-an-image", "autoseg {root}/notes.png --bank {new}/b --labels-out {new}/l", 1, "notes.png"),
    ("evaluate-split-without-columns", "evaluate {labels} {masks} --split {root}/afile --subset tune", 2,
     "image,half"),
]


@pytest.mark.parametrize("name,template,status,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(made, tmp_path, capsys, name, template, status, words):
    before = _snapshot(made["root"])
    argv = template.format(new=tmp_path, **{k: v for k, v in made.items()}).split()
    code, out, err = _call(argv, capsys)
    assert code == status, (out, err)
    assert "Traceback" not in out + err
    problems = [line for line in err.splitlines() if "error" in line or line.startswith("failed")]
    assert len(problems) == 1 and words in problems[0], err
    assert not any(line.startswith("usage:") for line in err.splitlines())  # argparse's too is one line
    assert _snapshot(made["root"]) == before
    if status == 2:  # refused before any work: nothing made
        assert not any(tmp_path.iterdir()), sorted(tmp_path.iterdir())


def test_unreachable_scheduler_is_one_line_quickly(made, tmp_path, capsys):
    t0 = time.perf_counter()
    code, out, err = _call(["autoseg", str(made["images"]), "--bank", str(tmp_path / "b"),
                            "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert "cannot reach a dask scheduler" in err and time.perf_counter() - t0 < 20


def test_debug_shows_the_traceback(made, tmp_path, capsys):
    code, _, err = _call(["--debug", "autoseg", str(made["root"] / "missing.png"), "--bank", str(tmp_path / "b")],
                         capsys)
    assert code == 2 and "Traceback" in err and "does not exist" in err


def test_existing_model_survives_a_second_train(made, tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(made["model"].read_bytes())
    kept = model.read_bytes()
    args = ["train", "--bank", str(made["bank"]), "--backgrounds", str(made["images"]), "--model-out", str(model),
            "--steps", "2", *TINY]
    code, _, err = _call(args, capsys)
    assert code == 2 and "--overwrite" in err and model.read_bytes() == kept
    code, out, _ = _call(args + ["--overwrite"], capsys)
    assert code == 0 and "train: 2 steps" in out and model.read_bytes() != kept


def test_missing_backend_is_found_before_work(made, tmp_path, capsys, monkeypatch):
    from napari_synthseg import backend

    monkeypatch.setattr(backend, "missing_backend_message",
                        lambda backend=None: 'model training needs \'tensorflow\'; install it with: pip install '
                                             '"napari-synthseg[cpu]"')
    for argv in (["train", "--bank", str(made["bank"]), "--backgrounds", str(made["images"]), "--model-out",
                  str(tmp_path / "m.keras"), "--steps", "2"],
                 ["predict", str(made["model"]), str(made["images"]), "--out", str(tmp_path / "p")],
                 ["run", str(made["images"]), "--out", str(tmp_path / "r"), "--steps", "1"],
                 ["demo", "--out", str(tmp_path / "d")]):
        code, out, err = _call(argv, capsys)
        assert code == 2 and 'pip install "napari-synthseg[cpu]"' in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_outputs_follow_the_umask(made, tmp_path, capsys):
    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(made["model"]) == 0o644 and mode(made["model"].with_suffix(".json")) == 0o644
    files = [p for p in list(made["labels"].iterdir()) + list(made["bank"].rglob("*")) if p.is_file()]
    assert files and all(mode(p) == 0o644 for p in files if p.name != ".lock"), {p.name: oct(mode(p)) for p in files}
    old = os.umask(0o027)
    try:
        assert main(["autoseg", str(made["images"]), "--bank", str(tmp_path / "b"), "--labels-out",
                     str(tmp_path / "l"), "--method", "edge"]) == 0
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "l").iterdir()] + [p for p in (tmp_path / "b").rglob("*.png")]
    assert written and all(mode(p) == 0o640 for p in written)


def test_ctrl_c_in_train_keeps_a_loadable_model(made, tmp_path, capsys, monkeypatch):
    from napari_synthseg.model.prediction import load_model

    real_bar = progress._bar

    def bar_that_presses_ctrl_c(*args, **kwargs):
        bar = real_bar(*args, **kwargs)
        refresh = bar.refresh

        def refresh_and_interrupt(*a, **k):
            if bar.n >= 1 and not getattr(bar, "pressed", False):
                bar.pressed = True
                os.kill(os.getpid(), signal.SIGINT)  # as the user's Ctrl-C, after the first step
            return refresh(*a, **k)

        bar.refresh = refresh_and_interrupt
        return bar

    monkeypatch.setattr(train_commands, "_bar", bar_that_presses_ctrl_c)  # the name train's command uses
    model = tmp_path / "m.keras"
    code, out, err = _call(["train", "--bank", str(made["bank"]), "--backgrounds", str(made["images"]),
                            "--model-out", str(model), "--steps", "500", *TINY], capsys)
    assert code == 130 and "Traceback" not in err
    assert "the best model so far (from step" in err and str(model) in err
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["training"]["cancelled"] is True and info["training"]["last_step"] < 500
    assert load_model(model) is not None


def test_interrupt_before_the_first_validation_saves_the_model(made, tmp_path):
    from napari_synthseg.bank import ObjectBank
    from napari_synthseg.model.prediction import load_model
    from napari_synthseg.model.training import train_model

    pressed = []

    def press_ctrl_c(progress):
        if progress.step >= 1 and not pressed:
            pressed.append(True)
            raise KeyboardInterrupt

    model = tmp_path / "m.keras"
    result = train_model(ObjectBank(made["bank"], create=False), None, model, steps=200, patch=64, batch_size=2,
                         base_filters=4, depth=2, validation_scenes=2, callbacks=[press_ctrl_c])
    assert result.cancelled and result.steps_done < 200
    assert load_model(model) is not None


def test_predict_takes_a_stack(made, tmp_path, capsys):
    import tifffile

    from napari_synthseg.image_io import read_image

    plane = read_image(sorted(made["images"].iterdir())[0])
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    tifffile.imwrite(stack_dir / "stack.tif", np.stack([plane, plane[::-1]]))
    code, out, err = _call(["predict", str(made["model"]), str(stack_dir), "--out", str(tmp_path / "p"),
                            "--tile", "64", "--min-confidence", "0"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "p" / "stack_labels.tif").shape == (2,) + plane.shape
    record = json.loads((tmp_path / "p" / "stack_labels.json").read_text())
    assert record["params"]["model"]["path"] == str(made["model"].resolve())
    code, out, _ = _call(["predict", str(made["model"]), str(stack_dir), "--out", str(tmp_path / "p"),
                          "--tile", "64", "--min-confidence", "0"], capsys)
    assert code == 0 and "0 images segmented, 1 already done" in out
    code, _, err = _call(["predict", str(made["model"]), str(stack_dir), "--out", str(tmp_path / "p"),
                          "--tile", "64", "--min-confidence", "0.5"], capsys)
    assert code == 2 and "--overwrite" in err


def test_reruns_redo_what_is_not_done(made, tmp_path, capsys):
    labels = tmp_path / "labels"
    args = ["autoseg", str(made["images"]), "--bank", str(tmp_path / "b"), "--labels-out", str(labels),
            "--method", "edge"]
    assert _call(args, capsys)[0] == 0
    outputs = sorted(labels.glob("*_labels.tif"))
    records = [json.loads(p.with_suffix(".json").read_text()) for p in outputs]
    assert len(outputs) == 2 and all(r["params"]["method"] == "edge" for r in records)
    code, out, _ = _call(args, capsys)
    assert code == 0 and "0 images segmented, 2 already done" in out
    # a damaged output is not done: it is made again
    data = outputs[0].read_bytes()
    outputs[0].write_bytes(data[: len(data) // 2])
    code, out, _ = _call(args, capsys)
    assert code == 0 and "1 images segmented, 1 already done" in out and outputs[0].read_bytes() == data
    # other settings: refused, then replaced and recorded with --overwrite
    other = args[:-1] + ["otsu"]
    assert _call(other, capsys)[0] == 2 and outputs[0].read_bytes() == data
    assert _call(other + ["--overwrite"], capsys)[0] == 0
    assert json.loads(outputs[0].with_suffix(".json").read_text())["params"]["method"] == "otsu"


def test_a_folder_holding_its_own_labels_is_not_segmented_twice(made, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in made["images"].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    args = ["autoseg", str(folder), "--bank", str(tmp_path / "b"), "--labels-out", str(folder), "--method", "edge"]
    assert _call(args, capsys)[0] == 0
    code, out, err = _call(args, capsys)
    assert code == 0 and "0 images segmented, 2 already done" in out and "not segmented" in err
    assert not list(folder.glob("*_labels_labels.tif"))


def test_evaluate_reads_masks_as_saved_and_writes_json(made, tmp_path, capsys):
    from napari_synthseg.image_io import read_image, write_tiff

    masks = tmp_path / "masks"
    stems = sorted(p.stem for p in made["masks"].iterdir())
    for i, stem in enumerate(stems):
        gt = read_image(made["masks"] / f"{stem}.tif")
        if i == 0:  # RGBA: objects white, alpha opaque everywhere
            rgba = np.zeros(gt.shape + (4,), np.uint8)
            rgba[gt > 0, :3] = 255
            rgba[..., 3] = 255
            write_png(masks / f"{stem}.png", rgba)
        else:  # float labels
            write_tiff(masks / f"{stem}.tif", gt.astype(np.float32))
    split = tmp_path / "split.csv"
    split.write_text("image,half\n" + f"{stems[0]}.png,tune\n{stems[1]}.png,check\n")
    out_json = tmp_path / "scores.json"
    code, out, err = _call(["evaluate", str(made["labels"]), str(masks), "--json", str(out_json)], capsys)
    assert code == 0, err
    assert "AP " in out and "AP50" in out and "AP75" in out
    scores = json.loads(out_json.read_text())
    assert set(scores["images"]) == set(stems) and scores["pooled"]["n_images"] == 2
    assert {"ap", "ap_50", "ap_75", "pixel_iou", "object_f1"} <= set(scores["pooled"])
    # the images holding the error, worst first, each with the pooled scores of the others
    assert "images holding most of the error" in out and "without it: pixel IoU" in out
    assert [entry["name"] for entry in scores["worst"]] == [entry["name"] for entry in sorted(
        scores["worst"], key=lambda e: -max(e["pixel_share"], e["object_share"]))]
    assert {entry["name"] for entry in scores["worst"]} <= set(stems)
    # alpha is not an object: the RGBA mask scores like the mask it came from
    code, _, _ = _call(["evaluate", str(made["labels"]), str(made["masks"]), "--json", str(tmp_path / "ref.json")],
                       capsys)
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert scores["images"][stems[0]]["pixel_iou"] == pytest.approx(reference["images"][stems[0]]["pixel_iou"])
    assert scores["images"][stems[1]]["ap"] == pytest.approx(reference["images"][stems[1]]["ap"])

    code, out, _ = _call(["evaluate", str(made["labels"]), str(masks), "--split", str(split), "--subset", "check"],
                         capsys)
    assert code == 0 and "evaluate: 1 images" in out
    code, _, err = _call(["evaluate", str(made["labels"]), str(masks), "--split", str(split), "--subset", "x"],
                         capsys)
    assert code == 2 and "--subset 'x' names no image" in err and "Traceback" not in err


def test_ctrl_c_in_run_keeps_the_model_and_says_where(made, tmp_path, capsys, monkeypatch):
    from napari_synthseg.model.prediction import load_model

    real_bar = progress._bar

    def bar_that_presses_ctrl_c(total, desc, *args, **kwargs):
        bar = real_bar(total, desc, *args, **kwargs)
        refresh = bar.refresh

        def refresh_and_interrupt(*a, **k):
            if desc.startswith("train") and bar.n >= 1 and not getattr(bar, "pressed", False):
                bar.pressed = True
                os.kill(os.getpid(), signal.SIGINT)
            return refresh(*a, **k)

        bar.refresh = refresh_and_interrupt
        return bar

    monkeypatch.setattr(progress, "_bar", bar_that_presses_ctrl_c)  # run's stage bars are made there
    out = tmp_path / "out"
    code, _, err = _call(["run", str(made["images"]), "--out", str(out), "--steps", "500", "--method", "edge",
                          "--base-filters", "4", "--depth", "2"], capsys)
    assert code == 130 and "Traceback" not in err
    assert f"the best model so far is in {out / 'model.keras'}" in err
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    assert load_model(out / "model.keras") is not None
    assert not list(out.glob("*_labels.tif"))  # stopped before segmenting


def _users_images(folder: Path) -> None:
    """One image of each kind users have, each with two bright blobs on a dark ground."""
    import tifffile
    from PIL import Image

    gray = np.full((96, 112), 30, np.uint8)
    gray[20:45, 20:45] = 220
    gray[55:80, 60:90] = 220
    folder.mkdir()
    Image.fromarray(gray > 100).save(folder / "one_bit.png")
    Image.fromarray(gray).convert("P").save(folder / "palette.png")
    tifffile.imwrite(folder / "gray_alpha.tif", np.stack([gray, np.full_like(gray, 255)], -1))
    floats = gray.astype(np.float32)
    floats[0, :20], floats[1, :20], floats[2, :20] = np.inf, -np.inf, np.nan
    tifffile.imwrite(folder / "float_inf.tif", floats)


def test_images_as_users_have_them_go_through_autoseg(tmp_path, capsys):
    from napari_synthseg.image_io import read_image

    _users_images(tmp_path / "images")
    code, out, err = _call(["autoseg", str(tmp_path / "images"), "--bank", str(tmp_path / "bank"),
                            "--labels-out", str(tmp_path / "labels"), "--ignore-box", "none"], capsys)
    assert code == 0, err
    assert "4 images segmented" in out and "Traceback" not in err
    for path in sorted((tmp_path / "labels").glob("*_labels.tif")):
        labels = read_image(path)
        assert labels.shape == (96, 112) and labels.max() == 2, path.name


def test_read_only_folders_are_found_before_work(made, tmp_path, capsys, monkeypatch):
    # the tests run as root, who may write anywhere: the folder is made read-only for the check itself
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda path, mode: False if Path(path) == read_only and mode & os.W_OK
                        else real_access(path, mode))
    for argv in (["train", "--bank", str(made["bank"]), "--backgrounds", str(made["images"]), "--model-out",
                  str(read_only / "m.keras"), "--steps", "2"],
                 ["synth", "--bank", str(made["bank"]), "--out", str(read_only / "scenes"), "-n", "1"],
                 ["autoseg", str(made["images"]), "--bank", str(read_only / "bank")],
                 ["predict", str(made["model"]), str(made["images"]), "--out", str(read_only)]):
        code, out, err = _call(argv, capsys)
        assert code == 2 and "permission denied" in err and "Traceback" not in err, argv
    assert not any(read_only.iterdir())
