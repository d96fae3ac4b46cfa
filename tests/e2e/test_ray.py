"""The Ray executor on a real two-node cluster (loopback only, in a namespace of its own)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import raycluster
from tests.conftest import DEMO
from tests.e2e.test_fail_first import CHATTER

pytestmark = [pytest.mark.e2e, pytest.mark.ray]

ESRUNNER = str(Path(sys.executable).with_name("esrunner"))


@pytest.fixture(scope="module", autouse=True)
def _namespaces() -> None:
    why = raycluster.can_run()
    if why:
        pytest.skip(why)


def esrunner_run(scratch: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [ESRUNNER, "run", str(DEMO), "--scratch", str(scratch), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("local")
    esrunner_run(scratch, "--workers", "2")
    return scratch / "results"


def ray_run(tmp_path: Path, project: Path, kill_during: str | None = None) -> tuple[dict, Path]:
    scratch = tmp_path / "scratch"
    cmd = [ESRUNNER, "run", str(project), "--scratch", str(scratch), "--executor", "ray"]
    cmd += ["--address", raycluster.ADDRESS]
    return raycluster.in_namespace(tmp_path / "out.json", cmd, kill_during), scratch


def assert_same_results(ours: Path, local: Path) -> None:
    for name in ("result.tif", "result.png"):
        assert (ours / name).read_bytes() == (local / name).read_bytes(), name


PYTHON_API = """
import sys
from rslp.espredict_runner import EsPredictRunner
from rslp.runner.executors import RayExecutor
runner = EsPredictRunner.from_project(sys.argv[1], sys.argv[2])
print([p.name for p in runner.run(RayExecutor(sys.argv[3]))])
"""


def test_demo_on_ray_equals_the_local_run(tmp_path: Path, local_result: Path) -> None:
    scratch, api = tmp_path / "scratch", tmp_path / "api"
    cli = [ESRUNNER, "run", str(DEMO), "--scratch", str(scratch), "--executor", "ray"]
    cli += ["--address", raycluster.ADDRESS]
    script = tmp_path / "both.sh"
    script.write_text(
        "set -e\n"
        + " ".join(cli)
        + f"\n{sys.executable} -c '{PYTHON_API}' {DEMO} {api} {raycluster.ADDRESS}\n"
    )
    res = raycluster.in_namespace(tmp_path / "out.json", ["bash", str(script)])
    assert res["returncode"] == 0, res["stderr"][-3000:]
    assert_same_results(scratch / "results", local_result)
    # The same from Python: EsPredictRunner.run on a RayExecutor.
    assert "['result.tif', 'result.png']" in res["stdout"]
    assert_same_results(api / "results", local_result)
    manifest = json.loads((scratch / "manifest.json").read_text())
    steps = [r for p in manifest["partitions"].values() for r in p.values()]
    assert len(steps) == 9 and all(r["state"] == "done" for r in steps)
    # Both nodes worked, and each worker process built the model at most once.
    inference = [p["inference"] for p in manifest["partitions"].values()]
    built = [r["worker"] for r in inference if r["result"]["model_built"]]
    assert len(built) == len(set(built))
    # The manifest means the same as a local run's: a rerun skips everything.
    out = esrunner_run(scratch, "--workers", "1")
    assert "skipped inference (done and current): 3 partition(s)" in out.stderr


def test_killing_a_node_during_inference_still_gives_the_identical_result(
    tmp_path: Path, local_result: Path
) -> None:
    res, scratch = ray_run(tmp_path, DEMO, kill_during="inference")
    assert res["killed"], "never saw inference running on the second node"
    assert res["returncode"] == 0, res["stderr"][-3000:]
    assert_same_results(scratch / "results", local_result)


def test_a_bad_config_fails_once_and_fast(tmp_path: Path, local_result: Path) -> None:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch"))
    model = yaml.safe_load((project / "model.yaml").read_text())
    model["data"]["init_args"]["task"]["init_args"]["num_classes"] = "two"
    (project / "model.yaml").write_text(yaml.safe_dump(model))
    res, scratch = ray_run(tmp_path, project)
    assert res["returncode"] in (1, 2), res["stderr"][-3000:]
    errors = [ln for ln in res["stderr"].splitlines() if ln.startswith("error:")]
    # Reported once, naming every partition it hit, not once per partition.
    assert len(errors) == 1, errors
    assert "3 partition(s) failed" in errors[0] and "in 3 partition(s)" in errors[0], errors
    assert "data.task.num_classes: Expected a <class 'int'>. Got value: two" in errors[0]
    assert res["stderr"].count("num_classes") == 1
    # A quiet console under Ray too: rslearn/Lightning chatter stays off the driver's.
    assert not [ln for ln in res["stderr"].splitlines() if any(c in ln for c in CHATTER)]
    # Scheduling stopped at the failure: nothing after inference ran, no result exists.
    manifest = json.loads((scratch / "manifest.json").read_text())
    assert not any("postprocess" in p for p in manifest["partitions"].values())
    assert not (scratch / "results").exists()


def test_bucket_scratch_on_two_nodes_sharing_nothing_survives_a_killed_node(
    tmp_path: Path, local_result: Path
) -> None:
    """Nothing shared but the bucket: the project and the scratch are read from it, and
    each node (and the driver) has its own node dir."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch*", "__pycache__"))
    url = "s3://bucket/projects/demo"
    cmd = [ESRUNNER, "run", url, "--scratch", "s3://bucket/ray", "--executor", "ray"]
    cmd += ["--address", raycluster.ADDRESS]
    out = tmp_path / "out.json"
    res = raycluster.in_namespace(out, cmd, kill_during="inference", s3=True, upload=project)
    assert res["killed"], "never saw inference running on the second node"
    assert res["returncode"] == 0, res["stderr"][-3000:]
    bucket = out.with_suffix(".bucket")
    assert_same_results(bucket / "results", local_result)
    assert "result: s3://bucket/ray/results/result.tif" in res["stdout"]
    manifest = json.loads((bucket / "manifest.json").read_text())
    workers = {r["worker"] for p in manifest["partitions"].values() for r in p.values()}
    assert all(r["state"] == "done" for p in manifest["partitions"].values() for r in p.values())
    # Both nodes built windows, each on its own disk; the driver built none. (Whether
    # the killed node's partition is redone on the head or its worker finishes it
    # first is a race; a partition redone on a node without its windows is tested in
    # tests/e2e/test_bucket_scratch.py.)
    nodes = out.with_suffix(".nodes")
    n2 = {p.name for p in (nodes / "n2").glob("scratch/*/dataset/windows/*")}
    head = {p.name for p in (nodes / "head").glob("scratch/*/dataset/windows/*")}
    assert n2 and head and n2 | head == set(manifest["partitions"]), (n2, head, workers)
    assert not list((nodes / "driver").glob("scratch/*/dataset/windows/*"))
    for node in ("driver", "head", "n2"):  # each read the project into its own copy
        (copy,) = [p for p in (nodes / node / "projects").iterdir() if p.is_dir()]
        assert (copy / "model.yaml").read_bytes() == (DEMO / "model.yaml").read_bytes()


def test_many_partitions_on_two_nodes_with_bucket_scratch(tmp_path: Path) -> None:
    """A request shaped like real ones (a dozen small partitions), scratch in the bucket."""
    from bench.scale import many_partitions_project

    project = many_partitions_project(tmp_path, box=(8.63, 45.985, 8.67, 46.015))
    local = tmp_path / "local"
    subprocess.run(
        [ESRUNNER, "run", str(project), "--scratch", str(local), "--workers", "1"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    plan = json.loads((local / "plan" / "index.json").read_text())["partitions"]
    assert len(plan) >= 10
    cmd = [ESRUNNER, "run", str(project), "--scratch", "s3://bucket/many", "--executor", "ray"]
    cmd += ["--address", raycluster.ADDRESS]
    out = tmp_path / "out.json"
    res = raycluster.in_namespace(out, cmd, s3=True)
    assert res["returncode"] == 0, res["stderr"][-3000:]
    assert_same_results(out.with_suffix(".bucket") / "results", local / "results")
    manifest = json.loads((out.with_suffix(".bucket") / "manifest.json").read_text())
    assert len(manifest["partitions"]) == len(plan)


def test_unified_project_from_a_bucket_on_two_nodes(tmp_path: Path) -> None:
    """A unified project read from the bucket by nodes sharing nothing: each node
    transpiles its own copy (no node has the driver's transpiled files) and every head's
    COG equals a local run's."""
    from tests.conftest import REPO

    source = REPO / "data" / "olmoearth-change"
    project = tmp_path / "change"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("scratch*", "__pycache__"))
    local = tmp_path / "local"
    subprocess.run(
        [ESRUNNER, "run", str(project), "--scratch", str(local), "--workers", "1"],
        check=True,
        capture_output=True,
        timeout=900,
    )
    url = "s3://bucket/projects/change"
    cmd = [ESRUNNER, "run", url, "--scratch", "s3://bucket/change", "--executor", "ray"]
    cmd += ["--address", raycluster.ADDRESS]
    out = tmp_path / "out.json"
    res = raycluster.in_namespace(out, cmd, s3=True, upload=project)
    assert res["returncode"] == 0, res["stderr"][-3000:]
    bucket = out.with_suffix(".bucket")
    for name in ("result.tif", "result_before.tif", "result_after.tif", "result_change.tif"):
        assert (bucket / "results" / name).read_bytes() == (local / "results" / name).read_bytes()
    nodes = out.with_suffix(".nodes")
    worked = [n for n in ("head", "n2") if list((nodes / n).glob("transpiled/*/model.yaml"))]
    assert worked, "no worker node transpiled the project"
    assert list((nodes / "driver").glob("transpiled/*/model.yaml"))
