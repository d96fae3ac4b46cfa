"""esrunner run/status: saved state, resume after kill -9, invalidation, lock, steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rslp.runner.lock import ScratchLock
from tests.conftest import DEMO, REPO

pytestmark = pytest.mark.e2e


def esrunner(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "rslp.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def manifest(scratch: Path) -> dict:
    """manifest.json with the journal's records applied (as esrunner status reads it)."""
    from rslp.runner.scratch import Scratch

    if not (scratch / "manifest.json").exists():
        raise FileNotFoundError(scratch / "manifest.json")
    return Scratch(scratch).read_manifest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("ref")
    out = esrunner("run", str(DEMO), "--scratch", str(scratch), "--workers", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    return scratch


def test_rerun_skips_everything(reference: Path) -> None:
    before = manifest(reference)
    out = esrunner("run", str(DEMO), "--scratch", str(reference), "--workers", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "skipped inference (done and current): 3 partition(s)" in out.stderr
    assert manifest(reference)["partitions"] == before["partitions"]


@pytest.mark.parametrize("step", ["dataset", "inference"])
def test_kill_9_then_resume_gives_identical_results(
    step: str, reference: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "rslp.cli",
        "run",
        str(DEMO),
        "--scratch",
        str(scratch),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            parts = manifest(scratch).get("partitions", {})
        except (FileNotFoundError, json.JSONDecodeError):
            parts = {}
        # A partition's dataset step lasts less than the manifest's write interval: its
        # windows on disk show it is running before the manifest may.
        started = step == "dataset" and (scratch / "dataset" / "windows").exists()
        if started or any(p.get(step, {}).get("state") == "running" for p in parts.values()):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    proc.wait()
    assert killed, f"never saw the {step} step running"
    states = [p.get(step, {}).get("state") for p in manifest(scratch)["partitions"].values()]
    assert states.count("done") < len(manifest(reference)["partitions"])
    assert not (scratch / "results" / "result.tif").exists()
    out = esrunner("run", str(DEMO), "--scratch", str(scratch), "--workers", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "taking over a stale lock" in out.stderr
    for name in ("result.tif", "result.png"):
        assert (scratch / "results" / name).read_bytes() == (
            reference / "results" / name
        ).read_bytes()


def test_changed_postprocessing_reruns_only_postprocess_and_combine(
    demo_copy: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    assert (
        esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "1").returncode == 0
    )
    before = manifest(scratch)["partitions"]
    cfg = demo_copy / "postprocessing_strategies.yaml"
    cfg.write_text(cfg.read_text().replace("clip_to_request: true", "clip_to_request: false"))
    out = esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    after = manifest(scratch)["partitions"]
    for pid in before:
        assert after[pid]["inference"] == before[pid]["inference"]
        assert after[pid]["dataset"] == before[pid]["dataset"]
        assert after[pid]["postprocess"]["end"] != before[pid]["postprocess"]["end"]
    assert "skipped inference (done and current): 3 partition(s)" in out.stderr


def test_second_run_on_a_busy_scratch_is_refused(tmp_path: Path) -> None:
    with ScratchLock(tmp_path):
        out = esrunner("run", str(DEMO), "--scratch", str(tmp_path))
    assert out.returncode == 3
    assert "in use by another run" in out.stderr and f"pid {os.getpid()}" in out.stderr


def test_steps_partition_ids_and_status_in_fresh_processes(tmp_path: Path) -> None:
    s = str(tmp_path / "scratch")
    out = esrunner(
        "run", str(DEMO), "--scratch", s, "--steps", "partition,dataset", "--partition-id", "gamma"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    status = esrunner("status", "--scratch", s)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0].split() == [
        "partition", "windows", "ready", "rejected", "dataset", "inference", "postprocess"
    ]  # fmt: skip
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:4]}
    assert rows["gamma"][:3] == ["15", "15", "0"]  # windows, ready, rejected
    assert rows["gamma"][3] == "done" and rows["gamma"][5:] == ["stale", "stale"]
    assert rows["delta"][1:] == ["-", "-", "-", "-", "-"]
    assert lines[4].split()[:4] == ["total", "45", "15", "0"]
    # The seed's spelling: flags only, individual config files, --run, --partition-id.
    out = esrunner(
        "--local",
        "--model-config", str(DEMO / "model.yaml"),
        "--dataset-config", str(DEMO / "dataset.json"),
        "--partition-config", str(DEMO / "partition_strategies.yaml"),
        "--postprocessing-config", str(DEMO / "postprocessing_strategies.yaml"),
        "--request", str(DEMO / "prediction" / "test-request1.geojson"),
        "--scratch", s,
        "--run", "inference",
        "--partition-id", "gamma",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    m = manifest(tmp_path / "scratch")["partitions"]
    assert m["gamma"]["inference"]["state"] == "done"
    assert "inference" not in m.get("delta", {})
    out = esrunner("run", str(DEMO), "--scratch", s, "--steps", "combine")
    assert out.returncode == 1 and "not postprocessed" in out.stderr


def test_bad_step_name_and_missing_files_are_usage_errors(tmp_path: Path) -> None:
    out = esrunner("run", str(DEMO), "--scratch", str(tmp_path), "--steps", "infer")
    assert out.returncode == 2 and "unknown step" in out.stderr
    out = esrunner(
        "run", "--dataset-config", str(DEMO / "dataset.json"), "--scratch", str(tmp_path)
    )
    assert out.returncode == 2 and "--model-config" in out.stderr


def test_worker_sys_exit_is_an_error_not_a_hang(demo_copy: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "plugins"
    plugin.mkdir()
    (plugin / "exiting.py").write_text(
        "import sys\n"
        "from rslp.common.postprocessing.raster import NoopRaster\n"
        "class Exiting(NoopRaster):\n"
        "    def process_window(self, result, layer, out_dir):\n"
        "        sys.exit(7)\n"
    )
    cfg = demo_copy / "postprocessing_strategies.yaml"
    cfg.write_text(
        "strategy_small: {class_path: exiting.Exiting}\n"
        "strategy_medium: {class_path: rslp.common.postprocessing.raster.CombineGeotiff}\n"
        "strategy_large: {class_path: rslp.common.postprocessing.raster.CombineGeotiff}\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{plugin}")
    cmd = [
        sys.executable,
        "-m",
        "rslp.cli",
        "run",
        str(demo_copy),
        "--scratch",
        str(tmp_path / "s"),
        "--workers",
        "2",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 1
    assert "exited with status 7" in out.stderr
    # One failure, identical in every partition: reported once, with its partitions.
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and out.stderr.count("exited with status 7") == 1, errors


def test_killed_local_worker_process_is_retried_with_identical_result(
    reference: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "rslp.cli", "run", str(DEMO), "--scratch", str(scratch)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            parts = manifest(scratch).get("partitions", {})
        except (FileNotFoundError, json.JSONDecodeError):
            parts = {}
        for rec in parts.values():
            inf = rec.get("inference", {})
            if inf.get("state") == "running" and inf.get("worker"):
                killed = int(inf["worker"].rsplit(":", 1)[1])
                assert killed != proc.pid  # a worker process, not the driver
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=600)
    assert killed is not None, "never saw inference running in a worker process"
    assert proc.returncode == 0, err.decode()[-3000:]
    for name in ("result.tif", "result.png"):
        assert (scratch / "results" / name).read_bytes() == (
            reference / "results" / name
        ).read_bytes()
