#!/usr/bin/env bash
# Refuse to start an install that cannot fit: pip's own "No space left on device" comes halfway
# through and leaves a broken .venv behind.
# Usage: bash scripts/check_disk.sh NEED_GB DIR...   (exit 1 with the fix when a DIR has less free)
set -euo pipefail
need_gb="$1"; shift
for dir in "$@"; do
  mkdir -p "$dir"
  free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
  free_gb=$((free_kb / 1024 / 1024))
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "not enough disk space: $dir has ${free_gb} GB free, the install needs about ${need_gb} GB" \
      "(TensorFlow, napari and Qt). Free some space there (or point TMPDIR at a larger disk) and run again." >&2
    exit 1
  fi
done
