"""Run every benchmark: .venv/bin/python -m bench"""

from __future__ import annotations

import importlib

BENCHMARKS = [
    "bench.refusal",
    "bench.cli_exit",
    "bench.steps",
    "bench.partition",
    "bench.mosaic",
    "bench.runner",
    "bench.scale",
    "bench.journal",
    "bench.bucket",
    "bench.olmoearth",
    "bench.unified",
    "bench.gaps",
    "bench.preflight",
    "bench.finetune",
    "bench.lock",
    "bench.image",
    "bench.base_push",
    "bench.setup",
]

if __name__ == "__main__":
    for name in BENCHMARKS:
        print(f"== {name}")
        importlib.import_module(name).main()
