#!/usr/bin/env bash
# Run a developer tool (ruff, mypy) from the project's .venv when it exists, else from PATH.
# Used by `make check`, `make fmt` and the pre-commit hooks, so all three run the same thing.
set -euo pipefail
tool=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$here/.venv/bin/$tool" ]; then
    exec "$here/.venv/bin/$tool" "$@"
fi
exec "$tool" "$@"
