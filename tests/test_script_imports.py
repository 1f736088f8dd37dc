"""The scripts and benchmarks import only names the package still defines.

They run by hand, outside the test suite, so a name moved by a refactor would break them unseen
(``scripts/walkthrough_round.py`` once imported a helper from the module it had left). Checked on
the source text: nothing is imported, so no display, Qt or TensorFlow is needed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_synthseg"
RUN_BY_HAND = sorted([*ROOT.joinpath("scripts").glob("*.py"), *ROOT.joinpath("benchmarks").glob("*.py")])


def module_file(dotted: str) -> Path | None:
    """Source file of a ``napari_synthseg`` module or package, None when there is none."""
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_names(path: Path) -> set[str]:
    """Names bound at the top level of a module (definitions, assignments, imports), and its submodules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree) if path.name == "__init__.py" else tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if path.name == "__init__.py":
        names.update(p.stem for p in path.parent.glob("*.py"))
        names.update(p.name for p in path.parent.iterdir() if (p / "__init__.py").is_file())
    return names


def package_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import of ``napari_synthseg`` in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "napari_synthseg":
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names
                         if alias.name.split(".")[0] == "napari_synthseg")
    return found


def test_there_are_scripts_to_check():
    assert len(RUN_BY_HAND) >= 10
    assert any(package_imports(path) for path in RUN_BY_HAND)


@pytest.mark.parametrize("path", RUN_BY_HAND, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_imported_names_exist(path):
    missing = []
    for line, module, names in package_imports(path):
        source = module_file(module)
        if source is None:
            missing.append(f"line {line}: no module {module}")
            continue
        defined = defined_names(source)
        missing.extend(f"line {line}: {module} has no {name}" for name in names if name not in defined)
    assert not missing, f"{path.relative_to(ROOT)} imports names that moved or went: {missing}"


def test_the_check_finds_a_moved_name(tmp_path):
    script = tmp_path / "old_script.py"
    script.write_text("def main():\n    from napari_synthseg._napari._common import keep_dock_settings_in\n")
    (line, module, names), = package_imports(script)
    assert (line, module, names) == (2, "napari_synthseg._napari._common", ["keep_dock_settings_in"])
    assert "keep_dock_settings_in" not in defined_names(module_file(module))
    assert "keep_dock_settings_in" in defined_names(module_file("napari_synthseg._napari._settings"))
