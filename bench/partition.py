"""Partitioning speed and memory.

1. A 1 x 1 degree request at 10 m with 128-pixel windows (~7,600 windows): our
   GridPartitioner against a naive per-window shapely loop, in the same run.
2. A country-sized request (>= 1,000,000 windows, a 1-degree partition grid across three
   UTM zones): the full plan step, streamed to disk, with its peak memory.
3. `esrunner plan` of that request on a copy of the demo (goal < 10 s, < 512 MiB): command
   to exit, peak memory, against enumerating the same windows alone (no file, no check,
   no map) in a process of its own, in the same run.

Run: .venv/bin/python -m bench.partition
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import shapely
import shapely.geometry as sg

from bench.common import best_of, measured, peak_rss_mib, run_child
from rslp.common.partitioners import GridPartitioner, NoopPartitioner, OutputProjection
from rslp.common.partitioners.interface import FeatureFrame
from rslp.request import RequestFeature
from rslp.runner.partition import build_plan

T = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC))
UTM = OutputProjection(resolution=10)


def one_degree() -> RequestFeature:
    return RequestFeature("deg", sg.box(8.0, 0.0, 9.0, 1.0), T, {})


def country() -> RequestFeature:
    # An irregular polygon of about 1.6 million km2 spanning UTM zones 31-33.
    ring = [(0.0, 40.0), (17.0, 40.5), (18.0, 48.0), (14.0, 53.5), (6.0, 54.0), (-1.0, 50.0)]
    return RequestFeature("country", sg.Polygon(ring), T, {})


def ours(feature: RequestFeature) -> int:
    part = NoopPartitioner().partition_request([feature])[0]
    return sum(1 for _ in GridPartitioner(128).partition_windows(part, UTM))


def naive(feature: RequestFeature) -> int:
    """Per-window Python loop: a box and an unprepared intersects test for every cell."""
    frame = FeatureFrame(feature, UTM)
    geom = frame.pixels()
    minx, miny, maxx, maxy = geom.bounds
    n = 0
    for ix in range(math.floor(minx / 128), math.floor(maxx / 128) + 1):
        for iy in range(math.floor(miny / 128), math.floor(maxy / 128) + 1):
            b = (ix * 128, iy * 128, (ix + 1) * 128, (iy + 1) * 128)
            if geom.intersects(shapely.box(*b)):
                frame.window(b)
                n += 1
    return n


def country_child() -> None:
    """Plan the country request into a temporary dir; print windows, seconds and peak MiB."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index = build_plan([country()], GridPartitioner(1.0), GridPartitioner(128), UTM, Path(tmp))
        secs = time.perf_counter() - t0
    n = sum(p["num_windows"] for p in index["partitions"])
    print(
        json.dumps(
            {
                "windows": n,
                "partitions": len(index["partitions"]),
                "seconds": secs,
                "peak_mib": peak_rss_mib(),
            }
        )
    )


COUNTRY_STRATEGIES = """\
strategy_large:
  class_path: rslp.common.partitioners.grid.GridPartitioner
  init_args: {grid_size: 1.0}
strategy_small:
  class_path: rslp.common.partitioners.grid.GridPartitioner
  init_args: {grid_size: 128}
projection: {resolution: 10}
"""


def enumerate_child() -> None:
    """Enumerate the country's windows partition by partition; print count, seconds, MiB."""
    t0 = time.perf_counter()
    n = 0
    for part in GridPartitioner(1.0).partition_request([country()]):
        n += sum(1 for _ in GridPartitioner(128).partition_windows(part, UTM))
    secs = time.perf_counter() - t0
    print(json.dumps({"windows": n, "seconds": secs, "peak_mib": peak_rss_mib()}))


def plan_cli() -> None:
    """`esrunner plan` of the country request, against enumerating its windows alone."""
    from shapely.geometry import mapping

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "country"
        shutil.copytree(repo / "data" / "demo", project, ignore=shutil.ignore_patterns("scratch"))
        (project / "partition_strategies.yaml").write_text(COUNTRY_STRATEGIES)
        t0, t1 = (t.isoformat() for t in T)
        props = {"es_start_time": t0, "es_end_time": t1}
        feature = {"type": "Feature", "properties": props, "geometry": mapping(country().geometry)}
        request = project / "prediction" / "test-request1.geojson"
        request.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        esrunner = str(Path(sys.executable).parent / "esrunner")
        cmd = [esrunner, "plan", str(project), "--scratch", str(Path(tmp) / "scratch")]
        secs, mib = min((measured(cmd) for _ in range(2)), key=lambda r: r[0])
    base = run_child("bench.partition", "--enumerate-child")
    print(
        f"esrunner plan, country ({base['windows']:,} windows): {secs:.1f} s (goal < 10 s), "
        f"peak {mib:.0f} MiB (goal < 512); enumerating the windows alone {base['seconds']:.1f} s, "
        f"{base['peak_mib']:.0f} MiB: ratio = {secs / base['seconds']:.2f}"
    )


def main() -> None:
    t_ours, n_ours = best_of(lambda: ours(one_degree()))
    t_naive, n_naive = best_of(lambda: naive(one_degree()))
    assert n_ours == n_naive, (n_ours, n_naive)
    print(f"1x1 degree, 10 m, 128 px windows: {n_ours} windows")
    print(f"  ours  {t_ours:.3f} s  ({n_ours / t_ours:,.0f} windows/s)")
    print(f"  naive {t_naive:.3f} s  ({n_naive / t_naive:,.0f} windows/s)")
    print(f"  ratio ours/naive = {t_ours / t_naive:.3f}")
    c = run_child("bench.partition", "--country-child")
    print(
        f"country: {c['windows']:,} windows in {c['partitions']} partitions, "
        f"{c['seconds']:.1f} s ({c['windows'] / c['seconds']:,.0f} windows/s), "
        f"peak memory {c['peak_mib']:.0f} MiB"
    )
    plan_cli()


if __name__ == "__main__":
    if "--country-child" in sys.argv:
        country_child()
    elif "--enumerate-child" in sys.argv:
        enumerate_child()
    else:
        main()
