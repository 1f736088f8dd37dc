"""The Curate dock's exports: curated objects to a bank, labels to TIFF, measurements to CSV and a histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._checks import check_writable_file
from ._common import notify_info, quiet_worker
from ._planes import full_resolution, plane_gray, plane_labels, planes_of, source_name, spatial_shape

#: Numeric measurement columns that are ids or places, never offered to the histogram.
HISTOGRAM_SKIPPED = ("index", "label", "plane")


class CurateExports:
    """Mix-in of the Curate dock: the exports, each in a worker (``WorkerDock._start``), and the histogram.

    Uses the dock's ``state``, ``viewer``, ``image_choice``, path boxes, ``replace_files``, ``measure_scope``,
    ``measurements_table``, ``histogram``, ``histogram_column``, ``status`` and ``_labels``.
    """

    def _image_for(self, labels_layer):
        image = self.image_choice.layer()
        if image is None:
            raise ValueError("choose the Image layer the labels belong to (the objects are cropped from it)")
        if spatial_shape(image) != tuple(labels_layer.data.shape):
            raise ValueError(f"image '{image.name}' {spatial_shape(image)} and labels '{labels_layer.name}' "
                             f"{tuple(labels_layer.data.shape)} differ in shape; choose the matching pair")
        return image

    def export_picked(self) -> None:
        """Crop the curated objects (picked, added; image + mask + provenance) into the bank folder, in a
        worker. The masks are the curation's pixels, so labels recomputed since the clicks change nothing."""
        if self.busy:
            return
        layer = self._labels()
        objects = {plane: curation.objects for plane, curation in self.state.planes.items() if curation.objects.any()}
        if not objects:
            raise ValueError("nothing picked: choose 'Pick' (or 'Add') and click objects on the labels layer")
        image = self._image_for(layer)
        bank_dir = self.bank_path.path()
        if bank_dir is None:
            raise ValueError("choose a bank folder for the picked objects (a fresh folder is best)")
        source = source_name(image)
        n_curated = sum(int(np.count_nonzero(np.unique(plane_objects))) - int(0 in plane_objects)
                        for plane_objects in objects.values())

        def export():
            from napari_synthseg.bank import ObjectBank

            bank = ObjectBank(bank_dir)
            added = 0
            for i, (plane, plane_objects) in enumerate(objects.items()):
                # a person picked these: banked as they are, not judged by shape
                added += bank.add_from_labels(plane_gray(image, plane), plane_objects,
                                              source=source, plane=list(plane), method="curated",
                                              judge_shapes=False)
                yield i + 1
            return added, len(bank)

        def report(result):
            added, total = result
            skipped = n_curated - added
            extra = f" ({skipped} already in the bank or too small)" if skipped else ""
            self.status.setText(f"exported {added} of {n_curated} curated objects{extra}; bank holds {total}")
            notify_info(f"exported {added} curated objects to {bank_dir}")

        self._start(quiet_worker(export), total=len(objects), on_result=report)

    def export_labels(self) -> None:
        """Write the labels layer to a TIFF file (atomic: no half-written file)."""
        if self.busy:
            return
        layer = self._labels()
        path = self.labels_path.path()
        if path is None:
            raise ValueError("choose a file name for the labels TIFF")
        if path.suffix.lower() not in (".tif", ".tiff"):
            path = path.with_suffix(".tif")
        check_writable_file(path, "labels file", replace=self._may_replace(self.labels_path, path))
        data = np.array(full_resolution(layer), copy=True)
        pixel_size = physical_pixel_size(layer)

        def write():
            from napari_synthseg.image_io import write_tiff

            write_tiff(path, data, pixel_size=pixel_size, labels=True)
            yield 1
            return path

        def report(written: Path) -> None:
            text = f"labels written to {written}"
            if self.state.planes and layer.data.ndim == 2:  # the curation goes with its labels
                from napari_synthseg.curation import curation_path

                kept = self.save_curation(self.curation_path.path() or curation_path(written))
                text += f"; curation to {kept}"
            self.status.setText(text)

        self._start(quiet_worker(write), total=1, on_result=report)

    def _may_replace(self, picker, path: Path) -> bool:
        return self.replace_files.isChecked() or picker.confirmed(path)

    def export_measurements(self) -> None:
        """Measure every object (all planes or the current one) to CSV and plot the sizes."""
        if self.busy:
            return
        layer = self._labels()
        image = self.image_choice.layer()
        if image is not None and spatial_shape(image) != tuple(layer.data.shape):
            image = None  # measure shapes only rather than pair the wrong image
        path = self.csv_path.path()
        if path is None:
            raise ValueError("choose a file name for the measurements CSV")
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        check_writable_file(path, "measurements file", replace=self._may_replace(self.csv_path, path))
        scope = "current" if self.measure_scope.currentText() == "current plane" else "all"
        planes = planes_of(layer, scope, self.viewer)
        spacing, unit = layer_pixel_size(layer)

        def measure():
            from napari_synthseg.measure import measure_objects, plane_value, write_measurements_csv

            rows = []
            for i, plane in enumerate(planes):
                gray = plane_gray(image, plane) if image is not None else None
                rows.extend(measure_objects(plane_labels(layer, plane), gray,
                                            plane=plane_value(plane), spacing=spacing, unit=unit))
                yield i + 1
            write_measurements_csv(rows, path)
            return rows

        def report(rows):
            from napari_synthseg.measure import column_unit, rows_to_columns

            self.measurements = rows
            diameter = f"equivalent_diameter_{column_unit(unit, spacing)}"
            if layer in self.viewer.layers and rows:
                # napari shows a Labels layer's features for the label under the mouse (column "index");
                # the table and the histogram follow the features
                layer.features = {"index": [row["label"] for row in rows], **rows_to_columns(rows)}
            else:
                self.histogram.title = diameter
                self.histogram.set_values([row[diameter] for row in rows])
            self.status.setText(f"{len(rows)} objects measured → {path}")

        self._start(quiet_worker(measure), total=len(planes), on_result=report)

    # ------------------------------------------------------------------ histogram
    def _refresh_histogram_columns(self) -> None:
        """Offer the numeric measurement columns of the table's layer (ids and places left out)."""
        from pandas.api.types import is_bool_dtype, is_numeric_dtype  # napari's features are a DataFrame

        layer = self.measurements_table.layer
        features = layer.features if layer is not None else None
        names = [] if features is None else [
            str(name) for name in features.columns
            if name not in HISTOGRAM_SKIPPED and not str(name).startswith("bbox_")
            and is_numeric_dtype(features[name]) and not is_bool_dtype(features[name])]
        current = self.histogram_column.currentText()
        self.histogram_column.blockSignals(True)
        self.histogram_column.clear()
        self.histogram_column.addItems(names)
        if current in names:
            self.histogram_column.setCurrentText(current)
        else:
            diameters = [name for name in names if name.startswith("equivalent_diameter")]
            self.histogram_column.setCurrentText((diameters or names or [""])[0])
        self.histogram_column.blockSignals(False)
        self._show_histogram()

    def _show_histogram(self) -> None:
        """Plot the chosen column of the layer's features."""
        layer = self.measurements_table.layer
        name = self.histogram_column.currentText()
        if layer is None or not name or name not in layer.features.columns:
            self.histogram.title = "no measurements yet"
            self.histogram.set_values([])
            return
        self.histogram.title = name
        self.histogram.set_values(layer.features[name].to_numpy(dtype=float, na_value=np.nan))


def layer_pixel_size(layer) -> tuple[tuple[float, float] | None, str | None]:
    """The pixel size ``(dy, dx)`` and its unit of a layer for measurements; ``(None, None)``: pixels.

    A layer scaled without a physical unit (napari's ``pixel``) measures in its scale's "units".
    """
    scale = tuple(float(s) for s in layer.scale[-2:])
    units = getattr(layer, "units", None)  # napari >= 0.6
    name = str(units[-1]) if units else "pixel"
    if name in ("pixel", "px", "dimensionless", ""):
        return (None, None) if scale == (1.0, 1.0) else (scale, "units")
    return scale, _UNIT_SYMBOLS.get(name, "".join(ch for ch in name if ch.isalpha()) or "units")


def physical_pixel_size(layer):
    """The layer's pixel size as a `~napari_synthseg.pixel_size.PixelSize`, or None without a length unit."""
    from napari_synthseg.pixel_size import PixelSize, PixelSizeError

    scale, unit = layer_pixel_size(layer)
    if scale is None or unit == "units":
        return None
    try:
        return PixelSize(scale[1], unit, scale[0])
    except PixelSizeError:
        return None  # a unit that is no length (e.g. seconds): written without a size


#: pint's names of the lengths of EM images -> the symbols written into column names
_UNIT_SYMBOLS = {"nanometer": "nm", "micrometer": "um", "millimeter": "mm", "meter": "m", "angstrom": "A",
                 "picometer": "pm"}
