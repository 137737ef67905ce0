#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine (run as root, or with the apt packages
# already installed): Debian packages from scripts/apt-packages.txt, the tool venvs of
# scripts/setup-tools.sh, then .venv with the pinned Python packages (constraints.txt).  A second run with nothing changed takes
# about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.rongxin-setup

# --- Debian packages --------------------------------------------------------------------
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^\s*$/d' scripts/apt-packages.txt | awk '{print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: error: not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python environment -----------------------------------------------------------------
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: error: Python >= 3.11 is required ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
  exit 1
fi
# tool venvs (.venv-tools/): pywb, whose pins conflict with ours; instant when present
bash scripts/setup-tools.sh

fingerprint=$(cat pyproject.toml constraints.txt scripts/apt-packages.txt | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ]; then
  exit 0
fi
echo "setup: creating $VENV and installing pinned Python packages"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev]'
# perception: the TMK+PDQF peer of bench/video_robustness.py.  It declares rich<14 and
# opencv-contrib-python-headless<5, which conflict with the pinned rich and opencv (and two
# OpenCV wheels would overwrite each other's cv2); its TMK and PDQF hashers run with them, so
# it is installed without its declared dependencies and its other two are pinned here.
"$VENV/bin/python" -m pip install -q --no-deps -c constraints.txt perception validators tqdm
echo "$fingerprint" > "$STAMP"
echo "setup: done"
