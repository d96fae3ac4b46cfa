"""Local executors: this process, or a pool of worker processes on this machine."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rslp.runner.engine import Event, PartitionJob, StepRecord, run_steps
from rslp.runner.executors.base import Executor, Sink, lost_record

logger = logging.getLogger(__name__)


class InProcessExecutor(Executor):
    """One partition after another in this process.

    Use it for one worker (``--workers 1``), the Python API, debugging and profiling: the
    model is built once in this process and reused for every partition.
    """

    def run(self, jobs: list[PartitionJob], sink: Sink) -> None:
        """Run the jobs in order, stopping after the first failure."""
        for job in jobs:
            if sink.failed:
                return
            sink.records(run_steps(job, sink.events))


_QUEUE: Any = None


def _init_worker(threads: int, log_dir: str, events: Any, gpus: Any = None) -> None:
    """Worker start-up: its own GPU, share the cores, output to a log file, keep the queue."""
    if gpus is not None:  # before torch starts CUDA: this process sees its GPU alone
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get(timeout=60)
    import torch

    from rslp.process_exit import end_at_exit_without_teardown

    end_at_exit_without_teardown()  # the run waits for its workers to end
    global _QUEUE
    _QUEUE = events
    torch.set_num_threads(threads)
    os.makedirs(log_dir, exist_ok=True)
    fd = os.open(
        os.path.join(log_dir, f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    logging.basicConfig(level=logging.INFO, force=True)


def _send(events: list[Event]) -> None:
    _QUEUE.put(events)


def _warm() -> None:
    """What every job needs first: the model and data libraries, imported."""
    import rslp.runner.dataset
    import rslp.runner.inference  # noqa: F401


def _pool_job(job: PartitionJob) -> list[StepRecord]:
    return run_steps(job, _send)


class ProcessExecutor(Executor):
    """A pool of worker processes on this machine (``--workers N``).

    Each worker process builds the model once and reuses it for every partition it gets;
    torch gets ``cores / workers`` threads, so the machine is not oversubscribed. A worker
    process that dies (killed, out of memory) breaks the pool: the pool is rebuilt and
    the jobs it was running are retried.

    Args:
        workers: worker processes.
        log_dir: where each worker's output goes (``worker-<pid>.log``).
        max_retries: attempts after the first for a job whose worker died.
        gpus: each worker process's ``CUDA_VISIBLE_DEVICES``
            (:func:`rslp.runner.device.worker_gpus`); None: as the environment says.
    """

    def __init__(
        self,
        workers: int,
        log_dir: str,
        max_retries: int = 3,
        gpus: list[str | None] | None = None,
    ) -> None:
        super().__init__(max_retries)
        self.workers = max(1, workers)
        self.log_dir = log_dir
        self.gpus = gpus if gpus and all(g is not None for g in gpus) else None
        self._ctx = multiprocessing.get_context("spawn")
        self._events: Any = None
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        if self._events is None:
            self._events = self._ctx.Queue()
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        gpus = None
        if self.gpus is not None:  # each process of this pool takes one GPU
            gpus = self._ctx.Queue()
            for g in self.gpus:
                gpus.put(g)
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._ctx,
            initializer=_init_worker,
            initargs=(threads, self.log_dir, self._events, gpus),
        )

    def prepare(self, workers: int) -> None:
        """Spawn up to ``workers`` processes now; each imports torch and rslearn."""
        if self._pool is None:
            self._pool = self._new_pool()
        for _ in range(min(workers, self.workers)):
            self._pool.submit(_warm)

    def close(self) -> None:
        """Shut down a prepared pool that no run used."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def describe(self) -> str:
        """A short description for logs."""
        return f"{self.workers} local worker processes"

    def run(self, jobs: list[PartitionJob], sink: Sink) -> None:
        """Run the jobs in the pool; see :class:`Executor` for the contract."""
        todo = list(reversed(jobs))
        attempts: dict[str, int] = {}

        def drain() -> None:
            while True:
                try:
                    sink.events(self._events.get_nowait())
                except queue.Empty:
                    return

        while todo:
            pool, self._pool = self._pool or self._new_pool(), None
            running: dict[Future[list[StepRecord]], PartitionJob] = {}
            broken: list[PartitionJob] = []
            try:
                while todo or running:
                    while todo and len(running) < 2 * self.workers and not sink.failed:
                        job = todo.pop()
                        running[pool.submit(_pool_job, job)] = job
                    if not running:
                        break
                    done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                    drain()
                    for fut in done:
                        job = running.pop(fut)
                        try:
                            sink.records(fut.result())
                        except BrokenProcessPool as e:
                            broken.append(job)
                            logger.warning("partition %s: worker died (%s)", job.partition_id, e)
                        except Exception as e:  # a worker's sys.exit, an unpicklable error
                            sink.records([lost_record(job, 1, f"{type(e).__name__}: {e}")])
                    if broken:
                        broken += running.values()
                        running.clear()
                        break
                    if sink.failed:
                        todo.clear()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                drain()
            for job in broken:
                n = attempts[job.partition_id] = attempts.get(job.partition_id, 1) + 1
                if n > self.max_retries + 1:
                    sink.records([lost_record(job, n - 1, "its worker process died")])
                else:
                    todo.append(job)
            if sink.failed:
                return
