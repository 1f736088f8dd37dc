"""The set-up script's disk check: a clear refusal before pip runs out of space halfway."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from _scripts import ROOT

CHECK = ROOT / "scripts" / "check_disk.sh"

pytestmark = pytest.mark.skipif(shutil.which("df") is None, reason="needs df")


def _check(need_gb: int, *dirs) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CHECK), str(need_gb), *map(str, dirs)],
                          capture_output=True, text=True, timeout=30)


def test_a_disk_with_too_little_space_is_refused_with_the_fix(tmp_path):
    result = _check(10**9, tmp_path)
    assert result.returncode == 1
    assert f"not enough disk space: {tmp_path} has" in result.stderr
    assert "needs about 1000000000 GB" in result.stderr
    assert "Free some space" in result.stderr


def test_enough_space_passes_silently_and_a_missing_folder_is_made(tmp_path):
    where = tmp_path / "not" / "yet"
    result = _check(0, tmp_path, where)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert where.is_dir()


def test_the_set_up_script_checks_before_a_first_install():
    text = (ROOT / "scripts" / "setup_env.sh").read_text()
    assert text.index("scripts/check_disk.sh") < text.index("pip install -q --no-cache-dir -e")


def test_the_core_half_of_the_suite_runs_on_two_workers_that_are_installed():
    import importlib.util
    import re
    import tomllib

    script = (ROOT / "scripts" / "test.sh").read_text()
    (core,) = [line for line in script.splitlines() if line.startswith("run_pytest tests --ignore=tests/napari")]
    assert '-n "${SYNTHSEG_TEST_WORKERS:-2}"' in core
    (napari,) = [line for line in script.splitlines() if line.startswith("run_pytest tests/napari")]
    assert " -n " not in napari  # one Xvfb display, one process
    testing = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["testing"]
    assert any(re.match(r"pytest-xdist\b", requirement) for requirement in testing)
    assert importlib.util.find_spec("xdist") is not None
