"""The Curate dock's clicks: pick, reject, add, split, merge and fill on one plane, each undoable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import notify_info
from ._planes import find_layer, plane_gray, plane_labels, spatial_shape


def nearest_object_ids(labels: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Label ids for the ``new`` pixels of a 2D plane: each takes its nearest object's id.

    A filled contour thus takes the id of the ring around it. Works on the bounding box
    of the new pixels (plus one pixel, where the enclosing objects are).
    """
    rows, cols = np.nonzero(new)
    box = (
        slice(max(rows.min() - 1, 0), rows.max() + 2),
        slice(max(cols.min() - 1, 0), cols.max() + 2),
    )
    sub = labels[box]
    if not sub.any():
        return np.full(rows.size, int(labels.max()) + 1, dtype=labels.dtype)
    from scipy import ndimage

    _, (near_r, near_c) = ndimage.distance_transform_edt(sub == 0, return_indices=True)
    nearest = sub[near_r, near_c]
    return nearest[new[box]]


@dataclass
class CurationStep:
    """One undoable click: the plane's curation before it, and the labels pixels it overwrote."""

    plane: tuple
    before: object  # Curation or None (the plane had none)
    labels_patch: tuple | None = None  # (layer, index, old values) of a fill


class CurationClicks:
    """Mix-in of the Curate dock: what a click in each mode does to the curation of the image.

    Uses the dock's ``state`` (a ``_CurationState``), ``viewer``, ``image_choice``, ``status``, ``mode`` and
    ``_show_curation``.
    """

    #: Merge mode's first piece, ``(plane, point)``, until the second click joins it with another.
    merge_first = None

    # ------------------------------------------------------------------ clicks
    def click(self, layer, world_position, dims_displayed=()) -> None:
        """Act on a click at ``world_position`` (world coordinates) on Labels ``layer``."""
        from napari.layers import Labels

        if not isinstance(layer, Labels):
            notify_info(f"layer '{layer.name}' is not a Labels layer; curation needs labels")
            return
        if len(dims_displayed) > 2:
            notify_info("curation works on 2D planes: switch the viewer to 2D (the square button)")
            return
        shape = layer.data.shape
        index = np.round(np.asarray(layer.world_to_data(world_position), dtype=float)).astype(int)
        if np.any(index < 0) or np.any(index >= np.asarray(shape)):
            notify_info(f"the click at data position {tuple(int(i) for i in index)} is outside layer "
                        f"'{layer.name}' (shape {tuple(shape)}); nothing changed")
            return
        plane, point = tuple(int(i) for i in index[:-2]), (int(index[-2]), int(index[-1]))
        if self.mode == "fill":
            self.fill_at(layer, plane, point)
        elif self.mode == "merge":
            self.merge_at(layer, plane, point)
        elif self.mode in ("pick", "reject", "add", "split"):
            self.curate_at(layer, plane, point, self.mode)

    def merge_at(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> bool:
        """Merge mode: the first click chooses a piece, the second joins it with the piece clicked;
        returns whether the curation changed."""
        first, self.merge_first = self.merge_first, None
        if first is None or first[0] != plane:
            curation = self.state.planes.get(plane)
            if not plane_labels(layer, plane)[point] and not (curation is not None and curation.objects[point]):
                notify_info(f"no object at (row {point[0]}, col {point[1]}); click a piece of the broken object")
                return False
            self.merge_first = (plane, point)
            self.status.setText("merge: first piece chosen; click the piece to join it with")
            return False
        return self.curate_at(layer, plane, point, "merge", first=first[1])

    def curate_at(self, layer, plane: tuple[int, ...], point: tuple[int, int], mode: str,
                  first: tuple[int, int] | None = None) -> bool:
        """Pick, reject, add, split or merge (with the ``first`` piece) at ``point`` of one plane; returns whether
        the curation changed."""
        from napari_synthseg.curation import Curation, add_object, pick_object, reject_object
        from napari_synthseg.curation_edits import merge_objects, split_object

        labels = plane_labels(layer, plane)
        before = self.state.planes.get(plane)
        current = before if before is not None else Curation.empty(labels.shape)
        try:
            if mode == "pick":
                after = pick_object(current, labels, point)
            elif mode == "reject":
                after = reject_object(current, labels, point)
            elif mode == "split":
                after = split_object(current, labels, point)
            elif mode == "merge":
                after = merge_objects(current, labels, [first, point])
            else:
                probability, distance, gray = self._add_sources(layer, plane)
                after = add_object(current, point, probability=probability, image=gray, labels=labels,
                                   distance=distance)
        except ValueError as exc:  # the click found nothing to act on: say so, change nothing
            notify_info(str(exc))
            self.status.setText(str(exc))
            return False
        self._push(CurationStep(plane, before), after)
        return True

    def toggle_pick(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> bool | None:
        """Pick the object under ``point`` (un-pick a curated one); returns whether one is curated there now,
        None when the click changed nothing."""
        if not self.curate_at(layer, plane, point, "pick"):
            return None
        return bool(self.state.planes.get(plane) is not None and self.state.planes[plane].objects[point])

    def _add_sources(self, labels_layer, plane):
        """The model's foreground probability and inner distance (left by the Segment dock) and the image,
        for Add."""
        from .segment_widget import DISTANCE_METADATA, probability_layer_name

        image = self.image_choice.layer()
        if image is None or spatial_shape(image) != tuple(labels_layer.data.shape):
            image = None
        probability = distance = None
        if image is not None:
            layer = find_layer(self.viewer, probability_layer_name(image.name))
            if layer is not None and tuple(layer.data.shape) == tuple(labels_layer.data.shape):
                probability = plane_labels(layer, plane).astype(np.float32)
                inner = layer.metadata.get(DISTANCE_METADATA)
                if inner is not None and np.shape(inner) == tuple(labels_layer.data.shape):
                    distance = np.asarray(inner[plane] if plane else inner, dtype=np.float32)
        gray = plane_gray(image, plane) if image is not None else None
        if probability is None and gray is None:
            raise ValueError("Add grows the missed object from the model's probability (run Segment on the "
                             "image first) or from the image: choose the image layer of these labels")
        return probability, distance, gray

    def fill_at(self, layer, plane: tuple[int, ...], point: tuple[int, int]) -> int:
        """Fill every closed contour of one plane, seen from background ``point``; undoable.

        Returns the number of pixels that became object.
        """
        from napari_synthseg.curation import fill_enclosed

        labels = plane_labels(layer, plane)
        clicked = int(labels[point])
        if clicked != 0:
            notify_info(f"you clicked object {clicked}; in Fill mode click a background pixel")
            return 0
        filled = np.asarray(fill_enclosed(labels > 0, point), dtype=bool)
        new = filled & (labels == 0)
        if not new.any():
            notify_info("nothing to fill: no background region is enclosed by contours")
            return 0
        values = nearest_object_ids(labels, new)
        rows, cols = np.nonzero(new)
        index = tuple(np.full(rows.size, p, dtype=np.intp) for p in plane) + (rows, cols)
        with layer.block_history():  # one Ctrl+Z undoes the whole fill
            layer.data_setitem(index, values)
        self.state.undo.append(CurationStep(plane, self.state.planes.get(plane), (layer, index, np.zeros_like(values))))
        self.status.setText(f"filled {rows.size} pixels; pick the filled objects that are right")
        return int(rows.size)

    def _push(self, step: CurationStep, after) -> None:
        self.state.undo.append(step)
        self._set_plane(step.plane, after)

    def _set_plane(self, plane, curation) -> None:
        if curation is None or curation.is_empty():
            self.state.planes.pop(plane, None)
        else:
            self.state.planes[plane] = curation
        self._show_curation()

    def undo(self) -> bool:
        """Take the last click back (Ctrl+Z on the labels layer); returns whether there was one."""
        if not self.state.undo:
            notify_info("nothing to undo in the curation")
            return False
        step = self.state.undo.pop()
        if step.labels_patch is not None:
            layer, index, old = step.labels_patch
            if layer in self.viewer.layers:
                with layer.block_history():
                    layer.data_setitem(index, old)
        self._set_plane(step.plane, step.before)
        self.status.setText("undone")
        return True
