"""How long a broken project waits for its error, from the command to the exit.

Two broken copies of the demo, each run as a person would (`esrunner run`, default
workers): one with a schema error (a partitioner argument of the wrong type), one whose
model class does not exist. The baseline, in the same run: the whole preflight of the
demo as it is (what a valid project pays before its first window, and what a broken one
paid before the first pass read class paths without importing them), timed the same way.

Run: .venv/bin/python -m bench.refusal
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import measured

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
ESRUNNER = str(Path(sys.executable).parent / "esrunner")

BROKEN = {
    "schema error": (
        "partition_strategies.yaml",
        "    grid_size: 128\n",
        '    grid_size: "big"\n',
    ),
    "model class that does not exist": (
        "model.yaml",
        "rslearn.models.singletask.SingleTaskModel",
        "rslearn.models.singletask.SingleTaskModell",
    ),
}


def refusal(project: Path, scratch: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of `esrunner run` on a broken project, best of 3; it must exit 2."""
    return min((_refused(project, scratch) for _ in range(3)), key=lambda r: r[0])


def _refused(project: Path, scratch: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [ESRUNNER, "run", str(project), "--scratch", str(scratch)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2, err[-2000:]
    assert not scratch.exists() or {p.name for p in scratch.iterdir()} <= {"logs"}
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0


def full_preflight() -> tuple[float, float]:
    """(seconds, peak MiB): a fresh process that runs the whole preflight of the demo."""
    code = (
        "from pathlib import Path; from rslp.project import ProjectFiles;"
        "from rslp.checks.preflight import preflight;"
        f"preflight(ProjectFiles.from_dir(Path({str(DEMO)!r})))"
    )
    return min((measured([sys.executable, "-c", code]) for _ in range(3)), key=lambda r: r[0])


def main() -> None:
    base_t, base_mib = full_preflight()
    print(
        f"baseline: the whole preflight of the valid demo in a fresh process "
        f"{base_t:.2f} s, {base_mib:.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for what, (fname, old, new) in BROKEN.items():
            project = Path(tmp) / what.replace(" ", "-")
            shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch"))
            path = project / fname
            text = path.read_text()
            assert old in text, (fname, old)
            path.write_text(text.replace(old, new, 1))
            t, mib = refusal(project, Path(tmp) / "scratch")
            print(
                f"esrunner run, {what}: refused in {t:.2f} s (goal <= 3 s), {mib:.0f} MiB: "
                f"ratio = {t / base_t:.2f} of the full preflight"
            )


if __name__ == "__main__":
    main()
