"""The step engine: what a worker does with one partition, whatever runs the worker.

The driver (:class:`rslp.runner.pipeline.Pipeline`) decides, from the manifest, which
steps of a partition run and whether each is reset first; it sends that as a
:class:`PartitionJob`. A worker (this process, a local worker process or a Ray task)
runs the job's steps in order with :func:`run_steps` and gives back a
:class:`StepRecord` per step. Workers never write the manifest: they report
:class:`Event` s (a step started, windows finished) through a reporter, and the driver
records them. So local and Ray runs mean the same thing on disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rslp.errors import RunnerError, StepError
from rslp.fsutil import write_json_atomic
from rslp.project import ProjectFiles
from rslp.runner.context import RunContext
from rslp.runner.device import InferenceSettings
from rslp.runner.scratch import Scratch

logger = logging.getLogger(__name__)

PARTITION_STEPS = ("dataset", "inference", "postprocess")
RUN_ID_FILE = "run-id"


class SharedScratchError(RunnerError):
    """A worker cannot see the run's scratch (not a shared filesystem, or another bucket).

    Args:
        root: the scratch path or URL the worker was given.
        host: the worker's host name.
        what: what it could not see.
    """

    def __init__(self, root: str, host: str, what: str) -> None:
        self._init_args = (root, host, what)
        need = (
            "every node needs the same object-storage settings (AWS_ENDPOINT_URL, credentials)"
            if "://" in root
            else "the scratch directory must be a shared filesystem mounted at the same path "
            "on every node, or a bucket URL"
        )
        super().__init__(
            f"worker on {host} cannot see the run's manifest: {what} under {root} ({need})"
        )


@dataclass(frozen=True)
class StepTask:
    """One step of a partition as the driver planned it.

    Attributes:
        step: ``dataset``, ``inference`` or ``postprocess``.
        fingerprint: the step's fingerprint for this run.
        reset: remove what the step wrote before, so it runs from scratch.
    """

    step: str
    fingerprint: str
    reset: bool


@dataclass(frozen=True)
class PartitionJob:
    """The steps of one partition to run, and everything a worker needs to run them.

    Attributes:
        files: the project's files (absolute paths, visible on every node).
        scratch_root: the scratch directory (the same path on every node).
        run_id: the run's id; the worker checks it against ``scratch/run-id``.
        scratch_url: the scratch's bucket URL, when it is in one (``scratch_root`` is then
            the driver's working copy; each worker uses its own node's).
        project: (URL, digest, the driver's copy) of a project read from a bucket: each
            worker reads that version into its own node's copy (``files`` name the
            driver's).
        partition_id: the partition.
        num_windows: its planned windows.
        tasks: the steps to run, in pipeline order.
        inference: the device and batch size asked for.
    """

    files: ProjectFiles
    scratch_root: Path
    run_id: str
    partition_id: str
    num_windows: int
    tasks: tuple[StepTask, ...]
    scratch_url: str | None = None
    project: tuple[str, str, Path] | None = None
    inference: InferenceSettings = InferenceSettings()


@dataclass
class StepRecord:
    """What a step did: the driver writes it into the manifest.

    Attributes:
        partition_id: the partition.
        step: the step.
        state: ``done`` or ``failed``.
        fingerprint: the fingerprint it ran with.
        start: ISO start time.
        end: ISO end time.
        result: the step's return value (JSON-able).
        error: the error, when failed.
        worker: ``host:pid`` of the worker that ran it.
    """

    partition_id: str
    step: str
    state: str
    fingerprint: str
    start: str
    end: str
    result: Any = None
    error: RunnerError | None = None
    worker: str = ""

    def manifest_fields(self) -> dict[str, Any]:
        """The record as stored in the manifest (without partition and step)."""
        out: dict[str, Any] = {
            "state": self.state,
            "fingerprint": self.fingerprint,
            "start": self.start,
            "end": self.end,
            "worker": self.worker,
        }
        if self.state == "done":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = str(self.error)
        return out


@dataclass
class Event:
    """A worker's progress note: a step's ``start``, ``windows`` finished, or ``record``.

    A ``record`` event carries a step's record as soon as it ends (the job's return
    value repeats the records, for executors whose events may be lost).
    """

    kind: str
    partition_id: str
    step: str
    fingerprint: str = ""
    count: float = 0
    record: StepRecord | None = None
    worker: str = ""
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


Reporter = Callable[[list[Event]], None]


class ThrottledReporter:
    """Batches window counts so a worker sends at most one message per ``interval``.

    Args:
        send: delivers a batch of events to the driver (must not raise).
        interval: seconds between sends of window counts.
    """

    def __init__(self, send: Reporter, interval: float = 0.5) -> None:
        self._send = send
        self._interval = interval
        self._pending: dict[tuple[str, str], float] = {}
        self._last = float("-inf")  # the first count goes out at once
        self._lock = threading.Lock()

    def start(self, partition_id: str, step: str, fingerprint: str) -> None:
        """A step starts (sent at once, after pending counts)."""
        self.flush([Event("start", partition_id, step, fingerprint, worker=worker_name())])

    def windows(self, partition_id: str, step: str, count: float) -> None:
        """``count`` more windows of a step finished (a fraction for part of a window)."""
        with self._lock:
            key = (partition_id, step)
            self._pending[key] = self._pending.get(key, 0) + count
            due = time.monotonic() - self._last >= self._interval
        if due:
            self.flush()

    def flush(self, extra: list[Event] | None = None) -> None:
        """Send pending counts (and ``extra``) now."""
        with self._lock:
            events = [Event("windows", p, s, count=n) for (p, s), n in self._pending.items()]
            self._pending.clear()
            self._last = time.monotonic()
        events += extra or []
        if events:
            with contextlib.suppress(Exception):  # progress must never fail the work
                self._send(events)


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_scratch(scratch: Scratch, run_id: str) -> None:
    """Fail at once when this worker does not see the run's scratch.

    Raises:
        SharedScratchError: the manifest or the run id file is missing or another run's.
    """
    host = socket.gethostname()
    if scratch.remote is None and not scratch.manifest_path.is_file():
        raise SharedScratchError(scratch.location, host, "no manifest.json")
    seen = (scratch.read_text(scratch.root / RUN_ID_FILE) or "").strip()
    if seen != run_id:
        raise SharedScratchError(
            scratch.location, host, f"{RUN_ID_FILE} is {seen or 'missing'!r}, not {run_id!r}"
        )


def reset_step(ctx: RunContext, partition_id: str, step: str) -> None:
    """Remove what a step wrote for a partition, so it runs from scratch."""
    scratch = ctx.scratch
    if step == "dataset":
        from rslp.runner.outcomes import clear_outcome, outcome_path

        clear_outcome(scratch, partition_id)
        scratch.publish(outcome_path(scratch, partition_id))  # gone from the bucket too
        shutil.rmtree(scratch.dataset / "windows" / partition_id, ignore_errors=True)
    elif step == "inference":
        layer = ctx.output_layer.name
        for layers in (scratch.dataset / "windows" / partition_id).glob("*/layers"):
            for d in layers.iterdir():
                if d.name == layer or d.name.startswith(f"{layer}."):
                    shutil.rmtree(d, ignore_errors=True)
    elif step == "postprocess":
        shutil.rmtree(scratch.partition_dir(partition_id), ignore_errors=True)


_CONTEXTS: dict[tuple[ProjectFiles, str, str, InferenceSettings], RunContext] = {}


def _context(job: PartitionJob) -> RunContext:
    """The worker's RunContext for a run (its parsed configs are reused within the run)."""
    where = job.scratch_url or str(job.scratch_root)
    key = (job.files, where, job.run_id, job.inference)
    if key not in _CONTEXTS:
        _CONTEXTS.clear()
        files = job.files
        if job.project is not None:
            from rslp.project_source import fetch_project, relocate

            url, digest, driver_copy = job.project
            files = relocate(files, driver_copy, fetch_project(url, digest)[0])
        files = files.transpiled()  # a unified project's files, on a node without them
        _CONTEXTS[key] = RunContext(
            files=files, scratch=Scratch.open(where), inference=job.inference
        )
    return _CONTEXTS[key]


NODE_STATE_DIR = "node-state"


def _node_state_path(scratch: Scratch, partition_id: str) -> Path:
    return scratch.root / NODE_STATE_DIR / f"{partition_id}.json"


def node_tasks(scratch: Scratch, partition_id: str, tasks: list[StepTask]) -> list[StepTask]:
    """The tasks with ``reset`` set where this node's copy of the partition is not current.

    For a scratch in a bucket the dataset and inference outputs live only on the node
    that made them: a step this node did not finish at the task's fingerprint runs from
    scratch here (and so does every later one). On a shared directory: unchanged.
    """
    if scratch.remote is None:
        return tasks
    try:
        done = json.loads(_node_state_path(scratch, partition_id).read_text())
    except (OSError, ValueError):
        done = {}
    out: list[StepTask] = []
    for t in tasks:
        reset = t.reset or bool(out and out[-1].reset) or done.get(t.step) != t.fingerprint
        out.append(StepTask(t.step, t.fingerprint, reset))
    return out


def _node_state(scratch: Scratch, partition_id: str, step: str, fingerprint: str | None) -> None:
    """Note (or forget, for None) that this node holds a step's outputs at a fingerprint."""
    if scratch.remote is None:
        return
    path = _node_state_path(scratch, partition_id)
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        done = {}
    if fingerprint is None:
        later = PARTITION_STEPS[PARTITION_STEPS.index(step) :]
        done = {k: v for k, v in done.items() if k not in later}
    else:
        done[step] = fingerprint
    write_json_atomic(path, done)


def publish_step(ctx: RunContext, partition_id: str, step: str) -> None:
    """Put what a finished step made that must outlive the node into the bucket.

    The dataset step's outcome (ready and rejected windows) and the postprocess outputs;
    the step's record, written by the driver after this returns, is what says they are
    complete. No-op for a scratch directory.
    """
    scratch = ctx.scratch
    if scratch.remote is None:
        return
    if step == "dataset":
        from rslp.runner.outcomes import outcome_path

        scratch.publish(outcome_path(scratch, partition_id))
    elif step == "postprocess":
        scratch.publish(scratch.partition_dir(partition_id))


def _action(ctx: RunContext, job: PartitionJob, step: str, report: ThrottledReporter) -> Any:
    from rslp.rasterenv import raster_env
    from rslp.runner import dataset, inference, postprocess

    pid = job.partition_id
    with raster_env():
        if step == "dataset":
            return dataset.build_dataset(ctx, pid)
        if step == "inference":
            return inference.run_inference(ctx, pid, lambda n: report.windows(pid, step, n))
        outs = postprocess.postprocess(ctx, pid, lambda n: report.windows(pid, step, n))
        return [str(p) for p in outs]


def run_steps(job: PartitionJob, send: Reporter, only: str | None = None) -> list[StepRecord]:
    """Run a job's steps (or only the one named ``only``) in order; stop at a failure.

    A failure is a record with state ``failed`` (never an exception), so that records of
    the steps that did run reach the driver. ``sys.exit`` inside a step is a failure too.
    Anything else escaping (the process dying) is the executor's business: it retries.

    Returns:
        a record per step that ran.
    """
    reporter = ThrottledReporter(send)
    records: list[StepRecord] = []
    tasks = [t for t in job.tasks if only in (None, t.step)]
    start = datetime.now(UTC).isoformat()
    try:
        ctx = _context(job)
        check_scratch(ctx.scratch, job.run_id)
        if ctx.scratch.remote is not None:
            ctx.scratch.fetch(ctx.scratch.plan_dir)
        tasks = node_tasks(ctx.scratch, job.partition_id, tasks)
    except RunnerError as e:
        t = tasks[0]
        end = datetime.now(UTC).isoformat()
        return [StepRecord(job.partition_id, t.step, "failed", t.fingerprint, start, end, error=e)]
    for t in tasks:
        start = datetime.now(UTC).isoformat()
        reporter.start(job.partition_id, t.step, t.fingerprint)
        error: RunnerError | None = None
        result: Any = None
        try:
            if t.reset:
                _node_state(ctx.scratch, job.partition_id, t.step, None)
                reset_step(ctx, job.partition_id, t.step)
            result = _action(ctx, job, t.step, reporter)
            publish_step(ctx, job.partition_id, t.step)
            _node_state(ctx.scratch, job.partition_id, t.step, t.fingerprint)
        except RunnerError as e:
            error = e
        except SystemExit as e:
            error = StepError(t.step, f"exited with status {e.code}", job.partition_id)
        except Exception as e:  # a library raising on bad data or config
            logger.error("partition %s, step %s failed", job.partition_id, t.step, exc_info=e)
            error = StepError(t.step, f"{type(e).__name__}: {e}", job.partition_id)
        rec = StepRecord(
            job.partition_id,
            t.step,
            "failed" if error else "done",
            t.fingerprint,
            start,
            datetime.now(UTC).isoformat(),
            result=result,
            error=error,
            worker=worker_name(),
        )
        records.append(rec)
        reporter.flush([Event("record", job.partition_id, t.step, record=rec)])
        if error is not None:
            break
    return records
