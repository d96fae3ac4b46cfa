"""esbuild build: a docker client without BuildKit gets one error that names the fix."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from esbuild import image


def clients_without_buildkit() -> list[str]:
    """docker clients on this machine that refuse BuildKit builds (no buildx plugin)."""
    found = []
    for c in {shutil.which("docker"), "/usr/local/bin/docker"}:
        if c and Path(c).is_file():
            out = subprocess.run(
                [c, "build", "-q", "/nonexistent-context"],
                capture_output=True,
                text=True,
                env=dict(os.environ, DOCKER_BUILDKIT="1"),
            )
            if any(s in out.stdout + out.stderr for s in image.NO_BUILDKIT):
                found.append(c)
    return found


def test_a_client_without_buildkit_gets_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = clients_without_buildkit()
    if not clients:
        pytest.skip("every docker client here has BuildKit")
    monkeypatch.setenv("ESBUILD_DOCKER", clients[0])
    out = subprocess.run(
        [*image.docker_cmd(), "build", "/nonexistent-context"],
        capture_output=True,
        text=True,
        env=dict(os.environ, DOCKER_BUILDKIT="1"),
    )
    msg = image.build_failure(out.stdout + out.stderr)
    assert clients[0] in msg and "buildx" in msg and "ESBUILD_DOCKER=/usr/bin/docker" in msg
    # any other failure keeps its last lines
    assert image.build_failure("step 3\nERROR: no space left").startswith("docker build failed:")


# What BuildKit and pip print for the two failures a person meets offline (as captured from
# real builds; the engine's own test, tests/docker/test_image.py, makes the first for real).
UNREACHABLE_OS_IMAGE = """\
#2 [internal] load metadata for docker.io/library/python:3.11-slim-bookworm
#2 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.11-slim-bookworm": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host
------
 > [internal] load metadata for docker.io/library/python:3.11-slim-bookworm:
------
ERROR: failed to solve: python:3.11-slim-bookworm: failed to resolve source metadata for docker.io/library/python:3.11-slim-bookworm: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.11-slim-bookworm": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host
"""
UNFETCHABLE_PACKAGE = """\
#9 [deps 1/1] RUN --mount=type=bind,source=.esbuild/project,target=/tmp/esbuild     if [ -s /tmp/esbuild/requirements.lock ]; then         /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: --no-index --find-links=/tmp/esbuild/wheelhouse             -r /tmp/esbuild/requirements.lock;     fi
#9 1.203 Looking in links: /tmp/esbuild/wheelhouse
#9 1.377 ERROR: Could not find a version that satisfies the requirement hf-xet==1.8.0 (from versions: none)
#9 1.378 ERROR: No matching distribution found for hf-xet==1.8.0
#9 ERROR: process "/bin/sh -c if [ -s /tmp/esbuild/requirements.lock ]; then /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} -r /tmp/esbuild/requirements.lock; fi" did not complete successfully: exit code: 1
"""


def _plan(tmp_path: Path) -> image.BuildPlan:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.lock").write_text("torch==2.14.1 \\\n    --hash=sha256:00\n")
    (tmp_path / "data" / "p").mkdir(parents=True)
    (tmp_path / "data" / "p" / "requirements.lock").write_text(
        "hf-xet==1.8.0 \\\n    --hash=sha256:11\n"
    )
    return image.BuildPlan(tmp_path, "p", ["p:ci"], None, True)


def test_an_unreachable_os_image_registry_names_the_image_and_base_image(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    msg = image.build_failure(UNREACHABLE_OS_IMAGE, _plan(tmp_path), log)
    assert msg.startswith("cannot get the OS image python:3.11-slim-bookworm")
    assert "its registry cannot be reached" in msg and "--base-image IMAGE" in msg
    assert "scripts/docker-engine.sh base-image" in msg and str(log) in msg
    assert "registry-1.docker.io/v2" not in msg  # BuildKit's raw text stays in the log


def test_a_package_the_build_cannot_fetch_names_it_its_lock_and_wheelhouse(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    msg = image.build_failure(UNFETCHABLE_PACKAGE, _plan(tmp_path), log)
    assert msg.startswith(
        "the build cannot fetch hf-xet==1.8.0 (pinned in data/p/requirements.lock)"
    )
    assert "--wheelhouse DIR" in msg and str(log) in msg
    assert "--require-hashes" not in msg and len(msg) < 320 + len(str(log))


def test_the_whole_log_is_kept_where_the_error_points(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert image.build_log(plan, None) == tmp_path / ".esbuild" / "logs" / "p.log"
    assert image.build_log(plan, None, "base") == tmp_path / ".esbuild" / "logs" / "p-base.log"
    given = tmp_path / "mine.log"
    assert image.build_log(plan, given, "base") == tmp_path / "mine.log.base"
