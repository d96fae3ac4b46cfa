"""The Ray executor: partitions as Ray tasks on an existing cluster.

Each partition's planned steps become a chain of Ray tasks (dataset -> inference ->
postprocess, each waiting on the one before through its object reference), so a GPU is
held only by inference tasks. Tasks run in Ray's long-lived worker processes; each
process keeps the model it built (:func:`rslp.runner.inference.predictor_for`), so the
model is built once per worker process, not once per partition. Progress reaches the
driver through a small actor on the driver's node; step records come back as task
results and only the driver writes the manifest. Ray retries a task whose worker or
node died (``max_retries``); an application error comes back as a failed record and is
never retried.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rslp.errors import RunnerError
from rslp.runner.engine import Event, PartitionJob, StepRecord, run_steps
from rslp.runner.executors.base import Executor, Sink, lost_record

logger = logging.getLogger(__name__)


class EventChannel:
    """A Ray actor holding workers' progress events until the driver drains them."""

    def __init__(self) -> None:
        self._events: list[Event] = []

    def put(self, events: list[Event]) -> None:
        """Add events (called by workers, fire and forget)."""
        self._events.extend(events)

    def drain(self) -> list[Event]:
        """Take every event so far (called by the driver)."""
        out, self._events = self._events, []
        return out


def ray_step(
    job: PartitionJob, step: str | None, upstream: list[StepRecord] | None, channel: Any
) -> list[StepRecord]:
    """One step (None: every step) of a partition, as a Ray task.

    ``upstream``: the previous step's records (None for the first).

    Returns:
        the step's record, or nothing when the step before it failed.
    """
    if upstream is not None and (not upstream or upstream[-1].state != "done"):
        return []

    def send(events: list[Event]) -> None:
        channel.put.remote(events)

    return run_steps(job, send, only=step)


class RayExecutor(Executor):
    """Partitions as Ray tasks on an existing Ray cluster (``--executor ray``).

    Use it to spread a run over machines. The scratch is a bucket URL (every node with
    the same object-storage settings) or a shared filesystem mounted at the same path on
    every node (a worker that cannot see the run's manifest fails at once, saying so),
    and every node must run the same environment (the model image, or the same venv).

    With a shared directory each step of a partition is its own task (inference alone
    holds a GPU); with a bucket a partition's steps are one task on one node, because
    its dataset and inference outputs stay on that node's disk.

    Args:
        address: the cluster, as ``ray.init`` takes it (``127.0.0.1:6379``,
            ``ray://...``); default ``RAY_ADDRESS``, else ``"auto"``.
        cpus_per_worker: CPUs each task declares.
        gpus_per_worker: GPUs each inference task declares; None: 1 when the cluster has
            GPUs, else 0. Fractions share a GPU between tasks.
        max_retries: retries of a task whose worker or node died.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float | None = None,
        max_retries: int = 3,
    ) -> None:
        super().__init__(max_retries)
        self.address = address or os.environ.get("RAY_ADDRESS") or "auto"
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker

    def describe(self) -> str:
        """A short description for logs."""
        return f"Ray cluster at {self.address}"

    def _connect(self) -> Any:
        import ray

        if ray.is_initialized():  # the caller's own connection (Python API): use it
            return ray
        try:
            ray.init(
                address=self.address,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RunnerError(
                f"cannot connect to the Ray cluster at {self.address!r}: {e} (start one with "
                "`ray start --head`, or give --address / RAY_ADDRESS)"
            ) from None
        return ray

    def run(self, jobs: list[PartitionJob], sink: Sink) -> None:
        """Run the jobs as task chains; see :class:`Executor` for the contract."""
        import ray as ray_module

        ours = not ray_module.is_initialized()
        ray = self._connect()
        try:
            self._run(ray, jobs, sink)
        finally:
            if ours:
                ray.shutdown()

    def _run(self, ray: Any, jobs: list[PartitionJob], sink: Sink) -> None:
        from ray.exceptions import RayError
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        resources = ray.cluster_resources()
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        slots = max(1, int(resources.get("CPU", 1) // self.cpus_per_worker))
        logger.info("Ray: %s, %d task slots, %.2g GPU per inference task", resources, slots, gpus)
        here = ray.get_runtime_context().get_node_id()
        channel = (
            ray.remote(EventChannel)
            .options(
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            )
            .remote()
        )
        task = ray.remote(max_calls=0)(ray_step)
        cpu = {
            "num_cpus": self.cpus_per_worker,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }
        gpu = dict(cpu, num_gpus=gpus)
        todo = list(reversed(jobs))
        refs: dict[Any, PartitionJob] = {}
        in_flight: dict[str, int] = {}
        lost: set[str] = set()

        def drain() -> None:
            sink.events(ray.get(channel.drain.remote()))

        while todo or refs:
            while todo and len(in_flight) < 2 * slots and not sink.failed:
                job = todo.pop()
                if job.scratch_url is not None:  # node-local steps: one task, one node
                    opts = gpu if any(t.step == "inference" for t in job.tasks) else cpu
                    refs[task.options(**opts).remote(job, None, None, channel)] = job
                    in_flight[job.partition_id] = 1
                    continue
                prev = None
                for t in job.tasks:
                    opts = gpu if t.step == "inference" else cpu
                    prev = task.options(**opts).remote(job, t.step, prev, channel)
                    refs[prev] = job
                in_flight[job.partition_id] = len(job.tasks)
            if not refs:
                break
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.2)
            drain()
            for ref in ready:
                job = refs.pop(ref)
                pid = job.partition_id
                in_flight[pid] -= 1
                if in_flight[pid] == 0:
                    del in_flight[pid]
                try:
                    records = ray.get(ref)
                except RayError as e:  # retries exhausted: the worker or node kept dying
                    if pid not in lost:
                        lost.add(pid)
                        why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                        sink.records([lost_record(job, self.max_retries + 1, why)])
                    continue
                sink.records(records)
        drain()
