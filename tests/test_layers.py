"""The import contract: every module's imports follow the layer table in docs/index.md.

The table is read from the docs (its module column), so a module added to the package must be
placed in a layer there, and a module that imports across the table fails here with the import
that broke it. Imports are read with ``ast`` (nothing is imported), both at module level and
inside functions; what runs at import time is followed through the package to check that
TensorFlow (or any Keras backend) is never imported when the core, the headless modules or the
napari docks are imported.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "src" / "napari_synthseg"
PACKAGE = "napari_synthseg"
DOCS = ROOT / "docs" / "index.md"

#: The model's frameworks: imported only by model/ modules.
FRAMEWORKS = {"keras", "tensorflow", "jax", "torch"}
#: The GUI: imported only by _napari/ modules.
GUI = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"}
#: What the pure core may import besides the standard library (the table's third column).
CORE_THIRD_PARTY = {"numpy", "scipy", "skimage", "tifffile", "imageio", "mrcfile", "rsciio", "ome_zarr", "zarr", "dask"}
#: The model layer's child-process bridge: the job and its child (which may run headless jobs, lazily).
RUNNER = {f"{PACKAGE}.model.runner", f"{PACKAGE}.model.child"}
#: The model's settings and defaults: keras-free, read by the headless modules at import time.
MODEL_SETTINGS = {f"{PACKAGE}.model", f"{PACKAGE}.model.params"}
#: model/ modules the napari docks may import: keras-free, for the child-process runner.
MODEL_MODULES_FOR_NAPARI = MODEL_SETTINGS | {f"{PACKAGE}.model.runner", f"{PACKAGE}.model.sidecar"}


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported and whether at import time."""

    name: str
    line: int
    at_import_time: bool  # False inside a function (lazy) or under ``if TYPE_CHECKING:``

    @property
    def top(self) -> str:
        return self.name.split(".")[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imports_of(module: str) -> list[Import]:
    """Every import in ``module``, relative ones resolved, ``from pkg import sub`` as the submodule."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) or _type_checking(child)
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, not in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module
                for alias in child.names:
                    submodule = f"{source}.{alias.name}"
                    name = submodule if submodule in MODULES else source
                    found.append(Import(name, child.lineno, not in_function))
            visit(child, lazy)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports for annotations only, never run."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def layer_table() -> dict[str, set[str]]:
    """Layer name -> its modules, from the table under "Layers of the code" in docs/index.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Layers of the code", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("layer", "") or set(cells[0]) <= set("-: "):
            continue
        members: set[str] = set()
        for token in re.findall(r"`([^`]+)`", cells[1]):
            if token.endswith("/"):  # a subpackage: all of its modules
                prefix = f"{PACKAGE}.{token.rstrip('/')}"
                members |= {m for m in MODULES if m == prefix or m.startswith(prefix + ".")}
            else:
                members.add(f"{PACKAGE}.{token}")
        layers[cells[0]] = members
    return layers


LAYERS = layer_table()
CORE = LAYERS.get("pure core", set())
MODEL = LAYERS.get("model", set())
HEADLESS = LAYERS.get("headless", set())
NAPARI = LAYERS.get("napari", set())
CLI = f"{PACKAGE}.cli"


def is_cli(name: str) -> bool:
    """The command-line package or one of its modules."""
    return name == CLI or name.startswith(CLI + ".")


def crossings(modules: set[str], allowed) -> list[str]:
    """``module:line imports name`` for each import in ``modules`` that ``allowed(imp)`` rejects."""
    return [f"{module}:{imp.line} imports {imp.name}"
            for module in sorted(modules) for imp in imports_of(module) if not allowed(imp)]


def test_the_docs_table_names_the_four_layers_and_only_real_modules():
    assert set(LAYERS) == {"pure core", "model", "headless", "napari"}, sorted(LAYERS)
    listed = set().union(*LAYERS.values())
    assert listed <= set(MODULES), f"docs/index.md lists modules that do not exist: {sorted(listed - set(MODULES))}"


def test_every_module_is_in_exactly_one_layer():
    placed = {m: [name for name, members in LAYERS.items() if m in members] for m in MODULES if m != PACKAGE}
    unplaced = sorted(m for m, layers in placed.items() if not layers)
    twice = sorted(m for m, layers in placed.items() if len(layers) > 1)
    assert not unplaced, f"add these modules to the layer table in docs/index.md: {unplaced}"
    assert not twice, f"these modules are in more than one layer of docs/index.md: {twice}"


def test_the_core_imports_only_the_core_and_its_libraries():
    def allowed(imp: Import) -> bool:
        if imp.top == PACKAGE:
            return imp.name in CORE or imp.name == PACKAGE
        return imp.top in sys.stdlib_module_names or imp.top in CORE_THIRD_PARTY or imp.top == "__future__"

    assert not crossings(CORE, allowed)


def test_the_model_never_imports_the_headless_or_napari_layers():
    def allowed(imp: Import) -> bool:
        return imp.name not in HEADLESS | NAPARI and imp.top not in GUI

    assert not crossings(MODEL - RUNNER, allowed)


def test_the_child_process_runner_calls_headless_jobs_only_inside_the_child():
    # the runner's child runs whole jobs (a curation round), so it may call a headless module,
    # lazily: importing the runner (as the docks do) must not import them
    def allowed(imp: Import) -> bool:
        if imp.name in NAPARI or imp.top in GUI:
            return False
        return not (imp.name in HEADLESS and imp.at_import_time)

    assert not crossings(RUNNER, allowed)


def test_headless_modules_import_the_model_only_inside_functions_and_never_the_gui():
    def allowed(imp: Import) -> bool:
        if imp.name in NAPARI or imp.top in GUI or imp.top in FRAMEWORKS:
            return False
        # the model package and its settings are keras-free; its other modules load Keras
        return not (imp.at_import_time and imp.name in MODEL and imp.name not in MODEL_SETTINGS)

    assert not crossings(HEADLESS, allowed)


def test_the_napari_docks_never_import_the_model_frameworks():
    def allowed(imp: Import) -> bool:
        if imp.top in FRAMEWORKS or is_cli(imp.name):
            return False
        return imp.name not in MODEL or imp.name in MODEL_MODULES_FOR_NAPARI

    assert not crossings(NAPARI, allowed)


def test_nothing_imports_the_command_line():
    outside = {m for m in MODULES if not is_cli(m)}
    assert not crossings(outside, lambda imp: not is_cli(imp.name))


def imported_at_import_time(module: str) -> dict[str, str]:
    """Every module that importing ``module`` imports, followed through the package -> who imports it."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        for imp in imports_of(current):
            if not imp.at_import_time:
                continue
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            parts = imp.name.split(".")
            for end in range(1, len(parts) + 1):
                name = ".".join(parts[:end])
                if name not in seen:
                    seen[name] = f"{current}:{imp.line}"
                    if name in MODULES:
                        todo.append(name)
    return seen


@pytest.mark.parametrize("module", sorted(set(MODULES) - (MODEL - MODEL_MODULES_FOR_NAPARI)))
def test_no_model_framework_is_imported_at_import_time(module):
    """Importing the core, the headless modules, the docks (or what they use of model/) never loads Keras."""
    loaded = imported_at_import_time(module)
    frameworks = {name: where for name, where in loaded.items() if name.split(".")[0] in FRAMEWORKS}
    assert not frameworks, f"importing {module} imports {frameworks} (name: imported at)"


def test_the_contract_catches_a_crossing(tmp_path, monkeypatch):
    """The checks read real imports: a core module that imports the model is reported with its line."""
    bad = tmp_path / "napari_synthseg" / "bad_core.py"
    bad.parent.mkdir()
    bad.write_text("import numpy\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import keras\n\n\n"
                   "def f():\n    from .model import training\n")
    monkeypatch.setitem(MODULES, f"{PACKAGE}.bad_core", bad)
    found = [(imp.name, imp.line, imp.at_import_time) for imp in imports_of(f"{PACKAGE}.bad_core")]
    assert found == [("numpy", 1, True), ("typing", 2, True), ("keras", 5, False),
                     (f"{PACKAGE}.model.training", 9, False)]
    assert crossings({f"{PACKAGE}.bad_core"}, lambda imp: imp.name not in MODEL) == [
        f"{PACKAGE}.bad_core:9 imports {PACKAGE}.model.training"
    ]
