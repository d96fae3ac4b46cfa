"""Scratch in a bucket (``--scratch s3://...``) against a real S3 server (SeaweedFS, loopback).

The demo runs with its scratch in the bucket into results byte-identical to a local-disk
run's, readable by GDAL over ``/vsis3/``; a rerun on a fresh machine resumes from the
bucket alone; a driver killed mid-run is resumed at once by the same command (its
lease's owner is provably gone); a live lease refuses a second driver, an expired one
is taken over; a bucket refusing writes fails before any window.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO
from tests.s3fault import S3Server

pytestmark = [pytest.mark.e2e]

ESRUNNER = str(Path(sys.executable).with_name("esrunner"))
RESULTS = ("result.tif", "result.png")
GDAL_READ = """
import hashlib, json, sys
import rasterio
with rasterio.open(sys.argv[1]) as ds:
    print(json.dumps({"profile": str(ds.profile), "tags": ds.tags(),
                      "pixels": hashlib.sha256(ds.read().tobytes()).hexdigest()}))
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def env_for(s3: S3Server, node: Path, **extra: str) -> dict[str, str]:
    env = s3.subprocess_env()
    env["ESRUNNER_NODE_DIR"] = str(node)
    env.update(extra)
    return env


def esrunner(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([ESRUNNER, *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def objects(s3: S3Server, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix + "/").get("Contents", [])
    return {
        o["Key"][len(prefix) + 1 :]: client.get_object(Bucket=s3.bucket, Key=o["Key"])[
            "Body"
        ].read()
        for o in listed
    }


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("local")
    out = subprocess.run(
        [ESRUNNER, "run", str(DEMO), "--scratch", str(scratch), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return scratch / "results"


def test_demo_with_bucket_scratch_equals_the_local_run(
    s3: S3Server, local_result: Path, tmp_path: Path
) -> None:
    env = env_for(s3, tmp_path / "node-a")
    out = esrunner(env, "run", str(DEMO), "--scratch", "s3://bucket/demo", "--workers", "2")
    assert "result: s3://bucket/demo/results/result.tif" in out.stdout
    stored = objects(s3, "demo")
    for name in RESULTS:
        assert stored[f"results/{name}"] == (local_result / name).read_bytes(), name
    # Complete by marker, not by rename; the manifest compacted at the end of the run.
    assert {"plan/.complete", "results/.complete", "manifest.json", "run-id"} <= set(stored)
    assert not [k for k in stored if k.startswith("journal/")]
    manifest = json.loads(stored["manifest.json"])
    assert manifest["results"][0] == "s3://bucket/demo/results/result.tif"
    assert all(r["state"] == "done" for p in manifest["partitions"].values() for r in p.values())
    # No credential anywhere in what the run wrote.
    for data in stored.values():
        assert s3.secret_key.encode() not in data and s3.access_key.encode() not in data
    logs = "".join(p.read_text() for p in (tmp_path / "node-a").rglob("*.log"))
    assert s3.secret_key not in logs + out.stdout + out.stderr

    # GIS reads the result where it is: GDAL over /vsis3/, with GDAL's own variables.
    gdal_env = {
        **env,
        "AWS_S3_ENDPOINT": s3.endpoint.removeprefix("http://"),
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_REGION": "us-east-1",
    }
    read = subprocess.run(
        [sys.executable, "-c", GDAL_READ, "/vsis3/bucket/demo/results/result.tif"],
        capture_output=True,
        text=True,
        env=gdal_env,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    local = json.loads(
        subprocess.run(
            [sys.executable, "-c", GDAL_READ, str(local_result / "result.tif")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert json.loads(read.stdout) == local

    # A fresh machine (another node dir) resumes from the bucket alone: nothing reruns.
    env_b = env_for(s3, tmp_path / "node-b")
    again = esrunner(env_b, "run", str(DEMO), "--scratch", "s3://bucket/demo", "--workers", "1")
    assert "skipped inference (done and current): 3 partition(s)" in again.stderr
    assert "skipped combine" in again.stderr
    assert "result: s3://bucket/demo/results/result.png" in again.stdout
    status = esrunner(env_b, "status", "--scratch", "s3://bucket/demo")
    assert "combine step:   done" in status.stdout and "total        45" in status.stdout

    # A changed postprocessing config on that fresh node: the partitions' steps run
    # there from their dataset step (node-local), into the same bytes.
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch"))
    post = project / "postprocessing_strategies.yaml"
    post.write_text(post.read_text() + "\n# touched\n")
    env_c = env_for(s3, tmp_path / "node-c")
    esrunner(env_c, "run", str(project), "--scratch", "s3://bucket/demo", "--workers", "1")
    for name in RESULTS:
        assert objects(s3, "demo")[f"results/{name}"] == (local_result / name).read_bytes()


def _journal_has(s3: S3Server, prefix: str, text: str) -> bool:
    client = s3.client()
    for o in client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/journal/").get(
        "Contents", []
    ):
        body = client.get_object(Bucket=s3.bucket, Key=o["Key"])["Body"].read()
        if text.encode() in body:
            return True
    return False


def test_a_killed_driver_is_resumed_at_once_by_the_same_command(
    s3: S3Server, local_result: Path, tmp_path: Path
) -> None:
    env = env_for(s3, tmp_path / "node")
    cmd = [ESRUNNER, "run", str(DEMO), "--scratch", "s3://bucket/killed", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while not _journal_has(s3, "killed", '"s":"postprocess","f":{"state":"done"'):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "never saw a postprocess step done"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    lock = json.loads(objects(s3, "killed")["run.lock"])
    assert lock["pid"] == proc.pid and lock["expires"] > time.time()  # left, unexpired
    out = esrunner(env, *cmd[1:])
    assert f"taking over the scratch lease of pid {proc.pid}" in out.stderr
    assert "is gone" in out.stderr
    assert "skipped dataset (done and current)" in out.stderr  # resumed, not redone
    stored = objects(s3, "killed")
    for name in RESULTS:
        assert stored[f"results/{name}"] == (local_result / name).read_bytes(), name
    assert "run.lock" not in stored  # released at the end


def test_a_live_lease_refuses_a_second_driver_and_an_expired_one_is_taken_over(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rslp.bucket import Bucket
    from rslp.runner.lock import LeaseLock, ScratchBusyError
    from rslp.runner.scratch import Scratch

    for k, v in {**s3.env(), "ESRUNNER_NODE_DIR": str(tmp_path / "here")}.items():
        monkeypatch.setenv(k, v)  # this process talks to the server too
    bucket = Bucket("s3://bucket/leased")
    holder = LeaseLock(bucket, lease=2)
    holder.acquire()
    other = LeaseLock(bucket, lease=2)
    with pytest.raises(ScratchBusyError, match=r"in use by another run \(pid \d+ on "):
        other.acquire()
    time.sleep(2.5)  # renewed in the background: still held
    with pytest.raises(ScratchBusyError):
        other.acquire()
    # A holder on another machine that stalled (no renewal): taken over once expired.
    holder._stop.set()
    assert holder._thread is not None
    holder._thread.join()
    stale = json.loads(bucket.read("run.lock") or b"{}")
    stale.update(host="elsewhere", expires=time.time() - 1)
    bucket.write("run.lock", json.dumps(stale).encode())
    other.acquire()
    assert json.loads(bucket.read("run.lock") or b"{}")["owner"] == other.owner
    # The stalled holder wakes up: its next renewal finds the lease gone, and its
    # scratch (fenced by the lease) records nothing more.
    holder._stop.clear()
    waker = threading.Thread(target=holder._renew, daemon=True)
    waker.start()
    deadline = time.monotonic() + 10
    while holder.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    holder._stop.set()
    waker.join()
    assert holder.lost == "its lock object was taken over or removed"
    scratch = Scratch.open("s3://bucket/leased")
    scratch.fence = holder.check
    with pytest.raises(ScratchBusyError, match="lost its lease"):
        scratch.record_step("p", "dataset", "done")
    assert not scratch.has_manifest()  # nothing landed
    assert json.loads(bucket.read("run.lock") or b"{}")["owner"] == other.owner
    other.release()
    assert bucket.read("run.lock") is None
    # The CLI's word for a live lease: exit 3, naming the holder.
    live = LeaseLock(bucket, lease=30)
    live.acquire()
    try:
        args = [str(DEMO), "--scratch", "s3://bucket/leased"]
        env = env_for(s3, tmp_path / "n")
        out = esrunner(env, "run", *args, check=False)
        assert out.returncode == 3, out.stderr
        assert "s3://bucket/leased is in use by another run" in out.stderr
        status = esrunner(env, "status", *args, check=False)
        assert "nothing has run there" in status.stderr
    finally:
        live.release()


def test_a_bucket_that_refuses_writes_fails_before_any_window(s3: S3Server, tmp_path: Path) -> None:
    env = env_for(s3, tmp_path / "node", AWS_SECRET_ACCESS_KEY="wrong-secret-value")
    out = esrunner(env, "run", str(DEMO), "--scratch", "s3://bucket/refused", check=False)
    assert out.returncode == 2, out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert "scratch s3://bucket/refused: checking the bucket failed: access denied" in line
    assert "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in line
    assert "wrong-secret-value" not in out.stderr + out.stdout
    env = env_for(s3, tmp_path / "node")
    out = esrunner(env, "run", str(DEMO), "--scratch", "s3://missing/x", check=False)
    assert out.returncode == 2 and "bucket 'missing' does not exist" in out.stderr
    assert objects(s3, "refused") == {}
    assert not list((tmp_path / "node").rglob("windows/*/*"))  # no window anywhere


def test_a_project_read_from_the_bucket_is_cached_per_node_by_digest(
    s3: S3Server, local_result: Path, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch*", "__pycache__"))
    s3.upload_dir(project, "projects/demo")
    node = tmp_path / "node"
    env = env_for(s3, node)
    url = "s3://bucket/projects/demo"
    out = esrunner(env, "run", url, check=False)
    assert out.returncode == 2 and "a project in a bucket needs --scratch" in out.stderr
    cmd = ["run", url, "--scratch", "s3://bucket/fromproject", "--workers", "2"]
    esrunner(env, *cmd)
    stored = objects(s3, "fromproject")
    for name in RESULTS:
        assert stored[f"results/{name}"] == (local_result / name).read_bytes(), name
    (copy,) = [p for p in (node / "projects").iterdir() if p.is_dir()]
    assert (copy / "checkpoint.ckpt").read_bytes() == (DEMO / "checkpoint.ckpt").read_bytes()
    stamp = copy.stat().st_ino, (copy / "model.yaml").stat().st_mtime_ns
    again = esrunner(env, *cmd)
    assert "skipped inference (done and current): 3 partition(s)" in again.stderr
    assert (copy.stat().st_ino, (copy / "model.yaml").stat().st_mtime_ns) == stamp  # cached
    # A worker asked for the run's version gets it, or an error naming the change.
    from rslp.bucket import BucketError
    from rslp.project_source import fetch_project

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        local, digest = fetch_project(url)
        assert local == copy
        s3.client().put_object(Bucket="bucket", Key="projects/demo/model.yaml", Body=b"x: 1\n")
        with pytest.raises(BucketError, match="it changed during the run"):
            fetch_project(url, digest)
    finally:
        os.environ.clear()
        os.environ.update(saved)
