"""The Curate dock's curation file: where it is kept, saving and loading it."""

from __future__ import annotations

from pathlib import Path

from ._curate_clicks import CurationStep
from ._curate_mouse import counts_text
from ._planes import source_name


class CurationFiles:
    """Mix-in of the Curate dock: the curation kept beside the image as ``<stem>_curation.tif`` + ``.json``.

    Uses the dock's ``state``, ``curation_path``, ``image_choice``, ``labels_choice``, ``labels_path``,
    ``status``, ``_labels`` and ``_set_plane``.
    """

    def curation_file(self) -> Path:
        """Where the curation is kept: the 'curation file' box, else beside the image file, else beside
        the labels file; ``ValueError`` when none is known."""
        from napari_synthseg.curation import curation_path

        chosen = self.curation_path.path()
        if chosen is not None:
            return chosen if chosen.suffix.lower() in (".tif", ".tiff") else chosen.with_suffix(".tif")
        image = self.image_choice.layer()
        source = getattr(getattr(image, "source", None), "path", None) if image is not None else None
        if source:
            return curation_path(source)
        labels_file = self.labels_path.path()
        if labels_file is not None:
            return curation_path(labels_file)
        raise ValueError("choose a curation file (the 'curation file' box): the image was not read from a file, "
                         "so there is no folder to keep the curation beside")

    def save_curation(self, path: Path | None = None) -> Path:
        """Write the curation (2D images) with ``curation.save_curation``; returns the file."""
        from napari_synthseg.curation import Curation, save_curation

        layer = self._labels()
        shape = tuple(layer.data.shape)
        if len(shape) != 2:
            raise ValueError(f"saving a curation works on 2D images; '{layer.name}' is a stack {shape}: "
                             "export the curated objects to a bank instead")
        path = Path(path) if path is not None else self.curation_file()
        curation = self.state.planes.get((), Curation.empty(shape))
        image = self.image_choice.layer()
        meta = {"labels": layer.name, "image": source_name(image) if image is not None else None}
        save_curation(curation, path, meta=meta)
        self.state.saved_to = path
        counts = curation.counts
        self.status.setText(f"curation saved to {path} ({counts_text(counts, ', ')})")
        return path

    def load_curation(self, path: Path | None = None) -> None:
        """Read a saved curation for the chosen labels (2D); it replaces the one in the dock (undoable)."""
        from napari_synthseg.curation import load_curation

        layer = self._labels()
        path = Path(path) if path is not None else self.curation_file()
        curation = load_curation(path)
        if curation.shape != tuple(layer.data.shape):
            raise ValueError(f"the curation {path.name} is of a {curation.shape[0]}×{curation.shape[1]} image, "
                             f"labels '{layer.name}' are {tuple(layer.data.shape)}: choose the matching image")
        self.state.undo.append(CurationStep((), self.state.planes.get(())))
        self.state.saved_to = path
        self._set_plane((), curation)
        self.status.setText(f"curation loaded from {path}")

    def _load_saved(self) -> None:
        """Load the curation kept beside the image file, when there is one (a later session)."""
        layer = self.labels_choice.layer()
        if layer is None or len(layer.data.shape) != 2:
            return
        try:
            path = self.curation_file()
        except ValueError:
            return
        if not path.is_file():
            return
        try:
            self.load_curation(path)
        except ValueError as exc:
            self.status.setText(f"a curation at {path} was not loaded: {exc}")
            return
        self.state.undo.clear()  # loading it is where this session starts
