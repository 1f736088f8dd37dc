"""Shape and intensity measurements of labelled objects, in pixels or physical units (pure core).

Every measurement is computed for all objects of an image at once (array operations, no
loop over objects or pixels in Python), so a folder of large label images measures in seconds.
Everything but the perimeter comes from the objects' horizontal runs (one entry per row piece):

- area, centroid, bounding box: sums and extremes over each object's runs (``numpy.bincount``);
- mean intensity: the image's running sums along rows, read at each run's ends;
- perimeter: scikit-image's estimator (``skimage.measure.perimeter``, 4-connectivity: border
  pixels weighted by the links to their border neighbours), evaluated for every object at once and
  extended to rectangular pixels;
- convex hull: the hull of the objects' pixel *squares* (ImageJ's convention: a w × h rectangle
  has Feret diameters √(w² + h²) and min(w, h)), found from each row's leftmost and rightmost pixels
  by removing non-convex vertices until none is left; Feret diameters, hull area and perimeter
  follow from its vertices.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .image_io import atomic_write

#: Measurements without a length dimension (ratios), in column order after the lengths.
RATIO_COLUMNS = ("aspect_ratio", "circularity", "solidity", "convexity")


def measurement_columns(unit: str = "px", *, plane: bool = True, intensity: bool = True) -> tuple[str, ...]:
    """Column names of :func:`measure_labels` for lengths in ``unit`` (areas in ``unit``²)."""
    lengths = ("equivalent_diameter", "perimeter", "feret_max", "feret_min")
    columns = ["label"] + (["plane"] if plane else []) + [f"area_{unit}2"]
    columns += [f"{name}_{unit}" for name in lengths] + list(RATIO_COLUMNS)
    columns += (["mean_intensity"] if intensity else [])
    columns += [f"centroid_y_{unit}", f"centroid_x_{unit}"]
    columns += ["bbox_min_row_px", "bbox_min_col_px", "bbox_max_row_px", "bbox_max_col_px"]
    return tuple(columns)


def column_unit(unit: str | None, spacing) -> str:
    """The unit written into column names: ``unit`` made ASCII (µm → um, Å → A), or ``px`` without a pixel size."""
    if spacing is None:
        return "px"
    if not unit:
        raise ValueError("a pixel size needs its unit (e.g. unit='nm'); without a unit, leave the pixel size out")
    text = str(unit).strip().replace("µ", "u").replace("μ", "u").replace("Å", "A")
    if not re.fullmatch(r"[A-Za-z]+", text):
        raise ValueError(f"unit {unit!r} must be letters only, e.g. nm, um, A or px")
    return text


def _spacing(spacing) -> tuple[float, float]:
    if spacing is None:
        return 1.0, 1.0
    values = (spacing, spacing) if np.isscalar(spacing) else tuple(spacing)
    if len(values) != 2:
        raise ValueError(f"spacing must be one number or (dy, dx); got {spacing!r}")
    dy, dx = (float(v) for v in values)
    if not (math.isfinite(dy) and math.isfinite(dx) and dy > 0 and dx > 0):
        raise ValueError(f"spacing (pixel size) must be positive; got {spacing!r}")
    return dy, dx


def measure_labels(labels: np.ndarray, image: np.ndarray | None = None, *, spacing=None,
                   unit: str | None = None) -> dict[str, np.ndarray]:
    """Measure every object of a 2D label image; one array per column, one entry per object.

    Parameters
    ----------
    labels
        2D integer labels (0 = background). An object may be in pieces; it is measured as one.
    image
        Optional 2D intensity image of the same shape (``mean_intensity``).
    spacing
        Pixel size: one number or ``(dy, dx)``; lengths and areas come out in ``unit``.
        None: pixels (columns end in ``_px`` / ``_px2``).
    unit
        The unit of ``spacing`` (e.g. ``"nm"``), named in each column; needed with ``spacing``.

    Returns
    -------
    dict of numpy.ndarray
        Columns of :func:`measurement_columns` (without ``plane``; without ``mean_intensity``
        when no image is given), objects in increasing label order. Ratios are dimensionless:
        aspect ratio = Feret max / Feret min, circularity = 4πA/P², solidity = A / hull area,
        convexity = hull perimeter / P (NaN where P is 0, e.g. single pixels).
    """
    labels, image = _checked_measure_inputs(labels, image)
    name = column_unit(unit, spacing)
    dy, dx = _spacing(spacing)
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("labels must not be negative; 0 is background and objects are 1, 2, ...")
    runs = _Runs(labels)
    ids, n = runs.ids, runs.ids.size
    columns = {c: np.zeros(0) for c in measurement_columns(name, plane=False, intensity=image is not None)}
    if n == 0:
        columns["label"] = ids
        return columns
    columns.update(_geometry_columns(labels, runs, dy, dx, name))
    if image is not None:
        columns["mean_intensity"] = _mean_intensities(image, runs)
    columns.update(_bbox_columns(runs))
    return columns


def _checked_measure_inputs(labels, image) -> tuple[np.ndarray, np.ndarray | None]:
    """``labels`` (2D integers) and ``image`` (None or the labels' shape) as arrays, or a clear error."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"measurements need a 2D label image; got shape {labels.shape} "
                         "(measure stacks plane by plane)")
    if labels.dtype.kind not in "biu":
        raise TypeError(f"labels must be an integer array; got dtype {labels.dtype}")
    if image is not None:
        image = np.asarray(image)
        if image.shape != labels.shape:
            raise ValueError(f"image shape {image.shape} differs from labels shape {labels.shape}")
    return labels, image


def _pixel_counts(runs: _Runs) -> np.ndarray:
    """Pixels per object, from its runs."""
    return np.bincount(runs.obj, (runs.end - runs.start + 1).astype(np.float64), minlength=runs.ids.size)


def _geometry_columns(labels: np.ndarray, runs: _Runs, dy: float, dx: float, name: str) -> dict[str, np.ndarray]:
    """Label, sizes, Feret diameters, shape ratios and centroids of every object (``measure_labels``'s columns)."""
    n = runs.ids.size
    obj, row = runs.obj, runs.row.astype(np.float64)
    length = (runs.end - runs.start + 1).astype(np.float64)
    counts = _pixel_counts(runs)
    area = counts * (dy * dx)
    perimeter = _perimeters(labels, runs.ids, dy, dx)
    feret_max, feret_min, hull_area, _ = _hull_measures(runs, dy, dx, corners=True)
    centre_hull_perimeter = _hull_measures(runs, dy, dx, corners=False)[3]
    columns = {"label": runs.ids}
    with np.errstate(divide="ignore", invalid="ignore"):
        has_outline = perimeter > 0
        columns[f"area_{name}2"] = area
        columns[f"equivalent_diameter_{name}"] = np.sqrt(4 * area / np.pi)
        columns[f"perimeter_{name}"] = perimeter
        columns[f"feret_max_{name}"] = feret_max
        columns[f"feret_min_{name}"] = feret_min
        columns["aspect_ratio"] = feret_max / feret_min
        columns["circularity"] = np.where(has_outline, 4 * np.pi * area / perimeter**2, np.nan)
        columns["solidity"] = area / hull_area
        # the hull through pixel centres, as the perimeter runs through border pixel centres: 1 for
        # convex objects, less for ragged or concave ones
        columns["convexity"] = np.where(has_outline, centre_hull_perimeter / perimeter, np.nan)
    columns[f"centroid_y_{name}"] = np.bincount(obj, length * row, minlength=n) / counts * dy
    columns[f"centroid_x_{name}"] = np.bincount(obj, length * (runs.start + runs.end) / 2, minlength=n) / counts * dx
    return columns


def _mean_intensities(image: np.ndarray, runs: _Runs) -> np.ndarray:
    """Mean of ``image`` over each object."""
    # sums over runs from running sums along each row: no pass over the pixels per object
    running = np.cumsum(image, axis=1, dtype=np.float64)
    sums = running[runs.row, runs.end] - np.where(runs.start > 0, running[runs.row, runs.start - 1], 0.0)
    return np.bincount(runs.obj, sums, minlength=runs.ids.size) / _pixel_counts(runs)


def _bbox_columns(runs: _Runs) -> dict[str, np.ndarray]:
    """Each object's bounding box in pixels (min inclusive, max exclusive)."""
    first, obj = runs.first_of_object, runs.obj
    return {"bbox_min_row_px": runs.row[first],
            "bbox_min_col_px": np.minimum.reduceat(runs.start, first),
            "bbox_max_row_px": runs.row[np.append(first[1:], obj.size) - 1] + 1,
            "bbox_max_col_px": np.maximum.reduceat(runs.end, first) + 1}


class _Runs:
    """The horizontal runs of equal non-zero label: every object's pixels, row by row.

    Attributes (one entry per run, sorted by object, then row, then column): ``obj`` the object's
    index (0..n-1) into ``ids`` (the sorted label ids), ``row``, ``start`` and ``end`` (inclusive
    columns). ``first_of_object``: the index of each object's first run.
    """

    def __init__(self, labels: np.ndarray):
        objects = labels != 0
        starts = objects.copy()
        starts[:, 1:] &= labels[:, 1:] != labels[:, :-1]
        ends = objects.copy()
        ends[:, :-1] &= labels[:, :-1] != labels[:, 1:]
        row, start = np.nonzero(starts)  # row-major: the k-th start and the k-th end make one run
        end = np.nonzero(ends)[1]
        run_labels = labels[row, start]
        order = np.argsort(run_labels, kind="stable")
        self.ids, obj = np.unique(run_labels[order], return_inverse=True)
        self.ids = self.ids.astype(np.int64)
        self.obj = obj.astype(np.intp)
        self.row, self.start, self.end = row[order], start[order], end[order]
        self.first_of_object = np.flatnonzero(np.diff(self.obj, prepend=-1))


def _perimeters(labels: np.ndarray, ids: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """scikit-image's 4-connectivity perimeter of every object, with pixels dy × dx.

    A border pixel (an object pixel with a 4-neighbour outside the object) adds half the links to
    its border neighbours of the same object, as ``skimage.measure.perimeter`` weighs them; a
    straight link is dy or dx long, a diagonal one √(dy² + dx²). With square pixels this is
    exactly scikit-image's figure.
    """
    pad = np.pad(labels, 1)
    width = pad.shape[1]
    inner = pad[1:-1, 1:-1]
    border = (inner > 0) & ((pad[:-2, 1:-1] != inner) | (pad[2:, 1:-1] != inner)
                            | (pad[1:-1, :-2] != inner) | (pad[1:-1, 2:] != inner))
    border_pad = np.pad(border, 1)
    where = np.flatnonzero(border_pad)
    flat = pad.ravel()
    flat_border = border_pad.ravel()
    own = flat[where]

    def linked(offset: int) -> np.ndarray:
        other = where + offset
        return (flat_border[other] & (flat[other] == own)).astype(np.int8)

    n_horizontal = linked(-1) + linked(1)
    n_vertical = linked(-width) + linked(width)
    n_diagonal = linked(-width - 1) + linked(-width + 1) + linked(width - 1) + linked(width + 1)
    n_straight = n_horizontal + n_vertical
    straight = n_horizontal * dx + n_vertical * dy  # total length of the straight links
    diagonal = math.hypot(dy, dx)
    weight = np.zeros(where.size)
    # the neighbour patterns scikit-image weighs (its codes 5, 7, 15, 17, 25, 27 / 21, 33 / 13, 23)
    unit = (n_straight >= 2) & (n_diagonal <= 2)
    weight = np.where(unit, straight / np.maximum(n_straight, 1), weight)
    weight = np.where(((n_straight == 0) & (n_diagonal == 2)) | ((n_straight == 1) & (n_diagonal == 3)),
                      diagonal, weight)
    weight = np.where((n_straight == 1) & ((n_diagonal == 1) | (n_diagonal == 2)), (straight + diagonal) / 2, weight)
    return np.bincount(np.searchsorted(ids, own), weight, minlength=ids.size)


def _row_extremes(runs: _Runs):
    """Per (object, row): the object's index, the row, its leftmost and its rightmost pixel column."""
    # runs are sorted by (object, row, column): a row's first run starts leftmost, its last ends rightmost
    new = np.ones(runs.obj.size, bool)
    new[1:] = (runs.obj[1:] != runs.obj[:-1]) | (runs.row[1:] != runs.row[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], runs.obj.size) - 1
    return runs.obj[first], runs.row[first], runs.start[first], runs.end[last]


def _convex_chain(group: np.ndarray, y: np.ndarray, x: np.ndarray, side: int) -> np.ndarray:
    """Indices of the points on the convex hull side of each group's chain.

    Points come sorted by group and then by y (top to bottom); ``side`` -1 is a left chain,
    +1 a right one. A vertex that does not bulge outwards is inside the segment of its
    neighbours and so not a hull vertex; removing all such vertices until none is left
    leaves each chain's convex part (the ends of a chain are extreme and always stay).
    """
    keep = np.arange(group.size)
    while True:
        g, py, px = group[keep], y[keep], x[keep]
        inner = np.zeros(keep.size, bool)
        inner[1:-1] = (g[1:-1] == g[:-2]) & (g[1:-1] == g[2:])
        if not inner.any():
            return keep
        turn = np.zeros(keep.size)
        turn[1:-1] = ((px[1:-1] - px[:-2]) * (py[2:] - py[1:-1]) - (py[1:-1] - py[:-2]) * (px[2:] - px[1:-1]))
        # left chain (downwards): outward bulge turns negative; right chain: positive
        drop = inner & (turn * side <= 0)
        if not drop.any():
            return keep
        keep = keep[~drop]


def _hull_measures(runs: _Runs, dy: float, dx: float, *, corners: bool):
    """Feret max and min, hull area and hull perimeter of every object (physical units).

    ``corners``: the hull of the pixel squares (Feret, solidity); else the hull of the pixel
    centres (convexity, comparable with the perimeter through border pixel centres).
    """
    n = runs.ids.size
    ids, rows, left, right = _row_extremes(runs)
    rows = rows.astype(np.float64)
    if corners:  # each row's outer pixel corners, top then bottom
        ids2 = np.repeat(ids, 2)
        ys = np.column_stack([rows, rows + 1]).ravel()
        left_x, right_x = np.repeat(left, 2).astype(np.float64), np.repeat(right + 1, 2).astype(np.float64)
    else:
        ids2, ys, left_x, right_x = ids, rows, left.astype(np.float64), right.astype(np.float64)
    on_left = _convex_chain(ids2, ys, left_x, -1)
    on_right = _convex_chain(ids2, ys, right_x, +1)
    # polygon: down the left chain, up the right one
    right_order = on_right[np.lexsort((-ys[on_right], ids2[on_right]))]
    vertex_ids = np.concatenate([ids2[on_left], ids2[right_order]])
    vy = np.concatenate([ys[on_left], ys[right_order]]) * dy
    vx = np.concatenate([left_x[on_left], right_x[right_order]]) * dx
    order = np.argsort(vertex_ids, kind="stable")
    vertex_ids, vy, vx = vertex_ids[order], vy[order], vx[order]

    counts = np.bincount(vertex_ids, minlength=n)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner_first = np.repeat(first, counts)
    position = np.arange(vertex_ids.size)
    nxt = position + 1
    closing = np.append(vertex_ids[1:] != vertex_ids[:-1], True)
    nxt[closing] = owner_first[closing]
    ey, ex = vy[nxt] - vy, vx[nxt] - vx
    edge = np.hypot(ey, ex)
    hull_perimeter = np.bincount(vertex_ids, edge, minlength=n)
    hull_area = np.abs(np.bincount(vertex_ids, vx * vy[nxt] - vy * vx[nxt], minlength=n)) / 2

    # every vertex i against every vertex j of its object
    per_vertex = counts[vertex_ids]
    i = np.repeat(position, per_vertex)
    block = np.repeat(np.cumsum(per_vertex) - per_vertex, per_vertex)
    j = owner_first[i] + (np.arange(i.size) - block)
    dist2 = (vy[j] - vy[i]) ** 2 + (vx[j] - vx[i]) ** 2
    pair_starts = np.cumsum(per_vertex) - per_vertex
    vertex_far = np.maximum.reduceat(dist2, pair_starts)
    feret_max = np.sqrt(np.maximum.reduceat(vertex_far, first))
    # min Feret: the narrowest caliper lies along a hull edge; its width is the farthest vertex from that edge
    with np.errstate(divide="ignore", invalid="ignore"):
        height = np.abs(ey[i] * (vx[j] - vx[i]) - ex[i] * (vy[j] - vy[i])) / edge[i]
    height = np.where(edge[i] > 0, height, np.inf)
    width = np.minimum.reduceat(np.maximum.reduceat(height, pair_starts), first)
    feret_min = np.where(np.isfinite(width), width, 0.0)
    return feret_max, feret_min, hull_area, hull_perimeter


def measure_objects(labels: np.ndarray, image: np.ndarray | None = None, *, plane=None, spacing=None,
                    unit: str | None = None) -> list[dict]:
    """:func:`measure_labels` as one dict per object (with ``plane``), for CSV rows and tables."""
    columns = measure_labels(labels, image, spacing=spacing, unit=unit)
    names = list(columns)
    names.insert(1, "plane")
    # whole columns to Python ints and floats at once (tolist), not element by element
    values = [[plane] * columns["label"].size if name == "plane" else columns[name].tolist() for name in names]
    return [dict(zip(names, row)) for row in zip(*values)]


def rows_to_columns(rows: Sequence[dict]) -> dict[str, list]:
    """Measurement rows (dicts) as columns, in first-seen key order (e.g. for ``layer.features``)."""
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    return {name: [row.get(name) for row in rows] for name in names}


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return str(value)


def write_measurements_csv(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write measurement rows to a CSV file atomically (temporary file, then rename).

    Columns are the rows' keys in first-seen order; missing, None and NaN values are empty cells.
    """
    columns = list(rows_to_columns(rows)) or list(measurement_columns())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in columns])
    text = buffer.getvalue()
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def plane_value(plane: tuple[int, ...]):
    """A plane index for a table: None for 2D, an int for 3D stacks, ``"i-j"`` for deeper ones."""
    if not plane:
        return None
    return plane[0] if len(plane) == 1 else "-".join(str(i) for i in plane)


def measure_label_file(labels_path: str | os.PathLike, image_path: str | os.PathLike | None = None, *,
                       spacing=None, unit: str | None = None) -> list[dict]:
    """Measure a label image file (2D, or a stack plane by plane), each row naming the file.

    Parameters
    ----------
    labels_path
        Integer label image (0 = background), e.g. a ``<stem>_labels.tif`` of ``synthseg predict``.
    image_path
        Optional intensity image of the same size (``mean_intensity``; colour images are measured
        in gray).
    spacing, unit
        Pixel size and its unit, as in :func:`measure_labels`.

    Returns
    -------
    list of dict
        One row per object: ``file`` (the labels file's name) and the columns of :func:`measure_objects`.
    """
    from .image_io import is_rgb, iter_planes, read_image, to_gray

    labels_path = Path(labels_path)
    if labels_path.suffix.lower() == ".zarr":  # an OME-Zarr output: its labels, not its image
        from .ome_zarr_io import labels_array

        labels = np.asarray(labels_array(labels_path)[...])
    else:
        labels = read_image(labels_path)
    if labels.dtype.kind == "f":
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{labels_path} is not a label image (fractional values); give integer labels")
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "biu":
        raise ValueError(f"{labels_path} is not a label image (dtype {labels.dtype}); give integer labels")
    if is_rgb(labels):
        raise ValueError(f"{labels_path} is a colour image, not a label image; give the integer labels file")
    image = None
    if image_path is not None:
        image = read_image(image_path)
        if is_rgb(image):
            image = to_gray(image)
        if image.shape != labels.shape:
            raise ValueError(f"{image_path} has shape {image.shape} but {labels_path} has {labels.shape}; "
                             "pair each labels file with its own image")
    rows = []
    for plane in iter_planes(labels.shape):
        gray = image[plane] if image is not None else None
        for row in measure_objects(labels[plane], gray, plane=plane_value(plane), spacing=spacing, unit=unit):
            rows.append({"file": labels_path.name, **row})
    return rows
