"""Small EM files with a known pixel size, written by the tests (no downloads).

TIFF variants through tifffile's tags, MRC through mrcfile, EMD (Berkeley) through rosettasciio's writer,
and DM3/DM4 and SER by hand, since no library writes them: `write_ser` follows the published TIA series
layout (header, dimension array, offset arrays, one 2D data element with its calibration in metres and a
time tag); `write_dm` follows the published DM3/DM4 layout (a big-endian header and tag tree; data in
little-endian) with the tags a Gatan image has:
``ImageList / <image> / {ImageData / {Calibrations, Data, DataType, Dimensions}, ImageTags, Name}``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: numpy dtype -> (DM image DataType, DM tag element type)
_DM_TYPES = {np.dtype(np.float32): (2, 6), np.dtype(np.uint16): (10, 4), np.dtype(np.int16): (1, 2)}


class _DMTags:
    """Encodes DM tags for one version (3: 4-byte lengths; 4: 8-byte lengths and a size before each tag)."""

    def __init__(self, version: int):
        self.version = version
        self.length = ">i" if version == 3 else ">q"

    def _n(self, value: int) -> bytes:
        return struct.pack(self.length, value)

    def _tag(self, kind: int, name: str, body: bytes) -> bytes:
        raw = name.encode("latin-1")
        head = struct.pack(">bh", kind, len(raw)) + raw
        return head + (struct.pack(">q", len(body)) if self.version == 4 else b"") + body

    def group(self, name: str, tags: list[bytes]) -> bytes:
        return self._tag(20, name, self.group_body(tags))

    def group_body(self, tags: list[bytes]) -> bytes:
        return struct.pack(">bb", 0, 1) + self._n(len(tags)) + b"".join(tags)

    def _data(self, name: str, info: list[int], payload: bytes) -> bytes:
        body = b"%%%%" + self._n(len(info)) + b"".join(self._n(v) for v in info) + payload
        return self._tag(21, name, body)

    def int32(self, name: str, value: int) -> bytes:
        return self._data(name, [3], struct.pack("<i", value))

    def float32(self, name: str, value: float) -> bytes:
        return self._data(name, [6], struct.pack("<f", value))

    def text(self, name: str, value: str) -> bytes:  # DM stores short texts as arrays of uint16
        return self._data(name, [20, 4, len(value)], struct.pack(f"<{len(value)}H", *map(ord, value)))

    def array(self, name: str, element_type: int, data: np.ndarray) -> bytes:
        return self._data(name, [20, element_type, data.size], data.astype(data.dtype.newbyteorder("<")).tobytes())


def write_dm(path: Path, image: np.ndarray, pixel_size: float, unit: str, version: int = 3) -> Path:
    """Write a 2D image as a DM3 or DM4 file calibrated to ``pixel_size`` ``unit`` per pixel."""
    image = np.ascontiguousarray(image)
    data_type, element_type = _DM_TYPES[image.dtype]
    tags = _DMTags(version)
    axis = [tags.group("", [tags.float32("Origin", 0.0), tags.float32("Scale", pixel_size), tags.text("Units", unit)])
            for _ in range(2)]
    brightness = tags.group("Brightness", [tags.float32("Origin", 0.0), tags.float32("Scale", 1.0),
                                           tags.text("Units", "Counts")])
    image_data = tags.group("ImageData", [
        tags.group("Calibrations", [brightness, tags.group("Dimension", axis)]),
        tags.array("Data", element_type, image.ravel()),
        tags.int32("DataType", data_type),
        tags.group("Dimensions", [tags.int32("", image.shape[1]), tags.int32("", image.shape[0])]),
    ])
    image_tags = tags.group("ImageTags", [tags.group("Microscope Info", [tags.float32("Voltage", 200000.0)])])
    image_group = tags.group("", [image_data, image_tags, tags.text("Name", "test image")])
    root = tags.group_body([tags.group("ImageList", [image_group])])
    size_format = ">i" if version == 3 else ">q"
    header_size = 4 + struct.calcsize(size_format) + 4
    end = b"\0" * 8
    header = struct.pack(">i", version) + struct.pack(size_format, header_size + len(root) + len(end)) + \
        struct.pack(">i", 1)  # 1: the data are little-endian
    path.write_bytes(header + root + end)
    return path


def write_mrc(path: Path, image: np.ndarray, angstrom: float) -> Path:
    """Write an MRC file with ``voxel_size`` ``angstrom`` Å."""
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(image)
        mrc.voxel_size = angstrom
    return path


def write_fei_tiff(path: Path, image: np.ndarray, metres: float) -> Path:
    """A TIFF as FEI/Thermo SEMs write it: the FEI_HELIOS tag (34682) with ``[Scan] PixelWidth`` in metres."""
    import tifffile

    text = ("[User]\r\nDate=01/02/2024\r\nUser=user\r\n[System]\r\nType=DualBeam\r\n"
            f"[Scan]\r\nInternalScan=1\r\nPixelWidth={metres!r}\r\nPixelHeight={metres!r}\r\n"
            "HorFieldsize=1e-06\r\n[Beam]\r\nHV=5000\r\n")
    tifffile.imwrite(path, image, extratags=[(34682, "s", 0, text, True)])
    return path


def write_zeiss_tiff(path: Path, image: np.ndarray, value: float, unit: str) -> Path:
    """A TIFF as Zeiss SEMs write it: the CZ_SEM tag (34118) with ``Image Pixel Size = 2.5 nm``."""
    import tifffile

    text = ("0\r\nDP_DETECTOR_CHANNEL\r\nSignal A = InLens\r\nAP_WD\r\nWD = 4.1 mm\r\n"
            f"AP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = {value:g} {unit}\r\nAP_MAG\r\nMag = 50.00 K X\r\n")
    # Zeiss writes µ in Latin-1 inside an ASCII tag; tifffile takes the bytes as they are
    tifffile.imwrite(path, image, extratags=[(34118, "s", 0, text.encode("latin-1"), True)])
    return path


#: numpy dtype -> TIA data type code
_SER_TYPES = {np.dtype(np.uint8): 1, np.dtype(np.uint16): 2, np.dtype(np.int16): 5, np.dtype(np.float32): 7}


def write_ser(path: Path, image: np.ndarray, metres: float) -> Path:
    """Write a 2D image as a TIA ``.ser`` series of one element, calibrated to ``metres`` per pixel."""
    image = np.ascontiguousarray(image)
    height, width = image.shape
    n_dims, offsets_at = 1, 30
    dimension = struct.pack("<IddII", 1, 0.0, 1.0, 0, 0) + struct.pack("<I", 0)  # one element, no text
    offsets_at += len(dimension)
    data_at = offsets_at + 8  # one data offset and one tag offset (u4 each)
    # TIA stores image rows bottom-up
    element = struct.pack("<ddIddI", 0.0, metres, 0, 0.0, metres, 0) + struct.pack(
        "<HII", _SER_TYPES[image.dtype], width, height) + image[::-1].astype(image.dtype.newbyteorder("<")).tobytes()
    tag_at = data_at + len(element)
    tag = struct.pack("<HHI", 0x4152, 0, 0)  # a time-only tag
    header = struct.pack("<HHHIIIIII", 0x4949, 0x0197, 0x0210, 0x4122, 0x4152, 1, 1, offsets_at, n_dims)
    path.write_bytes(header + dimension + struct.pack("<II", data_at, tag_at) + element + tag)
    return path
