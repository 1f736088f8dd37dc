"""Outputs of large-image runs: atomic OME-Zarr and TIFF labels, completeness, and their records.

An output appears under its final name only when complete (written beside it under a temporary
name, marked complete last); a JSON record beside a batch output says what it was made from.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..image_io import atomic_write, read_image
from .sources import LargeImageError

#: Attribute written last into a finished zarr output; its absence marks an unfinished one.
COMPLETE_ATTR = "napari_synthseg_complete"
#: Format of the record written beside each batch output (``record_path``).
RECORD_FORMAT = "napari-synthseg-output/1"


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a finished output of this module (zarr with the marker, or a TIFF)."""
    path = Path(path)
    if path.suffix.lower() == ".zarr":
        if not path.is_dir():
            return False
        try:
            import zarr

            # an OME-Zarr group (this version) or one plain array (earlier versions)
            return bool(zarr.open(str(path), mode="r").attrs.get(COMPLETE_ATTR, False))
        except Exception:
            return False
    if path.suffix.lower() in (".tif", ".tiff"):
        if not path.is_file():
            return False
        try:
            import tifffile

            size = path.stat().st_size
            with tifffile.TiffFile(str(path)) as tif:
                if len(tif.pages) == 0:
                    return False
                for page in tif.pages:  # a truncated file names data beyond its end
                    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
                    if ends and max(ends) > size:
                        return False
                return True
        except Exception:
            return False
    return path.is_file()


def record_path(output: str | os.PathLike) -> Path:
    """The JSON record beside a batch output: ``<stem>_labels.json`` for ``<stem>_labels.tif``/``.zarr``."""
    output = Path(output)
    return output.with_name(output.name[: -len(output.suffix)] + ".json") if output.suffix else \
        output.with_name(output.name + ".json")


def output_record(input_path: str | os.PathLike, params: dict | None) -> dict:
    """What a batch output was made from: the input (path, size, mtime) and the parameters."""
    input_path = Path(input_path)
    try:
        stat = input_path.stat()
        size = stat.st_size if input_path.is_file() else None
        mtime = stat.st_mtime_ns
    except OSError:
        size = mtime = None
    return {"format": RECORD_FORMAT, "input": {"path": str(input_path.resolve()), "size": size, "mtime_ns": mtime},
            "params": _plain(params)}


def _plain(value):
    """``value`` as JSON would give it back (tuples as lists), so records compare equal after a round trip."""
    import json

    return json.loads(json.dumps(value, default=str))


def _output_size(output: Path) -> int | None:
    return output.stat().st_size if output.is_file() else None


def write_record(output: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` (from ``output_record``) beside a finished ``output``, with the output's size."""
    import json

    output = Path(output)
    record = dict(record, output={"name": output.name, "size": _output_size(output)})
    text = json.dumps(record, indent=2) + "\n"
    return atomic_write(record_path(output), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def existing_output_state(output: str | os.PathLike, record: dict) -> str:
    """How an existing output relates to this run: ``"missing"`` (or damaged: to be made),
    ``"same"`` (complete, made from the same input with the same parameters, unchanged since),
    ``"other"`` (complete but from other parameters or input, changed since, or without a record)."""
    import json

    output = Path(output)
    if not output.exists() or not is_complete(output):
        return "missing"
    try:
        saved = json.loads(record_path(output).read_text("utf-8"))
    except (OSError, ValueError):
        return "other"
    if not isinstance(saved, dict) or saved.get("format") != RECORD_FORMAT:
        return "other"
    same = (saved.get("input") == record["input"] and saved.get("params") == record["params"]
            and (saved.get("output") or {}).get("size") == _output_size(output))
    return "same" if same else "other"


class OutputExistsError(FileExistsError):
    """Outputs of a batch exist and were not made by this run's input and parameters."""


def _write_tiff_from_zarr(zarr_path: Path, tiff_path: Path, band: int = 1024, pixel_size=None) -> None:
    """Stream a 2D (or stacked) uint32 zarr into a tiled, compressed TIFF, band by band (with ``pixel_size``)."""
    import tifffile
    import zarr

    from ..pixel_size import tiff_write_options

    arr = zarr.open_array(str(zarr_path), mode="r")
    height, width = arr.shape[-2:]
    tile_side = 256

    def tiles():
        for plane in (np.ndindex(*arr.shape[:-2]) if arr.ndim > 2 else [()]):
            for r0 in range(0, height, band):
                rows = np.asarray(arr[tuple(plane) + (slice(r0, min(height, r0 + band)), slice(None))])
                for tr in range(0, rows.shape[0], tile_side):
                    for tc in range(0, width, tile_side):
                        piece = np.zeros((tile_side, tile_side), dtype=np.uint32)
                        part = rows[tr: tr + tile_side, tc: tc + tile_side]
                        piece[: part.shape[0], : part.shape[1]] = part
                        yield piece

    if band % tile_side:
        raise ValueError("band must be a multiple of 256")
    nbytes = int(np.prod(arr.shape)) * 4
    atomic_write(tiff_path, lambda tmp: tifffile.imwrite(
        tmp, tiles(), shape=arr.shape, dtype=np.uint32, tile=(tile_side, tile_side),
        compression="zlib", bigtiff=nbytes > 2 ** 32 - 2 ** 25, **tiff_write_options(pixel_size, labels=True)))


def write_ome_output(out: Path, labels, image, pixel_size, record: dict, chunk: int = 2048) -> None:
    """Write labels (and their image) as an OME-Zarr group through a temporary sibling; mark it complete last."""
    from ..ome_zarr_io import write_ome_labels

    work = _tmp_sibling(out)
    try:
        write_ome_labels(work, labels, image, pixel_size=pixel_size, attrs={"napari_synthseg": record}, chunk=chunk)
        import zarr

        zarr.open_group(str(work), mode="r+").attrs[COMPLETE_ATTR] = True
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def labels_outputs(folder: str | os.PathLike) -> list[Path]:
    """The finished labels outputs in a folder, sorted: ``*_labels.tif``/``.tiff`` files and complete
    ``*_labels.zarr`` stores (``synthseg predict``'s, with or without ``--zarr-out``)."""
    found = []
    for path in sorted(Path(folder).iterdir()):
        suffix = path.suffix.lower()
        if not path.stem.endswith("_labels"):
            continue
        if (suffix in (".tif", ".tiff") and path.is_file()) or (suffix == ".zarr" and is_complete(path)):
            found.append(path)
    return found


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a finished labels output (zarr or TIFF) fully into memory (for tests and small images)."""
    path = Path(path)
    if not is_complete(path):
        raise LargeImageError(f"{path} is not a complete labels output (missing or half-written)")
    if path.suffix.lower() == ".zarr":
        from ..ome_zarr_io import labels_array

        return np.asarray(labels_array(path)[...])
    return read_image(path)
