"""esbuild lock against plain pip-compile on the same merged inputs, and the no-change path.

Both resolutions start from the committed lock's pins (pip-compile's usual refresh), with
the same flags, in the same run.

Run: .venv/bin/python -m bench.lock
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from esbuild import lock as locking

REPO = Path(__file__).resolve().parents[1]


def plain_pip_compile(inputs: locking.LockInputs, out: Path) -> float:
    body = locking.read_header((REPO / inputs.lock).read_text())[2]
    out.write_text(body)
    cmd = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
        "--allow-unsafe", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
        "--no-header",
        "--output-file", str(out), str(inputs.base), str(inputs.project),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        project = tmp / "proj"
        shutil.copytree(REPO / "data" / "demo", project, ignore=shutil.ignore_patterns("scratch"))
        inputs = locking.lock_inputs(REPO / "data" / "demo")
        ours_inputs = locking.LockInputs(
            inputs.repo, inputs.base, inputs.project, Path(tmp / "ours.lock")
        )
        shutil.copy(REPO / inputs.lock, tmp / "ours.lock")
        t0 = time.perf_counter()
        locking.lock(ours_inputs, force=True)
        ours = time.perf_counter() - t0
        plain = plain_pip_compile(inputs, tmp / "plain.lock")
        t0 = time.perf_counter()
        _, resolved = locking.lock(inputs)
        fast = time.perf_counter() - t0
        same = (
            locking.read_header((tmp / "ours.lock").read_text())[2]
            == (tmp / "plain.lock").read_text()
        )
    print("lock data/demo (base + project, with hashes):")
    print(f"  esbuild lock   {ours:.1f} s")
    print(f"  pip-compile    {plain:.1f} s  (same pins: {same})")
    print(f"  ratio esbuild/pip-compile = {ours / plain:.3f}")
    print(f"  no-change path {fast * 1000:.0f} ms (resolved: {resolved})")


if __name__ == "__main__":
    main()
