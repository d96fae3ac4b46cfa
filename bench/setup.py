"""Set-up time: a fresh clone's `scripts/setup.sh` with uv against pip, cold and warm cache.

Each installer gets a package cache of its own, empty at first (cold: every wheel is
downloaded), then a second fresh clone with the cache the first one filled (warm). Last,
README command 1 (`scripts/demo.sh`: set-up and the demo run) on a fresh clone with uv's
warm cache: the time from `git clone` to the demo's result.

Run: .venv/bin/python -m bench.setup
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clone(dest: Path) -> Path:
    """A fresh copy of the working tree's files (what `git clone` of it would hold)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / os.fsdecode(name)
        if src.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(name))
    return dest


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def setup_times(installer: str, work: Path) -> tuple[float, float]:
    """(cold, warm) seconds of scripts/setup.sh with ``installer`` on fresh clones."""
    cache = work / f"cache-{installer}"
    env = {
        **os.environ,
        "ESRUNNER_INSTALLER": installer,
        "UV_CACHE_DIR": str(cache / "uv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "PATH": os.environ["PATH"].replace(str(REPO / ".venv" / "bin") + os.pathsep, ""),
    }
    out = []
    for run in ("cold", "warm"):
        tree = clone(work / f"{installer}-{run}")
        out.append(timed(["bash", "scripts/setup.sh"], tree, env))
        shutil.rmtree(tree)
    return out[0], out[1]


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory(dir=REPO.parent) as tmp:  # same disk as the caches
        work = Path(tmp)
        pip_cold, pip_warm = setup_times("pip", work)
        pip_cache = _size_mb(work / "cache-pip")
        shutil.rmtree(work / "cache-pip", ignore_errors=True)
        uv_cold, uv_warm = setup_times("uv", work)
        print(
            f"  (package caches after the cold run: pip {pip_cache:.0f} MB, uv "
            f"{_size_mb(work / 'cache-uv'):.0f} MB)"
        )
        print("scripts/setup.sh on a fresh clone (torch, base and dev requirements, the package):")
        for cache, uv, pip in (("cold", uv_cold, pip_cold), ("warm", uv_warm, pip_warm)):
            print(f"  {cache} cache: uv {uv:.1f} s, pip {pip:.1f} s: ratio = {uv / pip:.2f}")
        env = {**os.environ, "UV_CACHE_DIR": str(work / "cache-uv" / "uv")}
        tree = clone(work / "demo")
        t_demo = timed(["bash", "scripts/demo.sh"], tree, env)
        t_run = timed(
            [".venv/bin/esrunner", "run", "data/demo", "--scratch", "scratch-again", "--force"],
            tree,
            env,
        )
        print(
            f"README command 1 on a fresh clone, warm cache: {t_demo:.1f} s to the demo's result "
            f"(goal <= 60 s); the run alone {t_run:.1f} s, set-up and first imports "
            f"{t_demo - t_run:.1f} s"
        )


if __name__ == "__main__":
    main()
