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
