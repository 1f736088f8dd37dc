"""The JSON sidecar written beside every saved model (``<name>.keras`` -> ``<name>.json``).

Pure standard library, so the napari widgets and the CLI can read a model's description
without importing Keras.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from napari_synthseg.image_io import atomic_write

#: Format tag of the sidecar; bump the suffix when its meaning changes incompatibly.
SIDECAR_FORMAT = "napari-synthseg-model/1"
#: Output channels of the network, in order.
CHANNELS = ("foreground", "distance", "boundary")
#: Percentiles used by ``percentile_normalize`` on the network input.
NORMALIZATION = {"low": 1.0, "high": 99.8}


class SidecarError(ValueError):
    """A model sidecar is missing, unreadable or not a napari-synthseg sidecar."""


class ModelFileError(ValueError):
    """A model file cannot be used: missing, a folder, unreadable, not an archive, or a bad sidecar."""


def check_model_file(model_path: str | os.PathLike) -> dict:
    """The sidecar of a ``.keras`` model, after checking the file without loading it (no Keras).

    Raises
    ------
    ModelFileError
        One line naming the problem and the fix.
    """
    import zipfile

    path = Path(model_path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file; give the .keras file (with its .json "
                             "sidecar beside it)")
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; check the path or train a model first "
                             "(synthseg run or the Train dock)")
    if not os.access(path, os.R_OK):  # e.g. a colleague's model: unreadable, not "corrupt"
        raise ModelFileError(f"cannot read model file {path}: permission denied; ask its owner to make it "
                             "readable (chmod a+r) or copy it")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras model archive (damaged or not a .keras file); "
                             "choose another model or retrain it")
    try:
        info = read_sidecar(path)
    except SidecarError as exc:
        raise ModelFileError(f"cannot use model {path}: {exc}") from None
    channels = info.get("channels")
    if list(channels or []) != list(CHANNELS):
        raise ModelFileError(f"model {path} outputs channels {channels!r} (sidecar {sidecar_path(path)}); this "
                             f"version needs {list(CHANNELS)!r}. "
                             "Retrain the model with this version of napari-synthseg")
    return info


def prediction_info(network: dict, normalization: str) -> dict:
    """The sidecar entries ``predict`` reads: output channels, input normalisation, network."""
    return {"channels": list(CHANNELS), "normalization": dict(NORMALIZATION, mode=normalization),
            "network": dict(network)}


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Path of the JSON sidecar that belongs to ``model_path`` (same stem, ``.json``)."""
    return Path(model_path).with_suffix(".json")


def write_sidecar(model_path: str | os.PathLike, info: dict) -> Path:
    """Write ``info`` as the sidecar of ``model_path`` atomically and return its path.

    ``format``, ``channels`` and ``normalization`` are filled in when ``info`` lacks them.
    """
    if not isinstance(info, dict):
        raise TypeError(f"sidecar info must be a dict, got {type(info).__name__}")
    content = {"format": SIDECAR_FORMAT, "channels": list(CHANNELS), "normalization": dict(NORMALIZATION)}
    content.update(info)
    try:
        text = json.dumps(content, indent=2, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sidecar info is not JSON-serialisable: {exc}") from exc
    path = sidecar_path(model_path)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return path


def read_sidecar(model_path: str | os.PathLike) -> dict:
    """Read the sidecar of ``model_path`` (or a sidecar path itself).

    Raises
    ------
    SidecarError
        When the file is missing, is not JSON, or has an unknown ``format``.
    """
    path = Path(model_path)
    if path.suffix != ".json":
        path = sidecar_path(path)
    if not path.is_file():
        raise SidecarError(f"model sidecar {path} not found; it is written next to the .keras file by training")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"model sidecar {path} is not readable JSON ({exc}); retrain or restore the file") from exc
    if not isinstance(content, dict):
        raise SidecarError(f"model sidecar {path} does not hold a JSON object")
    fmt = content.get("format")
    if not isinstance(fmt, str) or not fmt.startswith("napari-synthseg-model/"):
        raise SidecarError(f"{path} is not a napari-synthseg model sidecar (format={fmt!r})")
    if fmt != SIDECAR_FORMAT:
        raise SidecarError(f"{path} has sidecar format {fmt!r}; this version reads {SIDECAR_FORMAT!r}. "
                           "Upgrade napari-synthseg or retrain the model")
    return content


def _json_default(value):
    # numpy scalars and arrays, Paths: the usual non-JSON values in training records
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
