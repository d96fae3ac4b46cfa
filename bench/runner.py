"""Runner overhead and parallel speed-up on the demo project.

1. ``esrunner run data/demo`` (one worker, everything: plan, dataset, inference,
   postprocess, combine) against the same windows built and predicted with raw rslearn
   CLI calls (``rslearn dataset prepare/ingest/materialize``, ``rslearn model predict``),
   in the same run.
2. A 4-partition request with ``--workers 2`` against ``--workers 1``.

Run: .venv/bin/python -m bench.runner
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import measured
from rslp.espredict_runner import EsPredictRunner
from rslp.runner.dataset import create_windows
from rslp.runner.inference import DATASET_PATH_VAR, predict_config
from rslp.templates import template_values

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
# rslearn's CLI: its script beside this Python, else the module (a kit on the GPU machine).
_CLI = Path(sys.executable).with_name("rslearn")
RSLEARN = [str(_CLI)] if _CLI.exists() else [sys.executable, "-m", "rslearn.main"]
ESRUNNER = str(Path(sys.executable).with_name("esrunner"))


def timed(
    cmd: list[str], env: dict[str, str] | None = None, peaks: list[float] | None = None
) -> float:
    """Seconds ``cmd`` took; its peak memory (MiB) is appended to ``peaks`` when given."""
    seconds, peak = measured(cmd, env)
    if peaks is not None:
        peaks.append(peak)
    return seconds


def plain_rslearn(
    project: Path, scratch: Path, peaks: list[float] | None = None
) -> tuple[float, int]:
    """A project's planned windows through plain rslearn: seconds, windows predicted.

    Windows are made beforehand (not timed); then one ``rslearn dataset
    prepare/ingest/materialize`` and one ``rslearn model predict`` over every partition
    (each command's peak memory appended to ``peaks`` when given).
    """
    runner = EsPredictRunner.from_project(project, scratch)
    pids = runner.partition()
    for pid in pids:
        create_windows(runner.ctx, pid)
    cfg = predict_config(runner.ctx)
    cfg["data"]["init_args"]["predict_config"]["groups"] = pids
    (scratch / "predict.yaml").write_text(yaml.safe_dump(cfg))
    root = str(runner.scratch.dataset)
    values = template_values(project.resolve(), runner.scratch.dataset, scratch / "trainer")
    env = {**os.environ, **values, DATASET_PATH_VAR: root, "TMPDIR": str(scratch)}
    total = 0.0
    for sub in ("prepare", "ingest", "materialize"):
        total += timed(
            [*RSLEARN, "dataset", sub, "--root", root, "--workers", "0", "--no-ignore-errors"],
            env,
            peaks,
        )
    cmd = [*RSLEARN, "model", "predict", "--config", str(scratch / "predict.yaml")]
    total += timed([*cmd, "--ckpt_path", str(project / "checkpoint.ckpt")], env, peaks)
    n = len(list((runner.scratch.dataset / "windows").glob("*/*/layers/output/completed")))
    return total, n


def esrunner(project: Path, scratch: Path, workers: int, request: Path | None = None) -> float:
    cmd = [ESRUNNER, "run", str(project), "--scratch", str(scratch), "--workers", str(workers)]
    if request:
        cmd += ["--request", str(request)]
    return timed(cmd)


def four_partitions(tmp: Path) -> Path:
    req = json.loads((DEMO / "prediction" / "test-request1.geojson").read_text())
    extra = json.loads(json.dumps(req["features"][2]))
    extra["id"] = "delta-2"
    for ring in extra["geometry"]["coordinates"]:
        for pt in ring:
            pt[0] -= 0.07  # west, over lago_epsilon
    req["features"].append(extra)
    path = tmp / "four.geojson"
    path.write_text(json.dumps(req))
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        ours = esrunner(DEMO, tmp / "ours", 1)
        raw, n = plain_rslearn(DEMO, tmp / "raw")
        assert n == 45, f"raw rslearn predicted {n} windows"
        print("demo (45 windows, 3 partitions):")
        print(f"  esrunner run --workers 1   {ours:.1f} s")
        print(f"  raw rslearn CLI calls      {raw:.1f} s")
        print(f"  ratio esrunner/raw = {ours / raw:.2f}")
        req = four_partitions(tmp)
        one = esrunner(DEMO, tmp / "w1", 1, req)
        two = esrunner(DEMO, tmp / "w2", 2, req)
        same = (tmp / "w1/results/result.tif").read_bytes() == (
            tmp / "w2/results/result.tif"
        ).read_bytes()
        shutil.rmtree(tmp / "w1")
        print(f"4 partitions on {os.cpu_count()} cores:")
        print(f"  --workers 1  {one:.1f} s")
        print(f"  --workers 2  {two:.1f} s  (identical result: {same})")
        print(f"  ratio 2 workers / 1 worker = {two / one:.2f}")


if __name__ == "__main__":
    main()
