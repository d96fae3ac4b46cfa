"""esbuild lock: a project adding one package, against pip-compile of base + project.

``data/olmoearth-cropland`` adds one package (``olmoearth-pretrain-minimal``) to the base.
``esbuild lock`` resolves only that package's tree on the base lock's pins
(``requirements/base.lock``, current); the baseline is plain pip-compile of the base and the
project together (what esbuild lock did before), both starting from the committed lock's
pins, with the same flags, in the same run. Also: a project adding nothing, and the
no-change path.

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
        inputs = locking.lock_inputs(REPO / "data" / "olmoearth-cropland")
        ours_inputs = locking.LockInputs(
            inputs.repo, inputs.base, inputs.project, Path(tmp / "ours.lock")
        )
        shutil.copy(REPO / inputs.lock, tmp / "ours.lock")
        t0 = time.perf_counter()
        locking.lock(ours_inputs, force=True)
        ours = time.perf_counter() - t0
        plain = plain_pip_compile(inputs, tmp / "plain.lock")
        empty = locking.lock_inputs(REPO / "data" / "demo")
        shutil.copy(REPO / empty.lock, tmp / "empty.lock")
        t0 = time.perf_counter()
        locking.lock(
            locking.LockInputs(empty.repo, empty.base, empty.project, tmp / "empty.lock"),
            force=True,
        )
        nothing = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, resolved = locking.lock(inputs)
        fast = time.perf_counter() - t0
        added = len(locking.read_header((tmp / "ours.lock").read_text())[2]) - len(
            locking.read_header((REPO / inputs.base_lock).read_text())[2]
        )
    print("lock data/olmoearth-cropland (the base + 1 package, with hashes):")
    print(
        f"  esbuild lock (on the base lock's pins)  {ours:.1f} s  (+{added / 1e3:.0f} kB of pins)"
    )
    print(f"  pip-compile of base + project           {plain:.1f} s")
    print(f"  ratio esbuild/pip-compile = {ours / plain:.3f}")
    print(f"  a project adding nothing: {nothing * 1000:.0f} ms (the base lock's pins)")
    print(f"  no-change path {fast * 1000:.0f} ms (resolved: {resolved})")


if __name__ == "__main__":
    main()
