"""Image build time: a full build against a rebuild after changing only a project config.

Starts the private engine (scripts/docker-engine.sh), empties the build cache, builds the
demo image offline from the wheelhouse, changes one config file and builds again.

Run: .venv/bin/python -m bench.image   (as root)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "scripts" / "docker-engine.sh"
STATE = Path(os.environ.get("ESB_DOCKER_ROOT", "/var/lib/esbuild-docker"))
BASE = "esrunner-base:bookworm-py311"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def build(project: Path, tag: str) -> float:
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    t0 = time.perf_counter()
    sh(
        esbuild,
        "build",
        str(project),
        "--wheelhouse",
        str(STATE / "wheelhouse"),
        "--base-image",
        BASE,
        "--tag",
        tag,
    )
    return time.perf_counter() - t0


def main() -> None:
    sh("bash", str(ENGINE), "install")
    os.environ.update(
        DOCKER_HOST=sh("bash", str(ENGINE), "start").splitlines()[-1],
        ESBUILD_DOCKER="/usr/bin/docker",
    )
    try:
        measure()
    finally:
        for step in ("prune", "stop"):  # both, whatever the other did
            subprocess.run(["bash", str(ENGINE), step], capture_output=True)


def measure() -> None:
    """Time a full build (empty cache) and a rebuild after a config-only change."""
    sh("bash", str(ENGINE), "base-image")
    with tempfile.TemporaryDirectory() as t:
        repo = Path(t)
        for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
            shutil.copy(REPO / name, repo / name)
        for name in ("rslp", "requirements"):
            shutil.copytree(REPO / name, repo / name)
        shutil.copytree(
            REPO / "data" / "demo", repo / "data" / "demo", ignore=shutil.ignore_patterns("scratch")
        )
        project = repo / "data" / "demo"
        # Wheels are downloaded once (not timed); the build cache is emptied.
        from esbuild.image import fill_wheelhouse

        fill_wheelhouse(repo, project / "requirements.lock", STATE / "wheelhouse")
        for tag in ("esrunner-bench/demo:full", "esrunner-bench/demo:rebuild"):
            subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True)
        sh("/usr/bin/docker", "builder", "prune", "-af")
        full = build(project, "esrunner-bench/demo:full")
        cfg = project / "postprocessing_strategies.yaml"
        cfg.write_text(cfg.read_text() + "# config-only change\n")
        rebuild = build(project, "esrunner-bench/demo:rebuild")
    print("demo image (esbuild build, offline wheelhouse):")
    print(f"  full build                 {full:.1f} s")
    print(f"  rebuild after config edit  {rebuild:.1f} s")
    print(f"  ratio rebuild/full = {rebuild / full:.3f}")


if __name__ == "__main__":
    main()
