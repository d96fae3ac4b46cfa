"""Pushing the base environment to a registry: one layer (the design before) vs three now.

The base image (the OS and a venv with ``requirements/base.lock``, about 6.7 GB) is what
every node pulls and every new base pushes. Docker compresses each layer on one core as it
pushes, so a single 6.7 GB layer pushes on one core; the three layers (CUDA runtime,
torch, the rest: ``esbuild.image.BASE_PARTS``) push side by side. Both images are built
offline from the same wheelhouse and pins, in the same run, each pushed to a fresh registry
of its own on loopback (Debian's docker-registry). Also reported: the compressed bytes a
bump of an ordinary base pin pushes again (the last layer vs the whole venv).

Run: .venv/bin/python -m bench.base_push   (as root)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.image import BASE, ENGINE, REPO, STATE, sh

DOCKER = "/usr/bin/docker"
ONE_LAYER = "esrunner-bench/env-one-layer:1"
# The base stage as it was: the whole base lock in one RUN (one layer).
ONE_LAYER_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PIP_SOURCE="--no-index --find-links=/tmp/esbuild/wheelhouse"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
RUN --mount=type=bind,source=.esbuild/one,target=/tmp/esbuild \\
    python3 -m venv /opt/venv \\
    && /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: ${PIP_SOURCE} \\
        -r /tmp/esbuild/requirements.lock
"""


def main() -> None:
    sh("bash", str(ENGINE), "install")
    os.environ.update(
        DOCKER_HOST=sh("bash", str(ENGINE), "start").splitlines()[-1],
        ESBUILD_DOCKER=DOCKER,
    )
    try:
        measure()
    finally:
        subprocess.run(["bash", str(ENGINE), "prune"], capture_output=True)


def build_both(repo: Path) -> tuple[str, str]:
    """(the three-layer base as esbuild makes it, the one-layer base), both in the engine."""
    from esbuild import image

    sh("bash", str(ENGINE), "base-image")
    image.fill_wheelhouse(repo, repo / "requirements" / "base.lock", STATE / "wheelhouse")
    split = image.base_ref(repo, BASE)
    plan = image.BuildPlan(repo, "", [], BASE, offline=True)
    print(f"  three layers: {split} ({image.ensure_base(plan, split)})")
    one = repo / ".esbuild" / "one"
    (one / "wheelhouse").mkdir(parents=True)
    (one / "requirements.lock").write_text(image.base_body(repo))
    for part in image.BASE_PARTS:
        for wheel in (repo / ".esbuild" / part / "wheelhouse").iterdir():
            os.link(wheel, one / "wheelhouse" / wheel.name)
    (repo / "Dockerfile.one").write_text(ONE_LAYER_DOCKERFILE)
    t0 = time.perf_counter()
    subprocess.run(
        [DOCKER, "build", "-f", str(repo / "Dockerfile.one"), "--build-arg", f"BASE_IMAGE={BASE}",
         "--network", "none", "-t", ONE_LAYER, str(repo)],
        check=True, capture_output=True, env=dict(os.environ, DOCKER_BUILDKIT="1"),
    )  # fmt: skip
    print(f"  one layer:    {ONE_LAYER} (built in {time.perf_counter() - t0:.0f} s)")
    return split, ONE_LAYER


def push(local: str, port: str) -> tuple[float, list[int]]:
    """Push ``local`` to a fresh registry on ``port``: (seconds, compressed layer sizes)."""
    registry = sh("bash", str(ENGINE), "registry-start", port).splitlines()[-1]
    try:
        remote = f"{registry}/bench/env:1"
        sh(DOCKER, "tag", local, remote)
        t0 = time.perf_counter()
        sh(DOCKER, "push", remote)
        seconds = time.perf_counter() - t0
        manifest = json.loads(sh(DOCKER, "manifest", "inspect", "--insecure", remote))
        sh(DOCKER, "rmi", remote)
        return seconds, [int(layer["size"]) for layer in manifest["layers"]]
    finally:
        subprocess.run(["bash", str(ENGINE), "registry-stop", port], capture_output=True)


def measure() -> None:
    """Build both bases, push each to its own fresh registry, print the times and bytes."""
    with tempfile.TemporaryDirectory() as t:
        repo = Path(t)
        for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
            shutil.copy(REPO / name, repo / name)
        shutil.copytree(REPO / "requirements", repo / "requirements")
        print("the base environment (offline, from the wheelhouse):")
        split, one = build_both(repo)
    one_s, one_sizes = push(one, "5078")
    split_s, split_sizes = push(split, "5079")
    print("pushed to a fresh registry on loopback (docker push, 2 cores):")
    gb = [f"{n / 1e9:.2f}" for n in split_sizes]
    print(f"  one layer     {one_s:6.1f} s  ({sum(one_sizes) / 1e9:.2f} GB compressed)")
    print(f"  three layers  {split_s:6.1f} s  ({sum(split_sizes) / 1e9:.2f} GB: OS + {gb[1:]} GB)")
    print(f"  ratio three/one = {split_s / one_s:.2f}")
    bump, whole = split_sizes[-1], sum(one_sizes[1:])
    print(
        f"a bump of an ordinary base pin pushes and pulls again {bump / 1e9:.2f} GB "
        f"(the last layer), not {whole / 1e9:.2f} GB (the whole venv): {bump / whole:.2f} x"
    )


if __name__ == "__main__":
    main()
