"""The executor contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Protocol

from rslp.errors import StepError
from rslp.runner.engine import Event, PartitionJob, StepRecord


class Sink(Protocol):
    """The driver's receiver (:class:`rslp.runner.recorder.Recorder`)."""

    @property
    def failed(self) -> bool:
        """A step failed: start no more partitions."""
        ...

    def events(self, events: list[Event]) -> None:
        """Workers' progress events."""
        ...

    def records(self, records: list[StepRecord]) -> None:
        """Finished steps."""
        ...


class Executor(ABC):
    """Runs partition jobs somewhere and hands their events and records to the driver.

    The contract, the same for every executor:

    - every job's steps run in order through :func:`rslp.runner.engine.run_steps`, and a
      record per step that ran reaches ``sink.records``; progress reaches ``sink.events``;
    - a worker lost to the system (its process or node died) is retried, up to
      ``max_retries`` more attempts per job, then reported as a failed record;
    - an application error (a ``failed`` record) is not retried: once ``sink.failed`` is
      true no new job starts; jobs already running finish.

    Args:
        max_retries: attempts after the first for a job whose worker was lost.
    """

    def __init__(self, max_retries: int = 3) -> None:
        self.max_retries = max_retries

    @abstractmethod
    def run(self, jobs: list[PartitionJob], sink: Sink) -> None:
        """Run the jobs; returns when every started job has finished."""

    def describe(self) -> str:
        """A short description for logs."""
        return type(self).__name__

    def prepare(self, workers: int) -> None:  # noqa: B027 (optional hook)
        """Start up to ``workers`` workers now (optional; the default starts nothing).

        Called before the driver's checks and planning, so that the workers' start-up
        (process spawn, imports) overlaps them; :meth:`run` uses what was started.
        """

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what :meth:`prepare` started and :meth:`run` did not use."""


def lost_record(job: PartitionJob, attempts: int, why: str) -> StepRecord:
    """The failed record of a job whose worker was lost on every attempt."""
    now = datetime.now(UTC).isoformat()
    step = job.tasks[0].step
    err = StepError(step, f"worker lost {attempts} time(s), giving up: {why}", job.partition_id)
    fp = job.tasks[0].fingerprint
    return StepRecord(job.partition_id, step, "failed", fp, now, now, error=err)
