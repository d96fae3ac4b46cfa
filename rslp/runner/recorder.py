"""The driver's side of a run: workers' events and records into the manifest and progress.

Only the driver writes the manifest. Records and ``running`` marks are batched and
written at most every ``flush_interval`` seconds (and when the run ends), so the cost of
manifest writes grows with the run's duration, not with its number of partitions. A
record lost to a driver killed within that interval only means the step runs again
(resumes) next time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rslp.errors import PartitionsFailedError, RunnerError
from rslp.runner.engine import PARTITION_STEPS, Event, StepRecord
from rslp.runner.outcomes import RunOutcome, read_outcome
from rslp.runner.progress import Progress
from rslp.runner.scratch import Scratch


class Recorder:
    """Receives workers' events and step records (from any executor) on the driver.

    Args:
        scratch: the run's scratch (its manifest is written here).
        progress: where windows done / total are shown.
        windows: planned windows per partition.
        steps: the steps this run was asked to run (later ones are marked stale).
        outcome: ready and rejected windows of the partitions whose dataset step does not
            run (its ``planned`` counts every partition of the run); each finished
            dataset step adds its partition.
        floor: the run's ``min_window_success_rate``: once the rejected windows make it
            unreachable, :attr:`failed` is true (no new partition starts).
        flush_interval: seconds between manifest writes.
    """

    def __init__(
        self,
        scratch: Scratch,
        progress: Progress,
        windows: dict[str, int],
        steps: tuple[str, ...],
        outcome: RunOutcome | None = None,
        floor: float = 0.0,
        flush_interval: float = 0.5,
    ) -> None:
        self.scratch = scratch
        self.outcome = outcome or RunOutcome(planned=sum(windows.values()))
        self.floor = floor
        self.progress = progress
        self.windows = windows
        self.steps = steps
        self.flush_interval = flush_interval
        self.ran: dict[str, list[str]] = {}
        self.failures: list[tuple[str, RunnerError]] = []
        self.stats: list[StepRecord] = []
        self._counted: dict[tuple[str, str], float] = {}
        self._finished: set[tuple[str, str]] = set()
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()

    def _flush_loop(self) -> None:
        """Write what is pending every ``flush_interval`` (a step running shows soon).

        The wait grows to 10x the last write's duration, so that writing a large
        manifest (10,000 partitions: ~6 MB, ~0.5 s) never takes over 10 % of the driver.
        """
        wait = self.flush_interval
        while not self._stop.wait(wait):
            if self._pending:
                t0 = time.monotonic()
                self.flush()
                wait = max(self.flush_interval, 10 * (time.monotonic() - t0))

    @property
    def floor_breached(self) -> bool:
        """The rejected windows so far make the floor unreachable."""
        return self.outcome.below(self.floor)

    @property
    def failed(self) -> bool:
        """A step failed, or the floor cannot be met: executors start no more partitions."""
        return bool(self.failures) or self.floor_breached

    def events(self, events: list[Event]) -> None:
        """Workers' progress: a step started, or windows of it finished."""
        with self._lock:
            for ev in events:
                key = (ev.partition_id, ev.step)
                if key in self._finished:
                    continue  # arrived after the step's record
                if ev.kind == "record" and ev.record is not None:
                    self.records([ev.record])
                elif ev.kind == "start":
                    fields = {
                        "state": "running",
                        "start": ev.time,
                        "fingerprint": ev.fingerprint,
                        "worker": ev.worker,
                    }
                    self._pending.append((ev.partition_id, ev.step, fields))
                elif ev.kind == "windows":
                    room = self.windows[ev.partition_id] - self._counted.get(key, 0)
                    n = min(ev.count, room)
                    if n > 0:
                        self._counted[key] = self._counted.get(key, 0) + n
                        self.progress.advance(ev.step, n, f"{ev.partition_id} (running)")

    def records(self, records: list[StepRecord]) -> None:
        """Finished steps: into the manifest, progress and the run's result (once each)."""
        with self._lock:
            for rec in records:
                key = (rec.partition_id, rec.step)
                if key in self._finished:
                    continue  # already received as an event
                self._finished.add(key)
                self._pending.append((rec.partition_id, rec.step, rec.manifest_fields()))
                if rec.error is not None:
                    self.failures.append((rec.partition_id, rec.error))
                    continue
                self.stats.append(rec)
                self.ran.setdefault(rec.step, []).append(rec.partition_id)
                if rec.step == "dataset":
                    self._count_outcome(rec.partition_id)
                rest = self.windows[rec.partition_id] - self._counted.get(key, 0)
                self._counted[key] = self.windows[rec.partition_id]
                self.progress.advance(rec.step, rest, f"{rec.partition_id} done")
                for later in PARTITION_STEPS[PARTITION_STEPS.index(rec.step) + 1 :]:
                    if later not in self.steps:
                        self._pending.append((rec.partition_id, later, {"state": "stale"}))

    def _count_outcome(self, partition_id: str) -> None:
        """Add a partition's window outcome; note when the floor became unreachable."""
        found = read_outcome(self.scratch, partition_id)
        if found is None:
            return
        breached = self.floor_breached
        self.outcome.add(found)
        if found.rejected:
            self.progress.note(
                f"{partition_id}: {len(found.rejected)} of {found.windows} window(s) rejected"
            )
        if not breached and self.floor_breached:
            self.progress.note(
                f"window success rate can no longer reach {self.floor:g}: no new partition starts"
            )

    def flush(self) -> None:
        """Write pending records to the manifest now."""
        with self._write_lock:  # in order; events keep flowing while it writes
            with self._lock:
                pending, self._pending = self._pending, []
            self.scratch.record_steps(pending)

    def close(self) -> None:
        """Stop the background writer and write what is pending."""
        self._stop.set()
        self._flusher.join()
        self.flush()

    def raise_failures(self) -> None:
        """Raise one error for all failures (each distinct one once).

        Raises:
            PartitionsFailedError: some partition failed.
        """
        if self.failures:
            raise PartitionsFailedError(self.failures)
