"""Ending a finished process without the teardown: nothing it wrote or queued is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Buffered stdout, a log file handler, an exit handler and a thread: what a normal exit
# flushes, runs and waits for, and exit_now must too.
SCRIPT = """
import atexit, logging, sys, threading, time
from pathlib import Path
from rslp.process_exit import exit_now

out = Path(sys.argv[1])


class TornDown:  # its __del__ runs only in the interpreter's teardown
    def __del__(self, _write=Path.write_text, _path=out / "torn_down.txt"):
        _write(_path, "yes")


KEEP = TornDown()
logging.basicConfig(filename=out / "log.txt", level=logging.INFO)
logging.getLogger("t").info("logged before exit")
atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
sys.stdout.write("no newline, still buffered")
def late():
    time.sleep(0.3)
    (out / "thread.txt").write_text("done")
if sys.argv[3] == "thread":
    threading.Thread(target=late).start()
code = sys.argv[2]
exit_now(int(code) if code.lstrip("-").isdigit() else None if code == "none" else code)
"""


def _run(tmp_path: Path, code: str, thread: str = "", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), code, thread or "-"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


@pytest.mark.parametrize(("code", "status"), [("0", 0), ("3", 3), ("none", 0)])
def test_exit_now_flushes_logs_runs_exit_handlers_and_keeps_the_status(
    tmp_path: Path, code: str, status: int
) -> None:
    out = _run(tmp_path, code)
    assert out.returncode == status, out.stderr
    assert out.stdout == "no newline, still buffered"
    assert "logged before exit" in (tmp_path / "log.txt").read_text()
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert not (tmp_path / "torn_down.txt").exists()  # ended without the teardown


def test_a_message_is_printed_with_status_1_as_sys_exit_does(tmp_path: Path) -> None:
    out = _run(tmp_path, "bad input")
    assert out.returncode == 1 and out.stderr.strip() == "bad input"


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    out = _run(tmp_path, "5", "thread")
    assert out.returncode == 5, out.stderr
    assert (tmp_path / "thread.txt").read_text() == "done"
    assert (tmp_path / "atexit.txt").read_text() == "ran"


def test_teardown_env_gives_a_normal_exit(tmp_path: Path) -> None:
    out = _run(tmp_path, "4", ESRUNNER_EXIT_TEARDOWN="1")
    assert out.returncode == 4 and out.stdout == "no newline, still buffered"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "torn_down.txt").read_text() == "yes"  # the teardown ran


WORKER = """
import atexit, multiprocessing, sys
from pathlib import Path

class TornDown:  # its __del__ runs only in the interpreter's teardown
    def __init__(self, path):
        self.path = path

    def __del__(self, _write=Path.write_text):
        _write(self.path, "yes")


KEEP = []


def work(q, out):
    from rslp.process_exit import end_at_exit_without_teardown
    KEEP.append(TornDown(Path(out) / "worker-torn-down.txt"))
    atexit.register(lambda: (Path(out) / "worker-atexit.txt").write_text("ran"))
    end_at_exit_without_teardown()
    for i in range(2000):  # through the queue's feeder thread: flushed before the end
        q.put(i)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=work, args=(q, sys.argv[1]))
    p.start()
    got = [q.get(timeout=30) for _ in range(2000)]
    p.join(30)
    print(p.exitcode, got == list(range(2000)))
"""


def test_a_worker_ends_without_teardown_after_its_queue_is_flushed(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]
    assert (tmp_path / "worker-atexit.txt").read_text() == "ran"
    assert not (tmp_path / "worker-torn-down.txt").exists()
