"""Scale-out: many small partitions against plain rslearn, model reuse, Ray against local.

1. A ~5 x 5 km request over the demo scene with a 0.01-degree partition grid and 64 px
   windows (>= 30 partitions of 1-4 windows): ``esrunner run`` (everything: plan,
   dataset, inference, postprocess, combine) against the same windows through plain
   rslearn, one ``rslearn dataset prepare/ingest/materialize`` + one ``rslearn model
   predict`` (windows made beforehand, untimed), in the same run.
2. Inference set-up per partition after a worker's first (from the manifest).
3. The demo on a 2-node Ray cluster (1 CPU each, in a namespace of its own) against
   ``--workers 2`` locally, both timed inside the same namespace.

Run: .venv/bin/python -m bench.scale [--skip-ray]
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.runner import DEMO, ESRUNNER, plain_rslearn, timed

REPO = Path(__file__).resolve().parents[1]
# Inside the demo scene (8.61-8.74 E, 45.96-46.05 N): about 5.4 x 5.0 km.
BOX = (8.63, 45.985, 8.70, 46.03)


def many_partitions_project(tmp: Path, box: tuple[float, float, float, float] = BOX) -> Path:
    project = tmp / "many"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    (project / "partition_strategies.yaml").write_text(
        yaml.safe_dump(
            {
                "strategy_large": {
                    "class_path": "rslp.common.partitioners.grid.GridPartitioner",
                    "init_args": {"grid_size": 0.01},
                },
                "strategy_small": {
                    "class_path": "rslp.common.partitioners.grid.GridPartitioner",
                    "init_args": {"grid_size": 64},
                },
                "projection": {"resolution": 10},
            }
        )
    )
    w, s, e, n = box
    feature = {
        "type": "Feature",
        "id": "box",
        "properties": {
            "es_start_time": "2024-06-01T00:00:00+00:00",
            "es_end_time": "2024-06-30T23:59:59+00:00",
        },
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
    }
    req = project / "prediction" / "test-request1.geojson"
    req.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return project


def esrunner(project: Path, scratch: Path, *extra: str) -> float:
    return timed([ESRUNNER, "run", str(project), "--scratch", str(scratch), *extra])


def setup_times(scratch: Path) -> tuple[list[float], list[float]]:
    """Inference set-up seconds: (first partition of each worker, every later one)."""
    parts = json.loads((scratch / "manifest.json").read_text())["partitions"]
    first, later = [], []
    for rec in parts.values():
        res = rec["inference"]["result"]
        (first if res["model_built"] else later).append(res["setup_s"])
    return first, later


def ray_vs_local(tmp: Path) -> str:
    """Time the demo on a 2-node Ray cluster and with 2 local workers, in one namespace."""
    from tests import raycluster

    script = tmp / "both.sh"
    script.write_text(
        "set -e\n"
        f"t0=$(date +%s.%N); {ESRUNNER} run {DEMO} --scratch {tmp}/local --workers 2 "
        f">/dev/null 2>&1; t1=$(date +%s.%N)\n"
        f"{ESRUNNER} run {DEMO} --scratch {tmp}/ray --executor ray >/dev/null 2>&1\n"
        f't2=$(date +%s.%N); echo "$t0 $t1 $t2"\n'
        f"{sys.executable} -m bench.scale --ray-overhead\n"
    )
    res = raycluster.in_namespace(tmp / "ray.json", ["bash", str(script)])
    if res["returncode"] != 0:
        return f"  Ray run failed: {res['stderr'][-500:]}"
    times, overhead = res["stdout"].split("\n", 1)
    t0, t1, t2 = (float(x) for x in times.split())
    local, ray = t1 - t0, t2 - t1
    same = (tmp / "local/results/result.tif").read_bytes() == (
        tmp / "ray/results/result.tif"
    ).read_bytes()
    return (
        "demo (45 windows, 3 partitions), 2 nodes x 1 CPU vs 2 local workers:\n"
        f"  --workers 2 (local)        {local:.1f} s\n"
        f"  --executor ray (2 nodes)   {ray:.1f} s  (identical result: {same})\n"
        f"  ratio ray/local = {ray / local:.2f}  (goal <= 1.2)\n{overhead.rstrip()}"
    )


def ray_overhead() -> None:
    """Per-task cost on the cluster: 500 empty tasks, and a chain of 3 (as a partition)."""
    import ray

    ray.init(log_to_driver=False, logging_level="WARNING")

    @ray.remote(num_cpus=1, max_calls=0)
    def noop(x: object = None) -> None:
        return None

    ray.get([noop.remote() for _ in range(50)])  # warm the worker processes
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(500)])
    per_task = (time.perf_counter() - t0) / 500
    t0 = time.perf_counter()
    for _ in range(50):
        ray.get(noop.remote(noop.remote(noop.remote())))
    chain = (time.perf_counter() - t0) / 50
    print(f"  Ray per-task overhead: {per_task * 1000:.1f} ms per empty task (500 in parallel), ")
    print(f"    {chain * 1000:.1f} ms latency for a 3-task chain (one partition's steps)")


def manifest_cost(tmp: Path) -> str:
    """One batched manifest write with 10,000 partitions x 3 steps recorded."""
    from rslp.runner.scratch import Scratch

    scratch = Scratch(tmp / "manifest")
    rec = {"state": "done", "fingerprint": "0" * 16, "start": "x" * 32, "end": "x" * 32}
    rec["worker"] = "node-12:123456"
    scratch.record_steps([(f"grid0.1_{i}", s, dict(rec)) for i in range(10_000) for s in "abc"])
    t0 = time.perf_counter()
    scratch.record_steps([("grid0.1_1", "a", dict(rec))])
    secs = time.perf_counter() - t0
    size = scratch.manifest_path.stat().st_size / 1e6
    return f"manifest with 10,000 partitions: {size:.1f} MB, one batched write {secs * 1000:.0f} ms"


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        project = many_partitions_project(tmp)
        raw, n_raw = plain_rslearn(project, tmp / "raw")
        one = esrunner(project, tmp / "w1", "--workers", "1")
        two = esrunner(project, tmp / "w2", "--workers", "2")
        plan = json.loads((tmp / "w1" / "plan" / "index.json").read_text())["partitions"]
        sizes = [p["num_windows"] for p in plan]
        same = (tmp / "w1/results/result.tif").read_bytes() == (
            tmp / "w2/results/result.tif"
        ).read_bytes()
        print(
            f"many partitions: {len(plan)} partitions of {min(sizes)}-{max(sizes)} windows, "
            f"{sum(sizes)} windows ({n_raw} predicted by plain rslearn):"
        )
        print(f"  plain rslearn (1 prepare/ingest/materialize + 1 predict)  {raw:.1f} s")
        print(f"  esrunner run --workers 1                                  {one:.1f} s")
        print(f"  esrunner run --workers 2 (identical result: {same})        {two:.1f} s")
        print(f"  ratio esrunner/plain = {one / raw:.2f} (1 worker), {two / raw:.2f} (2 workers)")
        print("    (goal <= 1.25)")
        for name, scratch in (("1 worker", tmp / "w1"), ("2 workers", tmp / "w2")):
            first, later = setup_times(scratch)
            print(
                f"  inference set-up per partition, {name}: first {max(first):.2f} s, "
                f"later median {statistics.median(later):.3f} s, max {max(later):.3f} s "
                f"over {len(later)} partitions (goal <= 0.1)"
            )
        print(manifest_cost(tmp))
        if "--skip-ray" not in sys.argv:
            t0 = time.perf_counter()
            print(ray_vs_local(tmp))
            print(f"  (cluster start and both runs: {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    ray_overhead() if "--ray-overhead" in sys.argv else main()
