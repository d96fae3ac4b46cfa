#!/usr/bin/env bash
# Build the GPU machine's kit (see scripts/device_kit.py): scripts/device-kit.sh [plan|build]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec .venv/bin/python scripts/device_kit.py "${1:-build}"
