"""Tests for the on-disk object bank."""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_synthseg.bank import BankObject, BankWarning, NotABankError, ObjectBank
from napari_synthseg.image_io import read_image, write_png


def two_blobs(dtype=np.uint8):
    """A 24x30 image with two touching objects (ids 3 and 7) and one tiny one (id 9)."""
    rng = np.random.default_rng(0)
    image = (rng.random((24, 30)) * 200 + 20).astype(dtype)
    labels = np.zeros((24, 30), np.uint32)
    labels[4:14, 3:12] = 3
    labels[6:16, 12:20] = 7  # touches object 3
    labels[20:22, 25:27] = 9  # 4 pixels
    return image, labels


def records(bank_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (bank_dir / "objects.jsonl").read_text().splitlines() if line.strip()]


def test_round_trip_with_provenance(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "bank")
    assert bank.add_from_labels(image, labels, source="scan.tif", min_area=5, padding=2) == 2

    reopened = ObjectBank(tmp_path / "bank", create=False)
    assert len(reopened) == 2
    objects = list(reopened)
    assert [o.meta["label"] for o in objects] == [3, 7]  # insertion order
    for obj in objects:
        assert isinstance(obj, BankObject)
        y0, x0, y1, x1 = obj.meta["bbox"]
        np.testing.assert_array_equal(obj.image, image[y0:y1, x0:x1])
        np.testing.assert_array_equal(obj.mask, labels[y0:y1, x0:x1] == obj.meta["label"])
        assert obj.image.dtype == np.uint8 and obj.mask.dtype == bool
        meta = obj.meta
        assert meta["source"] == "scan.tif" and meta["method"] == "autoseg" and meta["plane"] is None
        assert meta["area"] == 90 if meta["label"] == 3 else meta["area"] == 80
        assert meta["mean_intensity"] == pytest.approx(image[y0:y1, x0:x1][obj.mask].mean(), abs=1e-3)
        assert 0.0 <= meta["quality"] <= 1.0 and meta["solidity"] == 1.0 and 0 <= meta["eccentricity"] < 1
        assert meta["time"].endswith("+00:00")
        assert reopened.get(obj.id).id == obj.id
    # The crop of object 3 (padding 2) contains pixels of object 7, which are not in its mask.
    first = objects[0]
    y0, x0, y1, x1 = first.meta["bbox"]
    assert (labels[y0:y1, x0:x1] == 7).any()
    assert (y0, x0, y1, x1) == (2, 1, 16, 14)
    header = json.loads((tmp_path / "bank" / "bank.json").read_text())
    assert header["format"] == "napari-synthseg-bank/1"
    assert (tmp_path / "bank" / "objects" / f"{first.id}_mask.png").is_file()
    assert set(np.unique(read_image(tmp_path / "bank" / "objects" / f"{first.id}_mask.png"))) == {0, 255}
    assert reopened.get("no-such-id") is None


def test_ids_min_area_and_padding_clipped_at_border(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "b")
    assert bank.add_from_labels(image, labels, ids=[7, 9], min_area=1, padding=10) == 2
    by_label = {o.meta["label"]: o for o in bank}
    assert set(by_label) == {7, 9}
    assert by_label[9].meta["bbox"] == [10, 15, 24, 30]  # clipped to the image
    assert by_label[9].meta["touches_border"] is False
    assert bank.add_from_labels(image, labels, ids=3, min_area=1000) == 0


def test_adding_several_labelled_images_records_each_ones_source_plane_and_ids(tmp_path):
    from napari_synthseg.bank import LabelledImage, add_labelled_images, iter_add_labelled_images

    image, labels = two_blobs()
    other = np.ascontiguousarray(image[:, ::-1])  # other pixels: other objects
    bank = ObjectBank(tmp_path / "b")
    labelled = [LabelledImage(image, labels, source="a.tif", ids=[7]),
                LabelledImage(other, labels[:, ::-1], source="b.tif", plane=(2,))]
    adding = iter_add_labelled_images(bank, labelled, method="curated", judge_shapes=False)
    assert len(bank) == 0  # nothing is added before it is iterated
    assert next(adding) == 1 and len(bank) == 1
    assert list(adding) == [2]
    by_source = {}
    for obj in bank:
        by_source.setdefault(obj.meta["source"], []).append(obj.meta)
    assert [m["label"] for m in by_source["a.tif"]] == [7] and by_source["a.tif"][0]["plane"] is None
    assert sorted(m["label"] for m in by_source["b.tif"]) == [3, 7]
    assert all(m["plane"] == [2] and m["method"] == "curated" for m in by_source["b.tif"])
    assert "shape_verdict" not in by_source["a.tif"][0]  # judge_shapes=False banks masks as given
    # the same images again add nothing new; judged by shape they are banked as single particles
    assert add_labelled_images(bank, labelled, method="curated", judge_shapes=False) == 0
    judged = ObjectBank(tmp_path / "judged")
    assert add_labelled_images(judged, labelled) == 3
    assert all(o.meta["shape_verdict"] == "single" and o.meta["method"] == "autoseg" for o in judged)


def test_identical_objects_stored_once_and_never_overwritten(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "b")
    oid = bank.add_object(image[4:14, 3:12], labels[4:14, 3:12] == 3, source="a", method="curated")
    assert oid is not None and len(oid) == 16
    stored = tmp_path / "b" / "objects" / f"{oid}.png"
    before = (stored.stat().st_mtime_ns, stored.read_bytes())
    assert bank.add_object(image[4:14, 3:12], labels[4:14, 3:12] == 3, source="other") is None
    assert (stored.stat().st_mtime_ns, stored.read_bytes()) == before
    assert len(bank) == 1 and len(records(tmp_path / "b")) == 1
    assert bank.get(oid).meta["source"] == "a"
    # The same labels twice: nothing new; a different mask of the same crop is a new object.
    assert bank.add_from_labels(image, labels) == 2
    assert bank.add_from_labels(image, labels) == 0
    smaller_mask = labels[4:14, 3:12] == 3
    smaller_mask[0, 0] = False
    assert bank.add_object(image[4:14, 3:12], smaller_mask) is not None
    assert len(bank) == 4


def test_two_instances_stay_consistent(tmp_path):
    image, labels = two_blobs()
    first, second = ObjectBank(tmp_path / "b"), ObjectBank(tmp_path / "b")
    assert first.objects() == [] and len(second) == 0
    first.add_from_labels(image, labels, ids=[3])
    assert len(second) == 1 and len(second.objects()) == 1  # cache follows the manifest
    assert second.add_from_labels(image, labels) == 1  # 3 is already there, 7 is new
    assert len(first) == 2 and [o.meta["label"] for o in first.objects()] == [3, 7]
    assert first.content_hash() == second.content_hash()
    assert len(records(tmp_path / "b")) == 2


def test_threads_sharing_one_instance(tmp_path):
    image, labels = two_blobs()
    shared, other = ObjectBank(tmp_path / "b"), ObjectBank(tmp_path / "b")
    crops = [(image[y:y + 6, x:x + 6], labels[y:y + 6, x:x + 6] >= 0) for y in range(0, 18, 3) for x in range(0, 24, 3)]
    results = []
    workers = [threading.Thread(target=lambda bank=bank: results.extend(bank.add_object(*c) for c in crops))
               for bank in (shared, shared, other)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(r is not None for r in results) == len(crops) == len(shared) == len(records(tmp_path / "b"))


def _add_in_child(bank_dir: str, seed: int) -> int:
    rng = np.random.default_rng(seed)
    bank = ObjectBank(bank_dir)
    image = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    total = 0
    for _ in range(6):
        labels = np.zeros((64, 64), np.uint32)
        for k in rng.choice(16, size=5, replace=False):  # 16 possible objects; the children overlap
            y, x = divmod(int(k), 4)
            labels[y * 16 + 2:y * 16 + 12, x * 16 + 2:x * 16 + 12] = k + 1
        total += bank.add_from_labels(image, labels, min_area=1)
    return total


def test_two_processes_adding_concurrently(tmp_path):
    bank_dir = tmp_path / "b"
    ObjectBank(bank_dir)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        added = pool.starmap(_add_in_child, [(str(bank_dir), 1), (str(bank_dir), 2)])
    lines = records(bank_dir)
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)) == sum(added)
    bank = ObjectBank(bank_dir)
    assert len(bank) == len(ids) and len(bank.objects()) == len(ids)
    assert bank.problems == []


def test_corrupt_and_missing_object_files_are_skipped(tmp_path):
    image, labels = two_blobs()
    ObjectBank(tmp_path / "b").add_from_labels(image, labels, min_area=1)
    ids = [r["id"] for r in records(tmp_path / "b")]
    (tmp_path / "b" / "objects" / f"{ids[0]}.png").write_bytes(b"not a png")
    (tmp_path / "b" / "objects" / f"{ids[1]}_mask.png").unlink()
    bank = ObjectBank(tmp_path / "b")
    with pytest.warns(BankWarning, match="skipped") as caught:
        objects = bank.objects()
    assert sum(issubclass(w.category, BankWarning) for w in caught) == 2
    assert [o.id for o in objects] == [ids[2]]
    assert len(bank.problems) == 2 and ids[1] in bank.problems[1]
    assert bank.get(ids[0]) is None and len(bank) == 3
    assert len(bank.sample(np.random.default_rng(0), 5)) == 5


def test_corrupt_and_torn_manifest_lines_are_skipped(tmp_path):
    image, labels = two_blobs()
    ObjectBank(tmp_path / "b").add_from_labels(image, labels, ids=[3])
    manifest = tmp_path / "b" / "objects.jsonl"
    with open(manifest, "ab") as handle:
        handle.write(b"{this is not json\n[1, 2]\n")
        handle.write(b'{"id": "torn')  # a writer that died mid-line
    with pytest.warns(BankWarning, match="corrupt line"):
        bank = ObjectBank(tmp_path / "b")
    # the torn last line is said, not dropped silently (issue 14)
    assert len(bank) == 1 and len(bank.problems) == 3
    assert any("last line is incomplete" in p for p in bank.problems)
    with pytest.warns(BankWarning, match="torn"):
        assert bank.add_from_labels(image, labels, ids=[7]) == 1
    assert len(bank) == 2 and [o.meta["label"] for o in bank] == [3, 7]


def test_not_a_bank_errors(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(NotABankError, match="choose an empty folder or an existing bank") as info:
        ObjectBank(tmp_path / "photos")
    assert str(tmp_path / "photos") in str(info.value)
    with pytest.raises(NotABankError, match="does not exist"):
        ObjectBank(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(NotABankError, match="is a file"):
        ObjectBank(tmp_path / "photos" / "a.jpg")
    (tmp_path / "empty").mkdir()
    ObjectBank(tmp_path / "empty")
    assert ObjectBank.is_bank(tmp_path / "empty") and not ObjectBank.is_bank(tmp_path / "photos")


def test_import_and_export_reference_layout(tmp_path):
    rocks, masks = tmp_path / "Rocks", tmp_path / "Masks_of_Rocks"
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 150, 200
    mask = np.zeros((8, 10), np.uint8)
    mask[2:6, 3:8] = 255
    write_png(rocks / "rock_0.png", rgb)
    write_png(masks / "rock_0.png", mask)
    write_png(rocks / "rock_1.png", np.full((5, 5), 77, np.uint8))
    write_png(masks / "rock_1.png", np.eye(5, dtype=np.uint8))
    write_png(rocks / "only_image.png", rgb)
    write_png(masks / "only_mask.png", mask)
    bank = ObjectBank(tmp_path / "bank")
    with pytest.warns(BankWarning):
        assert bank.import_folder(rocks, masks) == 2
    assert sum("only_image" in p for p in bank.problems) == 1 and sum("only_mask" in p for p in bank.problems) == 1
    first, second = bank.objects()
    assert first.image.dtype == np.uint8 and first.image.shape == (8, 10)
    assert int(first.image[0, 0]) == round(0.2125 * 100 + 0.7154 * 150 + 0.0721 * 200)
    np.testing.assert_array_equal(first.mask, mask > 0)
    assert first.meta["method"] == "imported" and first.meta["source"].endswith("rock_0.png")
    np.testing.assert_array_equal(second.mask, np.eye(5, dtype=bool))

    assert bank.export_folder(tmp_path / "out" / "Rocks", tmp_path / "out" / "Masks_of_Rocks") == 2
    assert bank.export_folder(tmp_path / "out" / "Rocks", tmp_path / "out" / "Masks_of_Rocks") == 2
    again = ObjectBank(tmp_path / "again")
    assert again.import_folder(tmp_path / "out" / "Rocks", tmp_path / "out" / "Masks_of_Rocks") == 2
    assert again.content_hash() == bank.content_hash() and again.problems == []
    with pytest.raises(ValueError, match="not a folder"):
        bank.import_folder(tmp_path / "nope", masks)


def test_stack_records_planes(tmp_path):
    image, labels = two_blobs()
    stack_labels = np.stack([labels, np.where(labels == 7, 0, labels)])
    stack_image = np.stack([image, 255 - image])
    bank = ObjectBank(tmp_path / "b")
    assert bank.add_from_labels(stack_image, stack_labels, source="stack.tif") == 3  # 9 is below min_area
    assert [(o.meta["plane"], o.meta["label"]) for o in bank] == [([0], 3), ([0], 7), ([1], 3)]
    for obj in bank:
        (p,), (y0, x0, y1, x1) = obj.meta["plane"], obj.meta["bbox"]
        np.testing.assert_array_equal(obj.image, stack_image[p, y0:y1, x0:x1])
    assert bank.add_from_labels(image, labels, plane=5, ids=[3], padding=0) == 1
    assert bank.objects()[-1].meta["plane"] == 5


def test_sixteen_bit_float_and_rgb_crops(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "b")
    deep = image.astype(np.uint16) * 250
    floaty = image.astype(np.float64) / 7.0
    assert bank.add_from_labels(deep, labels, ids=[3]) == 1
    assert bank.add_from_labels(floaty, labels, ids=[3]) == 1
    assert bank.add_from_labels(np.stack([image] * 3, axis=-1), labels, ids=[3]) == 1
    assert bank.add_from_labels(image, labels, ids=[3]) == 0  # an RGB of a gray image is that gray image
    deep_obj, float_obj, rgb_obj = ObjectBank(tmp_path / "b").objects()
    assert rgb_obj.image.dtype == np.uint8
    y0, x0, y1, x1 = deep_obj.meta["bbox"]
    assert deep_obj.image.dtype == np.uint16 and deep_obj.meta["image"].endswith(".png")
    np.testing.assert_array_equal(deep_obj.image, deep[y0:y1, x0:x1])
    assert float_obj.image.dtype == np.float32 and float_obj.meta["image"].endswith(".tif")
    np.testing.assert_array_equal(float_obj.image, floaty[y0:y1, x0:x1].astype(np.float32))


def test_sampling(tmp_path):
    bank = ObjectBank(tmp_path / "b")
    with pytest.raises(ValueError, match="no readable objects"):
        bank.sample(np.random.default_rng(0), 3)
    image, labels = two_blobs()
    bank.add_from_labels(image, labels, min_area=1)
    first = [o.id for o in bank.sample(np.random.default_rng(5), 20)]
    assert first == [o.id for o in bank.sample(np.random.default_rng(5), 20)]
    assert len(set(first)) == 3  # with replacement, all drawn
    best = max(o.meta["quality"] for o in bank)
    assert {o.meta["quality"] for o in bank.sample(np.random.default_rng(0), 10, min_quality=best)} == {best}
    with pytest.raises(ValueError, match="lower min_quality"):
        bank.sample(np.random.default_rng(0), 1, min_quality=2.0)
    with pytest.raises(TypeError, match="Generator"):
        bank.sample(np.random.RandomState(0), 1)


def test_objects_are_cached_and_read_only(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "b")
    bank.add_from_labels(image, labels)
    assert bank.objects()[0] is bank.objects()[0]
    with pytest.raises(ValueError):
        bank.objects()[0].image[0, 0] = 1
    refreshed = bank.objects(refresh=True)
    assert refreshed[0] is not bank.objects(refresh=True)[0]
    np.testing.assert_array_equal(refreshed[0].image, bank.objects()[0].image)


def test_bad_input_messages(tmp_path):
    image, labels = two_blobs()
    bank = ObjectBank(tmp_path / "b")
    with pytest.raises(TypeError, match="integer"):
        bank.add_from_labels(image, labels.astype(np.float32))
    with pytest.raises(ValueError, match="does not match"):
        bank.add_from_labels(image[:10], labels)
    with pytest.raises(ValueError, match="empty"):
        bank.add_object(image, np.zeros(image.shape, bool))
    with pytest.raises(ValueError, match="differs"):
        bank.add_object(image[:5], labels > 0)
    with pytest.raises(TypeError, match="JSON"):
        bank.add_object(image, labels > 0, source=object())
    assert len(bank) == 0 and list((tmp_path / "b" / "objects").iterdir()) == []


def test_huge_label_values(tmp_path):
    image, labels = two_blobs()
    big = labels.astype(np.int64) * 1_000_000_007
    bank = ObjectBank(tmp_path / "b")
    assert bank.add_from_labels(image, big, min_area=1, ids=[7 * 1_000_000_007]) == 1
    assert bank.objects()[0].meta["label"] == 7 * 1_000_000_007


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 4)),
    seed=st.integers(0, 2**16),
    padding=st.integers(0, 3),
)
def test_property_round_trip_returns_each_objects_pixels(labels, seed, padding):
    image = np.random.default_rng(seed).integers(0, 65535, labels.shape).astype(np.uint16)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("error", BankWarning)
        bank = ObjectBank(folder)
        # arbitrary masks stored exactly as given (the shape judge, which may split or leave out
        # objects, is tested in test_add_from_labels_judges_shapes)
        bank.add_from_labels(image, labels, min_area=1, padding=padding, judge_shapes=False)
        stored = ObjectBank(folder).objects()
        expected = {}
        for label_id in np.unique(labels[labels > 0]):
            ys, xs = np.nonzero(labels == label_id)
            y0, x0 = max(ys.min() - padding, 0), max(xs.min() - padding, 0)
            y1, x1 = min(ys.max() + 1 + padding, labels.shape[0]), min(xs.max() + 1 + padding, labels.shape[1])
            expected[int(label_id)] = (image[y0:y1, x0:x1], labels[y0:y1, x0:x1] == label_id)
        assert {o.meta["label"] for o in stored} == set(expected)
        for obj in stored:
            crop, mask = expected[obj.meta["label"]]
            np.testing.assert_array_equal(obj.image, crop)
            np.testing.assert_array_equal(obj.mask, mask)
            assert obj.meta["area"] == int(mask.sum())


def test_add_from_labels_judges_shapes(tmp_path):
    """Clumps are banked as their parts; letters and scale bars are left out and counted."""
    from skimage.draw import disk, line

    rng = np.random.default_rng(1)
    image = (rng.normal(60, 10, (80, 160))).clip(0, 255).astype(np.uint8)
    labels = np.zeros(image.shape, np.uint32)
    labels[disk((20, 20), 10, shape=labels.shape)] = 1  # one particle
    labels[disk((20, 60), 10, shape=labels.shape)] = 2  # two touching particles, one label
    labels[disk((20, 79), 10, shape=labels.shape)] = 2
    for (r0, c0), (r1, c1) in [((40, 110), (70, 110)), ((55, 110), (40, 130)), ((55, 110), (70, 130))]:
        for dr in range(-1, 2):  # a "K", 3 px strokes
            rr, cc = line(r0, c0 + dr, r1, c1 + dr)
            labels[rr, cc] = 3
    labels[70:74, 10:90] = 4  # a scale bar
    image[labels > 0] = np.clip(image[labels > 0].astype(int) + 120, 0, 255)

    bank = ObjectBank(tmp_path / "b")
    assert bank.add_from_labels(image, labels, source="fig.png") == 3
    objects = bank.objects()
    assert [o.meta["label"] for o in objects] == [1, 2, 2]
    assert [o.meta["shape_verdict"] for o in objects] == ["single", "split from clump", "split from clump"]
    assert [o.meta.get("clump_parts") for o in objects] == [None, 2, 2]
    assert bank.left_out == {"thin stroke": 1, "straight bar": 1}
    for obj in objects:  # each part cropped to its own box, its mask within its label
        y0, x0, y1, x1 = obj.meta["bbox"]
        np.testing.assert_array_equal(obj.image, image[y0:y1, x0:x1])
        assert (labels[y0:y1, x0:x1][obj.mask] == obj.meta["label"]).all()
        assert obj.mask[2:-2, 2:-2].sum() == obj.mask.sum()  # padding 2 on every side
    left, right = objects[1:]
    assert abs(int(left.mask.sum()) - int(right.mask.sum())) <= 0.05 * left.mask.sum()
    assert left.meta["bbox"][3] <= right.meta["bbox"][3] - 10  # two different discs

    unjudged = ObjectBank(tmp_path / "c")
    assert unjudged.add_from_labels(image, labels, judge_shapes=False) == 4
    assert unjudged.left_out == {} and "shape_verdict" not in unjudged.objects()[0].meta
