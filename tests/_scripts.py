"""Load a benchmark or script file of this repository as a module, for the tests of its functions."""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def loaded_script(relative_path: str):
    """The module of ``ROOT / relative_path``, registered in ``sys.modules`` while in use.

    Registered because dataclasses look their module up while the file runs.
    """
    path = ROOT / relative_path
    name = "repo_" + "_".join(Path(relative_path).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
