"""Run steps over partitions with saved state: skip what is done, redo what changed.

The manifest (``scratch/manifest.json``) records, per partition and step, its state,
start and end times, outputs and *fingerprint*: a hash chained from the hashes of the
inputs that step and every step before it read:

========== ==============================================
step       inputs
========== ==============================================
partition  request, partition_strategies.yaml
dataset    dataset.json
inference  model.yaml, checkpoint
postprocess postprocessing_strategies.yaml
combine    (none of its own)
========== ==============================================

So a changed postprocessing config re-runs postprocess and combine, not inference. A step
whose fingerprint changed (or with ``force``) is reset before it runs; a step that was
interrupted resumes (rslearn skips windows whose layers are complete). When a step runs,
later steps of that partition are marked stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rslp import formats
from rslp.checks.project import DEFAULT_MAX_WINDOWS
from rslp.config import DEFAULT_MIN_WINDOW_SUCCESS_RATE
from rslp.errors import PartitionsFailedError, RunnerError, StepError
from rslp.fsutil import atomic_path, fresh_dir, publish_dir
from rslp.project import ProjectFiles, read_yaml
from rslp.project_source import source_of
from rslp.runner.context import RunContext
from rslp.runner.device import InferenceSettings, accelerator_for, cuda_devices, worker_gpus
from rslp.runner.engine import PARTITION_STEPS, RUN_ID_FILE, PartitionJob, StepRecord, StepTask
from rslp.runner.executors.base import Executor
from rslp.runner.outcomes import (
    REJECTED_GEOJSON,
    RunOutcome,
    WindowFloorError,
    collect,
    write_rejected_geojson,
)
from rslp.runner.progress import Progress
from rslp.runner.recorder import Recorder
from rslp.runner.scratch import Scratch

logger = logging.getLogger(__name__)

STEPS = ("partition", "dataset", "inference", "postprocess", "combine")
STEP_INPUTS = {
    "partition": ("request.geojson", "partition_strategies.yaml"),
    "dataset": ("dataset.json",),
    "inference": ("model.yaml", "checkpoint.ckpt"),
    "postprocess": ("postprocessing_strategies.yaml",),
    "combine": (),
}


def fingerprints(input_hashes: dict[str, str]) -> dict[str, str]:
    """Each step's fingerprint: its inputs' hashes chained after the previous step's."""
    out: dict[str, str] = {}
    prev = ""
    for step in STEPS:
        text = prev + "".join(f"|{k}={input_hashes.get(k, '-')}" for k in STEP_INPUTS[step])
        prev = out[step] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


@dataclass
class PipelineOptions:
    """What to run.

    Attributes:
        steps: the steps to run, in pipeline order.
        partition_ids: only these partitions (default: all).
        workers: partitions processed in parallel (1: in this process).
        force: redo steps even when their state is done and current.
        max_retries: retries of a partition whose local worker process died.
        max_windows: the most windows a plan may make (checked before partitioning).
        min_window_success_rate: the floor of ready / planned windows (None: the
            project's ``dataset_build.min_window_success_rate``).
        inference: the device and batch size (``--device``, ``--batch-size``).
    """

    steps: tuple[str, ...] = STEPS
    partition_ids: list[str] | None = None
    workers: int = 1
    force: bool = False
    max_retries: int = 3
    max_windows: int = DEFAULT_MAX_WINDOWS
    min_window_success_rate: float | None = None
    inference: InferenceSettings = field(default_factory=InferenceSettings)


@dataclass
class PipelineResult:
    """What a pipeline run did.

    Attributes:
        partitions: the partitions of the run.
        ran: step -> the partitions it ran for.
        skipped: step -> the partitions skipped as done and current.
        results: the final artifacts (on this machine).
        locations: where users find them: their paths, or their URLs for a scratch in
            a bucket.
        outcome: ready and rejected windows of the partitions (None without a plan).
        floor: the run's ``min_window_success_rate``.
        rejected_listing: ``results/rejected_windows.geojson`` when windows were rejected.
    """

    partitions: list[str]
    ran: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    results: list[Path] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    outcome: RunOutcome | None = None
    floor: float = DEFAULT_MIN_WINDOW_SUCCESS_RATE
    rejected_listing: Path | None = None


def _gap_fill(rec: dict[str, Any]) -> bool:
    """A dataset step that finished with rejected windows: a rerun tries them again."""
    result = rec.get("result")
    return isinstance(result, dict) and int(result.get("rejected", 0)) > 0


def _needs_run(rec: dict[str, Any], fp: str, force: bool) -> tuple[bool, bool]:
    """(run it, reset it first) for a manifest record and the current fingerprint."""
    if force:
        return True, True
    if rec.get("state") == "done" and rec.get("fingerprint") == fp:
        return False, False
    # Interrupted at the same fingerprint: resume; otherwise start clean.
    return True, rec.get("fingerprint") not in (None, fp)


class Pipeline:
    """Runs a project's steps with saved state, on an executor.

    The driver (this object) plans each partition's steps from the manifest, hands them
    to the executor as :class:`~rslp.runner.engine.PartitionJob` s, and alone writes the
    manifest from the records that come back (:class:`~rslp.runner.recorder.Recorder`).
    Combine runs here, on the driver.

    Args:
        files: the project's files.
        scratch: the scratch directory.
        options: what to run.
        progress: where to report progress.
        executor: where partitions run; default: in this process for ``workers == 1``,
            else a pool of ``options.workers`` local processes.
    """

    def __init__(
        self,
        files: ProjectFiles,
        scratch: Scratch,
        options: PipelineOptions,
        progress: Progress | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.files = files
        self.scratch = scratch
        self.options = options
        self.progress = progress or Progress(bars=False)
        self.ctx = RunContext(files=files, scratch=scratch)
        self.executor = executor
        self.stats: list[StepRecord] = []
        self.checked = False
        self.prepared: Executor | None = None
        source = source_of(files.project_dir)
        self._project = (*source, files.project_dir) if source is not None else None

    def prepare(self) -> None:
        """Start the workers now, so their start-up overlaps the checks and the planning.

        Local worker processes (``workers > 1``) spawn and import torch and rslearn while
        the driver imports the model's classes to check them and plans; as many as the
        request has features, at most ``workers``. :meth:`preflight` calls it once its
        first pass found no error, so a broken project never starts a worker. Call
        :meth:`close` when not going on to :meth:`run`.
        """
        if self.prepared is not None or self.executor is not None or self.options.workers <= 1:
            return
        self.prepared = local_executor(self.options.workers, self.scratch, self.options)
        self.prepared.prepare(min(self.options.workers, _feature_count(self.files)))

    def close(self) -> None:
        """Release workers :meth:`prepare` started."""
        if self.prepared is not None:
            self.prepared.close()
            self.prepared = None

    def preflight(self) -> None:
        """Check the project's files before anything is written (once per pipeline).

        Raises:
            PreflightError: every error found, each naming file, line and key path.
        """
        from rslp.checks.preflight import preflight

        if not self.checked:
            preflight(self.files, self.options.max_windows, passed_quick=self.prepare)
            if "inference" in self.options.steps:  # a GPU asked for and none here: now
                trainer = self.ctx.model_config.get("trainer")
                accelerator_for(
                    trainer if isinstance(trainer, dict) else {},
                    self.files.model_yaml,
                    self.options.inference.device,
                )
            self.checked = True

    def run(self) -> PipelineResult:
        """Run the selected steps; returns what ran, what was skipped and the results.

        Raises:
            PreflightError: the project's files have errors (nothing was written).
            PartitionsFailedError: partitions failed (each distinct error once).
            StepError: the plan or combine step cannot run.
        """
        try:
            self.preflight()  # starts the workers once the quick checks pass
            self.prepare()
            return self._run()
        finally:
            self.close()
            try:
                self.scratch.compact()  # manifest.json whole again between runs
            except RunnerError as e:  # the journal stays; the next run reads it
                logger.warning("the manifest journal was not compacted: %s", e)

    def _run(self) -> PipelineResult:
        from rslp.runner.partition import load_plan, run_partition

        hashes = self.scratch.snapshot_inputs(input_files(self.files, self.scratch))
        run_id = uuid.uuid4().hex[:12]
        self.scratch.update_manifest(inputs=hashes, run_id=run_id)
        self.scratch.write_text(self.scratch.root / RUN_ID_FILE, run_id + "\n")
        fps = fingerprints(hashes)
        opts = self.options
        result = PipelineResult(partitions=[])
        rec = self.scratch.read_manifest().get("partition_step", {})
        plan_ok = self.scratch.fetch(self.scratch.plan_dir) and (
            (self.scratch.plan_dir / "index.json").exists()
        )
        run, _ = _needs_run(rec, fps["partition"], opts.force and "partition" in opts.steps)
        if run or not plan_ok:
            if "partition" not in opts.steps and plan_ok:
                raise StepError("partition", "the plan is out of date: run the partition step")
            ids = run_partition(self.ctx)
            self.scratch.publish(self.scratch.plan_dir)
            self.scratch.update_manifest(
                partition_step={"state": "done", "fingerprint": fps["partition"]}, partition_ids=ids
            )
            result.ran["partition"] = ids
        windows = {p["id"]: p["num_windows"] for p in load_plan(self.ctx)["partitions"]}
        all_ids = list(windows)
        selected = opts.partition_ids or all_ids
        unknown = [p for p in selected if p not in windows]
        if unknown:
            raise StepError(
                "partition", f"unknown partition id(s) {unknown}; known: {all_ids[:10]}"
            )
        result.partitions = selected
        steps = node_steps(self.scratch, tuple(s for s in PARTITION_STEPS if s in opts.steps))
        result.floor, source = run_floor(self.ctx, self.options.min_window_success_rate)
        if steps:
            for step in steps:
                self.progress.start(step, sum(windows[p] for p in selected))
            try:
                self._run_partitions(selected, steps, fps, result, windows, run_id)
            except PartitionsFailedError:  # say what is missing, also when the run fails
                list_rejected(self.ctx, collect(self.scratch, {p: windows[p] for p in selected}))
                self.scratch.publish(self.scratch.results)
                raise
        result.outcome = enforce_floor(
            self.ctx, {p: windows[p] for p in selected}, result.floor, source
        )
        if "combine" in opts.steps:
            result.results = self._combine(selected, fps, result)
        result.rejected_listing = list_rejected(self.ctx, result.outcome)
        if self.scratch.results.is_dir():
            self.scratch.publish(self.scratch.results)
        result.locations = [self.scratch.where(p) for p in result.results]
        self.progress.close()
        return result

    def plan_jobs(
        self,
        ids: list[str],
        steps: tuple[str, ...],
        fps: dict[str, str],
        windows: dict[str, int],
        run_id: str,
    ) -> tuple[list[PartitionJob], dict[str, list[str]]]:
        """Which steps of each partition run (and reset first), from the manifest.

        Returns:
            the jobs with something to run, and step -> partitions skipped as current.
        """
        parts = self.scratch.read_manifest().get("partitions", {})
        jobs: list[PartitionJob] = []
        skipped: dict[str, list[str]] = {}
        for pid in ids:
            tasks: list[StepTask] = []
            for step in steps:
                rec = parts.get(pid, {}).get(step, {})
                run, reset = _needs_run(rec, fps[step], self.options.force)
                if step == "dataset" and not run and _gap_fill(rec):
                    run = True  # retry the rejected windows; the ready ones stay
                if tasks and not run:
                    # Its inputs are about to change: rebuilt (reset) or gaps filled
                    # (inference and the window stage then add the new windows only).
                    run, reset = True, any(t.reset for t in tasks)
                if run:
                    tasks.append(StepTask(step, fps[step], reset))
                else:
                    skipped.setdefault(step, []).append(pid)
            if tasks and self.scratch.remote is not None:
                # Node-local steps: a partition's steps before the first to run come too.
                first = PARTITION_STEPS.index(tasks[0].step)
                tasks = [StepTask(s, fps[s], False) for s in PARTITION_STEPS[:first]] + tasks
            if tasks:
                jobs.append(
                    PartitionJob(
                        self.files,
                        self.scratch.root,
                        run_id,
                        pid,
                        windows[pid],
                        tuple(tasks),
                        scratch_url=self.scratch.remote.url if self.scratch.remote else None,
                        project=self._project,
                        inference=self.options.inference,
                    )
                )
        return jobs, skipped

    def _run_partitions(
        self,
        ids: list[str],
        steps: tuple[str, ...],
        fps: dict[str, str],
        result: PipelineResult,
        windows: dict[str, int],
        run_id: str,
    ) -> None:
        jobs, skipped = self.plan_jobs(ids, steps, fps, windows, run_id)
        for step, pids in skipped.items():
            result.skipped[step] = pids
            for pid in pids:
                self.progress.advance(step, windows[pid], f"{pid} skipped (done)")
        rebuilt = {j.partition_id for j in jobs if any(t.step == "dataset" for t in j.tasks)}
        before = collect(self.scratch, {p: windows[p] for p in ids if p not in rebuilt})
        before.planned = sum(windows[p] for p in ids)
        recorder = Recorder(
            self.scratch, self.progress, windows, self.options.steps, before, result.floor
        )
        try:
            if jobs:
                workers = min(self.options.workers, len(jobs))
                executor = (
                    self.executor
                    or self.prepared
                    or local_executor(workers, self.scratch, self.options)
                )
                logger.info("running %d partition(s) on %s", len(jobs), executor.describe())
                executor.run(jobs, recorder)
        finally:
            recorder.close()
            self.stats = recorder.stats
            result.ran.update(recorder.ran)
        recorder.raise_failures()

    def _combine(self, ids: list[str], fps: dict[str, str], result: PipelineResult) -> list[Path]:
        from rslp.runner.postprocess import combine

        manifest = self.scratch.read_manifest()
        rec = manifest.get("combine_step", {})
        current = rec.get("fingerprint") == fps["combine"] and rec.get("partitions") == sorted(ids)
        nothing_new = not any(result.ran.get(s) for s in PARTITION_STEPS)
        if current and nothing_new and not self.options.force and rec.get("state") == "done":
            result.skipped["combine"] = ["all"]
            self.scratch.fetch(self.scratch.results)
            if "files" in rec:  # relative to the scratch: valid on any node
                return [self.scratch.root / f for f in rec["files"]]
            return [Path(p) for p in rec.get("results", [])]
        not_ready = [
            p
            for p in ids
            if manifest.get("partitions", {}).get(p, {}).get("postprocess", {}).get("fingerprint")
            != fps["postprocess"]
            or manifest["partitions"][p]["postprocess"].get("state") != "done"
        ]
        if not_ready:
            raise StepError(
                "combine",
                f"partitions not postprocessed with the current configs: {not_ready[:10]}",
            )
        outs = combine(self.ctx, ids)
        self.scratch.update_manifest(
            combine_step={
                "state": "done",
                "fingerprint": fps["combine"],
                "partitions": sorted(ids),
                "results": [str(p) for p in outs],
                "files": [p.relative_to(self.scratch.root).as_posix() for p in outs],
            },
            results=[self.scratch.where(p) for p in outs],
        )
        result.ran["combine"] = ["all"]
        return outs


def node_steps(scratch: Scratch, steps: tuple[str, ...]) -> tuple[str, ...]:
    """The partition steps a run goes through: for a bucket scratch, every one up to the last.

    A scratch in a bucket keeps the dataset and inference outputs on the node that made
    them, so a partition's steps run together, on one node, from ``dataset`` on
    (:func:`rslp.runner.engine.node_tasks` decides per node what runs afresh).
    """
    if scratch.remote is None or not steps:
        return steps
    return PARTITION_STEPS[: PARTITION_STEPS.index(steps[-1]) + 1]


def run_floor(ctx: RunContext, given: float | None = None) -> tuple[float, str]:
    """A run's ``min_window_success_rate`` (``given``, else the project's) and its source."""
    if given is not None:
        return given, "--min-window-success-rate"
    value = ctx.partition_config.dataset_build.min_window_success_rate
    key = formats.real_key_str(formats.PARTITION_ROLE, "dataset_build.min_window_success_rate")
    return value, f"{ctx.files.partition_strategies_yaml}: {key}"


def list_rejected(ctx: RunContext, outcome: RunOutcome) -> Path | None:
    """Write ``results/rejected_windows.geojson`` of an outcome (None: none rejected)."""
    listing = ctx.scratch.results / REJECTED_GEOJSON
    return listing if write_rejected_geojson(ctx, outcome, listing) else None


def enforce_floor(
    ctx: RunContext, windows: dict[str, int], floor: float, source: str
) -> RunOutcome:
    """The partitions' window outcome; refuses the run when it is below ``floor``.

    Args:
        ctx: the run.
        windows: partition id -> planned windows.
        floor: the run's ``min_window_success_rate``.
        source: where the floor was set.

    Raises:
        WindowFloorError: ready / planned windows is below ``floor``. Then ``results/``
            holds only ``rejected_windows.geojson`` (nothing that looks finished) and
            the manifest's combine step is ``refused``.
    """
    outcome = collect(ctx.scratch, windows)
    if not outcome.below(floor):
        return outcome
    results = ctx.scratch.results
    if results.exists():
        publish_dir(fresh_dir(results), results)
    ctx.scratch.update_manifest(combine_step={"state": "refused"}, results=[])
    listing = results / REJECTED_GEOJSON
    write_rejected_geojson(ctx, outcome, listing)
    ctx.scratch.publish(results)
    final = len(outcome.partitions) == len(windows)
    layer = outcome.reasons.most_common(1)[0][0][0]
    hint = (
        f"check {ctx.files.dataset_json.name} layers.{layer}.data_source, and that the request "
        f"({ctx.files.request_geojson}) lies over the imagery and inside its time range"
    )
    raise WindowFloorError(outcome, floor, source, listing, final, hint)


def input_files(files: ProjectFiles, scratch: Scratch) -> dict[str, Path | None]:
    """The inputs recorded and hashed in the manifest, by their name in ``inputs/``.

    In the reference format each strategy role is a section of ``olmoearth_run.yaml``: the
    section is written out (``inputs/sections/``) and hashed alone, so a changed
    postprocessing section re-runs postprocessing only, as in the seed format.
    """
    out: dict[str, Path | None] = {
        "model.yaml": files.model_yaml,
        "dataset.json": files.dataset_json,
        "partition_strategies.yaml": files.partition_strategies_yaml,
        "postprocessing_strategies.yaml": files.postprocessing_strategies_yaml,
        "request.geojson": files.request_geojson,
        "checkpoint.ckpt": files.checkpoint,
    }
    if files.source is not None:
        out[formats.UNIFIED_YAML] = files.source
    if files.sectioned:
        run = read_yaml(files.partition_strategies_yaml)
        for role in (formats.PARTITION_ROLE, formats.POSTPROCESSING_ROLE):
            out[role] = _write_section(scratch, role, formats.section(run, role))
        out[formats.RUN_YAML] = files.partition_strategies_yaml
    else:
        data = read_yaml(files.partition_strategies_yaml)
        if isinstance(data, dict):  # its content as parsed: comments change nothing either
            out[formats.PARTITION_ROLE] = _write_section(scratch, formats.PARTITION_ROLE, data)
    return out


# Read by the dataset step but changing nothing a ready window holds: left out of the
# partition config's hash, so changing the floor or the retries re-runs nothing.
UNHASHED_KEY = "dataset_build"


def _write_section(scratch: Scratch, role: str, data: dict[str, Any]) -> Path:
    """Write the hashed part of a role's config to ``inputs/sections/<role>``."""
    path = scratch.inputs / "sections" / role
    text = yaml.safe_dump({k: v for k, v in data.items() if k != UNHASHED_KEY}, sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return path


def _feature_count(files: ProjectFiles) -> int:
    """How many features the request has (1 when it cannot be read: preflight will say)."""
    try:
        features = json.loads(files.request_geojson.read_text()).get("features")
    except (OSError, ValueError, AttributeError):
        return 1
    return len(features) if isinstance(features, list) and features else 1


def local_executor(workers: int, scratch: Scratch, options: PipelineOptions) -> Executor:
    """This process for one worker, else a pool of local worker processes."""
    from rslp.runner.executors.local import InProcessExecutor, ProcessExecutor

    if workers <= 1:
        return InProcessExecutor()
    accelerator = "cpu" if options.inference.device == "cpu" else "auto"
    gpus = worker_gpus(workers, cuda_devices(), accelerator)
    return ProcessExecutor(workers, str(scratch.logs), options.max_retries, gpus)
