"""One runner per scratch directory.

The lock is an ``flock`` on ``scratch/run.lock``, which the kernel releases when the
holder dies, even by ``kill -9``: a lock left by a killed run is therefore taken over
by the next run (the file still names the dead holder, which is logged).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rslp.errors import RunnerError

logger = logging.getLogger(__name__)


class ScratchBusyError(RunnerError):
    """Another live run holds the scratch directory."""


class ScratchLock:
    """An exclusive, crash-safe lock on a scratch directory.

    Args:
        scratch: the scratch directory.
    """

    def __init__(self, scratch: Path) -> None:
        self.path = scratch / "run.lock"
        self._fh: IO[str] | None = None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its last holder (may be stale)."""
        try:
            return dict(json.loads(self.path.read_text() or "{}"))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        """Take the lock or raise :class:`ScratchBusyError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            h = self.holder()
            raise ScratchBusyError(
                f"scratch {self.path.parent} is in use by another run "
                f"(pid {h.get('pid', '?')} on {h.get('host', '?')} since {h.get('since', '?')}); "
                "wait for it to finish or use another --scratch"
            ) from None
        previous = self.holder()
        if previous.get("pid"):
            logger.warning(
                "taking over a stale lock left by pid %s on %s",
                previous["pid"],
                previous.get("host"),
            )
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
        )
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Release the lock (and clear the holder so the next run sees no stale lock)."""
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.flush()
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def __enter__(self) -> ScratchLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
