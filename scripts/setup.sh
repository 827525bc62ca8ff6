#!/usr/bin/env bash
# Set up vis2mus-live on a fresh Debian/Ubuntu machine with Python 3.11:
# Debian packages (JACK, liblo tools, Pure Data, FluidSynth + a GM soundfont) when apt is usable,
# then a virtual environment in .venv with the CPU build of torch (for ONNX export and training).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

packages="jackd2 liblo-tools puredata-core fluidsynth fluid-soundfont-gm"
if command -v apt-get >/dev/null; then
  missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: $missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
else
  echo "setup: no apt-get here; install JACK (or use ALSA/CoreMIDI), liblo-tools, Pure Data and FluidSynth yourself"
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[train,test,report]'
# --test adds the optional peers whose tests skip without them: zeroconf (OSCQuery advertising) and
# Ableton Link (LinkPython-extern, GPL-2.0-or-later; never installed by the plain setup).
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[oscquery,link]'
fi
echo "setup: done (.venv ready)"
