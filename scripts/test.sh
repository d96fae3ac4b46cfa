#!/usr/bin/env bash
# README command 2: set up .venv, then lint, type-check and run the test suite.
# Ends with the time each step took and the total (pytest lists its slowest tests above it).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=()
T0=$(date +%s)
step() {  # step NAME COMMAND...: run it, remember how long it took
  local name="$1" t rc=0
  shift
  t=$(date +%s)
  "$@" || rc=$?
  STEPS+=("$(printf '%-10s %4ds' "$name" $(($(date +%s) - t)))")
  return "$rc"
}
summary() {
  local rc=$?
  echo "[test] times:"
  for s in "${STEPS[@]}"; do echo "[test]   $s"; done
  local total=$(($(date +%s) - T0))
  echo "[test]   $(printf '%-10s %4ds (%d:%02d min; exit %d)' total "$total" $((total / 60)) $((total % 60)) "$rc")"
}
trap summary EXIT

step setup bash scripts/setup.sh
echo "[test] ruff check"; step ruff .venv/bin/ruff check .
echo "[test] ruff format --check"; step format .venv/bin/ruff format --check .
echo "[test] mypy"; step mypy .venv/bin/mypy
echo "[test] pytest"
export TMPDIR="${TMPDIR:-/tmp}"
# Two test processes (pytest-xdist; tests/conftest.py keeps a module, and all Docker tests,
# in one): CI's two cores. ESRUNNER_TEST_WORKERS=0 runs the suite in this process.
WORKERS="${ESRUNNER_TEST_WORKERS:-2}"
PARALLEL=()
[ "$WORKERS" = 0 ] || PARALLEL=(-n "$WORKERS")
step pytest .venv/bin/python -m pytest -p no:cacheprovider "${PARALLEL[@]}" --durations=25 "$@"
