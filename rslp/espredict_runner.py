"""EsPredictRunner: the seed's Python API, a thin facade over :mod:`rslp.runner`.

Example (the seed's ``run_pipeline.py``)::

    runner = EsPredictRunner(
        "model.yaml", "dataset.json", "partition_strategies.yaml",
        "postprocessing_strategies.yaml", "prediction/test-request1.geojson",
        scratch_path="scratch/",
    )
    partitions = runner.partition()
    for partition_id in partitions:
        runner.build_dataset(partition_id)
        runner.run_inference(partition_id)
        runner.postprocess(partition_id)
    runner.combine(partitions)

Every method reads what it needs from ``scratch_path``, so each can run alone in a fresh
process given the same constructor arguments.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from rslp.checks.preflight import preflight
from rslp.project import ProjectFiles, default_checkpoint
from rslp.runner import dataset as dataset_step
from rslp.runner import inference as inference_step
from rslp.runner import partition as partition_step
from rslp.runner import postprocess as postprocess_step
from rslp.runner.context import RunContext
from rslp.runner.engine import publish_step
from rslp.runner.executors.base import Executor
from rslp.runner.pipeline import (
    STEPS,
    Pipeline,
    PipelineOptions,
    enforce_floor,
    fingerprints,
    input_files,
    list_rejected,
    run_floor,
)
from rslp.runner.scratch import Scratch

logger = logging.getLogger(__name__)


class EsPredictRunner:
    """Run a prediction request through partition, dataset, inference, postprocess, combine.

    Args:
        model_yaml: rslearn/Lightning model config.
        dataset_json: rslearn dataset config; relative paths inside it are relative to
            its directory (the project directory).
        partition_strategies_yaml: partitioning strategies.
        postprocessing_strategies_yaml: postprocessing strategies.
        request_geojson: the prediction request (GeoJSON FeatureCollection).
        scratch_path: where all intermediate and final outputs go: a directory, or a
            bucket URL (``s3://bucket/prefix``; endpoint and credentials from the
            environment, the working copy in ``ESRUNNER_NODE_DIR``).
        checkpoint_path: model weights; default ``checkpoint.ckpt`` next to model.yaml
            when that file exists.
    """

    def __init__(
        self,
        model_yaml: str | Path,
        dataset_json: str | Path,
        partition_strategies_yaml: str | Path,
        postprocessing_strategies_yaml: str | Path,
        request_geojson: str | Path,
        scratch_path: str | Path = "scratch/",
        checkpoint_path: str | Path | None = None,
    ) -> None:
        model = Path(model_yaml).resolve()
        ckpt = default_checkpoint(model, checkpoint_path)
        files = ProjectFiles(
            model_yaml=model,
            dataset_json=Path(dataset_json).resolve(),
            partition_strategies_yaml=Path(partition_strategies_yaml).resolve(),
            postprocessing_strategies_yaml=Path(postprocessing_strategies_yaml).resolve(),
            request_geojson=Path(request_geojson).resolve(),
            checkpoint=ckpt,
        )
        self.scratch = Scratch.open(scratch_path)
        self.ctx = RunContext(files=files, scratch=self.scratch)
        self.checked = False

    @classmethod
    def from_project(
        cls, project_dir: str | Path, scratch_path: str | Path, request: str | Path | None = None
    ) -> EsPredictRunner:
        """Build a runner from a project directory's standard file names."""
        f = ProjectFiles.from_dir(Path(project_dir), Path(request) if request else None)
        return cls.from_files(f, scratch_path)

    @classmethod
    def from_files(cls, f: ProjectFiles, scratch_path: str | Path) -> EsPredictRunner:
        """Build a runner from located project files (e.g. one variant's).

        A unified project's files are its transpiled files; they keep their ``source``.
        """
        runner = cls(
            f.model_yaml,
            f.dataset_json,
            f.partition_strategies_yaml,
            f.postprocessing_strategies_yaml,
            f.request_geojson,
            scratch_path=scratch_path,
            checkpoint_path=f.checkpoint,
        )
        if f.source is not None:
            files = dataclasses.replace(f, checkpoint=runner.ctx.files.checkpoint)
            runner.ctx = RunContext(files=files, scratch=runner.scratch)
        return runner

    def preflight(self) -> None:
        """Check the project's files (once per runner; every step calls it first).

        Raises:
            PreflightError: every error found, each naming file, line and key path;
                nothing was written to scratch.
        """
        if not self.checked:
            preflight(self.ctx.files)
            self.checked = True

    def _snapshot(self) -> dict[str, str]:
        """Check, then copy and hash the inputs; returns each step's fingerprint."""
        self.preflight()
        hashes = self.scratch.snapshot_inputs(input_files(self.ctx.files, self.scratch))
        self.scratch.update_manifest(inputs=hashes)
        return fingerprints(hashes)

    def partition(self) -> list[str]:
        """Split the request into partitions (rslearn window groups) and their windows.

        Returns:
            the partition ids: deterministic and safe as directory names.
        """
        fps = self._snapshot()
        ids = partition_step.run_partition(self.ctx)
        self.scratch.publish(self.scratch.plan_dir)
        self.scratch.update_manifest(
            partition_ids=ids, partition_step={"state": "done", "fingerprint": fps["partition"]}
        )
        logger.info("partitioned request into %d partitions", len(ids))
        return ids

    def build_dataset(self, partition_id: str) -> None:
        """Create the partition's windows and materialize their input layers.

        Windows without imagery are rejected, not an error (see :meth:`combine`); calling
        it again retries only those.
        """
        self._run(
            "dataset", partition_id, lambda: dataset_step.build_dataset(self.ctx, partition_id)
        )

    def run_inference(self, partition_id: str) -> None:
        """Run the model on every window of the partition, writing the output layer."""
        self._run(
            "inference", partition_id, lambda: inference_step.run_inference(self.ctx, partition_id)
        )

    def postprocess(self, partition_id: str) -> None:
        """Run the window and partition postprocessing stages for the partition."""
        self._run(
            "postprocess",
            partition_id,
            lambda: [str(p) for p in postprocess_step.postprocess(self.ctx, partition_id)],
        )

    def combine(self, partition_ids: list[str]) -> list[Path]:
        """Run the dataset stage over the given partitions.

        Windows rejected by :meth:`build_dataset` (no imagery) are listed in
        ``<scratch>/results/rejected_windows.geojson``. The manifest's journal is compacted
        into ``manifest.json`` (between steps, ``Scratch.read_manifest`` reads both).

        Returns:
            the final artifacts under ``<scratch>/results``.

        Raises:
            WindowFloorError: ready / planned windows of the partitions is below the
                project's ``dataset_build.min_window_success_rate``.
        """
        self.preflight()
        ids = list(partition_ids)
        self.scratch.fetch(self.scratch.plan_dir)
        plan = partition_step.load_plan(self.ctx)["partitions"]
        floor, source = run_floor(self.ctx)
        outcome = enforce_floor(
            self.ctx, {p["id"]: p["num_windows"] for p in plan if p["id"] in ids}, floor, source
        )
        outs = postprocess_step.combine(self.ctx, ids)
        list_rejected(self.ctx, outcome)
        self.scratch.publish(self.scratch.results)
        self.scratch.update_manifest(results=[self.scratch.where(p) for p in outs])
        self.scratch.compact()  # the end of a run: manifest.json alone is whole again
        return outs

    def run(
        self,
        executor: Executor | None = None,
        steps: tuple[str, ...] = STEPS,
        partition_ids: list[str] | None = None,
        force: bool = False,
    ) -> list[Path]:
        """Run every step of every partition (or the ones given) on an executor.

        The same as ``esrunner run``: steps that are done and current are skipped, the
        partitions' steps run on ``executor`` (default: in this process; for a cluster,
        ``RayExecutor(address)``), and combine runs here.

        Example::

            from rslp.runner.executors import RayExecutor
            runner.run(RayExecutor("127.0.0.1:6379"))

        Returns:
            the final artifacts under ``<scratch>/results`` (empty without combine).

        Raises:
            PartitionsFailedError: partitions failed (each distinct error once).
        """
        options = PipelineOptions(steps=steps, partition_ids=partition_ids, force=force)
        pipeline = Pipeline(self.ctx.files, self.scratch, options, executor=executor)
        pipeline.checked = self.checked
        pipeline.preflight()  # before the lock: a broken project leaves nothing behind
        self.scratch.check_access()  # a bucket refusing writes: now, before any window
        with self.scratch.lock():
            return pipeline.run().results

    def _run(self, step: str, partition_id: str, fn: object) -> None:
        fp = self._snapshot()[step]
        self.scratch.record_step(partition_id, step, "running", fingerprint=fp)
        try:
            out = fn()  # type: ignore[operator]
        except BaseException as e:
            self.scratch.record_step(partition_id, step, "failed", fingerprint=fp, error=str(e))
            raise
        publish_step(self.ctx, partition_id, step)
        self.scratch.record_step(partition_id, step, "done", fingerprint=fp, result=out)
