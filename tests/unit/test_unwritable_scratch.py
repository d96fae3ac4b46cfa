"""A scratch this process cannot write is the person's setup, refused before any work in one
line (path, uid, owner, fix), never "internal error", and nothing is left in it.

Each case makes the real condition: a directory owned by another uid (the process runs as
root without CAP_DAC_OVERRIDE, so permission bits hold for it), a read-only bind mount and a
full tmpfs (in a mount namespace of the test's own).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO

ESRUNNER = str(Path(sys.executable).with_name("esrunner"))
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
    reason="needs root, unshare and setpriv (util-linux) to make the conditions",
)


def _run(
    scratch: Path, prefix: list[str] | None = None, setup: str = "", after: str = ":"
) -> subprocess.CompletedProcess:
    cmd = [ESRUNNER, "run", str(DEMO), "--scratch", str(scratch)]
    if setup:  # inside a mount namespace of its own (gone, with its mounts, at the end)
        script = f'{setup} && "$@"; rc=$?; {after}; exit $rc'
        cmd = ["unshare", "--mount", "bash", "-c", script, "bash", *cmd]
    return subprocess.run([*(prefix or []), *cmd], capture_output=True, text=True, timeout=300)


def _one_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stderr[-3000:]
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, out.stderr
    return errors[0]


def test_a_directory_owned_by_another_uid(tmp_path: Path) -> None:
    owned = tmp_path / "theirs"
    owned.mkdir()
    os.chown(owned, 5555, 5555)
    tmp_path.chmod(0o755)
    no_override = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    line = _one_error(_run(owned / "scratch", no_override))
    assert f"cannot write scratch {owned / 'scratch'}: permission denied" in line
    assert "running as uid 0" in line and f"{owned} is owned by uid 5555 (gid 5555)" in line
    assert '--user "$(id -u):$(id -g)"' in line
    assert list(owned.iterdir()) == []


def test_a_read_only_mount(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    (ro / "scratch").mkdir(parents=True)
    line = _one_error(
        _run(ro / "scratch", setup=f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro}")
    )
    assert f"cannot write scratch {ro / 'scratch'}: it is on a read-only file system" in line
    assert "read-write" in line
    assert list((ro / "scratch").iterdir()) == []


def test_a_full_disk_at_the_first_write(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    fill = f"mount -t tmpfs -o size=4k tmpfs {full} && head -c 4096 /dev/zero > {full}/filler"
    out = _run(full / "scratch", setup=fill, after=f"ls -A {full} > {tmp_path}/left")
    line = _one_error(out)
    assert f"cannot write scratch {full / 'scratch'}: no space left on the device" in line
    assert "free space" in line
    assert (tmp_path / "left").read_text().split() == ["filler"]  # nothing half-written


def test_a_full_disk_midway_is_named_too() -> None:
    """An ENOSPC that reaches the CLI later (a write, no file name) is still the setup's."""
    import errno

    from rslp.writable import storage_error

    err = storage_error(OSError(errno.ENOSPC, "No space left on device"))
    assert err is not None and "no space left on the device" in str(err)
    named = storage_error(PermissionError(errno.EACCES, "Permission denied", "/nonexistent/a/b"))
    assert named is not None and "owned by" in str(named) and "/nonexistent/a/b" in str(named)
    assert storage_error(FileNotFoundError(errno.ENOENT, "nope", "/x")) is None
