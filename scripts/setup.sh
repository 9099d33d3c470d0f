#!/usr/bin/env bash
# Set up napari-uqseg on a fresh Debian-like machine with Python 3.11: system libraries for napari's
# OpenGL canvas and a virtual display (when we can install them), a virtual environment in .venv with the
# CPU build of PyTorch pinned first (an unpinned torch would pull several GB of CUDA wheels), then the
# package itself.  Usage: scripts/setup.sh [--dev]   (--dev adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

extras="napari,qt,dicom"
[[ "${1:-}" == "--dev" ]] && extras="napari,qt,metrics,dicom,testing"

apt_packages=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
  libxcb-cursor0 libdbus-1-3 libfontconfig1 python3-venv)
if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[${extras}]"
echo "napari-uqseg is installed in .venv ($(.venv/bin/python -c 'import napari_uqseg; print(napari_uqseg.__version__)'))"
