#!/usr/bin/env bash
# Set everything up, lint, and run the whole test suite. Lint first: `ruff check` (configured in
# pyproject.toml) fails the run before any test. Two pytest processes: the napari tests
# (tests/napari, under Xvfb) must not share a process with TensorFlow (they crash together
# under Mesa OpenGL). Extra arguments go to both pytest runs, e.g. bash scripts/test.sh -k bank
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all,testing
export QT_API="${QT_API:-pyqt6}"

echo "== ruff check (lint)"
.venv/bin/python -m ruff check . || { echo "ruff found lint errors (above): fix them, or run .venv/bin/python -m ruff check --fix ." >&2; exit 1; }

failed=0
empty=0
run_pytest() {
  local rc=0
  .venv/bin/python -m pytest --timeout=900 -ra "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    empty=$((empty + 1))   # pytest collected no test in this half
  elif [ "$rc" -ne 0 ]; then
    failed=1
  fi
}
# Two workers (pytest-xdist) for the core half: most of its time is single-threaded (TensorFlow tracing each
# tiny network, child processes importing it), so two share two cores well (11.6 -> 7.3 min on the 2-core CPU,
# docs/benchmarks.md "Test suite time"). SYNTHSEG_TEST_WORKERS=0 runs it in one process.
echo "== core, model and command-line tests (${SYNTHSEG_TEST_WORKERS:-2} workers)"
run_pytest tests --ignore=tests/napari -p no:xvfb -n "${SYNTHSEG_TEST_WORKERS:-2}" "$@"
echo "== napari tests (own process, under Xvfb)"
run_pytest tests/napari "$@"

# "no tests ran" is a failure: both halves must run tests, or at least one when filtered
if [ "$empty" -eq 2 ] || { [ "$#" -eq 0 ] && [ "$empty" -gt 0 ]; }; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$failed"
