"""Tiled, lazy, resumable processing of large images (napari_synthseg.largeimage)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

from napari_synthseg.autoseg import autosegment
from napari_synthseg.largeimage import (
    COMPLETE_ATTR,
    AutosegSegmenter,
    LargeImageError,
    is_complete,
    open_image,
    open_lazy,
    process_large,
    read_labels,
    run_batch,
)
from napari_synthseg.ome_zarr_io import labels_array


def blob_image(shape=(300, 410), n=60, seed=0):
    """uint8 image of bright discs of many sizes (many cross a 64-px tile grid) on noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(n):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 14)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.5, 1)
    return (img * 200 + rng.normal(0, 10, shape)).clip(0, 255).astype(np.uint8)


def threshold_labels(tile, level=80):
    """A simple per-tile labelling: smooth, threshold, 8-connected components."""
    smooth = ndi.gaussian_filter(np.asarray(tile, np.float32), 1.0, mode="nearest")
    return ndi.label(smooth > level, structure=np.ones((3, 3)))[0]


def assert_same_up_to_renumbering(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a > 0, b > 0)
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    # one-to-one correspondence of ids
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def crossing_objects(labels, tile):
    """Ids of objects that span a tile border of the grid."""
    ids = set()
    for k in range(tile, labels.shape[0], tile):
        ids |= set(np.intersect1d(labels[k - 1], labels[k]).tolist())
    for k in range(tile, labels.shape[1], tile):
        ids |= set(np.intersect1d(labels[:, k - 1], labels[:, k]).tolist())
    return ids - {0}


@pytest.fixture(scope="module")
def image():
    return blob_image()


def test_tiled_equals_in_memory_for_simple_labelling(image, tmp_path):
    expected = threshold_labels(image)
    assert len(crossing_objects(expected, 64)) >= 10  # the test means something
    result = process_large(image, tmp_path / "out.zarr", threshold_labels, tile=64, overlap=32)
    got = read_labels(tmp_path / "out.zarr")
    assert_same_up_to_renumbering(got, expected)
    assert result.n_objects == int(expected.max()) == int(got.max())
    assert result.merged > 0 and result.n_tiles == 5 * 7
    assert got.dtype == np.uint32


@pytest.mark.parametrize("params", [
    dict(method="manual", threshold=80, polarity="bright", split_touching=False, ignore_box=None),
    dict(method="otsu", polarity="auto", split_touching=False, ignore_box="auto"),
    dict(method="otsu", split_touching=True, max_area=300, clear_border=True, ignore_box=None),
])
def test_tiled_autosegment_equals_in_memory(image, tmp_path, params):
    expected = autosegment(image, **params)
    process_large(image, tmp_path / "a.zarr", AutosegSegmenter(params), tile=64, overlap=48)
    assert_same_up_to_renumbering(read_labels(tmp_path / "a.zarr"), expected)


def test_zarr_round_trip_with_plain_zarr_and_tiff_output(image, tmp_path):
    src = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=image.shape, chunks=(50, 70),
                          dtype=image.dtype)
    src[...] = image
    assert open_image(tmp_path / "in.zarr").kind == "zarr"
    assert open_lazy(tmp_path / "in.zarr").shape == image.shape
    process_large(tmp_path / "in.zarr", tmp_path / "out.zarr", threshold_labels, tile=64, overlap=32)
    # the output is an OME-Zarr image with the labels in labels/segmentation, chunked like the tiles
    labels = labels_array(tmp_path / "out.zarr")
    assert labels.dtype == np.uint32 and labels.chunks == (64, 64)
    assert zarr.open_group(str(tmp_path / "out.zarr"), mode="r").attrs[COMPLETE_ATTR] is True
    assert_same_up_to_renumbering(np.asarray(labels[...]), threshold_labels(image))
    # TIFF output (tiled, compressed), from a compressed tiled TIFF input read chunk-wise
    tifffile.imwrite(tmp_path / "in.tif", image, tile=(64, 64), compression="zlib")
    assert open_image(tmp_path / "in.tif").kind == "tiff-zarr"
    process_large(tmp_path / "in.tif", tmp_path / "out.tif", threshold_labels, tile=64, overlap=32)
    assert_same_up_to_renumbering(tifffile.imread(tmp_path / "out.tif"), threshold_labels(image))
    assert not list(tmp_path.glob(".*partial"))  # no temporary left behind


def test_stack_and_rgb_inputs(image, tmp_path):
    stack = np.stack([image, image[::-1]])
    process_large(stack, tmp_path / "s.zarr", threshold_labels, tile=64, overlap=32)
    got = read_labels(tmp_path / "s.zarr")
    assert got.shape == stack.shape
    for k in range(2):
        assert_same_up_to_renumbering(got[k], threshold_labels(stack[k]))
    assert not np.intersect1d(np.unique(got[0]), np.unique(got[1])).any()  # ids unique across planes
    rgb = np.repeat(image[..., None], 3, axis=2)
    process_large(rgb, tmp_path / "rgb.zarr", threshold_labels, tile=64, overlap=32)
    assert_same_up_to_renumbering(read_labels(tmp_path / "rgb.zarr"), threshold_labels(image))


def test_bad_inputs_have_clear_errors(image, tmp_path):
    with pytest.raises(LargeImageError, match="integer labels"):
        process_large(image, tmp_path / "x.zarr", lambda t: t[:-1], tile=64, overlap=16)
    assert not (tmp_path / "x.zarr").exists() and not list(tmp_path.iterdir())
    (tmp_path / "exists.zarr").mkdir()
    with pytest.raises(FileExistsError):
        process_large(image, tmp_path / "exists.zarr", threshold_labels)
    with pytest.raises(LargeImageError, match=".zarr, .tif"):
        process_large(image, tmp_path / "x.png", threshold_labels)
    with pytest.raises(ValueError, match="overlap"):
        process_large(image, tmp_path / "y.zarr", threshold_labels, overlap=0)
    with pytest.raises(ValueError, match="does not exist"):
        open_image(tmp_path / "missing.zarr")
    assert not is_complete(tmp_path / "exists.zarr")


def test_distributed_local_cluster_matches_local_scheduler(image, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = process_large(image, tmp_path / "local.zarr", threshold_labels, tile=64, overlap=32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1")
        t0 = time.monotonic()
        result = process_large(image, tmp_path / "dist.zarr", threshold_labels, tile=64, overlap=32,
                               scheduler=cluster.scheduler_address)
        assert time.monotonic() - t0 < 60
        report = run_batch([tmp_path / "local.zarr"], tmp_path / "batch", _labels_of_labels,
                           scheduler=cluster.scheduler_address)
    assert result.scheduler.startswith("tcp://127.0.0.1")
    np.testing.assert_array_equal(read_labels(tmp_path / "dist.zarr"), read_labels(tmp_path / "local.zarr"))
    assert local.n_objects == result.n_objects
    assert report.ok and list(report.written) == ["local.zarr"]


def _labels_of_labels(labels):
    return (np.asarray(labels) > 0).astype(np.uint8)


def _write_folder(folder: Path, n: int) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = [blob_image((120, 150), n=12, seed=s) for s in range(n)]
    for k, img in enumerate(images):
        tifffile.imwrite(folder / f"img{k}.tif", img)
    return images


def test_batch_reports_corrupt_file_by_name_and_goes_on(tmp_path):
    images = _write_folder(tmp_path / "in", 3)
    (tmp_path / "in" / "broken.tif").write_bytes(b"not a tiff at all")
    seen = []
    report = run_batch(tmp_path / "in", tmp_path / "out", threshold_labels,
                       progress=lambda done, total: seen.append((done, total)))
    assert list(report.failed) == ["broken.tif"] and "broken.tif" not in report.written
    assert sorted(report.written) == ["img0.tif", "img1.tif", "img2.tif"]
    assert seen[-1] == (4, 4)
    for k, img in enumerate(images):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / f"img{k}_labels.tif"),
                                      threshold_labels(img))
    again = run_batch(tmp_path / "in", tmp_path / "out", threshold_labels)
    assert sorted(again.skipped) == ["img0.tif", "img1.tif", "img2.tif"] and not again.written
    assert "broken.tif" in again.failed and "broken.tif" in again.summary()


HANG_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from scipy import ndimage as ndi
    from napari_synthseg.largeimage import run_batch

    flag = Path(sys.argv[3])
    calls = 0

    def segment(image):
        global calls
        calls += 1
        if calls == 3:  # the third image: say so, then hang until killed
            flag.write_text("hanging")
            time.sleep(600)
        smooth = ndi.gaussian_filter(np.asarray(image, np.float32), 1.0, mode="nearest")
        return ndi.label(smooth > 80, structure=np.ones((3, 3)))[0]

    run_batch(sys.argv[1], sys.argv[2], segment, scheduler="sync", zarr_out=sys.argv[4] == "zarr")
""")


@pytest.mark.parametrize("kind", ["tif", "zarr"])
def test_batch_killed_midway_resumes_to_identical_outputs(tmp_path, kind):
    images = _write_folder(tmp_path / "in", 5)
    script = tmp_path / "hang.py"
    script.write_text(HANG_SCRIPT)
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / "out"), str(flag),
                             kind])
    try:
        deadline = time.monotonic() + 40
        while not flag.exists():
            assert proc.poll() is None, "the batch child exited early"
            assert time.monotonic() < deadline, "the batch child never reached the third image"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    suffix = ".zarr" if kind == "zarr" else ".tif"
    done = sorted(p.name[: -len(f"_labels{suffix}")] + ".tif" for p in (tmp_path / "out").iterdir()
                  if is_complete(p))
    # two images finished; the killed one left nothing that looks complete
    assert len(done) == 2
    report = run_batch(tmp_path / "in", tmp_path / "out", threshold_labels, zarr_out=kind == "zarr")
    assert sorted(report.skipped) == done
    assert sorted(report.written) == sorted({f"img{k}.tif" for k in range(5)} - set(done)) and report.ok
    fresh = run_batch(tmp_path / "in", tmp_path / "fresh", threshold_labels, zarr_out=kind == "zarr")
    assert fresh.ok
    for k in range(5):
        name = f"img{k}_labels{suffix}"
        np.testing.assert_array_equal(read_labels(tmp_path / "out" / name), read_labels(tmp_path / "fresh" / name))
        np.testing.assert_array_equal(read_labels(tmp_path / "out" / name), threshold_labels(images[k]))


def test_batch_sends_large_images_through_tiles(image, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "big.tif", image)
    seg = functools.partial(threshold_labels, level=80)
    blocks = []
    report = run_batch(folder, tmp_path / "out", seg, in_memory_pixels=10_000, tile=64, overlap=32,
                       tile_progress=lambda name, done, total: blocks.append((name, done, total)))
    assert report.written == {"big.tif": tmp_path / "out" / "big_labels.zarr"}
    n_blocks = -(-image.shape[0] // 64) * -(-image.shape[1] // 64)
    assert blocks[-1] == ("big.tif", 2 * n_blocks, 2 * n_blocks) and len(blocks) == 2 * n_blocks  # both passes
    assert_same_up_to_renumbering(read_labels(tmp_path / "out" / "big_labels.zarr"), threshold_labels(image))


def test_napari_reader_opens_finished_labels_lazily(image, tmp_path):
    from napari_synthseg._napari.reader import get_reader

    process_large(image, tmp_path / "img_labels.zarr", threshold_labels, tile=64, overlap=32)
    reader = get_reader(str(tmp_path / "img_labels.zarr"))
    (image_data, image_meta, image_kind), (data, meta, kind) = reader(str(tmp_path / "img_labels.zarr"))
    assert kind == "labels" and meta["name"] == "img_labels" and image_kind == "image" and image_meta["name"] == "img"
    assert_same_up_to_renumbering(np.asarray(data), threshold_labels(image))
    assert np.array_equal(np.asarray(image_data), image)
    plain = zarr.open_array(str(tmp_path / "plain.zarr"), mode="w", shape=(4, 4), dtype="uint8")
    plain[...] = 1
    assert get_reader(str(tmp_path / "plain.zarr")) is None  # not ours: left to other readers


def test_outputs_of_earlier_versions_stay_readable(image, tmp_path):
    """Before OME-Zarr, a ``.zarr`` output was one plain uint32 array with this package's attributes."""
    from napari_synthseg._napari.reader import get_reader

    old = zarr.open_array(str(tmp_path / "old_labels.zarr"), mode="w", shape=image.shape, dtype="uint32",
                          chunks=(64, 64), zarr_format=3)
    old[...] = threshold_labels(image)
    old.attrs.update({"napari_synthseg": {"kind": "labels"}, COMPLETE_ATTR: True})
    assert is_complete(tmp_path / "old_labels.zarr")
    assert np.array_equal(read_labels(tmp_path / "old_labels.zarr"), threshold_labels(image))
    ((data, meta, kind),) = get_reader(str(tmp_path / "old_labels.zarr"))(str(tmp_path / "old_labels.zarr"))
    assert kind == "labels" and np.array_equal(np.asarray(data), threshold_labels(image))


def test_ome_zarr_output_carries_the_pixel_size(image, tmp_path):
    from napari_synthseg.ome_zarr_io import zarr_pixel_size
    from napari_synthseg.pixel_size import PixelSize

    process_large(image, tmp_path / "a_labels.zarr", threshold_labels, tile=64, overlap=32,
                  pixel_size=PixelSize(2.5, "nm"))
    assert zarr_pixel_size(tmp_path / "a_labels.zarr") == PixelSize(2.5, "nm")
    root = zarr.open_group(str(tmp_path / "a_labels.zarr"), mode="r")
    meta = root["labels/segmentation"].attrs["multiscales"][0]
    assert meta["version"] == "0.4" and [a["unit"] for a in meta["axes"]] == ["nanometer", "nanometer"]
    assert meta["datasets"][0]["coordinateTransformations"][0] == {"type": "scale", "scale": [2.5, 2.5]}
    assert root["labels/segmentation"].attrs["image-label"]["version"] == "0.4"


def test_ome_zarr_input_passes_its_pixel_size_to_the_output(image, tmp_path):
    from napari_synthseg.ome_zarr_io import write_ome_labels
    from napari_synthseg.pixel_size import PixelSize, read_pixel_size

    # an OME-Zarr written by another tool: its image is the input, its scale the pixel size
    write_ome_labels(tmp_path / "in.zarr", np.zeros(image.shape, np.uint32), image, pixel_size=PixelSize(4, "nm"))
    assert read_pixel_size(tmp_path / "in.zarr") == PixelSize(4, "nm")
    process_large(tmp_path / "in.zarr", tmp_path / "out.tif", threshold_labels, tile=64, overlap=32)
    assert read_pixel_size(tmp_path / "out.tif") == PixelSize(4, "nm")
