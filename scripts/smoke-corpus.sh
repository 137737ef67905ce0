#!/usr/bin/env bash
# Build (once) and validate the smoke corpus of real media that the tests use.
# Needs ffmpeg, sox and libsox-fmt-all (scripts/apt-packages.txt) and apt access to the
# Debian archive; downloads about 70 MB on a fresh machine, then reuses the cache
# (~/.cache/rongxin/datasets/smoke, or $RONGXIN_DATA_DIR/smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m datasets.smoke
