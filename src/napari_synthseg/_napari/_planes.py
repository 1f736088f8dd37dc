"""Layers <-> numpy arrays: planes of stacks, placement, and the Labels layers the docks make."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari


def spatial_shape(layer) -> tuple[int, ...]:
    """Shape of a layer's data without the RGB(A) channel axis."""
    shape = tuple(int(s) for s in layer.data.shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def current_plane(viewer: napari.viewer.Viewer, layer) -> tuple[int, ...]:
    """Indices of the plane of ``layer`` the viewer shows now (``()`` for 2D layers).

    Assumes the last two data axes are the displayed (Y, X) ones.
    """
    shape = spatial_shape(layer)
    if len(shape) <= 2:
        return ()
    coords = layer.world_to_data(viewer.dims.point)
    lead = np.round(np.asarray(coords[: len(shape) - 2], dtype=float)).astype(int)
    return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(lead, shape[:-2]))


def full_resolution(layer):
    """A layer's data at full resolution: the finest level of a multiscale (pyramid) layer.

    ``numpy.asarray`` of napari's multiscale data gives its coarsest level, not the image.
    """
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def plane_gray(layer, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of an Image layer, at full resolution, as a 2D gray numpy array (RGB collapsed)."""
    from napari_synthseg.image_io import to_gray

    data = full_resolution(layer)
    data = np.asarray(data[plane]) if plane else np.asarray(data)
    return to_gray(data, rgb=bool(getattr(layer, "rgb", False)))


def plane_labels(layer, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of a Labels layer, at full resolution, as a 2D numpy array."""
    data = full_resolution(layer)
    return np.asarray(data[plane]) if plane else np.asarray(data)


def check_plane_size(layer, action: str, command: str) -> None:
    """Refuse, in one line, a layer whose planes are too large to ``action`` in the viewer's memory.

    The limit is the command line's (``largeimage.DEFAULT_IN_MEMORY_PIXELS``); ``command`` is the one
    that does the same tile by tile.
    """
    from napari_synthseg.largeimage.batch import DEFAULT_IN_MEMORY_PIXELS

    height, width = spatial_shape(layer)[-2:]
    if height * width > DEFAULT_IN_MEMORY_PIXELS:
        raise ValueError(f"'{layer.name}' has planes of {width} x {height} pixels ({height * width / 1e6:.0f} "
                         f"Mpixel), too large to {action} in the viewer (at most "
                         f"{DEFAULT_IN_MEMORY_PIXELS / 1e6:.0f} Mpixel); run {command} on its file, which works "
                         f"tile by tile, and open the labels it writes")


def planes_of(layer, scope: str, viewer) -> list[tuple[int, ...]]:
    """The planes an action covers: every plane (``"all"``) or only the current one."""
    from napari_synthseg.image_io import iter_planes

    if scope == "current":
        return [current_plane(viewer, layer)]
    return iter_planes(spatial_shape(layer))


def source_name(layer) -> str:
    """The file a layer came from, or its name when it was not read from a file."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return str(path) if path else str(layer.name)


def spatial_transform(layer) -> dict:
    """``scale``, ``translate`` (and ``units``, napari >= 0.6) of a layer, for a Labels layer made from it."""
    transform = {"scale": tuple(layer.scale), "translate": tuple(layer.translate)}
    units = getattr(layer, "units", None)
    if units is not None:
        transform["units"] = tuple(str(unit) for unit in units)
    return transform


def find_layer(viewer, name: str, layer_type: type | None = None):
    for layer in viewer.layers:
        if layer.name == name and (layer_type is None or isinstance(layer, layer_type)):
            return layer
    return None


def show_labels(viewer, name: str, data: np.ndarray, like, keep_active=None):
    """Put ``data`` into the Labels layer ``name`` (created or replaced), placed like ``like``.

    The active layer is restored afterwards (adding a layer selects it).
    """
    from napari.layers import Labels

    active = keep_active if keep_active is not None else viewer.layers.selection.active
    layer = find_layer(viewer, name, Labels)
    if layer is not None and tuple(layer.data.shape) == tuple(data.shape):
        layer.data = data
        layer.scale, layer.translate = like.scale, like.translate
        if getattr(like, "units", None) is not None:
            layer.units = like.units
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_labels(data, name=name, **spatial_transform(like))
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return layer


def gray_backgrounds(layers, viewer) -> list[np.ndarray]:
    """The current plane of each chosen Image layer, as 2D gray arrays."""
    return [plane_gray(layer, current_plane(viewer, layer)) for layer in layers]


def merge_plane_results(viewer, name: str, like, shape: tuple[int, ...], results) -> tuple[object, int]:
    """Write per-plane label results into Labels layer ``name`` (placed like layer ``like``).

    ``results`` is a list of ``(plane, labels2d)``. When only some planes are redone,
    the other planes of an existing layer of that shape stay; ids stay unique across the
    stack (each plane continues after the largest id so far). Returns ``(layer, n_objects)``.
    """
    n_planes = max(1, int(np.prod(shape[:-2])))
    partial = len(results) < n_planes
    existing = find_layer(viewer, name)
    if partial and existing is not None and tuple(existing.data.shape) == tuple(shape):
        data = np.asarray(full_resolution(existing)).astype(np.uint32, copy=True)
    else:
        data = np.zeros(shape, dtype=np.uint32)
    offset = int(data.max()) if partial else 0
    n_objects = 0
    for plane, labels in results:
        labels = np.asarray(labels)
        region = data[plane]
        region[...] = np.where(labels > 0, labels.astype(np.uint32) + np.uint32(offset), 0)
        offset = max(offset, int(region.max()))
        n_objects += int(np.count_nonzero(np.bincount(labels.ravel().astype(np.int64))[1:]))
    return show_labels(viewer, name, data, like), n_objects


#: Suffix of the Image layer the Segment dock makes from an image (the model's foreground probability).
PROBABILITY_SUFFIX = " foreground probability"


def is_probability_layer(layer) -> bool:
    """Whether an Image layer is a model's probability map (never an image to segment or curate by default)."""
    return layer.name.endswith(PROBABILITY_SUFFIX)
