"""The installed package: manifest, entry points, import hygiene."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

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
