#!/usr/bin/env bash
# Set up everything napari-synthseg needs on a fresh Debian/Ubuntu machine:
# system libraries for Qt/OpenGL under Xvfb (through apt-get, only when missing) and a
# virtual environment in .venv with the package and its extras.
# Usage: bash scripts/setup_env.sh [EXTRAS]   (default extras: all,testing)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all,testing}"
python="${PYTHON:-python3}"

apt_packages=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! .venv/bin/python -c "import napari_synthseg" >/dev/null 2>&1; then
  # a first install downloads and unpacks about 3 GB
  bash scripts/check_disk.sh "${SYNTHSEG_INSTALL_GB:-4}" . "${TMPDIR:-/tmp}"
fi
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$python" -m venv .venv
fi
echo "== installing napari-synthseg[$extras] into .venv (first time: a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --no-cache-dir -e ".[$extras]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import importlib.util as u, napari_synthseg, napari; assert u.find_spec('keras') and u.find_spec('tensorflow')" || { echo "setup failed: the package does not import" >&2; exit 1; }
