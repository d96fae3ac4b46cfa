"""A real two-node Ray cluster on loopback, inside a network and PID namespace of its own.

Ray binds the machine's external interface unless it has none, so tests run the cluster
in ``unshare --net --pid --fork --mount-proc``: only ``lo`` exists there, and when the
namespace's first process exits every process in it ends (nothing to stop by name).

Run as a program inside the namespace (``in_namespace`` does that)::

    python tests/raycluster.py OUT_JSON -- COMMAND...       # run COMMAND on the cluster
    python tests/raycluster.py OUT_JSON --kill-node2-during inference -- COMMAND...
    python tests/raycluster.py OUT_JSON --s3 -- COMMAND...   # with an S3 server inside
    python tests/raycluster.py OUT_JSON --s3 --upload DIR -- esrunner run s3://b/p ...

It starts a head and a second node (``--num-cpus 1`` each, token authentication with a
fresh token), runs COMMAND with ``RAY_ADDRESS`` set, optionally kills the second node's
raylet with SIGKILL once a step is running on one of its workers, and writes
``{"returncode", "stdout", "stderr", "killed", "seconds"}`` to OUT_JSON.

With ``--s3`` a SeaweedFS server starts in the namespace first (the host's loopback is
not reachable from it) and every process gets its endpoint and keys; each node (head,
second node, driver) gets a node-local directory of its own (``ESRUNNER_NODE_DIR``), so
the nodes share nothing for the run but the bucket. After COMMAND, every object of the
scratch URL's prefix is copied to ``OUT_JSON``'s sibling directory ``<stem>.bucket/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

PORT = 6379
NODE2_PORT = 23456
ADDRESS = f"127.0.0.1:{PORT}"


def in_namespace(
    out: Path,
    command: list[str],
    kill_during: str | None = None,
    s3: bool = False,
    upload: Path | None = None,
) -> dict:
    """Run ``command`` on a fresh two-node cluster in a namespace; returns the result.

    With ``s3``, ``upload`` (a directory) is put at the URL of the command's PROJECT_DIR
    (``esrunner run s3://bucket/prefix ...``) before it runs.
    """
    args = [sys.executable, __file__, str(out)]
    if kill_during:
        args += ["--kill-node2-during", kill_during]
    if s3:
        args += ["--s3"] + (["--upload", str(upload)] if upload else [])
    subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--mount-proc", *args, "--", *command],
        check=True,
        timeout=900,
    )
    return dict(json.loads(out.read_text()))


def can_run() -> str | None:
    """Why a namespaced cluster cannot start here, or None."""
    try:
        subprocess.run(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "true"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"unshare is not available: {e}"
    return None


def _ray(*args: str, env: dict[str, str] | None = None) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray, *args], check=True, capture_output=True, timeout=120, env=env)


def _pids_with(*parts: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(x in cmd for x in parts):
            found.append(int(p.name))
    return found


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def _step_running_on(scratch: Path | str, step: str, parent: int) -> bool:
    from rslp.errors import RunnerError
    from rslp.runner.scratch import Scratch

    try:
        parts = Scratch.open(scratch).read_manifest().get("partitions", {})
    except (OSError, json.JSONDecodeError, RunnerError):
        return False
    for rec in parts.values():
        r = rec.get(step, {})
        if r.get("state") == "running" and r.get("worker"):
            pid = int(r["worker"].rsplit(":", 1)[1])
            if _parent(pid) == parent:
                return True
    return False


def main() -> None:
    out = Path(sys.argv[1])
    rest = sys.argv[2:]
    kill_during = None
    if rest[0] == "--kill-node2-during":
        kill_during, rest = rest[1], rest[2:]
    use_s3 = rest[0] == "--s3"
    upload = rest[1:3] if use_s3 and rest[1] == "--upload" else None
    command = rest[rest.index("--") + 1 :]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with contextlib.ExitStack() as stack:
        _main(out, command, kill_during, stack if use_s3 else None, upload)


def _main(
    out: Path,
    command: list[str],
    kill_during: str | None,
    s3: contextlib.ExitStack | None,
    upload: list[str] | None = None,
) -> None:
    node_env: list[dict[str, str] | None] = [None, None]
    scratch_arg = command[command.index("--scratch") + 1] if "--scratch" in command else None
    if s3 is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.s3fault import S3Server

        server = s3.enter_context(S3Server())
        if upload is not None:  # --upload LOCAL_DIR: into the bucket at the project's URL
            server.upload_dir(upload[1], command[2].split("/", 3)[3])
        os.environ.update(server.env())
        nodes = out.with_suffix(".nodes")
        os.environ["ESRUNNER_NODE_DIR"] = str(nodes / "driver")
    os.environ.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ADDRESS=ADDRESS,
    )
    if s3 is not None:  # each node's processes (raylet, workers) get their own node dir
        node_env = [dict(os.environ, ESRUNNER_NODE_DIR=str(nodes / n)) for n in ("head", "n2")]
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=200000000"]
    # Below the S3 test server's ports (tests/s3fault.py takes 15000-32700).
    common += ["--min-worker-port=10002", "--max-worker-port=14999"]
    _ray("start", "--head", f"--port={PORT}", "--include-dashboard=false", *common, env=node_env[0])
    _ray(
        "start",
        f"--address={ADDRESS}",
        f"--node-manager-port={NODE2_PORT}",
        *common,
        env=node_env[1],
    )
    raylet2 = _pids_with("raylet", f"--node_manager_port={NODE2_PORT}")[0]
    scratch = scratch_arg if scratch_arg and "://" in scratch_arg else None
    if scratch is None and scratch_arg:
        scratch = str(Path(scratch_arg))
    t0 = time.monotonic()
    logs = {k: out.with_suffix(f".{k}") for k in ("stdout", "stderr")}
    with logs["stdout"].open("w") as so, logs["stderr"].open("w") as se:
        proc = subprocess.Popen(command, stdout=so, stderr=se, text=True)
    killed = False
    if kill_during and scratch is not None:
        while proc.poll() is None and not killed:
            if _step_running_on(scratch, kill_during, raylet2):
                os.kill(raylet2, signal.SIGKILL)
                killed = True
            time.sleep(0.02)
    proc.wait(timeout=900)
    if s3 is not None and scratch is not None and "://" in scratch:
        from rslp.bucket import Bucket

        bucket, copy = Bucket(scratch), out.with_suffix(".bucket")
        for rel in bucket.files(""):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy / rel).write_bytes(bucket.read(rel) or b"")
    result = {
        "returncode": proc.returncode,
        "stdout": logs["stdout"].read_text(),
        "stderr": logs["stderr"].read_text(),
        "killed": killed,
        "seconds": time.monotonic() - t0,
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
