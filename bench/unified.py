"""The unified-format example (``data/olmoearth-change``) against plain rslearn on its
transpiled configs, time and memory.

``esrunner run`` reads ``olmoearth_config.yaml``, transpiles it and runs everything (plan,
dataset, inference of three heads, postprocess, combine, a COG and a preview per head);
plain rslearn gets the transpiled dataset and model configs (the same windows, made
beforehand and untimed) through one ``rslearn dataset prepare/ingest/materialize`` and one
``rslearn model predict``. Each is run twice, alternating, and the faster kept. Goals:
<= 1.05 x the time, <= 1.1 x the peak memory (of the largest process).

Run: .venv/bin/python -m bench.unified
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.olmoearth import run_ours
from bench.runner import plain_rslearn

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "data" / "olmoearth-change"


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        ours: list[tuple[float, float]] = []
        raw: list[tuple[float, float]] = []
        n = 0
        for i in range(2):
            ours.append(run_ours(PROJECT, tmp / f"ours{i}", 1))
            peaks: list[float] = []
            secs, n = plain_rslearn(PROJECT, tmp / f"raw{i}", peaks)
            raw.append((secs, max(peaks)))
        (o, o_mib), (r, r_mib) = min(ours), min(raw)
        results = sorted(p.name for p in (tmp / "ours0" / "results").iterdir())
        print(f"{PROJECT.name} ({n} windows; unified format, three heads, OlmoEarth Nano):")
        print(f"  esrunner run --workers 1     {o:.1f} s, peak {o_mib:.0f} MiB")
        print(f"  plain rslearn, transpiled    {r:.1f} s, peak {r_mib:.0f} MiB")
        print(f"  ratio time {o / r:.2f} (goal <= 1.05), memory {o_mib / r_mib:.2f} (<= 1.1)")
        print(f"  results: {results}")


if __name__ == "__main__":
    main()
