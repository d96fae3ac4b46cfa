#!/usr/bin/env bash
# README command 2: set up .venv, then lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] ruff check"; .venv/bin/ruff check .
echo "[test] ruff format --check"; .venv/bin/ruff format --check .
echo "[test] mypy"; .venv/bin/mypy
echo "[test] pytest"
export TMPDIR="${TMPDIR:-/tmp}"
.venv/bin/python -m pytest -p no:cacheprovider --durations=25 "$@"
