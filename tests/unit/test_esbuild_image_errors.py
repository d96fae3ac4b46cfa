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
