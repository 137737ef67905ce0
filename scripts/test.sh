#!/usr/bin/env bash
# Lint, type-check and test.  Extra arguments go to pytest.  pytest's own exit code is
# also written to .pytest-rc so that .ci/run can tell "no tests collected" (5) apart.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -f .pytest-rc
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || { echo "run: make fmt" >&2; exit 1; }
.venv/bin/mypy || exit 1
bash scripts/smoke-corpus.sh || { echo "the smoke corpus of real media could not be built (see above)" >&2; exit 1; }
.venv/bin/pytest "$@"
rc=$?
echo "$rc" > .pytest-rc
exit "$rc"
