"""benchmarks/run_all.py: targets judged the right way round, missing data skipped with a reason."""

from __future__ import annotations

import pytest

from _scripts import loaded_script


@pytest.fixture(scope="module")
def run_all():
    with loaded_script("benchmarks/run_all.py") as module:
        yield module


def test_targets_are_judged_in_their_direction(run_all):
    targets = run_all.TARGETS
    assert targets["autoseg"].verdict(0.49) == "PASS" and targets["autoseg"].verdict(0.51) == "MISS"
    assert targets["synthesis"].verdict(50.0) == "PASS" and targets["synthesis"].verdict(49.9) == "MISS"
    assert targets["fill"].verdict(50.1) == "MISS"
    assert targets["large"].verdict(1.9) == "PASS"
    assert set(run_all.QUICK) <= set(targets) == set(run_all.BENCHMARKS)


def test_report_line_shows_figure_target_verdict_and_date(run_all):
    line = run_all.report_line(run_all.TARGETS["predict"], 12.5, "detail", "2026-12-02", smoke=False)
    assert "12.5" in line and "<= 10 s" in line and "MISS" in line and "2026-12-02" in line
    assert "SMOKE" in run_all.report_line(run_all.TARGETS["predict"], 1.0, "", "2026-12-02", smoke=True)


def test_missing_seed_em_is_skipped_with_the_fix(run_all, tmp_path, capsys):
    code = run_all.main(["--only", "autoseg", "synthesis", "--data", str(tmp_path / "nowhere")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("SKIP") == 2 and "seed_em not found" in out and "--data" in out
