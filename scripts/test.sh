#!/usr/bin/env bash
# Set everything up and run the whole test suite (napari tests under Xvfb).
# Extra arguments go to pytest, e.g. bash scripts/test.sh -k bank
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all,testing
export QT_API="${QT_API:-pyqt5}"
set +e
.venv/bin/python -m pytest --timeout=900 -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
