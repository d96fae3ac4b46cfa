"""Transient faults are not gaps: imagery from a real S3 server behind a faulty proxy.

The demo's imagery lives in a bucket of a real S3 server (SeaweedFS) on loopback;
rslearn's LocalFiles reads ``s3://bucket/imagery`` through s3fs, and every request goes
through a proxy that answers 503 on purpose. botocore's own retries are off
(``AWS_MAX_ATTEMPTS=1``), so the runner's retries do the work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO, REPO
from tests.e2e.test_cli_run import manifest
from tests.s3fault import FaultProxy, S3Server

pytestmark = pytest.mark.e2e

BUILD = {"retry_max_attempts": 8, "retry_backoff": 0.02, "retry_max_backoff": 0.1}


@pytest.fixture(scope="module")
def s3() -> S3Server:
    with S3Server() as server:
        server.upload_dir(DEMO / "imagery", "imagery")
        yield server


def _bucket_project(root: Path) -> Path:
    import shutil

    project = root / "demo"
    shutil.copytree(
        DEMO, project, ignore=shutil.ignore_patterns("scratch", "__pycache__", "imagery")
    )
    ds = json.loads((project / "dataset.json").read_text())
    ds["layers"]["image"]["data_source"]["init_args"]["src_dir"] = "s3://bucket/imagery"
    (project / "dataset.json").write_text(json.dumps(ds, indent=1))
    cfg = project / "partition_strategies.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["dataset_build"] = BUILD
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return project


def _run(project: Path, scratch: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rslp.cli", "run", str(project), "--scratch", str(scratch)]
    return subprocess.run(
        [*cmd, "--workers", "1"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=600,
    )


def test_flaky_source_gives_the_fault_free_result_and_a_dead_one_a_clear_error(
    s3: S3Server, tmp_path: Path
) -> None:
    project = _bucket_project(tmp_path)
    with FaultProxy(s3.endpoint) as clean:
        out = _run(project, tmp_path / "clean", s3.subprocess_env(clean.endpoint))
        assert out.returncode == 0, out.stderr[-3000:]
        assert clean.faults == 0 and clean.requests > 0
    expected = (tmp_path / "clean" / "results" / "result.tif").read_bytes()

    # Every distinct request fails once (503) before it succeeds.
    with FaultProxy(s3.endpoint, fail_first=1, error_code="ServiceUnavailable") as flaky:
        out = _run(project, tmp_path / "flaky", s3.subprocess_env(flaky.endpoint))
        assert out.returncode == 0, out.stderr[-3000:]
        faults = flaky.faults
    assert faults >= 3, faults
    assert (tmp_path / "flaky" / "results" / "result.tif").read_bytes() == expected
    m = manifest(tmp_path / "flaky")
    assert all(p["dataset"]["result"]["rejected"] == 0 for p in m["partitions"].values())
    log = (tmp_path / "flaky" / "logs").glob("*.log")
    retried = [ln for f in log for ln in f.read_text().splitlines() if "transient fault" in ln]
    assert len(retried) >= 3, retried  # the attempts are counted in the log
    assert "attempt 1 of 9" in retried[0] and "retrying in" in retried[0]

    # A source that never answers: retried, then a clear error that names it.
    with FaultProxy(s3.endpoint, always_fail=True, error_code="ServiceUnavailable") as dead:
        scratch = tmp_path / "dead"
        out = _run(project, scratch, s3.subprocess_env(dead.endpoint))
    assert out.returncode == 1, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, errors
    assert "the data source failed after every retry" in errors[0]
    assert "failed after 9 attempt(s)" in errors[0]
    assert "dataset.json layers.image.data_source" in errors[0]
    assert not (scratch / "results" / "result.tif").exists()
    listing = json.loads((scratch / "results" / "rejected_windows.geojson").read_text())
    assert {f["properties"]["reason"] for f in listing["features"]} == {"source_failed"}
    for key in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        secret = s3.subprocess_env()[key]
        assert secret not in out.stderr and secret not in json.dumps(manifest(scratch))
