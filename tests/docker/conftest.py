"""A real Docker engine for the image tests: started here, stopped at the end of a serial run.

No engine runs on these machines, so the session installs Debian's docker.io (when
missing), starts dockerd as root with its own data-root, exec-root and socket
(``scripts/docker-engine.sh``) and makes a base image with debootstrap. The tests skip,
saying why, only where that is impossible (not root, or the engine does not start).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rslp.espredict_runner import EsPredictRunner
from tests.conftest import REPO, run_pipeline

ENGINE = REPO / "scripts" / "docker-engine.sh"
STATE = Path(os.environ.get("ESB_DOCKER_ROOT", "/var/lib/esbuild-docker"))
BASE_IMAGE = "esrunner-base:bookworm-py311"
DOCKER = "/usr/bin/docker"


def _engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ENGINE), *args], capture_output=True, text=True, timeout=1800
    )


def _engine_alive() -> bool:
    pidfile = Path("/run/esbuild-docker/dockerd.pid")
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="session")
def docker_env() -> Iterator[dict[str, str]]:
    """Environment variables that point docker and esbuild at the private engine."""
    if os.geteuid() != 0:
        pytest.skip("starting dockerd needs root")
    out = _engine("install")
    if out.returncode != 0:
        pytest.skip(f"cannot install docker.io/debootstrap: {out.stderr[-500:]}")
    was_running = _engine_alive()
    out = _engine("start")
    if out.returncode != 0:
        pytest.skip(f"no Docker engine can be started here: {out.stderr[-800:]}")
    sock = out.stdout.strip().splitlines()[-1]
    env = {"DOCKER_HOST": sock, "ESBUILD_DOCKER": DOCKER}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        base = _engine("base-image")
        assert base.returncode == 0, f"base image: {base.stderr[-2000:]}"
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _engine("prune")  # test images go; the build cache stays, capped
        # Under pytest-xdist a worker may finish its session fixtures between two batches
        # of work and set them up again: the engine stays up for the next batch (and the
        # next run; scripts/docker-engine.sh stop stops it). A serial run stops what it began.
        if not was_running and "PYTEST_XDIST_WORKER" not in os.environ:
            _engine("stop")


def docker(*args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the docker client against the private engine."""
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="session")
def build_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what a build needs (so tests can change a config without touching the repo)."""
    root = tmp_path_factory.mktemp("buildrepo")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    for name in ("rslp", "requirements"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "data" / "demo", root / "data" / "demo", ignore=shutil.ignore_patterns("scratch")
    )
    return root


@pytest.fixture(scope="session")
def demo_image(docker_env: dict[str, str], build_repo: Path) -> dict[str, str]:
    """The demo's image, built offline from a wheelhouse: {'id', 'tag', 'output'}."""
    tag = "esrunner-test/demo:ci"
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("esbuild")), "build", str(build_repo / "data" / "demo"),
            "--wheelhouse", str(STATE / "wheelhouse"), "--base-image", BASE_IMAGE, "--tag", tag,
            "--log", str(build_repo / "build.log"),
        ],
        capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:] + (build_repo / "build.log").read_text()[-3000:]
    image_id = [ln for ln in out.stdout.splitlines() if ln.startswith("image: ")][0].split()[1]
    return {"id": image_id, "tag": tag, "output": out.stdout}


@pytest.fixture(scope="session")
def demo_host_result(build_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's ``result.tif`` from a run on the host: what a run in its image must equal."""
    runner = EsPredictRunner.from_project(
        build_repo / "data" / "demo", tmp_path_factory.mktemp("host")
    )
    return run_pipeline(runner)[0]
