"""deploy/rayjob.yaml stays in step with the CLI and the image."""

from __future__ import annotations

import shlex

import yaml

from rslp.cli import cli
from tests.conftest import REPO


def test_rayjob_entrypoint_is_a_valid_esrunner_ray_command() -> None:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[:2] == ["esrunner", "run"]
    ctx = cli.commands["run"].make_context("run", args[2:])
    assert ctx.params["executor"] == "ray" and ctx.params["gpus_per_worker"] == 1.0
    assert ctx.params["project_dir"].as_posix() == "/opt/project"  # where the image has it
    scratch = ctx.params["scratch"].as_posix()
    spec = job["spec"]["rayClusterSpec"]
    pods = [spec["headGroupSpec"]] + spec["workerGroupSpecs"]
    for pod in pods:  # the scratch is on a volume every pod mounts at the same path
        (container,) = pod["template"]["spec"]["containers"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert any(scratch.startswith(m + "/") for m in mounts)
        assert pod["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    ray_pin = [
        ln
        for ln in (REPO / "data/demo/requirements.lock").read_text().splitlines()
        if ln.startswith("ray==")
    ]
    assert ray_pin == [f"ray=={spec['rayVersion']} \\"]


def test_bucket_rayjob_needs_no_shared_volume() -> None:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "rayjob-bucket.yaml").read_text()))
    assert {d["kind"] for d in docs} == {"RayJob", "Secret"}  # no PersistentVolumeClaim
    job = next(d for d in docs if d["kind"] == "RayJob")
    args = shlex.split(job["spec"]["entrypoint"])
    ctx = cli.commands["run"].make_context("run", args[2:])
    assert args[:2] == ["esrunner", "run"] and ctx.params["executor"] == "ray"
    assert ctx.params["scratch"] == "s3://esrunner-runs/demo-predict"  # a URL, not a path
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert "AWS_SECRET_ACCESS_KEY" in secret["stringData"]
    spec = job["spec"]["rayClusterSpec"]
    for pod in [spec["headGroupSpec"]] + spec["workerGroupSpecs"]:
        podspec = pod["template"]["spec"]
        (container,) = podspec["containers"]
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
        env = {e["name"]: e["value"] for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in podspec["volumes"]}
        # The node dir is the pod's own disk (emptyDir), never a shared claim.
        assert mounts["node"] == env["ESRUNNER_NODE_DIR"]
        assert all("persistentVolumeClaim" not in v for v in volumes.values())
        assert "emptyDir" in volumes["node"]
    assert (
        spec["rayVersion"]
        == next(d for d in yaml.safe_load_all((REPO / "deploy" / "rayjob.yaml").read_text()))[
            "spec"
        ]["rayClusterSpec"]["rayVersion"]
    )
