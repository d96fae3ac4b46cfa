#!/usr/bin/env bash
# README command 1: set up .venv and run the demo project end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SCRATCH="${1:-data/demo/scratch}"
.venv/bin/esrunner run data/demo --scratch "$SCRATCH"
