#!/usr/bin/env bash
# Tool venvs: programs the tests run as subprocesses whose pinned dependencies conflict
# with constraints.txt, each in .venv-tools/NAME from scripts/NAME-requirements.txt.
# Idempotent: a venv whose stamp matches its requirements file is left alone (instant).
# Called by scripts/setup.sh; runnable on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

tool_venv() {
  local name=$1 venv=.venv-tools/$1 reqs=scripts/$1-requirements.txt
  local stamp=$venv/.rongxin-setup fingerprint
  fingerprint=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    return 0
  fi
  echo "setup: installing $name into $venv"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -r "$reqs"
  echo "$fingerprint" > "$stamp"
}

# pywb: the independent replay of evidence packages' WARCs (tests/crawlers/capture/test_replay.py)
tool_venv pywb
