"""Each step of the demo in a fresh process (as the seed's per-step scripts run), and a rerun.

The preflight's import pass (the model's classes imported and bound: torch and Lightning)
is remembered per node once it passes (``rslp.checks.verdicts``). Measured here: the five
steps of one partition, each in a process of its own (``EsPredictRunner`` from Python), and
``esrunner run`` again on a finished scratch, with the verdict remembered vs forgotten
before every process (the baseline: every process checks again), alternating, best of 2.

Run: .venv/bin/python -m bench.steps
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import measured

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
STEP = """
import sys
from rslp.espredict_runner import EsPredictRunner
r = EsPredictRunner.from_project(sys.argv[1], sys.argv[2])
step, pid = sys.argv[3], sys.argv[4]
if step == "partition":
    r.partition()
elif step == "combine":
    r.combine([pid])
else:
    getattr(r, {"dataset": "build_dataset", "inference": "run_inference"}.get(step, step))(pid)
"""
STEPS = ("partition", "dataset", "inference", "postprocess", "combine")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    return measured(cmd, env)[0]


def steps(tmp: Path, node: Path, remember: bool) -> dict[str, float]:
    scratch = tmp / "steps"
    shutil.rmtree(scratch, ignore_errors=True)
    env = dict(os.environ, ESRUNNER_NODE_DIR=str(node), PYTHONPATH=str(REPO))
    if remember:  # a process on this node checked the project before (another request)
        timed([sys.executable, "-c", STEP, str(DEMO), str(tmp / "before"), "partition", ""], env)
    out = {}
    for step in STEPS:
        if not remember:
            shutil.rmtree(node / "checked", ignore_errors=True)
        cmd = [sys.executable, "-c", STEP, str(DEMO), str(scratch), step, "gamma"]
        out[step] = timed(cmd, env)
    return out


def rerun(tmp: Path, node: Path, remember: bool) -> float:
    env = dict(os.environ, ESRUNNER_NODE_DIR=str(node))
    cmd = [str(Path(sys.executable).with_name("esrunner")), "run", str(DEMO)]
    cmd += ["--scratch", str(tmp / "done"), "--workers", "1"]
    if not (tmp / "done" / "results").exists():
        timed(cmd, env)
    if not remember:
        shutil.rmtree(node / "checked", ignore_errors=True)
    return timed(cmd, env)


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp, node = Path(t), Path(t) / "node"
        best: dict[bool, dict[str, float]] = {True: {}, False: {}}
        for _ in range(2):
            for remember in (False, True):
                got = steps(tmp, node, remember)
                got["rerun"] = rerun(tmp, node, remember)
                for k, v in got.items():
                    best[remember][k] = min(best[remember].get(k, v), v)
    print("the demo's steps of one partition, each in a fresh process (best of 2):")
    for k in (*STEPS, "rerun"):
        new, old = best[True][k], best[False][k]
        what = "esrunner run, nothing left to do" if k == "rerun" else k
        print(f"  {what:<34} {new:5.2f} s vs {old:5.2f} s checked again ({new / old:.2f} x)")
    new, old = sum(best[True][k] for k in STEPS), sum(best[False][k] for k in STEPS)
    print(f"  all five steps                     {new:5.2f} s vs {old:5.2f} s ({new / old:.2f} x)")


if __name__ == "__main__":
    main()
