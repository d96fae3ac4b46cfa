"""One runner per scratch: :class:`RunLock` and its two kinds.

- :class:`ScratchLock`, for a scratch directory: an ``flock`` on ``scratch/run.lock``,
  which the kernel releases when the holder dies, even by ``kill -9``: a lock left by a
  killed run is taken over by the next run (the file still names the dead holder, which
  is logged).
- :class:`LeaseLock`, for a scratch in a bucket (no ``flock`` there): an object created
  only if absent, holding a lease that the live driver renews; a new driver takes it
  over once the lease expired, or at once when its holder's process is provably gone
  (same host, no such process).
"""

from __future__ import annotations

import abc
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rslp.bucket import Bucket
from rslp.errors import RunnerError

logger = logging.getLogger(__name__)


class ScratchBusyError(RunnerError):
    """Another live run holds the scratch directory."""


class RunLock(abc.ABC):
    """The contract: one live run per scratch; a dead run's lock is taken over.

    Use as a context manager around a run. :meth:`acquire` raises
    :class:`ScratchBusyError` naming the holder while another run is alive.
    """

    @abc.abstractmethod
    def holder(self) -> dict[str, Any]:
        """What the lock says about its holder (``pid``, ``host``, ``since``; may be stale)."""

    @abc.abstractmethod
    def acquire(self) -> None:
        """Take the lock or raise :class:`ScratchBusyError`."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up (no-op when not held)."""

    def describe(self) -> str:
        """One line about the holder for ``esrunner status`` ('' when free)."""
        h = self.holder()
        if not h.get("pid"):
            return ""
        return f"pid {h['pid']} on {h.get('host')} since {h.get('since')}"

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class ScratchLock(RunLock):
    """An exclusive, crash-safe lock on a scratch directory (``flock``).

    Use it for a scratch on local disk or a POSIX shared filesystem.

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


LEASE_SECONDS = 60.0
LOCK_OBJECT = "run.lock"


def lease_seconds() -> float:
    """The lease a driver holds on a bucket scratch (``ESRUNNER_LEASE_SECONDS``, default 60)."""
    try:
        return max(1.0, float(os.environ.get("ESRUNNER_LEASE_SECONDS", LEASE_SECONDS)))
    except ValueError:
        return LEASE_SECONDS


class LeaseLock(RunLock):
    """A lease on a scratch in a bucket: created once, renewed, taken over when expired.

    Use it for a scratch on object storage. The lock object (``run.lock``) is created
    only if absent (a conditional write); the holder renews it every third of the lease
    with a compare-and-swap on its ETag. A driver that finds it expired, or held by a
    process of its own host that no longer exists, takes it over (a warning says whose).
    A holder that loses its lease (it stalled past the expiry and another driver took
    over) records nothing more: :meth:`check` raises, and the scratch's journal calls it.

    Args:
        bucket: the scratch's bucket and prefix.
        lease: seconds a lease lasts without renewal (default :func:`lease_seconds`).
        name: the lock object's name under the prefix (one per kind of run).
    """

    def __init__(self, bucket: Bucket, lease: float | None = None, name: str = LOCK_OBJECT) -> None:
        self.bucket = bucket
        self.name = name
        self.lease = lease or lease_seconds()
        self.owner = uuid.uuid4().hex
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def _record(self) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "owner": self.owner,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": _start_ticks(os.getpid()),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "expires": now + self.lease,
            }
        ).encode()

    def holder(self) -> dict[str, Any]:
        """The lock object's content (``{}`` when there is none)."""
        got = self.bucket.read_tagged(self.name)
        return _parse(got[0]) if got else {}

    def describe(self) -> str:
        """The holder and when its lease expires."""
        h = self.holder()
        if not h.get("pid"):
            return ""
        left = float(h.get("expires", 0)) - time.time()
        state = f"lease expires in {left:.0f} s" if left > 0 else f"lease expired {-left:.0f} s ago"
        return f"pid {h['pid']} on {h.get('host')} since {h.get('since')} ({state})"

    def acquire(self) -> None:
        """Create or take over the lock object, then renew it in the background."""
        for _ in range(5):
            if self.bucket.create(self.name, self._record()):
                break
            got = self.bucket.read_tagged(self.name)
            if got is None:
                continue  # released meanwhile: create again
            h, etag = _parse(got[0]), got[1]
            why = _stale(h)
            if why is None:
                raise ScratchBusyError(
                    f"scratch {self.bucket.url} is in use by another run (pid "
                    f"{h.get('pid', '?')} on {h.get('host', '?')} since {h.get('since', '?')}, "
                    f"lease until {_when(h.get('expires'))}); wait for it to finish, or for "
                    "its lease to expire if it died, or use another --scratch"
                )
            if self.bucket.replace(self.name, self._record(), etag):
                logger.warning(
                    "taking over the scratch lease of pid %s on %s (%s)",
                    h.get("pid"),
                    h.get("host"),
                    why,
                )
                break
        else:
            raise ScratchBusyError(f"scratch {self.bucket.url}: the lock kept changing; retry")
        got = self.bucket.read_tagged(self.name)
        if got is None or _parse(got[0]).get("owner") != self.owner:
            raise ScratchBusyError(f"scratch {self.bucket.url}: another run took the lock")
        self._etag = got[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                got = self.bucket.read_tagged(self.name)
                if got is None or _parse(got[0]).get("owner") != self.owner:
                    self.lost = "its lock object was taken over or removed"
                elif not self.bucket.replace(self.name, self._record(), got[1]):
                    self.lost = "its lock object changed while being renewed"
            except RunnerError as e:  # a failed renewal is retried until the lease ends
                logger.warning("renewing the scratch lease failed: %s", e)
                continue
            if self.lost:
                logger.error("lost the scratch lease of %s: %s", self.bucket.url, self.lost)
                return

    def check(self) -> None:
        """Raise once the lease was lost: this run must record nothing more."""
        if self.lost:
            raise ScratchBusyError(
                f"scratch {self.bucket.url}: this run lost its lease ({self.lost}); another "
                "run took the scratch over"
            )

    def release(self) -> None:
        """Stop renewing and delete the lock object if it is still ours."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            got = self.bucket.read_tagged(self.name)
            if got is not None and _parse(got[0]).get("owner") == self.owner:
                self.bucket.delete([self.name])
        except RunnerError as e:  # never hide the run's own error: the lease just expires
            logger.warning("releasing the scratch lease failed (it will expire): %s", e)


def _parse(data: bytes) -> dict[str, Any]:
    try:
        return dict(json.loads(data or b"{}"))
    except ValueError:
        return {}


def _when(epoch: object) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(float(epoch)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"


def _start_ticks(pid: int) -> str:
    """A process's start time (``/proc``), so a reused pid is not taken for its holder."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _stale(h: dict[str, Any]) -> str | None:
    """Why a lease may be taken over (None: its holder may be alive and within its lease)."""
    try:
        expires = float(h.get("expires", 0))
    except (TypeError, ValueError):
        expires = 0.0
    if expires < time.time():
        return f"its lease expired at {_when(expires)}"
    if h.get("host") == socket.gethostname() and h.get("pid"):
        pid = int(h["pid"])
        started = _start_ticks(pid)
        if not started or (h.get("started") and started != h.get("started")):
            return f"process {pid} is gone"
    return None
