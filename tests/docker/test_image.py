"""The model image: built by a real engine, run offline, compared with a run on the host."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from rslp.espredict_runner import EsPredictRunner
from tests.conftest import run_pipeline
from tests.docker.conftest import BASE_IMAGE, STATE, docker

pytestmark = pytest.mark.docker


def esbuild_build(
    project: Path, tag: str, base_image: str = BASE_IMAGE
) -> subprocess.CompletedProcess:
    """`esbuild build` of a project offline (the session's wheelhouse) on an OS image."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("esbuild")), "build", str(project),
            "--wheelhouse", str(STATE / "wheelhouse"), "--base-image", base_image, "--tag", tag,
        ],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def inspect(ref: str) -> dict:
    return json.loads(docker("image", "inspect", ref).stdout)[0]


def test_build_prints_id_and_tags(demo_image: dict) -> None:
    assert demo_image["id"].startswith("sha256:")
    assert "tag: esrunner-test/demo:ci" in demo_image["output"]


def test_image_runs_as_non_root_with_labels(demo_image: dict) -> None:
    cfg = inspect(demo_image["tag"])["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["esrunner"]
    labels = cfg["Labels"]
    assert labels["io.esrunner.project"] == "demo"
    assert labels["io.esrunner.config-digest"].startswith("sha256:")
    assert labels["org.opencontainers.image.created"].endswith("Z")
    for key in ("org.opencontainers.image.source", "org.opencontainers.image.revision",
                "org.opencontainers.image.version", "org.opencontainers.image.title"):  # fmt: skip
        assert key in labels
    who = docker("run", "--rm", "--network", "none", "--entrypoint", "id", demo_image["tag"], "-u")
    assert who.stdout.strip() == "10001"


def test_image_holds_no_secrets_or_host_ca_bundle(demo_image: dict) -> None:
    cfg = inspect(demo_image["tag"])["Config"]
    assert not [
        e for e in cfg["Env"] if any(w in e.upper() for w in ("TOKEN", "PASSWORD", "SECRET"))
    ]
    found = docker(
        "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "find", demo_image["tag"], "/", "-xdev",
        "-type", "f", "(", "-name", "*.crt", "-o", "-name", "*.pem", "-o", "-name", "pip.conf",
        "-o", "-name", ".netrc", "-o", "-name", "config.json", "-path", "*/.docker/*", ")",
    ).stdout.split()  # fmt: skip
    assert not [f for f in found if f.endswith(("pip.conf", ".netrc")) or "/.docker/" in f]
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    bundles = [f for f in found if f.endswith((".crt", ".pem"))]
    if host_bundle.exists() and bundles:  # every bundle hashed in one container
        host_hash = hashlib.sha256(host_bundle.read_bytes()).hexdigest()
        sums = docker(
            "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sha256sum",
            demo_image["tag"], *bundles,
        ).stdout.splitlines()  # fmt: skip
        assert len(sums) == len(bundles)
        assert not [ln for ln in sums if ln.split()[0] == host_hash], host_hash
    history = docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", demo_image["tag"]
    ).stdout
    assert "TOKEN" not in history.upper() and "PASSWORD" not in history.upper()


def test_offline_container_run_equals_host_run(
    demo_image: dict, demo_host_result: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "container"
    scratch.mkdir()
    os.chown(scratch, 10001, 10001)
    run = docker(
        "run", "--rm", "--network", "none", "-v", f"{scratch}:/work/scratch", demo_image["tag"],
        "run", "/opt/project", "--scratch", "/work/scratch", "--workers", "1", timeout=1200,
    )  # fmt: skip
    assert "result: /work/scratch/results/result.tif" in run.stdout
    assert (scratch / "results" / "result.tif").read_bytes() == demo_host_result.read_bytes()


def test_config_only_rebuild_reuses_the_dependency_layer(
    demo_image: dict, build_repo: Path
) -> None:
    cfg = build_repo / "data" / "demo" / "postprocessing_strategies.yaml"
    cfg.write_text(cfg.read_text() + "# a config-only change\n")
    out = esbuild_build(build_repo / "data" / "demo", "esrunner-test/demo:rebuild")
    assert out.returncode == 0, out.stderr[-3000:]
    first = inspect(demo_image["tag"])["RootFS"]["Layers"]
    second = inspect("esrunner-test/demo:rebuild")["RootFS"]["Layers"]
    # the OS and the base venv's layers, then the project's packages, the user, rslp and the
    # launcher: shared; only the layer of the project's files (the one after them) differs
    from esbuild.image import BASE_PARTS

    differ = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
    assert differ == [1 + len(BASE_PARTS) + 4]
    assert len(set(first) ^ set(second)) == 2
    # docker history shows the dependency layer (the venv, gigabytes) shared by both images
    rows = {}
    for ref in (demo_image["tag"], "esrunner-test/demo:rebuild"):
        hist = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", ref).stdout
        rows[ref] = [ln for ln in hist.splitlines() if "pip install --require-hashes" in ln]
    assert rows[demo_image["tag"]] and rows[demo_image["tag"]] == rows["esrunner-test/demo:rebuild"]
    assert any("GB" in r for r in rows[demo_image["tag"]])
    assert (
        inspect(demo_image["tag"])["Config"]["Labels"]["io.esrunner.config-digest"]
        != inspect("esrunner-test/demo:rebuild")["Config"]["Labels"]["io.esrunner.config-digest"]
    )


def test_reference_format_project_builds_and_runs_in_its_image(
    demo_image: dict, build_repo: Path, tmp_path: Path
) -> None:
    """A project in the reference format (olmoearth_run.yaml) builds: its checks pass inside."""
    from rslp.convert import convert

    project = build_repo / "data" / "demoref"
    convert(build_repo / "data" / "demo", "reference", project)
    # the lock names its input by path: a moved project is locked again (its pins kept)
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    out = subprocess.run([esbuild, "lock", str(project)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    tag = "esrunner-test/demoref:ci"
    out = subprocess.run(
        [
            esbuild, "build", str(project),
            "--wheelhouse", str(STATE / "wheelhouse"), "--base-image", BASE_IMAGE, "--tag", tag,
        ],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    ls = docker("run", "--rm", "--entrypoint", "ls", tag, "/opt/project").stdout.split()
    assert "olmoearth_run.yaml" in ls and "partition_strategies.yaml" not in ls
    scratch = tmp_path / "container"
    scratch.mkdir()
    os.chown(scratch, 10001, 10001)
    run = docker(
        "run", "--rm", "--network", "none", "-v", f"{scratch}:/work/scratch", tag,
        "run", "/opt/project", "--scratch", "/work/scratch", "--workers", "1", timeout=1200,
    )  # fmt: skip
    assert "result: /work/scratch/results/result.tif" in run.stdout
    with rasterio.open(scratch / "results" / "result.tif") as src:
        assert src.colormap(1)[1][:3] == (30, 144, 255)


def test_unified_project_builds_and_writes_every_head_in_its_image(
    demo_image: dict, build_repo: Path, tmp_path: Path
) -> None:
    """A unified project (olmoearth_config.yaml) builds, passes its checks inside, and its
    image writes each head's COG, equal to a run on the host."""
    import shutil

    import numpy as np

    from tests.conftest import REPO

    project = build_repo / "data" / "olmoearth-change"
    shutil.copytree(REPO / "data" / "olmoearth-change", project)
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    out = subprocess.run([esbuild, "lock", str(project)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    tag = "esrunner-test/change:ci"
    out = esbuild_build(project, tag)
    assert out.returncode == 0, out.stderr[-3000:]
    ls = docker("run", "--rm", "--entrypoint", "ls", tag, "/opt/project").stdout.split()
    assert "olmoearth_config.yaml" in ls and "model.yaml" not in ls
    scratch = tmp_path / "container"
    scratch.mkdir()
    os.chown(scratch, 10001, 10001)
    docker(
        "run", "--rm", "--network", "none", "-v", f"{scratch}:/work/scratch", tag,
        "run", "/opt/project", "--scratch", "/work/scratch", "--workers", "1", timeout=1200,
    )  # fmt: skip
    host = EsPredictRunner.from_project(project, tmp_path / "host")
    run_pipeline(host)
    for name in ("before", "after", "change"):
        image = scratch / "results" / f"result_{name}.tif"
        host_cog = tmp_path / "host" / "results" / f"result_{name}.tif"
        with rasterio.open(image) as a, rasterio.open(host_cog) as b:
            assert a.colormap(1) == b.colormap(1)
            assert np.array_equal(a.read(), b.read()), name


def test_finetuned_version_locks_builds_and_carries_its_labels(
    demo_image: dict, build_repo: Path, tmp_path: Path
) -> None:
    """esrunner finetune --export gives a project version that locks, builds and is labelled."""
    import shutil

    from rslp.esfinetune_runner import EsFineTuneRunner
    from rslp.fsutil import sha256_file
    from tests.conftest import REPO

    src = build_repo / "data" / "demo-finetune"
    shutil.copytree(REPO / "data" / "demo-finetune", src, ignore=shutil.ignore_patterns("scratch"))
    runner = EsFineTuneRunner.from_project(src, tmp_path / "scratch", max_epochs=2)
    metrics = runner.run()
    version = runner.export(build_repo / "data" / "demo-finetune-v2")
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    out = subprocess.run([esbuild, "lock", str(version)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    tag = "esrunner-test/demo-finetune-v2:ci"
    out = subprocess.run(
        [
            esbuild, "build", str(version), "--wheelhouse", str(STATE / "wheelhouse"),
            "--base-image", BASE_IMAGE, "--tag", tag,
        ],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    labels = inspect(tag)["Config"]["Labels"]
    assert labels["io.esrunner.checkpoint-sha256"] == sha256_file(version / "checkpoint.ckpt")
    assert labels["io.esrunner.val-accuracy"] == f"{metrics['after']['accuracy']:.4f}"
    assert labels["io.esrunner.project"] == "demo-finetune-v2"


def test_readme_docker_run_works_for_any_uid_and_refuses_an_unwritable_scratch(
    demo_image: dict, tmp_path: Path
) -> None:
    """README step 5 as written (`--user "$(id -u):$(id -g)"`), by a person whose uid is
    not the image's; without `--user`, the scratch they own is refused in one line."""
    mine = tmp_path / "scratch"
    mine.mkdir()
    os.chown(mine, 4242, 4242)
    mine.chmod(0o755)
    mount = ["-v", f"{mine}:/work/scratch"]
    refused = docker("run", "--rm", "--network", "none", *mount, demo_image["tag"], check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert "cannot write scratch /work/scratch" in errors[0] and "permission denied" in errors[0]
    assert "running as uid 10001" in errors[0] and "owned by uid 4242" in errors[0]
    assert '--user "$(id -u):$(id -g)"' in errors[0] and "internal error" not in refused.stderr
    assert list(mine.iterdir()) == []  # nothing half-written

    run = docker(
        "run", "--rm", "--network", "none", "--user", "4242:4242", *mount, demo_image["tag"],
        timeout=1200,
    )  # fmt: skip
    assert "result: /work/scratch/results/result.tif" in run.stdout, run.stderr[-2000:]
    result = mine / "results" / "result.tif"
    assert result.stat().st_uid == 4242 and result.stat().st_size > 0


def test_read_only_container_with_a_tmpfs_runs_and_checks(demo_image: dict, tmp_path: Path) -> None:
    """What Kubernetes' restricted security context sets: a read-only root, /tmp a tmpfs."""
    scratch = tmp_path / "ro"
    scratch.mkdir()
    os.chown(scratch, 5151, 5151)
    locked = ["--read-only", "--tmpfs", "/tmp", "--user", "5151:5151", "--network", "none"]
    check = docker("run", "--rm", *locked, demo_image["tag"], "check", "/opt/project", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    run = docker(
        "run", "--rm", *locked, "-v", f"{scratch}:/work/scratch", demo_image["tag"], timeout=1200
    )
    assert "result: /work/scratch/results/result.tif" in run.stdout, run.stderr[-2000:]
    ro = docker(
        "run", "--rm", *locked, "-v", f"{scratch}:/work/scratch:ro", demo_image["tag"], check=False
    )
    assert ro.returncode == 2 and "read-only file system" in ro.stderr, ro.stderr[-2000:]


def test_an_os_image_the_engine_cannot_reach_names_base_image(
    docker_env: dict, build_repo: Path
) -> None:
    """A registry that cannot be reached (`.invalid` never resolves): the fix, not BuildKit's text."""
    missing = "registry.invalid/esrunner/none:1"
    out = esbuild_build(build_repo / "data" / "demo", "esrunner-test/unreachable:ci", missing)
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert f"cannot get the OS image {missing}" in line and "cannot be reached" in line
    assert "--base-image IMAGE" in line and "scripts/docker-engine.sh base-image" in line
    log = Path(line.rsplit("the whole build log: ", 1)[1].rstrip(")"))
    assert "registry.invalid" in log.read_text()  # BuildKit's own words are kept there
