"""Imperfect data: a request partly beyond the imagery, then the rerun that fills the gaps.

A ~10 x 7 km request with 0.01-degree partitions (64 px windows) over the demo scene and
just past its eastern edge, so that about one partition in ten has windows without imagery
(as a country-scale request meets the edge of a collection here and there):

1. ``esrunner run`` (floor 0.3): finishes with what exists, lists the rest;
2. the same command again, nothing new: retries only the rejected windows;
3. a scene east of the first is added; the same command fills the gaps;
4. the same command once more, with nothing left to do (the fixed cost of a run);
5. baseline, in the same run: the whole request from scratch with both scenes.

Ratios: the gap-filling rerun against the first run and against the run from scratch,
and its work beyond the fixed cost against the first run's.

Run: .venv/bin/python -m bench.gaps
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from bench.runner import DEMO
from bench.scale import esrunner, many_partitions_project

BOX = (8.62, 45.975, 8.752, 46.035)  # the scene ends at 8.745 E: gaps in the last column
EAST_ORIGIN = (480240.0, 5100000.0)


def add_east_scene(project: Path) -> None:
    sys.path.insert(0, str(DEMO / "scripts"))
    try:
        from synthetic import render, write_geotiff
    finally:
        sys.path.pop(0)
    image, _ = render(EAST_ORIGIN, 1024, [], seed=8)
    write_geotiff(project / "imagery" / "scene_east.tif", image, EAST_ORIGIN)


def counts(scratch: Path) -> tuple[int, int, int]:
    """(partitions, windows, rejected windows) from the manifest."""
    parts = json.loads((scratch / "manifest.json").read_text())["partitions"]
    res = [p["dataset"]["result"] for p in parts.values()]
    return len(res), sum(r["windows"] for r in res), sum(r["rejected"] for r in res)


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        project = many_partitions_project(tmp, BOX)
        scratch = tmp / "gaps"
        flags = ("--workers", "1", "--min-window-success-rate", "0.3")
        first = esrunner(project, scratch, *flags)
        n_parts, n_windows, rejected = counts(scratch)
        gap_parts = sum(
            1
            for p in json.loads((scratch / "manifest.json").read_text())["partitions"].values()
            if p["dataset"]["result"]["rejected"]
        )
        again = esrunner(project, scratch, *flags)
        add_east_scene(project)
        fill = esrunner(project, scratch, *flags)
        left = counts(scratch)[2]
        noop = esrunner(project, scratch, *flags)  # nothing left to do: the fixed cost
        fresh = esrunner(project, tmp / "fresh", *flags)
        with (
            rasterio.open(scratch / "results" / "result.tif") as a,
            rasterio.open(tmp / "fresh" / "results" / "result.tif") as b,
        ):
            same_grid = a.shape == b.shape and a.transform == b.transform
            agree = float(np.mean(a.read(1) == b.read(1))) if same_grid else float("nan")
        print(
            f"request past the imagery: {n_parts} partitions, {n_windows} windows, {rejected} "
            f"rejected in {gap_parts} partitions"
        )
        print(f"  first run (finishes with what exists)       {first:.1f} s")
        print(
            f"  rerun, nothing new (retries the gaps only)  {again:.1f} s  ({again / first:.2f} x)"
        )
        print(
            f"  rerun after a new scene (fills the gaps)    {fill:.1f} s  "
            f"({fill / first:.2f} x the first run, {fill / fresh:.2f} x from scratch); "
            f"{left} rejected left"
        )
        print(f"  from scratch with both scenes (baseline)    {fresh:.1f} s")
        print(
            f"  the same command with nothing to do         {noop:.1f} s (imports, checks); "
            f"beyond it the fill does {(fill - noop) / (first - noop):.2f} x the first run's work"
        )
        print(
            f"  filled result vs from scratch: {agree:.1%} of pixels equal (windows that were "
            "ready before keep the imagery they had)"
        )


if __name__ == "__main__":
    main()
