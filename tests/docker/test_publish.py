"""esbuild publish against a real registry on loopback (Debian's docker-registry)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import BASE_IMAGE, STATE, _engine, docker

pytestmark = pytest.mark.docker
PORT = "5055"


@pytest.fixture(scope="module")
def registry(docker_env: dict[str, str]) -> Iterator[str]:
    out = _engine("registry-start", PORT)
    if out.returncode != 0:
        pytest.skip(f"no registry can be started: {out.stderr[-500:]}")
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        _engine("registry-stop", PORT)


def esbuild(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("esbuild")), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def test_publish_is_idempotent_refuses_conflicts_and_pulls_back(
    registry: str, demo_image: dict, demo_host_result: Path, build_repo: Path, tmp_path: Path
) -> None:
    repo = f"{registry}/test/demo"
    project = str(build_repo / "data" / "demo")
    tags = ["--tag", f"{repo}:1.0.0", "--tag", f"{repo}:latest"]
    first = esbuild("publish", project, "--image", demo_image["tag"], *tags)
    assert first.returncode == 0, first.stderr
    assert f"pushed: {repo}:1.0.0" in first.stdout
    digest = [ln for ln in first.stdout.splitlines() if ln.startswith("digest: ")][0].split()[1]
    assert digest.startswith("sha256:")

    again = esbuild("publish", project, "--image", demo_image["tag"], *tags)
    assert again.returncode == 0, again.stderr
    assert "pushed:" not in again.stdout and f"unchanged: {repo}:1.0.0" in again.stdout
    assert f"digest: {digest}" in again.stdout

    # Another image under the same version tag is refused, unless --force.
    other = "esrunner-test/other:1"
    subprocess.run(
        ["/usr/bin/docker", "build", "-t", other, "-"], input=f"FROM {BASE_IMAGE}\nLABEL other=1\n",
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    clash = esbuild("publish", project, "--image", other, "--tag", f"{repo}:1.0.0")
    assert clash.returncode == 1 and "already names another image" in clash.stderr
    assert (
        esbuild("publish", project, "--image", other, "--tag", f"{repo}:2.0.0-other").returncode
        == 0
    )

    # Pull back by digest and run the pulled image offline on the demo request.
    for tag in (f"{repo}:1.0.0", f"{repo}:latest"):
        docker("rmi", tag)
    docker("pull", f"{repo}@{digest}", timeout=1800)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.chown(scratch, 10001, 10001)
    docker(
        "run", "--rm", "--network", "none", "-v", f"{scratch}:/work/scratch", f"{repo}@{digest}",
        "run", "/opt/project", "--scratch", "/work/scratch", "--workers", "1", timeout=1200,
    )  # fmt: skip
    assert (scratch / "results" / "result.tif").read_bytes() == demo_host_result.read_bytes()


def test_publish_pushes_the_base_once_and_a_build_elsewhere_pulls_it(
    registry: str, demo_image: dict, build_repo: Path
) -> None:
    from esbuild.image import base_ref

    base = base_ref(build_repo, BASE_IMAGE)
    remote = f"{registry}/team/{base}"
    project = str(build_repo / "data" / "demo")
    first = esbuild(
        "publish", project, "--image", demo_image["tag"], "--tag", f"{registry}/team/demo:1"
    )
    assert first.returncode == 0, first.stderr
    assert f"base: {remote} (pushed)" in first.stdout  # before the project
    again = esbuild(
        "publish", project, "--image", demo_image["tag"], "--tag", f"{registry}/team/demo:2"
    )
    assert again.returncode == 0, again.stderr
    assert f"base: {remote} (unchanged)" in again.stdout  # pushed once
    # A machine whose engine lacks the base gets it from the registry, not by building.
    docker("rmi", base)
    out = esbuild(
        "build", project, "--wheelhouse", str(STATE / "wheelhouse"), "--base-image", BASE_IMAGE,
        "--tag", f"{registry}/team/demo:3", "--pull-base",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"base: {base} (pulled)" in out.stderr
    found = esbuild(
        "build", project, "--wheelhouse", str(STATE / "wheelhouse"), "--base-image", BASE_IMAGE,
        "--tag", f"{registry}/team/demo:4",
    )  # fmt: skip
    assert found.returncode == 0 and f"base: {base} (found)" in found.stderr
