"""The installed package: manifest, entry points, import hygiene, public API."""

import ast
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

import napari_synthseg


def test_manifest_ships_inside_package_and_is_registered():
    manifest = Path(napari_synthseg.__file__).with_name("napari.yaml")
    assert manifest.is_file()
    eps = [ep for ep in entry_points(group="napari.manifest") if ep.name == "napari-synthseg"]
    assert eps and eps[0].value == "napari_synthseg:napari.yaml"


def test_npe2_validates_manifest():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-synthseg")
    assert pm.name == "napari-synthseg"
    widget_commands = {w.command for w in pm.contributions.widgets}
    assert {"napari-synthseg.train_widget", "napari-synthseg.curate_widget"} <= widget_commands
    # every python_name in the manifest must resolve to a real object
    for command in pm.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        mod = __import__(module, fromlist=[attr])
        assert hasattr(mod, attr), command.python_name


def test_import_does_not_pull_tensorflow_or_qt():
    code = ("import sys, napari_synthseg, napari_synthseg.autoseg, napari_synthseg.bank, "
            "napari_synthseg.synthesis, napari_synthseg.curation, napari_synthseg.pipeline, "
            "napari_synthseg.cli, napari_synthseg.model; "
            "bad = [m for m in ('tensorflow', 'keras', 'qtpy', 'PyQt5', 'napari') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_help_runs():
    result = subprocess.run([sys.executable, "-m", "napari_synthseg.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "autoseg" in result.stdout and "predict" in result.stdout


def test_manifest_file_validates_with_categories_and_menus():
    """What `npe2 validate napari-synthseg` checks, through npe2's Python API."""
    from npe2 import PluginManifest

    manifest = Path(napari_synthseg.__file__).with_name("napari.yaml")
    pm = PluginManifest.from_file(manifest)  # schema validation; raises on an invalid manifest
    pm.validate_imports()  # every command's python_name imports
    assert {"Segmentation", "Measurement"} <= set(pm.categories)
    menus = pm.contributions.menus
    assert [item.submenu for item in menus["napari/layers/segment"]] == ["napari-synthseg.stages"]
    docks = {w.command for w in pm.contributions.widgets}
    assert {item.command for item in menus["napari-synthseg.stages"]} == docks


def test_importing_the_package_imports_no_model_framework_gui_or_submodule():
    code = ("import sys, napari_synthseg; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6') "
            "or m.startswith('napari_synthseg.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_public_name_resolves_to_what_its_module_defines():
    import importlib

    exports = napari_synthseg._EXPORTS
    assert "run_pipeline" in exports and len(exports) <= 20  # the names a script needs, not every helper
    assert sorted(napari_synthseg.__all__) == sorted([*exports, "__version__"])
    for name, module in exports.items():
        value = getattr(napari_synthseg, name)
        assert value is getattr(importlib.import_module(module), name), name
        assert value.__module__ == module, f"{name} is defined in {value.__module__}, not {module}"
    assert napari_synthseg.__version__ == version("napari-synthseg")


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'open_lazy'"):
        napari_synthseg.open_lazy  # noqa: B018 (the attribute access is the test)


def test_the_type_stub_declares_every_public_name_from_its_module():
    package = Path(napari_synthseg.__file__).parent
    stub = ast.parse((package / "__init__.pyi").read_text(encoding="utf-8"))
    declared = {alias.asname or alias.name: node.module for node in stub.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    annotated = {node.target.id for node in stub.body if isinstance(node, ast.AnnAssign)}
    assert declared == napari_synthseg._EXPORTS
    assert annotated == {"__version__", "__all__"}
    assert (package / "py.typed").is_file()  # PEP 561: the package ships its types (whole folder in the wheel)
