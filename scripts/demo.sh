#!/usr/bin/env bash
# Set everything up and run the main job on built-in sample data: auto-segment, object bank,
# synthetic scenes, U-Net training, full-resolution segmentation, accuracy against ground truth.
# Extra arguments go to `synthseg demo`, e.g. bash scripts/demo.sh --minutes 5
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh all,testing
# the demo replaces its own earlier outputs in out/demo, so the command can be run again
.venv/bin/synthseg demo --out out/demo --overwrite "$@"
