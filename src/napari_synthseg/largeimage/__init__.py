"""Images larger than memory and folders of many images: lazy, tiled, resumable, on dask.

A large image is read lazily (zarr, or TIFF through tifffile) and cut into a regular grid of
*core* blocks of ``tile x tile`` pixels. Each block is segmented together with a halo of
``overlap`` pixels on every side, and only its core is written to the output (a zarr array
chunked like the grid, so every task writes exactly one chunk). Objects that cross a core's
edge are joined afterwards: each block also reports its own labels on the one-pixel ring just
outside its core, and where two blocks' views of the same pixels name objects that overlap,
the objects are merged (connected components of a small graph, no image in memory). A last
pass rewrites every chunk with the final, consecutive ids.

Equality with the in-memory path (what is guaranteed)
    For a per-tile function whose decision about an object depends only on the pixels within
    ``context`` of it (thresholds, smoothing, connected components, hole filling, size
    filters, splitting inside one object), every object whose bounding box is smaller than
    ``overlap - context`` in each direction is seen whole by every block that writes part of
    it, so the stitched labels equal the in-memory labels up to renumbering. Larger objects
    are joined across block faces by pixel overlap; they equal the in-memory ones for
    pixel-wise decisions (threshold + connected components) and otherwise differ at most
    where the decision needs more context than the halo gives. Statistics of the whole
    image (Otsu threshold, normalisation range) are computed from the whole image first
    (``TileSegmenter.prepare``), never per tile.

The work runs on dask: the local threaded scheduler by default, or a ``dask.distributed``
cluster given by its address. Folders fan out one task per image; a failing file is reported
by name and the others go on; outputs appear under their final name only when complete.

The package holds one idea per module: ``sources`` (lazy readers, :class:`ImageSource`,
``open_image``, ``open_lazy``), ``segmenters`` (:class:`AutosegSegmenter`,
:class:`ModelSegmenter`), ``stitching`` (tiles with a halo, local ids, merging across tiles),
``scheduling`` (dask threads or a cluster), ``outputs`` (atomic OME-Zarr/TIFF outputs and their
records) and ``batch`` (``process_large``, ``run_batch``). The names below are re-exported
here; patch a name in the submodule that uses it, not here.
"""

from .batch import (
    DEFAULT_BLOCK,
    DEFAULT_HALO,
    DEFAULT_IN_MEMORY_PIXELS,
    OUTPUT_ENDINGS,
    BatchReport,
    LargeResult,
    ProgressCallback,
    list_inputs,
    output_name,
    process_large,
    run_batch,
    split_own_outputs,
)
from .outputs import (
    COMPLETE_ATTR,
    RECORD_FORMAT,
    OutputExistsError,
    existing_output_state,
    is_complete,
    output_record,
    read_labels,
    record_path,
    write_ome_output,
    write_record,
)
from .scheduling import SCHEDULER_TIMEOUT_S
from .segmenters import AutosegSegmenter, ModelSegmenter, TileSegmenter
from .sources import LAZY_SUFFIXES, ImageSource, LargeImageError, open_image, open_lazy, read_whole

__all__ = [
    "COMPLETE_ATTR",
    "DEFAULT_BLOCK",
    "DEFAULT_HALO",
    "DEFAULT_IN_MEMORY_PIXELS",
    "LAZY_SUFFIXES",
    "OUTPUT_ENDINGS",
    "RECORD_FORMAT",
    "SCHEDULER_TIMEOUT_S",
    "AutosegSegmenter",
    "BatchReport",
    "ImageSource",
    "LargeImageError",
    "LargeResult",
    "ModelSegmenter",
    "OutputExistsError",
    "ProgressCallback",
    "TileSegmenter",
    "existing_output_state",
    "is_complete",
    "list_inputs",
    "open_image",
    "open_lazy",
    "output_name",
    "output_record",
    "process_large",
    "read_labels",
    "read_whole",
    "record_path",
    "run_batch",
    "split_own_outputs",
    "write_ome_output",
    "write_record",
]
