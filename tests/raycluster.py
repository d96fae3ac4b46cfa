"""A real two-node Ray cluster on loopback, inside a network and PID namespace of its own.

Ray binds the machine's external interface unless it has none, so tests run the cluster
in ``unshare --net --pid --fork --mount-proc``: only ``lo`` exists there, and when the
namespace's first process exits every process in it ends (nothing to stop by name).

Run as a program inside the namespace (``in_namespace`` does that)::

    python tests/raycluster.py OUT_JSON -- COMMAND...       # run COMMAND on the cluster
    python tests/raycluster.py OUT_JSON --kill-node2-during inference -- COMMAND...

It starts a head and a second node (``--num-cpus 1`` each, token authentication with a
fresh token), runs COMMAND with ``RAY_ADDRESS`` set, optionally kills the second node's
raylet with SIGKILL once a step is running on one of its workers, and writes
``{"returncode", "stdout", "stderr", "killed", "seconds"}`` to OUT_JSON.
"""

from __future__ import annotations

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


def in_namespace(out: Path, command: list[str], kill_during: str | None = None) -> dict:
    """Run ``command`` on a fresh two-node cluster in a namespace; returns the result."""
    args = [sys.executable, __file__, str(out)]
    if kill_during:
        args += ["--kill-node2-during", kill_during]
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


def _ray(*args: str) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray, *args], check=True, capture_output=True, timeout=120)


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


def _step_running_on(scratch: Path, step: str, parent: int) -> bool:
    from rslp.runner.scratch import Scratch

    try:
        parts = Scratch(scratch).read_manifest().get("partitions", {})
    except (OSError, json.JSONDecodeError):
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
    command = rest[rest.index("--") + 1 :]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ADDRESS=ADDRESS,
    )
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=200000000"]
    _ray("start", "--head", f"--port={PORT}", "--include-dashboard=false", *common)
    _ray("start", f"--address={ADDRESS}", f"--node-manager-port={NODE2_PORT}", *common)
    raylet2 = _pids_with("raylet", f"--node_manager_port={NODE2_PORT}")[0]
    scratch = Path(command[command.index("--scratch") + 1]) if "--scratch" in command else None
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
