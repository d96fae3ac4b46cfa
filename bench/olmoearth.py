"""The realistic project (``data/olmoearth-cropland``) against plain rslearn, time and memory.

The OlmoEarth Nano encoder, 12-band imagery with several timesteps, patch-wise inference
with overlap (``load_all_patches``), the reference default ``autocast_dtype: bfloat16``
(turned off on a CPU by the runner; the plain run gets the same config).

1. ``esrunner run`` (everything: plan, dataset, inference, postprocess, combine) with the
   default ``--workers`` and with ``--workers 1``, against the same windows through plain
   rslearn: one ``rslearn dataset prepare/ingest/materialize`` + one ``rslearn model
   predict`` (windows made beforehand, untimed), in the same run. Goals: <= 1.05 x the time,
   <= 1.1 x the peak memory (of the largest process).
2. The same request split into small partitions (0.01 degree): ``--workers`` 1, the default
   and the CPU count; the default must not be slower than 1.

Run: .venv/bin/python -m bench.olmoearth
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from bench.common import measured
from bench.runner import ESRUNNER, plain_rslearn
from rslp.cli import default_workers
from rslp.runner.scratch import Scratch

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "data" / "olmoearth-cropland"


def run_ours(project: Path, scratch: Path, workers: int | None) -> tuple[float, float]:
    """``esrunner run``: (seconds, peak MiB)."""
    cmd = [ESRUNNER, "run", str(project), "--scratch", str(scratch)]
    return measured(cmd + (["--workers", str(workers)] if workers else []))


def small_partitions(tmp: Path) -> Path:
    """The project with a 0.01-degree partition grid (many partitions of a few windows)."""
    project = tmp / "small"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("scratch*", "__pycache__"))
    run_yaml = project / "olmoearth_run.yaml"
    run = yaml.safe_load(run_yaml.read_text())
    large = run["partition_strategies"]["partition_request_geometry"]
    large.setdefault("init_args", {})["grid_size"] = 0.01
    run_yaml.write_text(yaml.safe_dump(run, sort_keys=False))
    return project


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        auto = default_workers()
        ours, ours_mib = run_ours(PROJECT, tmp / "ours", 1)
        peaks: list[float] = []
        raw, n = plain_rslearn(PROJECT, tmp / "raw", peaks)
        raw_mib = max(peaks)
        result = tmp / "ours" / "results"
        print(f"{PROJECT.name} ({n} windows; OlmoEarth Nano, load_all_patches):")
        print(f"  esrunner run --workers 1   {ours:.1f} s, peak {ours_mib:.0f} MiB")
        print(f"  plain rslearn CLI calls    {raw:.1f} s, peak {raw_mib:.0f} MiB")
        print(f"  ratio time {ours / raw:.2f} (goal <= 1.05), memory {ours_mib / raw_mib:.2f}")
        print(f"  results: {sorted(p.name for p in result.iterdir())}")
        project = small_partitions(tmp)
        counts = sorted({1, auto, os.cpu_count() or 1})
        times = {w: run_ours(project, tmp / f"s{w}", w)[0] for w in counts}
        parts = len(Scratch(tmp / "s1").read_manifest().get("partitions", {}))
        print(f"{parts} small partitions on {os.cpu_count()} CPUs (default --workers {auto}):")
        for w, secs in times.items():
            mark = "  <- default" if w == auto else ""
            print(f"  --workers {w}  {secs:.1f} s  {secs / times[1]:.2f} x --workers 1{mark}")


if __name__ == "__main__":
    main()
