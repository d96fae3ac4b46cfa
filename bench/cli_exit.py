"""``esrunner run`` of the demo, command to exit: ending without the interpreter's teardown.

Once torch, torchvision and Lightning are imported, Python's exit takes about a second to
unload them, in the ``esrunner`` process and in each worker process the run waits for.
``rslp.process_exit`` ends a finished process at once (its exit handlers run); the
baseline is the same command with ``ESRUNNER_EXIT_TEARDOWN=1`` (a normal exit), measured in
the same run, alternating, best of 3. The results must be byte-identical.

Run: .venv/bin/python -m bench.cli_exit
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import measured

REPO = Path(__file__).resolve().parents[1]
ESRUNNER = str(Path(sys.executable).with_name("esrunner"))


def run(scratch: Path, workers: int, teardown: bool) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    env = dict(os.environ, ESRUNNER_EXIT_TEARDOWN="1" if teardown else "0")
    cmd = [ESRUNNER, "run", str(REPO / "data" / "demo"), "--scratch", str(scratch)]
    return measured([*cmd, "--workers", str(workers)], env)[0]


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        print("esrunner run data/demo, command to exit (best of 3, alternating):")
        for workers in (1, 2):
            best = {True: float("inf"), False: float("inf")}
            for _ in range(3):
                for teardown in (True, False):
                    seconds = run(tmp / str(teardown), workers, teardown)
                    best[teardown] = min(best[teardown], seconds)
            same = (tmp / "True" / "results" / "result.tif").read_bytes() == (
                tmp / "False" / "results" / "result.tif"
            ).read_bytes()
            print(
                f"  --workers {workers}: {best[False]:.2f} s vs {best[True]:.2f} s with the "
                f"teardown ({best[False] / best[True]:.2f} x); results identical: {same}"
            )


if __name__ == "__main__":
    main()
