"""The physical size of a pixel: parsing it, converting it and reading it from image files (pure core).

Microscopes write the pixel size into their files in many ways; `read_pixel_size` knows these:

- TIFF: this package's own labels (JSON description), FEI/Thermo SEM (``FEI_HELIOS``/``FEI_SFEG``
  tags, ``[Scan] PixelWidth`` in metres), Zeiss SEM (``CZ_SEM`` tag 34118, ``Image Pixel Size = 2.5 nm``),
  OME-TIFF (``PhysicalSizeX`` and its unit), ImageJ (``unit`` and the resolution tags) and plain
  resolution tags in centimetres (or in inches when the pixel is below a micrometre: 72 or 300 dpi
  are screen and print settings, not a microscope's).
- MRC (``voxel_size`` in Å, through mrcfile), DM3/DM4, EMD and SER (through rosettasciio); see
  `napari_synthseg.em_formats`.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

#: Length units: accepted spellings -> (canonical name, nanometres per unit).
_UNITS = {
    "pm": ("pm", 1e-3), "picometer": ("pm", 1e-3), "picometre": ("pm", 1e-3),
    "a": ("Å", 0.1), "å": ("Å", 0.1), "Å": ("Å", 0.1), "angstrom": ("Å", 0.1), "ang": ("Å", 0.1),
    "ångström": ("Å", 0.1),
    "nm": ("nm", 1.0), "nanometer": ("nm", 1.0), "nanometre": ("nm", 1.0),
    "um": ("µm", 1e3), "µm": ("µm", 1e3), "μm": ("µm", 1e3), "micron": ("µm", 1e3), "microns": ("µm", 1e3),
    "micrometer": ("µm", 1e3), "micrometre": ("µm", 1e3), "\\u00b5m": ("µm", 1e3),
    "mm": ("mm", 1e6), "millimeter": ("mm", 1e6), "millimetre": ("mm", 1e6),
    "cm": ("cm", 1e7), "centimeter": ("cm", 1e7), "centimetre": ("cm", 1e7),
    "m": ("m", 1e9), "meter": ("m", 1e9), "metre": ("m", 1e9),
}

#: pint's names (napari's layer ``units``) of the canonical units.
PINT_NAMES = {"pm": "picometer", "Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "mm": "millimeter",
              "cm": "centimeter", "m": "meter"}

#: The units named in messages, in order of size.
UNIT_NAMES = "pm, Å (A), nm, µm (um), mm, cm, m"


class PixelSizeError(ValueError):
    """A pixel size that cannot be read (no number, not positive, or an unknown unit)."""


def canonical_unit(unit: str) -> str:
    """The canonical name of a length unit (``um`` and ``micron`` -> ``µm``, ``A`` -> ``Å``), or PixelSizeError."""
    key = str(unit).strip()
    found = _UNITS.get(key) or _UNITS.get(key.lower())
    if found is None:
        raise PixelSizeError(f"unknown length unit {unit!r}; use one of {UNIT_NAMES}")
    return found[0]


_NM_PER_UNIT = {name: factor for name, factor in _UNITS.values()}


def nm_per_unit(unit: str) -> float:
    """Nanometres in one ``unit``."""
    return _NM_PER_UNIT[canonical_unit(unit)]


@dataclass(frozen=True)
class PixelSize:
    """The size of one pixel: ``value`` (along x) and ``value_y`` (along y, default the same) in ``unit``.

    ``unit`` is stored in its canonical name (``nm``, ``µm``, ``Å``, ...).
    """

    value: float
    unit: str
    value_y: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "unit", canonical_unit(self.unit))
        values = []
        for v in (self.value, self.value if self.value_y is None else self.value_y):
            try:
                number = float(v)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(v, (str, bool)) or not (math.isfinite(number) and number > 0):
                raise PixelSizeError(f"a pixel size must be a positive number, got {v!r}")
            values.append(number)
        object.__setattr__(self, "value", values[0])
        object.__setattr__(self, "value_y", values[1])

    @property
    def spacing(self) -> tuple[float, float]:
        """``(dy, dx)`` in ``unit``: napari's ``scale`` and `measure_labels`' ``spacing``."""
        return self.value_y, self.value

    def to(self, unit: str) -> PixelSize:
        """The same size in another length unit."""
        factor = nm_per_unit(self.unit) / nm_per_unit(unit)
        return PixelSize(self.value * factor, unit, self.value_y * factor)

    def to_nm(self) -> PixelSize:
        """The same size in nanometres."""
        return self.to("nm")

    @property
    def nm(self) -> float:
        """The pixel width in nanometres."""
        return self.value * nm_per_unit(self.unit)

    def readable(self) -> PixelSize:
        """The same size in the unit that gives a number between 0.1 and 1000 (Å, nm, µm or mm)."""
        nm = self.nm
        unit = "Å" if nm < 0.1 else "nm" if nm < 1e3 else "µm" if nm < 1e6 else "mm"
        return self.to(unit)

    def __str__(self) -> str:
        text = f"{self.value:g} {self.unit}"
        return text if self.value_y == self.value else f"{self.value:g} × {self.value_y:g} {self.unit} (x × y)"


_NUMBER_UNIT = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\d\s].*?)?\s*$")


def parse_pixel_size(text: str, default_unit: str | None = None) -> PixelSize:
    """A pixel size from text such as ``2.5nm``, ``2.5 nm``, ``0.1um`` or ``3 Å``.

    ``default_unit`` is used when the text is a bare number. Raises PixelSizeError (one line
    naming the problem) for text without a number, a size that is not positive, or an unknown unit.
    """
    match = _NUMBER_UNIT.match(str(text))
    if match is None:
        raise PixelSizeError(f"pixel size {text!r} is not a number with a unit; write e.g. 2.5nm or 0.1um")
    value, unit = float(match.group(1)), match.group(2) or default_unit
    if unit is None:
        raise PixelSizeError(f"pixel size {text!r} has no unit; write e.g. {match.group(1)}nm")
    try:
        unit = canonical_unit(unit)
    except PixelSizeError:
        raise PixelSizeError(f"unknown unit {unit!r} in pixel size {text!r}; use one of {UNIT_NAMES}") from None
    if not (math.isfinite(value) and value > 0):
        raise PixelSizeError(f"pixel size {text!r} must be positive")
    return PixelSize(value, unit)


def _from_unit(value, unit: str, value_y=None) -> PixelSize | None:
    """A PixelSize, or None when the numbers or the unit are not a length (e.g. ``1/nm``, ``px``)."""
    try:
        return PixelSize(float(value), unit, None if value_y is None else float(value_y))
    except (PixelSizeError, TypeError, ValueError):
        return None


# --- TIFF ---------------------------------------------------------------------------------------------

#: Key of this package's pixel size in a TIFF's JSON (tifffile "shaped") description.
TIFF_METADATA_KEY = "pixel_size"

#: Inch resolutions finer than this many pixels per inch (a pixel below 1 µm) are taken as a microscope's.
_MIN_INCH_RESOLUTION = 25_400.0


def _tiff_own(tif) -> PixelSize | None:
    for meta in tif.shaped_metadata or ():
        entry = meta.get(TIFF_METADATA_KEY) if isinstance(meta, dict) else None
        if isinstance(entry, dict):
            found = _from_unit(entry.get("x"), entry.get("unit", ""), entry.get("y"))
            if found is not None:
                return found
    return None


def _tiff_fei(tif) -> PixelSize | None:
    meta = tif.fei_metadata or {}
    scan = meta.get("Scan") or meta.get("EScan") or {}
    width = scan.get("PixelWidth")
    size = _from_unit(width, "m", scan.get("PixelHeight", width))
    return None if size is None else size.readable()


def _tiff_zeiss(tif) -> PixelSize | None:
    meta = tif.sem_metadata or {}
    entries = [v for v in meta.values() if isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], str)]
    for name in ("Image Pixel Size", "Pixel Size"):
        for entry in entries:
            if entry[0].strip().lower() == name.lower():
                found = _from_unit(entry[1], entry[2])
                if found is not None:
                    return found
    return None


def _tiff_ome(tif) -> PixelSize | None:
    xml = tif.ome_metadata
    if not xml:
        return None
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Pixels" and "PhysicalSizeX" in element.attrib:
            attrib = element.attrib
            unit_x = attrib.get("PhysicalSizeXUnit", "µm")  # OME's default unit
            size = _from_unit(attrib["PhysicalSizeX"], unit_x, attrib.get("PhysicalSizeY"))
            if size is not None and attrib.get("PhysicalSizeYUnit", unit_x) != unit_x:
                y = _from_unit(attrib["PhysicalSizeY"], attrib["PhysicalSizeYUnit"])
                size = PixelSize(size.value, size.unit, y.to(size.unit).value) if y else size
            return size
    return None


def _resolution(page) -> tuple[float, float] | None:
    """Pixels per resolution unit along x and y, or None when the tags are missing or zero."""
    try:
        rx = page.tags["XResolution"].value
        ry = page.tags["YResolution"].value if "YResolution" in page.tags else rx
        x = rx[0] / rx[1] if isinstance(rx, tuple) else float(rx)
        y = ry[0] / ry[1] if isinstance(ry, tuple) else float(ry)
    except (KeyError, ZeroDivisionError, TypeError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _tiff_imagej(tif) -> PixelSize | None:
    meta = tif.imagej_metadata or {}
    unit = meta.get("unit")
    resolution = _resolution(tif.pages.first)
    if not unit or resolution is None:
        return None
    return _from_unit(1.0 / resolution[0], str(unit).replace("\\u00B5", "µ"), 1.0 / resolution[1])


def _tiff_resolution(tif) -> PixelSize | None:
    page = tif.pages.first
    resolution = _resolution(page)
    if resolution is None:
        return None
    unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 2  # TIFF's default: inch
    if unit == 3:  # centimetre
        return PixelSize(1.0 / resolution[0], "cm", 1.0 / resolution[1]).readable()
    if unit == 2 and min(resolution) >= _MIN_INCH_RESOLUTION:
        return PixelSize(2.54 / resolution[0], "cm", 2.54 / resolution[1]).readable()
    return None


def tiff_pixel_size(path: str | os.PathLike) -> PixelSize | None:
    """The pixel size a TIFF carries (see the module's list, tried in that order), or None."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            for reader in (_tiff_own, _tiff_fei, _tiff_zeiss, _tiff_ome, _tiff_imagej, _tiff_resolution):
                try:
                    found = reader(tif)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # malformed vendor metadata: try the next place
                if found is not None:
                    return found
    except (OSError, ValueError, tifffile.TiffFileError):
        return None
    return None


#: Key in the JSON description that says what the TIFF holds (``"labels"``).
TIFF_KIND_KEY = "napari_synthseg_kind"


def tiff_write_options(pixel_size: PixelSize | None, labels: bool = False) -> dict:
    """tifffile.imwrite options that store ``pixel_size``: resolution tags in cm (read by Fiji and
    QuPath) and the size in its own unit in the JSON description (read back exactly by this package);
    ``labels`` notes there that the file holds labels."""
    metadata = {TIFF_KIND_KEY: "labels"} if labels else {}
    if pixel_size is None:
        return {"metadata": metadata} if metadata else {}
    cm = pixel_size.to("cm")
    metadata[TIFF_METADATA_KEY] = {"x": pixel_size.value, "y": pixel_size.value_y, "unit": pixel_size.unit}
    return {"resolution": (1.0 / cm.value, 1.0 / cm.value_y), "resolutionunit": "CENTIMETER", "metadata": metadata}


def tiff_holds_labels(path: str | os.PathLike) -> bool:
    """True when a TIFF's JSON description says it holds labels (written with ``labels=True``)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return any(isinstance(m, dict) and m.get(TIFF_KIND_KEY) == "labels" for m in tif.shaped_metadata or ())
    except (OSError, ValueError, tifffile.TiffFileError):
        return False


# --- any file -----------------------------------------------------------------------------------------

def read_pixel_size(path: str | os.PathLike) -> PixelSize | None:
    """The pixel size stored in an image file, or None when it carries none (or it is not a length).

    TIFFs are read as `tiff_pixel_size`; MRC, DM3/DM4, EMD and SER through `em_formats`
    (which needs the ``em`` extra; a missing library raises ImportError naming it); ``.zarr``
    through `ome_zarr_io.zarr_pixel_size` (OME-Zarr scale and units). Other files (PNG, JPEG,
    ...) carry no pixel size.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return tiff_pixel_size(path)
    from .em_formats import EM_SUFFIXES, read_em

    if suffix in EM_SUFFIXES:
        return read_em(path, data=False).pixel_size
    if suffix == ".zarr":
        from .ome_zarr_io import zarr_pixel_size

        return zarr_pixel_size(path)
    return None


def input_pixel_size(path: str | os.PathLike):
    """The pixel size an input file carries, or None (also when its metadata cannot be read)."""
    try:
        return read_pixel_size(path)
    except (ImportError, ValueError, OSError):
        return None  # reading the pixels reports what is wrong with the file
