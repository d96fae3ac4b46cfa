"""The manifest journal: the cost of a step record and of reading the state, 20,000 partitions.

A scratch directory holding 20,000 partitions x 3 steps (done), then:

1. the cost of recording one more step (one journal line, compactions included) against
   today's baseline, rewriting the whole manifest.json per record (read, update, write
   atomically), measured in the same run;
2. the cost per record over a whole run's worth of records (20,000 partitions x 3 steps x
   running + done, one record at a time): compactions amortised;
3. ``esrunner status`` on that scratch (journal and manifest read).

Run: .venv/bin/python -m bench.journal
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rslp.fsutil import write_json_atomic
from rslp.runner.scratch import Scratch

PARTITIONS = 20_000
STEPS = ("dataset", "inference", "postprocess")
REC = {
    "state": "done",
    "fingerprint": "0" * 16,
    "start": "2026-12-04T20:00:00.000000+00:00",
    "end": "2026-12-04T20:00:01.000000+00:00",
    "worker": "node-12:123456",
}


def whole_file_rewrite(scratch: Scratch, pid: str, step: str) -> None:
    """Today's baseline: one record = read, update and atomically rewrite manifest.json."""
    with scratch.manifest_lock():
        manifest = json.loads(scratch.manifest_path.read_text())
        manifest["partitions"].setdefault(pid, {})[step] = dict(REC)
        write_json_atomic(scratch.manifest_path, manifest)


def per_record(fn: object, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(f"extra_{i}", STEPS[i % 3])  # type: ignore[operator]
    return (time.perf_counter() - t0) / n


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        full = [(f"grid0.01_{i}", s, dict(REC)) for i in range(PARTITIONS) for s in STEPS]
        old = Scratch(tmp / "old")
        old.record_steps(full)
        old.compact()
        new = Scratch(tmp / "new")
        new.record_steps(full)
        new.compact()
        size = new.manifest_path.stat().st_size / 1e6
        base = per_record(lambda p, s: whole_file_rewrite(old, p, s), 20)
        ours = per_record(lambda p, s: new.record_step(p, s, "done", fingerprint="0" * 16), 2000)
        print(f"manifest with {PARTITIONS:,} partitions x 3 steps: {size:.1f} MB")
        print(f"  one record, whole-file rewrite (baseline)  {base * 1000:.1f} ms")
        print(f"  one record, journal line                   {ours * 1000:.3f} ms")
        print(f"  ratio journal / rewrite = {ours / base:.4f}")

        run = Scratch(tmp / "run")
        t0 = time.perf_counter()
        for i in range(PARTITIONS):
            for s in STEPS:
                run.record_step(f"grid0.01_{i}", s, "running", worker="node-12:123456")
                run.record_step(f"grid0.01_{i}", s, "done", fingerprint="0" * 16)
        whole = time.perf_counter() - t0
        n = PARTITIONS * len(STEPS) * 2
        print(
            f"a run's {n:,} records one at a time: {whole:.1f} s, "
            f"{whole / n * 1000:.3f} ms per record (compactions included)"
        )
        state = run.read_manifest()
        assert len(state["partitions"]) == PARTITIONS
        assert all(r[s]["state"] == "done" for r in state["partitions"].values() for s in STEPS)
        esrunner = str(Path(sys.executable).with_name("esrunner"))
        t0 = time.perf_counter()
        subprocess.run(
            [esrunner, "status", "--scratch", str(run.root)], check=True, capture_output=True
        )
        status = time.perf_counter() - t0
        print(f"  esrunner status on it (manifest + journal): {status:.2f} s")


if __name__ == "__main__":
    main()
