"""Executors: where a run's partitions are processed.

All of them drive the same step engine (:mod:`rslp.runner.engine`) and hand its events
and records to the driver, which alone writes the manifest:

- :class:`InProcessExecutor`: one partition after another in this process (``--workers
  1``, and the Python API's default);
- :class:`ProcessExecutor`: a pool of local worker processes (``--workers N``);
- :class:`RayExecutor`: Ray tasks on an existing cluster (``--executor ray``).
"""

from rslp.runner.executors.base import Executor, Sink
from rslp.runner.executors.local import InProcessExecutor, ProcessExecutor
from rslp.runner.executors.ray import RayExecutor

__all__ = ["Executor", "InProcessExecutor", "ProcessExecutor", "RayExecutor", "Sink"]
