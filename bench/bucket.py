"""Scratch in a bucket against scratch on local disk, on a many-partition request.

A real S3 server (SeaweedFS on loopback, started here) holds the bucket. In one run:

1. ``esrunner run`` of bench.scale's many-partition request (tens of small partitions)
   with ``--scratch s3://...`` against the same command with a local scratch directory,
   alternated (local, bucket, local, bucket), medians; the results are compared byte for
   byte. Goal: bucket <= 1.3x local. Both have the bucket's AWS keys in their
   environment; a third, local, run without them shows what the keys alone cost
   (rasterio built a boto3 session per raster call when they were set: 1.47x on the
   demo before :mod:`rslp.rasterenv`).
2. The journal on the bucket: the cost of one step record (one object) against one
   journal line on local disk, and ``esrunner status`` over a 20,000-partition manifest
   in the bucket.

Run: .venv/bin/python -m bench.bucket
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import ESRUNNER, timed
from bench.scale import many_partitions_project

ROUNDS = 2


def _records(scratch: object, n: int) -> float:
    """Seconds per ``record_step`` over ``n`` records."""
    t0 = time.perf_counter()
    for i in range(n):
        scratch.record_step(f"p{i}", "dataset", "done", fingerprint="f" * 16)  # type: ignore[attr-defined]
    return (time.perf_counter() - t0) / n


def journal_on_bucket(tmp: Path, env: dict[str, str]) -> list[str]:
    from rslp.runner.scratch import Scratch

    os.environ.update(env)
    local = Scratch(tmp / "journal-local")
    bucket = Scratch.open("s3://bucket/journal")
    per_local = _records(local, 500)
    per_bucket = _records(bucket, 200)
    # 20,000 partitions x 3 steps in the bucket, compacted, then `esrunner status`.
    step = {"state": "done", "fingerprint": "0123456789abcdef", "worker": "node:1"}
    manifest = {
        "version": 1,
        "inputs": {},
        "partition_ids": [f"p{i:05d}" for i in range(20_000)],
        "partitions": {
            f"p{i:05d}": {s: dict(step) for s in ("dataset", "inference", "postprocess")}
            for i in range(20_000)
        },
    }
    big = Scratch.open("s3://bucket/status20k")
    assert big.remote is not None
    big.remote.write("manifest.json", json.dumps(manifest).encode())
    big.update_manifest(run_id="bench")  # one batch on top, as mid-run
    t0 = time.perf_counter()
    out = subprocess.run(
        [ESRUNNER, "status", "--scratch", "s3://bucket/status20k"],
        capture_output=True,
        text=True,
        env=env,
    )
    status_s = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    return [
        f"  one step record: local journal line {per_local * 1e3:.2f} ms, bucket object "
        f"{per_bucket * 1e3:.2f} ms ({per_bucket / per_local:.0f}x; constant in the run's size)",
        f"  esrunner status, 20,000 partitions in the bucket: {status_s:.2f} s",
    ]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.s3fault import S3Server

    with tempfile.TemporaryDirectory() as t, S3Server() as s3:
        tmp = Path(t)
        project = many_partitions_project(tmp)
        env = s3.subprocess_env()
        env["ESRUNNER_NODE_DIR"] = str(tmp / "node")
        no_keys = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        local_s: list[float] = []
        bucket_s: list[float] = []
        plain_s: list[float] = []
        for i in range(ROUNDS):
            local = [ESRUNNER, "run", str(project), "--scratch", str(tmp / f"l{i}")]
            local_s.append(timed([*local, "--workers", "1"], env))
            plain = [ESRUNNER, "run", str(project), "--scratch", str(tmp / f"p{i}")]
            plain_s.append(timed([*plain, "--workers", "1"], no_keys))
            url = f"s3://bucket/many{i}"
            bucket_s.append(
                timed([ESRUNNER, "run", str(project), "--scratch", url, "--workers", "1"], env)
            )
        client = s3.client()
        same = all(
            client.get_object(Bucket="bucket", Key=f"many0/results/{n}")["Body"].read()
            == (tmp / "l0" / "results" / n).read_bytes()
            for n in ("result.tif", "result.png")
        )
        plan = json.loads((tmp / "l0" / "plan" / "index.json").read_text())["partitions"]
        keys = client.list_objects_v2(Bucket="bucket", Prefix="many0/").get("KeyCount", 0)
        lm, bm = statistics.median(local_s), statistics.median(bucket_s)
        pm = statistics.median(plain_s)
        print(
            f"many partitions: {len(plan)} partitions, {sum(p['num_windows'] for p in plan)} "
            f"windows, --workers 1, {ROUNDS} rounds alternated"
        )
        print(f"  esrunner run, scratch on local disk   {lm:.1f} s  {local_s}")
        print(f"  esrunner run, scratch in the bucket   {bm:.1f} s  {bucket_s}")
        print(f"  ratio bucket/local = {bm / lm:.2f} (goal <= 1.3); identical results: {same}")
        print(
            f"  local disk, no AWS keys in the environment {pm:.1f} s: keys cost "
            f"{lm / pm:.2f}x (goal 1.0)"
        )
        print(f"  objects in the bucket after the run: {keys}")
        for line in journal_on_bucket(tmp, s3.env()):
            print(line)


if __name__ == "__main__":
    main()
